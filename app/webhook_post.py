"""One webhook attempt: resolve and check the address, POST the signed body to it, say what
came back — never raising, never following a redirect, never reading more than a line.

The connection goes to the address :func:`app.callback_urls.resolve_for_delivery` checked, not
to a second lookup of the name (which a rebinding DNS server could answer differently); the
name still goes in the ``Host`` header and, over TLS, in SNI and the certificate check.
"""

from __future__ import annotations

import logging
import time

import urllib3

from app.callback_urls import BadCallbackUrl, Resolver, resolve_for_delivery, system_resolver
from app.webhook_signing import signed_headers
from app.webhooks import MAX_ERROR_CHARS, REFUSED_ADDRESS, Claimed, Outcome

logger = logging.getLogger(__name__)

USER_AGENT = "PhantomChain-Webhooks/1"


def attempt(
    claimed: Claimed, *, secret: str | None, timeout_s: float, allow_private: bool,
    resolver: Resolver = system_resolver,
) -> Outcome:  # fmt: skip
    """POST ``claimed``'s body to its URL, signed with ``secret``; what happened."""
    started = time.monotonic()

    def outcome(status: int | None, error: str | None) -> Outcome:
        return Outcome(status, error, int((time.monotonic() - started) * 1000))

    if not secret:
        return outcome(None, f"{REFUSED_ADDRESS} WEBHOOK_SECRET is not set, nothing is signed")
    try:
        target = resolve_for_delivery(claimed.url, allow_private=allow_private, resolver=resolver)
    except BadCallbackUrl as exc:
        return outcome(None, f"{REFUSED_ADDRESS} {exc}")
    body = claimed.body.encode()
    host = f"[{target.host}]" if ":" in target.host else target.host
    default_port = 443 if target.scheme == "https" else 80
    headers = {
        **signed_headers(secret, claimed.id, body),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Host": host if target.port == default_port else f"{host}:{target.port}",
    }
    pool = _pool(target.scheme, target.address, target.port, target.host, timeout_s)
    try:
        response = pool.urlopen(
            "POST", target.path, body=body, headers=headers, redirect=False, retries=False,
            preload_content=False, assert_same_host=False,
        )  # fmt: skip
    except urllib3.exceptions.NewConnectionError as exc:  # a TimeoutError subclass, too
        return outcome(None, f"could not connect ({_reason(exc)})")
    except urllib3.exceptions.TimeoutError:
        return outcome(None, f"no answer within {timeout_s:g} s")
    except urllib3.exceptions.HTTPError as exc:
        logger.info("webhook %s: %r", claimed.id, exc)
        return outcome(None, f"could not connect ({_reason(exc)})")
    try:
        status = response.status
        if 200 <= status < 300:
            return outcome(status, None)
        text = response.read(MAX_ERROR_CHARS, decode_content=False)
        said = text.decode("utf-8", "replace").strip()
        if 300 <= status < 400:
            said = f"redirects are not followed ({response.headers.get('Location', '')[:200]})"
        return outcome(status, said[:MAX_ERROR_CHARS] or None)
    except urllib3.exceptions.HTTPError as exc:
        return outcome(response.status, f"the answer was cut ({_reason(exc)})")
    finally:
        response.release_conn()
        pool.close()


def _pool(scheme: str, address: str, port: int, host: str, timeout_s: float):
    timeout = urllib3.Timeout(connect=timeout_s, read=timeout_s)
    if scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address, port, timeout=timeout, maxsize=1, server_hostname=host,
            assert_hostname=host, cert_reqs="CERT_REQUIRED",
        )  # fmt: skip
    return urllib3.HTTPConnectionPool(address, port, timeout=timeout, maxsize=1)


def _reason(exc: BaseException) -> str:
    """A short cause for the job's events (``connection refused``), not a repr."""
    cause = getattr(exc, "reason", None) or exc
    text = str(cause)
    for known in _KNOWN_CAUSES:
        if known in text.lower():
            return known
    return type(cause).__name__


_KNOWN_CAUSES = (
    "connection refused",
    "connection reset",
    "name or service not known",
    "certificate verify failed",
    "no route to host",
    "network is unreachable",
)
