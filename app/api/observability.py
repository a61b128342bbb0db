"""What the API tells operators about each request: a request id, a log line, metrics.

Every response carries ``X-Request-ID`` (the client's, when it sent a sane one), every log
record of the request carries it too, and each request counts in
``phantomchain_http_requests_total`` and ``phantomchain_http_request_duration_seconds`` under
its route *pattern* (``/api/jobs/<job_id>``), so ids never become labels. ``/metrics`` serves
the API processes' metrics plus queue figures read from JetStream at scrape time.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

from app.api.current import broker
from app.logs import reset_context
from app.metrics import QueueCollector, metrics, render

logger = logging.getLogger("app.requests")

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
#: Routes not worth a log line each (probes and scrapes come every few seconds).
_QUIET_ROUTES = {"/healthz", "/readyz", "/metrics"}


def install(app: Flask) -> None:
    """Add the request hooks and the ``/metrics`` route to ``app``."""
    app.before_request(_start)
    app.after_request(_finish)
    app.add_url_rule("/metrics", "metrics", _serve_metrics)


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
    family = metrics()
    family.http_requests.labels(request.method, route, str(response.status_code)).inc()
    family.http_duration.labels(request.method, route).observe(elapsed)
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


def _serve_metrics() -> Response:
    body, content_type = render((QueueCollector(broker()),))
    return Response(body, content_type=content_type)
