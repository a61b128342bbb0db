"""The client's one HTTP transport: a urllib3 ``PoolManager`` of its own (no global state), a
timeout on every call, the token on every request, errors turned into
:mod:`app.client.errors`, and the retries of :mod:`app.client.retries`.

What is retried, and why it is safe:

* a 429 or 503 on any call, after its ``Retry-After``: the server kept nothing of a refused
  request (an upload refused over a quota or during an outage left no file and no job);
* a 409 ``idempotency_key_in_use`` (the same upload's first attempt is still being made);
* a connection that failed or broke, only for a call marked ``idempotent``: GETs, a cancel,
  and uploads — which always carry an ``Idempotency-Key``, so the server answers a retry of an
  upload it did keep with that upload, and never makes a second one.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urljoin

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from app.client.errors import ApiError, ConnectionFailed, PhantomChainError, api_error
from app.client.retries import RetryPolicy, parse_retry_after

logger = logging.getLogger("app.client")
T = TypeVar("T")

USER_AGENT = "phantomchain-client/1"
#: Bytes read at a time from a streamed answer (a download, an event stream).
READ_CHUNK = 64 * 1024
#: Statuses retried after the server's ``Retry-After`` (or a backoff when it sent none).
RETRIED_STATUSES = frozenset({429, 503})
#: The most of an answer read into memory (a job with all its events is far less): a body
#: without end — a server gone wrong, or hostile — must not take the sender's memory.
MAX_ANSWER_BYTES = 32 * 1024 * 1024
#: The most of an error's body read: its sentence is in the first few hundred bytes.
MAX_ERROR_BYTES = 64 * 1024


@dataclass(frozen=True)
class Timeouts:
    """Seconds to connect, and to wait for each read of the answer (not for the whole of it:
    a long download or event stream is fine as long as bytes keep coming)."""

    connect_s: float = 10.0
    read_s: float = 60.0


def path_of(*parts: str) -> str:
    """``/api/jobs/<id>``-style paths with each part quoted."""
    return "/" + "/".join(quote(part, safe="") for part in parts)


class Transport:
    """Requests to one server with one token."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeouts: Timeouts,
        retry: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.retry = retry
        self.timeouts = timeouts
        self.sleep = sleep
        self._headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._pool = urllib3.PoolManager(
            retries=False,  # ours, below: urllib3's would retry what is not safe to
            timeout=urllib3.Timeout(connect=timeouts.connect_s, read=timeouts.read_s),
        )

    def close(self) -> None:
        self._pool.clear()

    def url(self, path: str) -> str:
        """``path`` on the server; an absolute URL as it is (a download's redirect)."""
        if path.startswith(("http://", "https://")):
            return path
        return urljoin(self.base_url, path.lstrip("/"))

    def _headers_for(self, url: str, extra: Mapping[str, str]) -> dict[str, str]:
        """The token goes to our server only, never to a host it redirects to."""
        ours = url.startswith(self.base_url)
        base = {k: v for k, v in self._headers.items() if ours or k != "Authorization"}
        return {**base, **extra}

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        body: Callable[[], Iterable[bytes]] | None = None,
        idempotent: bool | None = None,
        retry_statuses: bool = True,
        stream: bool = False,
        accept: Iterable[int] = (),
    ) -> urllib3.BaseHTTPResponse:
        """One call, retried as the module says; the answer when its status is below 400 or in
        ``accept``.

        :param body: makes the body anew for each attempt (an iterable of bytes; give its
            ``Content-Length`` in ``headers``).
        :param idempotent: whether a connection failure may be retried (default: a GET is).
        :param retry_statuses: whether 429/503 are retried after their ``Retry-After``.
        :param stream: leave the body unread (the caller reads it, then ``release_conn()``).
        :raises ConnectionFailed: no answer, after the retries allowed.
        :raises ApiError: (a subclass) the error the server answered last.
        """
        if idempotent is None:
            idempotent = method in ("GET", "HEAD")
        url = self.url(path)
        sent_headers = self._headers_for(url, headers or {})
        if json_body is not None:
            sent_headers["Content-Type"] = "application/json"
        accepted = frozenset(accept)
        retries = 0
        waited = 0.0
        while True:
            error: PhantomChainError
            try:
                data = json.dumps(json_body).encode() if json_body is not None else None
                response = self._pool.request(
                    method,
                    url,
                    body=body() if body is not None else data,
                    headers=sent_headers,
                    preload_content=False,
                    decode_content=False,
                    redirect=False,
                )
                if not stream and (response.status < 400 or response.status in accepted):
                    response = _read_whole(response)
            except (Urllib3Error, OSError) as exc:
                error = ConnectionFailed(f"{method} {url}: {describe(exc)}")
                if not idempotent:
                    raise error from None
                wait = self.retry.backoff(retries)
            else:
                if response.status < 400 or response.status in accepted:
                    return response
                error = error_of(response)
                if not (retry_statuses and _retried(error)):
                    raise error
                wait = (
                    error.retry_after
                    if error.retry_after is not None
                    else self.retry.backoff(retries)
                )
            if retries >= self.retry.max_retries or waited + wait > self.retry.max_wait_s:
                raise error
            logger.info("%s %s: %s; trying again in %.1f s", method, path, error, wait)
            self.sleep(wait)
            waited += wait
            retries += 1

    def get_json(self, path: str, *, accept: Iterable[int] = ()) -> tuple[int, Any]:
        """GET ``path``: its status and JSON body."""
        response = self.request("GET", path, accept=accept)
        return response.status, json_of(response)


