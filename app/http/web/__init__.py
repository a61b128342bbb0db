"""The web pages: HTML for people, served by the API process from Jinja templates and static
files (no separate front-end server, no build step). Pages read data through the same services
as the JSON API; their scripts call the JSON API with the session cookie (and its CSRF token).

:func:`install` is called by :func:`app.http.create_app`: it signs session cookies with
``SECRET_KEY`` (HttpOnly, SameSite=Strict, Secure when the request came over HTTPS) and
registers one blueprint per page group.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from flask import Flask

from app.http.web import (
    assets,
    dead_letter_pages,
    job_pages,
    operations,
    result_page,
    signin,
    upload_page,
)
from app.http.web.session import CookieSessions, page_context

logger = logging.getLogger(__name__)

#: How long a sign-in lasts.
SESSION_LIFETIME = timedelta(hours=12)


def install(app: Flask) -> None:
    config = app.config["PHANTOMCHAIN"]
    if config.secret_key:
        app.secret_key = config.secret_key
    else:
        app.secret_key = secrets.token_hex(32)
        if not config.open_access:
            logger.warning(
                "no SECRET_KEY set: web sign-ins end when this process stops and are not "
                "shared with other API processes"
            )
    app.config.update(
        SESSION_COOKIE_NAME="phantomchain_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    app.session_interface = CookieSessions()
    app.context_processor(page_context)
    for module in (
        assets,
        signin,
        job_pages,
        operations,
        dead_letter_pages,
        upload_page,
        result_page,
    ):
        app.register_blueprint(module.bp)
