"""One webhook attempt: resolve and check the address, POST the signed body to it, say what
came back — within one deadline, never raising, never following a redirect, never reading more
than a line of the answer.

The connection goes to the address :func:`app.webhooks.addresses.resolve_for_delivery` checked, not
to a second lookup of the name (which a rebinding DNS server could answer differently); the
name still goes in the ``Host`` header and, over TLS, in SNI and the certificate check.

``WEBHOOK_TIMEOUT_S`` bounds the whole attempt — connecting, sending, the status line, the
headers and the little of the body that is read — not each read: a receiver trickling its
headers a byte at a time would otherwise hold a delivery thread for as long as it liked. A
watchdog shuts the socket down at the deadline, which ends whatever read is waiting.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import ssl
import threading
import time

from app.webhooks.addresses import BadCallbackUrl, Resolver, resolve_for_delivery, system_resolver
from app.webhooks.outbox import MAX_ERROR_CHARS, REFUSED_ADDRESS, Claimed, Outcome
from app.webhooks.signing import signed_headers

logger = logging.getLogger(__name__)

USER_AGENT = "PhantomChain-Webhooks/1"


class _Deadline:
    """Shuts ``sock`` down once ``seconds`` have passed (unless cancelled first)."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sock: socket.socket | None = None
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        self._sock = sock
        if self.expired:
            self._expire()

    def _expire(self) -> None:
        self.expired = True
        if self._sock is not None:
            with contextlib.suppress(OSError):  # closed already
                self._sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


def attempt(
    claimed: Claimed,
    *,
    secret: str | None,
    timeout_s: float,
    allow_private: bool,
    resolver: Resolver = system_resolver,
) -> Outcome:
    """POST ``claimed``'s body to its URL, signed with ``secret``; what happened."""
    started = time.monotonic()

    def outcome(status: int | None, error: str | None) -> Outcome:
        return Outcome(status, _printable(error), int((time.monotonic() - started) * 1000))

    if not secret:  # tried again later: the operator can set it meanwhile
        return outcome(None, "not signed: WEBHOOK_SECRET is not set on the webhooks worker")
    try:
        target = resolve_for_delivery(claimed.url, allow_private=allow_private, resolver=resolver)
    except BadCallbackUrl as exc:
        return outcome(None, f"{REFUSED_ADDRESS} {exc}" if exc.final else str(exc))
    deadline = _Deadline(timeout_s)
    try:
        return _post(claimed, secret, target, timeout_s, deadline, outcome)
    except Exception as exc:  # whatever a receiver makes of its answer is an outcome
        logger.info("webhook %s: %r", claimed.id, exc)
        if deadline.expired:
            return outcome(None, f"no answer within {timeout_s:g} s")
        return outcome(None, f"the answer could not be read ({type(exc).__name__})")
    finally:
        deadline.cancel()


def _post(
    claimed: Claimed, secret: str, target, timeout_s: float, deadline: _Deadline, outcome
) -> Outcome:
    body = claimed.body.encode()
    host = f"[{target.host}]" if ":" in target.host else target.host
    default_port = 443 if target.scheme == "https" else 80
    headers = {
        **signed_headers(secret, claimed.id, body),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Host": host if target.port == default_port else f"{host}:{target.port}",
        "Connection": "close",
    }
    try:
        sock = socket.create_connection((target.address, target.port), timeout=timeout_s)
    except TimeoutError:
        return outcome(None, f"no answer within {timeout_s:g} s")
    except OSError as exc:
        return outcome(None, f"could not connect ({_reason(exc)})")
    deadline.watch(sock)
    try:
        if target.scheme == "https":
            try:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=target.host)
            except OSError as exc:
                if deadline.expired:
                    return outcome(None, f"no answer within {timeout_s:g} s")
                return outcome(None, f"could not connect ({_reason(exc)})")
            deadline.watch(sock)
        connection = http.client.HTTPConnection(target.host, target.port, timeout=timeout_s)
        connection.sock = sock
        try:
            connection.request("POST", target.path, body=body, headers=headers)
            response = connection.getresponse()
        except http.client.HTTPException as exc:
            if deadline.expired:
                return outcome(None, f"no answer within {timeout_s:g} s")
            return outcome(None, f"the answer was not HTTP ({type(exc).__name__})")
        except OSError as exc:
            # The socket's own timeout can fire a moment before the deadline says so.
            if deadline.expired or isinstance(exc, TimeoutError):
                return outcome(None, f"no answer within {timeout_s:g} s")
            return outcome(None, f"the connection was cut ({_reason(exc)})")
        if deadline.expired:  # the headers were cut off by the deadline, not ended
            return outcome(None, f"no answer within {timeout_s:g} s")
        status = response.status
        if 200 <= status < 300:
            return outcome(status, None)
        if 300 <= status < 400:
            location = response.getheader("Location", "")[:200]
            return outcome(status, f"redirects are not followed ({location})")
        said = response.read(MAX_ERROR_CHARS) if not deadline.expired else b""
        return outcome(status, said.decode("utf-8", "replace").strip() or None)
    finally:
        sock.close()


def _printable(text: str | None) -> str | None:
    """``text`` without NULs and control characters (a receiver's answer goes to Postgres and
    into the job's events), at most :data:`MAX_ERROR_CHARS` long."""
    if text is None:
        return None
    return "".join(c if c.isprintable() else " " for c in text)[:MAX_ERROR_CHARS]


def _reason(exc: BaseException) -> str:
    """A short cause for the job's events (``connection refused``), not a repr."""
    text = str(exc).lower()
    for known in _KNOWN_CAUSES:
        if known in text:
            return known
    return type(exc).__name__


_KNOWN_CAUSES = (
    "connection refused",
    "connection reset",
    "certificate verify failed",
    "no route to host",
    "network is unreachable",
    "wrong version number",
)
