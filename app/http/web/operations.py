"""Operations (``/operations``, admins only): queue depth and messages in progress per queue,
dead letters per queue, jobs finished and failed per minute over the last hour, and signs of
live workers. The page is drawn with all of it; its script reads ``/operations/stats`` again
every few seconds. A source that does not answer is named on the page, the rest still shown."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, jsonify, render_template

from app import queue
from app.http.current import broker, sessions
from app.http.web.job_pages import not_found
from app.http.web.session import admin_page

logger = logging.getLogger(__name__)

bp = Blueprint("operations", __name__)
bp.register_error_handler(404, not_found)


def stats() -> dict[str, Any]:
    """Everything the page shows; ``problems`` names the sources that did not answer."""
    problems: list[str] = []

    def read(what: str, source: Callable[[], Any], empty: Any) -> Any:
        try:
            return source()
        except Exception:
            logger.warning("operations page: %s did not answer", what, exc_info=True)
            problems.append(what)
            return empty

    return {
        "queues": read("NATS (queues)", lambda: queue.queues(broker()), []),
        "throughput": read("Postgres (jobs)", lambda: queue.throughput(sessions()), None),
        "consumer": read("NATS (consumer)", lambda: queue.pipeline_consumer(broker()), None),
        "activity": read("Postgres (job events)", lambda: queue.recent_activity(sessions()), None),
        "problems": problems,
    }


@bp.get("/operations")
@admin_page
def operations_page():
    return render_template("operations.html", stats=stats())


@bp.get("/operations/stats")
@admin_page
def operations_stats():
    return jsonify(stats())
