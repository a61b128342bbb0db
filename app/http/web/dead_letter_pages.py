"""Dead letters (``/dead-letters``, admins only): the list, by queue and actor; one dead letter
(``/dead-letters/<id>``) with its payload and traceback. Retry, delete (one or those selected)
and purge go through the admin JSON routes (``/api/dead-letters…``) from the page's script."""

from __future__ import annotations

import json

from flask import Blueprint, abort, render_template, request

from app import dead_letters as ops
from app.http.current import broker
from app.http.web.job_pages import not_found
from app.http.web.session import admin_page
from app.queue import PIPELINE_ACTOR

bp = Blueprint("dead_letter_pages", __name__)
bp.register_error_handler(404, not_found)

#: Dead letters listed on the page at most (the purge reaches all that match, and says so).
LIST_LIMIT = 500


@bp.get("/dead-letters")
@admin_page
def letter_list():
    queue = request.args.get("queue") or None
    actor = request.args.get("actor") or None
    letters = broker().dead_letters
    rows = ops.list_letters(letters, queue=queue, actor=actor, limit=LIST_LIMIT + 1)
    per_queue = letters.count()
    return render_template(
        "dead_letters.html",
        letters=[_with_job(row) for row in rows[:LIST_LIMIT]],
        more=len(rows) > LIST_LIMIT,
        limit=LIST_LIMIT,
        queue=queue,
        actor=actor,
        per_queue=per_queue,
        queues=sorted(set(per_queue) | ({queue} if queue else set())),
        purge_count=_purge_count(per_queue, queue, actor, len(rows)),
    )


@bp.get("/dead-letters/<dead_letter_id>")
@admin_page
def letter_page(dead_letter_id: str):
    if not (dead_letter_id.isascii() and dead_letter_id.isdigit()) or len(dead_letter_id) > 20:
        abort(404)
    try:
        letter = ops.show(broker().dead_letters, dead_letter_id)
    except ops.DeadLetterNotFound:
        abort(404)
    payload = json.dumps(letter["payload"], indent=2, sort_keys=True, default=str)
    return render_template("dead_letter.html", letter=_with_job(letter), payload=payload)


def _purge_count(
    per_queue: dict[str, int], queue: str | None, actor: str | None, listed: int
) -> int | None:
    """How many dead letters a purge with these filters drops (``None``: more than listed)."""
    if actor is None:
        return per_queue.get(queue, 0) if queue else sum(per_queue.values())
    return listed if listed <= LIST_LIMIT else None


def _with_job(row: dict) -> dict:
    """The row, with ``job_id`` and ``stage`` when it is a pipeline stage's message."""
    args = (row.get("payload") or {}).get("args") or []
    is_stage = row.get("actor_name") == PIPELINE_ACTOR and args and isinstance(args[0], str)
    job_id = args[0] if is_stage else None
    stage = args[1] if is_stage and len(args) > 1 and isinstance(args[1], str) else None
    return {**row, "job_id": job_id, "stage": stage}
