"""Errors as JSON: ``{"error": {"code", "message"}}`` with the right status, whether raised by
a route (:class:`ApiError`), by a service (the table :data:`DOMAIN_ERRORS`) or by
Flask/Werkzeug (404 route, 413 body too large, 405…)."""

from __future__ import annotations

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from app import dead_letters, jobs, uploads
from app.api import current
from audio.formats import UnknownFormat


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


#: The services' errors, answered with their own message: (status, code).
DOMAIN_ERRORS: dict[type[Exception], tuple[int, str]] = {
    jobs.JobNotFound: (404, "not_found"),
    uploads.UploadNotFound: (404, "not_found"),
    uploads.OutputNotFound: (404, "not_found"),
    dead_letters.DeadLetterNotFound: (404, "not_found"),
    jobs.BadStatus: (400, "bad_parameter"),
    UnknownFormat: (400, "unknown_format"),
    jobs.JobNotFailed: (409, "not_failed"),
    dead_letters.NotReplayable: (409, "not_replayable"),
    uploads.AnalysisFailed: (409, "job_failed"),
    uploads.NotReady: (409, "not_ready"),
}


def error_response(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def register(app: Flask) -> None:
    """Answer every error above, and Werkzeug's, as JSON."""

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return error_response(error.status, error.code, error.message)

    def domain_error(error: Exception):
        kind = next(k for k in type(error).__mro__ if k in DOMAIN_ERRORS)
        status, code = DOMAIN_ERRORS[kind]
        return error_response(status, code, str(error))

    for kind in DOMAIN_ERRORS:
        app.register_error_handler(kind, domain_error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_")
        message = error.description or error.name
        if error.code == 413:
            limit = current.config().max_upload_mb
            message = f"the upload is larger than MAX_UPLOAD_MB ({limit} MB)"
        return error_response(error.code or 500, code, message)
