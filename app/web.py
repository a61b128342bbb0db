"""The Flask application: ``create_app()``, JSON errors, bearer-token checks.

Errors are always ``{"error": {"code", "message"}}`` with the right status, whether raised by
our code (:class:`ApiError`) or by Flask/Werkzeug (404 route, 413 body too large, 405…).
"""

from __future__ import annotations

import hmac
import logging
from functools import wraps

from flask import Flask, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from app.config import Config
from app.db import make_engine, make_session_factory
from app.storage import open_storage

logger = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str):
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def create_app(config: Config | None = None) -> Flask:
    """The API, configured from the environment unless ``config`` is given."""
    config = config or Config.from_env()
    app = Flask(__name__)
    app.config["PHANTOMCHAIN"] = config
    app.config["MAX_CONTENT_LENGTH"] = config.max_upload_mb * 1024 * 1024
    engine = make_engine(config.database_url)
    app.extensions["sessions"] = make_session_factory(engine)
    app.extensions["storage"] = open_storage(config.storage_url)
    if config.open_access:
        logger.warning("no API_TOKENS or ADMIN_TOKEN set: the API is open to anyone")

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return error_response(error.status, error.code, error.message)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_")
        message = error.description or error.name
        if error.code == 413:
            message = f"the upload is larger than MAX_UPLOAD_MB ({config.max_upload_mb} MB)"
        return error_response(error.code or 500, code, message)

    from app.api_dead_letters import dead_letters
    from app.api_health import health
    from app.api_jobs import jobs
    from app.api_openapi import openapi
    from app.api_uploads import uploads

    app.register_blueprint(health)
    app.register_blueprint(uploads)
    app.register_blueprint(jobs)
    app.register_blueprint(openapi)
    app.register_blueprint(dead_letters)
    from app import request_observability

    request_observability.install(app)
    return app


def config() -> Config:
    return current_app.config["PHANTOMCHAIN"]


def sessions():
    return current_app.extensions["sessions"]


def storage():
    return current_app.extensions["storage"]


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """A whole-number query parameter within ``[low, high]``, or a 400 that says so."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(400, "bad_parameter", f"{name} must be a number from {low} to {high}")
    return int(raw)


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _matches(token: str | None, allowed) -> bool:
    return token is not None and any(hmac.compare_digest(token, a) for a in allowed)


def require_token(view):
    """Any API token (or the admin token) when tokens are configured."""

    @wraps(view)
    def checked(*args, **kwargs):
        cfg = config()
        if not cfg.open_access:
            allowed = set(cfg.api_tokens) | ({cfg.admin_token} if cfg.admin_token else set())
            if not _matches(_bearer(), allowed):
                raise ApiError(
                    401, "unauthorized", "a valid 'Authorization: Bearer' token is needed"
                )
        g.token = _bearer()
        return view(*args, **kwargs)

    return checked


def require_admin(view):
    """The admin token (``ADMIN_TOKEN``); refused outright when none is configured."""

    @wraps(view)
    def checked(*args, **kwargs):
        cfg = config()
        if cfg.open_access:
            return view(*args, **kwargs)
        if not cfg.admin_token or not _matches(_bearer(), [cfg.admin_token]):
            raise ApiError(401, "unauthorized", "this route needs the admin token")
        return view(*args, **kwargs)

    return checked
