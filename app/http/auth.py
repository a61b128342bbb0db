"""Who is calling: a bearer token, or a web page's session, mapped to a tenant (:class:`Caller`).

Tokens come from ``API_TOKENS`` (``tenant:token``), ``ADMIN_TOKEN`` and ``phantomchain tokens``
(Postgres, hashed). A tenant sees only its own uploads and jobs; an admin sees and acts on all.
The web pages sign in with a token once; their session cookie keeps the token's SHA-256 (never
the token), checked again on every request — a revoked token ends its sessions — and their
state-changing requests carry the session's CSRF token (``X-CSRF-Token`` or a form field).

With no token in the settings and none ever made with the CLI, the API is open (``make run``):
every caller is the admin of the ``@open`` tenant, which ``create_app`` logs. Once a token has
been made with the CLI the API stays closed, even when every such token is revoked.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from functools import wraps
from urllib.parse import urlsplit

from flask import g, request, session

from app.config import Config
from app.http import current
from app.http.errors import ApiError
from app.tenants import tokens

#: The tenant of every caller while the API is open, and of the ``ADMIN_TOKEN``: names no user
#: tenant can take (``app.config.TENANT_NAME`` refuses ``@``).
OPEN_TENANT = "@open"
ADMIN_TENANT = "@admin"
#: Seconds the answer to "has any token been made with the CLI?" is kept: the first token made
#: closes an open API within this time.
OPEN_CHECK_TTL_S = 5.0
#: What a signed-in session keeps: the token's SHA-256, and the session's CSRF token.
SESSION_TOKEN = "token_sha256"
SESSION_CSRF = "csrf"
#: Methods that change something: from a session, they need the CSRF token.
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class Caller:
    tenant: str
    admin: bool

    @property
    def scope(self) -> str | None:
        """The tenant whose rows the caller may see, ``None`` for all (an admin)."""
        return None if self.admin else self.tenant


def caller() -> Caller:
    """The caller of this request (set by :func:`require_token` / :func:`require_admin`)."""
    return g.caller


def require_token(view):
    """Any valid token (a tenant's or an admin's) or signed-in session, unless the API is open."""

    @wraps(view)
    def checked(*args, **kwargs):
        g.caller = identify()
        return view(*args, **kwargs)

    return checked


def require_admin(view):
    """An admin token (``ADMIN_TOKEN`` or one made with ``tokens create --admin``)."""

    @wraps(view)
    def checked(*args, **kwargs):
        g.caller = identify()
        if not g.caller.admin:
            raise ApiError(403, "forbidden", "this route needs an admin token")
        return view(*args, **kwargs)

    return checked


def is_open() -> bool:
    """No token in the settings and none ever made with the CLI: every route is open."""
    config = current.config()
    return config.open_access and not _cli_tokens_exist()


def identify() -> Caller:
    """The caller of this request: its bearer token, else its signed-in session, else — while
    the API is open — the open tenant's admin.

    :raises ApiError: 401 (no valid token or session), 403 (a session's unsafe request
        without its CSRF token).
    """
    token = _bearer()
    if token is not None:
        found = caller_of_token(token)
        if found is None:
            raise _unauthorized()
        return found
    if request.method in UNSAFE_METHODS and not from_this_site():
        # A cookie — or, in open mode, nothing at all — would do: another site's page must
        # not be able to send it (curl and scripts send no such headers, or a bearer token).
        raise ApiError(403, "cross_site", "requests from other sites are refused")
    if SESSION_TOKEN in session:
        found = caller_of_digest(session[SESSION_TOKEN])
        if found is None:  # revoked, or removed from the settings, since sign-in
            session.clear()
            raise _unauthorized()
        if request.method in UNSAFE_METHODS:
            check_csrf()
        return found
    if is_open():
        return Caller(OPEN_TENANT, admin=True)
    raise _unauthorized()


def caller_of_token(token: str) -> Caller | None:
    """Who holds ``token`` (printable ASCII, checked by the caller), if anyone."""
    token_sha256 = tokens.digest(token)
    found = _from_settings(current.config(), token_sha256)
    if found is None and token.startswith(tokens.PREFIX):
        found = _from_database(token_sha256)
    return found


def caller_of_digest(token_sha256: str) -> Caller | None:
    """Who holds the token of this SHA-256 (a signed-in session), if anyone still does."""
    return _from_settings(current.config(), token_sha256) or _from_database(token_sha256)


def from_this_site() -> bool:
    """Whether a browser says this request comes from one of our own pages (``Sec-Fetch-Site``,
    else ``Origin``); a client that says neither (curl, a script) is not a browser page."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return origin != "null" and urlsplit(origin).netloc == request.host


def csrf_token() -> str:
    """This session's CSRF token (made on first use)."""
    if SESSION_CSRF not in session:
        session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return session[SESSION_CSRF]


def check_csrf() -> None:
    """:raises ApiError: 403 unless the request carries this session's CSRF token."""
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
    expected = session.get(SESSION_CSRF, "")
    if not (sent.isascii() and expected and hmac.compare_digest(sent, expected)):
        raise ApiError(403, "csrf", "this form has expired; reload the page and try again")


def _unauthorized() -> ApiError:
    return ApiError(401, "unauthorized", "a valid 'Authorization: Bearer' token is needed")


def _bearer() -> str | None:
    """The bearer token, if it could be one: printable ASCII (anything else matches nothing)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    if not token.isascii() or not token.isprintable() or len(token) > 512:
        raise _unauthorized()
    return token


def _from_settings(config: Config, token_sha256: str) -> Caller | None:
    found = None
    for known, holder in _settings_digests(config).items():  # all compared: no early exit
        if hmac.compare_digest(token_sha256, known):
            found = holder
    return found


_digests: dict[tuple, dict[str, Caller]] = {}


def _settings_digests(config: Config) -> dict[str, Caller]:
    """SHA-256 of each token in the settings -> its caller (made once per set of tokens)."""
    key = (tuple(sorted(config.api_tokens.items())), config.admin_token)
    made = _digests.get(key)
    if made is None:
        made = {
            tokens.digest(token): Caller(tenant, admin=False)
            for token, tenant in config.api_tokens.items()
        }
        if config.admin_token:
            made[tokens.digest(config.admin_token)] = Caller(ADMIN_TENANT, admin=True)
        _digests[key] = made
    return made


def _from_database(token_sha256: str) -> Caller | None:
    holder = tokens.holder(current.sessions(), token_sha256)
    return Caller(holder.tenant, holder.admin) if holder else None


#: Per database (session factory): (monotonic time checked, whether CLI tokens exist).
_open_checks: dict[int, tuple[float, bool]] = {}
_open_lock = threading.Lock()


def _cli_tokens_exist() -> bool:
    sessions = current.sessions()
    now = time.monotonic()
    with _open_lock:
        at, exist = _open_checks.get(id(sessions), (-OPEN_CHECK_TTL_S, False))
        if now - at >= OPEN_CHECK_TTL_S:
            exist = tokens.any_made(sessions)
            _open_checks[id(sessions)] = (now, exist)
        return exist
