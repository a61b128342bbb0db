"""The pages' templates and static files (``/static/...``; vendored libraries in
``static/vendor``, their versions and licences in its README)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint(
    "assets",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
