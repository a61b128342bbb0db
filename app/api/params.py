"""Query parameters, checked: a bad one is a 400 that says what is allowed."""

from __future__ import annotations

from flask import request
from werkzeug.routing import BaseConverter

from app.api.errors import ApiError


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """A whole-number query parameter within ``[low, high]``, or a 400 that says so."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ApiError(400, "bad_parameter", f"{name} must be a number from {low} to {high}")
    return int(raw)


class IdConverter(BaseConverter):
    """``<id:name>`` in a route: a UUID, as the ids of uploads and jobs are. Anything else (a
    NUL, 300 characters, ``../``) matches no route: 404 before a query is made."""

    regex = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

    def to_python(self, value: str) -> str:
        return value.lower()
