"""Who is calling: bearer tokens mapped to a tenant (:class:`Caller`), checked on every route.

Tokens come from ``API_TOKENS`` (``tenant:token``), ``ADMIN_TOKEN`` and ``phantomchain tokens``
(Postgres, hashed). A tenant sees only its own uploads and jobs; an admin sees and acts on all.
With no token in the settings and none ever made with the CLI, the API is open (``make run``):
every caller is the admin of the ``@open`` tenant, which ``create_app`` logs. Once a token has
been made with the CLI the API stays closed, even when every such token is revoked.
"""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass
from functools import wraps

from flask import g, request

from app import tokens
from app.api import current
from app.api.errors import ApiError
from app.config import Config

#: The tenant of every caller while the API is open, and of the ``ADMIN_TOKEN``: names no user
#: tenant can take (``app.config.TENANT_NAME`` refuses ``@``).
OPEN_TENANT = "@open"
ADMIN_TENANT = "@admin"
#: Seconds the answer to "has any token been made with the CLI?" is kept: the first token made
#: closes an open API within this time.
OPEN_CHECK_TTL_S = 5.0


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
    """Any valid token (a tenant's or an admin's), unless the API is open."""

    @wraps(view)
    def checked(*args, **kwargs):
        g.caller = _identify()
        return view(*args, **kwargs)

    return checked


def require_admin(view):
    """An admin token (``ADMIN_TOKEN`` or one made with ``tokens create --admin``)."""

    @wraps(view)
    def checked(*args, **kwargs):
        g.caller = _identify()
        if not g.caller.admin:
            raise ApiError(403, "forbidden", "this route needs an admin token")
        return view(*args, **kwargs)

    return checked


def is_open() -> bool:
    """No token in the settings and none ever made with the CLI: every route is open."""
    config = current.config()
    return config.open_access and not _cli_tokens_exist()


def _identify() -> Caller:
    config = current.config()
    token = _bearer()
    if token is not None:
        found = _from_settings(config, token) or _from_database(token)
        if found is not None:
            return found
    elif is_open():
        return Caller(OPEN_TENANT, admin=True)
    raise ApiError(401, "unauthorized", "a valid 'Authorization: Bearer' token is needed")


def _bearer() -> str | None:
    """The bearer token, if it could be one: printable ASCII (anything else matches nothing)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    if not token.isascii() or not token.isprintable() or len(token) > 512:
        raise ApiError(401, "unauthorized", "a valid 'Authorization: Bearer' token is needed")
    return token


def _from_settings(config: Config, token: str) -> Caller | None:
    if config.admin_token and hmac.compare_digest(token, config.admin_token):
        return Caller(ADMIN_TENANT, admin=True)
    found = None
    for known, tenant in config.api_tokens.items():  # every entry compared: no early exit
        if hmac.compare_digest(token, known):
            found = Caller(tenant, admin=False)
    return found


def _from_database(token: str) -> Caller | None:
    if not token.startswith(tokens.PREFIX):
        return None
    holder = tokens.holder(current.sessions(), token)
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
