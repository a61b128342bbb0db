"""What the API tells operators about each request: a request id, a log line, metrics.

Every response carries ``X-Request-ID`` (the client's, when it sent a sane one), every log
record of the request carries it too, and each request counts in
``phantomchain_http_requests_total`` and ``phantomchain_http_request_duration_seconds`` under
its route *pattern* (``/api/jobs/<job_id>``) and its method (one of :data:`KNOWN_METHODS`, any
other is ``other``), so neither ids nor made-up methods become labels: a label value is a new
series, and a client could otherwise grow ``/metrics`` without bound.

``/metrics`` is not on the public port: :func:`metrics_app` serves the web process's metrics,
plus queue figures read from JetStream and jobs waiting per tenant read from PostgreSQL at
scrape time, on ``METRICS_PORT`` (internal; see :mod:`app.server`).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, g, request

from app.logs import reset_context
from app.metrics import QueueCollector, WaitingJobsCollector, metrics, render
from app.queue import waiting_jobs_by_tenant

logger = logging.getLogger("app.requests")

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
#: Routes not worth a log line each (probes and scrapes come every few seconds).
_QUIET_ROUTES = {"/healthz", "/readyz"}
#: Methods counted under their own name; the rest are ``other``.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def install(app: Flask) -> None:
    """Add the request hooks to ``app``."""
    app.before_request(_start)
    app.after_request(_finish)


def method_label(method: str) -> str:
    """The method as a metric label: a known one, else ``other``."""
    return method if method in KNOWN_METHODS else "other"


def _start() -> None:
    supplied = request.headers.get("X-Request-ID", "")
    g.request_id = supplied if _SANE_REQUEST_ID.match(supplied) else uuid.uuid4().hex
    g.request_started = time.perf_counter()
    reset_context(request_id=g.request_id)


def _finish(response: Response) -> Response:
    started = g.pop("request_started", None)
    if started is None:
        return response
    elapsed = time.perf_counter() - started
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    family, method = metrics(), method_label(request.method)
    family.http_requests.labels(method, route, str(response.status_code)).inc()
    family.http_duration.labels(method, route).observe(elapsed)
    response.headers["X-Request-ID"] = g.request_id
    if route not in _QUIET_ROUTES:
        logger.info(
            "%s %s %d %.1f ms",
            request.method,
            request.path,
            response.status_code,
            elapsed * 1000,
            extra={
                "fields": {
                    "method": request.method,
                    "route": route,
                    "status": response.status_code,
                    "duration_s": round(elapsed, 4),
                }
            },
        )
    return response


WsgiApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]


def metrics_app(app: Flask) -> WsgiApp:
    """The WSGI app of ``METRICS_PORT``: ``GET /metrics`` gives the exposition text of this
    process, plus the queue figures read through ``app``'s broker and the jobs waiting per
    tenant read from its database; anything else is a 404."""
    sessions, config = app.extensions["sessions"], app.config["PHANTOMCHAIN"]
    collectors = (
        QueueCollector(app.extensions["broker"]),
        WaitingJobsCollector(lambda: waiting_jobs_by_tenant(sessions, config.metrics_top_tenants)),
    )

    def serve(environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") not in ("/metrics", "/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: metrics are at /metrics\n"]
        body, content_type = render(collectors)
        start_response(
            "200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        )
        return [body]

    return serve
