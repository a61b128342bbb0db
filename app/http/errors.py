"""Errors as JSON: ``{"error": {"code", "message"}}`` with the right status, whether raised by
a route (:class:`ApiError`), by a service (the table :data:`DOMAIN_ERRORS`), by a server that is
away (:mod:`app.outages` decides: 503 with ``Retry-After``, on every route) or by Flask/Werkzeug
(404 route, 413 body too large, 405…)."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from app import batches, dead_letters, failing, jobs, outages, uploads
from app.http import current
from app.tenants import quotas
from audio.formats import UnknownFormat

logger = logging.getLogger(__name__)

#: Seconds a client is asked to wait before retrying after a 503 (``Retry-After``).
RETRY_AFTER_S = 5


class ApiError(Exception):
    """An answer other than success; ``retry_after`` (seconds) adds a ``Retry-After`` header."""

    def __init__(
        self, status: int, code: str, message: str, *, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.retry_after = retry_after


#: The services' errors, answered with their own message: (status, code).
DOMAIN_ERRORS: dict[type[Exception], tuple[int, str]] = {
    jobs.JobNotFound: (404, "not_found"),
    uploads.UploadNotFound: (404, "not_found"),
    batches.BatchNotFound: (404, "not_found"),
    uploads.OutputNotFound: (404, "not_found"),
    dead_letters.DeadLetterNotFound: (404, "not_found"),
    jobs.BadStatus: (400, "bad_parameter"),
    failing.BadFailing: (400, "bad_failing"),
    UnknownFormat: (400, "unknown_format"),
    jobs.JobNotFailed: (409, "not_failed"),
    jobs.JobEnded: (409, "already_ended"),
    dead_letters.NotReplayable: (409, "not_replayable"),
    dead_letters.BadQueueName: (400, "bad_parameter"),
    uploads.AnalysisFailed: (409, "job_failed"),
    uploads.AnalysisCanceled: (409, "job_canceled"),
    uploads.NotReady: (409, "not_ready"),
    uploads.StillRunning: (409, "still_running"),
}


def error_response(
    status: int, code: str, message: str, retry_after: int | None = None
) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def register(app: Flask) -> None:
    """Answer every error above, and Werkzeug's, as JSON."""

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return error_response(error.status, error.code, error.message, error.retry_after)

    @app.errorhandler(quotas.QuotaExceeded)
    def over_quota(error: quotas.QuotaExceeded):
        return error_response(429, "quota_exceeded", str(error), error.retry_after)

    def outage(error: Exception):
        """A server away, from any route: the client learns which one, never the driver's words
        (those are logged)."""
        away = outages.outage_of(error)
        if away is None:  # a database error that is not about the connection: a bug
            raise error  # to Flask, as any other unhandled error (logged, a 500)
        logger.warning("answered 503 %s: %s", away.code, outages.detail(error))
        return error_response(503, away.code, away.message, RETRY_AFTER_S)

    for kind in outages.KINDS:
        app.register_error_handler(kind, outage)

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
        elif error.code == 404:  # no route matched: often an id that is not one
            message = "no such route, or an id that is not one (ids are UUIDs)"
        response = error_response(error.code or 500, code, message)
        # Werkzeug's own headers go with its answer: a 405's Allow (the methods the route
        # takes, RFC 9110 §15.5.6), a 401's WWW-Authenticate, a 503's Retry-After…
        for name, value in error.get_headers():
            if name.lower() != "content-type":  # the body is JSON, not Werkzeug's HTML
                response.headers.add(name, value)
        return response
