"""What the client raises: every failure is a :class:`PhantomChainError`, never a urllib3 or
socket exception.

* :class:`ConnectionFailed` — no answer: the server could not be reached, the connection was
  dropped or a read timed out (after the retries the call was allowed).
* :class:`ApiError` — an answer other than success, carrying the API's own error code and
  sentence (``{"error": {"code", "message"}}``); a subclass per status a caller may want to
  catch on its own (:func:`api_error` picks it).
* :class:`WaitTimeout` — :meth:`app.client.Client.follow` gave up after its ``timeout``.
"""

from __future__ import annotations


class PhantomChainError(Exception):
    """Anything that went wrong talking to a PhantomChain server."""


class ConnectionFailed(PhantomChainError):
    """The server could not be reached, or the connection broke before a whole answer came."""


class FileExists(PhantomChainError):
    """A download's file is on disk already and the caller did not ask to replace it."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path} exists: not replaced")
        self.path = path


class WaitTimeout(PhantomChainError):
    """A job did not end within the time the caller allowed; it goes on on the server."""


class ApiError(PhantomChainError):
    """The server answered ``status`` with the API's error ``code`` and ``message``.

    ``retry_after`` is the server's ``Retry-After`` in seconds (None when it sent none).
    """

    def __init__(
        self, status: int, code: str, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class BadRequest(ApiError):
    """400: the request was refused as it is (not audio, an unknown format, a bad option…)."""


class Unauthorized(ApiError):
    """401: no token, or one the server does not know."""


class Forbidden(ApiError):
    """403: the token may not do this (an admin route)."""


class NotFound(ApiError):
    """404: no such upload, job or batch — or another tenant's."""


class Conflict(ApiError):
    """409: not now or not any more (the analysis of a failed job, a job already ended…)."""


class PayloadTooLarge(ApiError):
    """413: the file is larger than the server's ``MAX_UPLOAD_MB``."""


class RateLimited(ApiError):
    """429: over a quota or a limit; ``retry_after`` says when to come back."""


class ServiceUnavailable(ApiError):
    """503: the server's database, queue or storage is away; nothing was kept."""


class ServerError(ApiError):
    """Any other 5xx: a fault of the server."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    429: RateLimited,
    503: ServiceUnavailable,
}


def api_error(status: int, code: str, message: str, retry_after: float | None = None) -> ApiError:
    """The :class:`ApiError` subclass for ``status``."""
    kind = _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    return kind(status, code, message, retry_after)
