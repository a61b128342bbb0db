"""Query parameters and JSON bodies, checked: a bad one is a 400 that says what is allowed."""

from __future__ import annotations

import json

from flask import request
from werkzeug.routing import BaseConverter

from app.http.errors import ApiError


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


#: The largest JSON body a route reads (the largest, a batch of 100 ids, is about 4 kB).
MAX_JSON_BYTES = 256 << 10


def json_body() -> object | None:
    """The request's JSON, or None when it is not JSON. Read at most :data:`MAX_JSON_BYTES`
    (a 413 past it) — not the upload limit of hundreds of MB — and parsed without letting
    a deeply nested document (``[[[[…``, Python's recursion limit) become a 500."""
    if (request.content_length or 0) > MAX_JSON_BYTES:
        raise ApiError(413, "too_large", f"a JSON body holds at most {MAX_JSON_BYTES >> 10} kB")
    data = request.stream.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise ApiError(413, "too_large", f"a JSON body holds at most {MAX_JSON_BYTES >> 10} kB")
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None