def _retried(error: ApiError) -> bool:
    return error.status in RETRIED_STATUSES or error.code == "idempotency_key_in_use"


def json_of(response: urllib3.BaseHTTPResponse) -> Any:
    """The JSON of a read answer.

    :raises ConnectionFailed: it is not JSON (a proxy's page, a body cut short).
    """
    try:
        return json.loads(response.data or b"null")
    except ValueError:
        raise ConnectionFailed(
            f"the answer ({response.status}) is not JSON: {response.data[:100]!r}"
        ) from None


def read_model(build: Callable[[Any], T], body: Any) -> T:
    """``build(body)``, or — for an answer not shaped as the API documents it (a proxy's
    page, another service on that address) — a :class:`PhantomChainError` saying so.
    """
    try:
        return build(body)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PhantomChainError(
            f"the server's answer is not what the API sends ({type(exc).__name__}: {exc}); "
            "is this address a PhantomChain server?"
        ) from None


def read_at_most(response: urllib3.BaseHTTPResponse, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of an unread answer's body, and whether all of it came."""
    pieces: list[bytes] = []
    size = 0
    while size <= limit:
        piece = response.read1(min(READ_CHUNK, limit + 1 - size))
        if not piece:
            return b"".join(pieces), True
        pieces.append(piece)
        size += len(piece)
    return b"".join(pieces)[:limit], False


def _read_whole(response: urllib3.BaseHTTPResponse) -> urllib3.BaseHTTPResponse:
    """``response`` with its body read (up to :data:`MAX_ANSWER_BYTES`), its connection given
    back.

    :raises ConnectionFailed: the body is larger than that.
    """
    whole = False
    try:
        data, whole = read_at_most(response, MAX_ANSWER_BYTES)
    finally:
        if not whole:  # the rest left unread: the connection cannot carry another request
            response.close()
        response.release_conn()
    if not whole:
        raise ConnectionFailed(
            f"the answer ({response.status}) is larger than {MAX_ANSWER_BYTES} bytes"
        )
    return urllib3.HTTPResponse(
        body=data,
        headers=response.headers,
        status=response.status,
        reason=response.reason,
        preload_content=False,
        decode_content=False,
    )


def error_of(response: urllib3.BaseHTTPResponse) -> ApiError:
    """The API's error in ``response`` (its first :data:`MAX_ERROR_BYTES` read here, its
    connection given back)."""
    try:
        raw, whole = read_at_most(response, MAX_ERROR_BYTES)
    except (Urllib3Error, OSError):
        raw, whole = b"", False
    if not whole:  # the rest left unread: the connection cannot carry another request
        response.close()
    response.release_conn()
    code, message = f"http_{response.status}", response.reason or "error"
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = str(body["error"].get("code") or code)
        message = str(body["error"].get("message") or message)
    elif raw:
        message = raw[:200].decode("utf-8", "replace").strip() or message
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return api_error(response.status, code, message, retry_after)


def read_chunks(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """A streamed answer's bytes as they arrive; its connection given back at the end.

    :raises ConnectionFailed: the connection broke or went quiet past the read timeout.
    """
    whole = False
    try:
        while True:
            chunk = response.read1(READ_CHUNK)
            if not chunk:
                whole = True
                return
            yield chunk
    except (Urllib3Error, OSError) as exc:
        raise ConnectionFailed(f"the answer was cut short: {describe(exc)}") from None
    finally:
        if not whole:  # left unread (or broken): the connection cannot carry another request
            response.close()
        response.release_conn()


def describe(exc: BaseException) -> str:
    """urllib3's wrapped errors, down to what happened (``Connection refused``…)."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        return describe(reason)
    cause = exc.__cause__  # a refused connection, a name not known: the socket's own words
    if isinstance(exc, urllib3.exceptions.NewConnectionError) and isinstance(cause, OSError):
        return (cause.strerror or str(cause)).lower()
    text = str(exc)
    return text if text else type(exc).__name__
