"""Bearer tokens: any API token for ``/api``, the admin token for operators' routes.

With no token configured the API is open (``make run``), which ``create_app`` logs.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from functools import wraps

from flask import request

from app.api import current
from app.api.errors import ApiError


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _matches(token: str | None, allowed: Iterable[str]) -> bool:
    return token is not None and any(hmac.compare_digest(token, a) for a in allowed)


def require_token(view):
    """Any API token (or the admin token) when tokens are configured."""

    @wraps(view)
    def checked(*args, **kwargs):
        config = current.config()
        if not config.open_access:
            allowed = set(config.api_tokens) | (
                {config.admin_token} if config.admin_token else set()
            )
            if not _matches(_bearer(), allowed):
                raise ApiError(
                    401, "unauthorized", "a valid 'Authorization: Bearer' token is needed"
                )
        return view(*args, **kwargs)

    return checked


def require_admin(view):
    """The admin token (``ADMIN_TOKEN``); refused outright when none is configured."""

    @wraps(view)
    def checked(*args, **kwargs):
        config = current.config()
        if config.open_access:
            return view(*args, **kwargs)
        if not config.admin_token or not _matches(_bearer(), [config.admin_token]):
            raise ApiError(401, "unauthorized", "this route needs the admin token")
        return view(*args, **kwargs)

    return checked
