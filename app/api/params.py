"""Query parameters, checked: a bad one is a 400 that says what is allowed."""

from __future__ import annotations

from flask import request

from app.api.errors import ApiError


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """A whole-number query parameter within ``[low, high]``, or a 400 that says so."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(400, "bad_parameter", f"{name} must be a number from {low} to {high}")
    return int(raw)
