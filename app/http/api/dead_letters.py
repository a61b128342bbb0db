"""Admin routes over the dead letters: list, show, retry (one, some or all), delete, purge.

Thin HTTP wrappers around :mod:`app.dead_letters`, the code ``phantomchain dlq`` runs too.
Every route needs the admin token: a dead letter's payload and traceback are internals.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from app import dead_letters as ops
from app.http.auth import require_admin
from app.http.current import broker, sessions
from app.http.errors import ApiError
from app.http.params import int_arg, json_body
from broker.dead_letters import DeadLetters

bp = Blueprint("dead_letters", __name__)
MAX_PAGE = 1000


def _letters() -> DeadLetters:
    return broker().dead_letters


def _filters() -> dict[str, str | None]:
    """The query's filters; a ``queue`` that names no queue is refused by the service (400
    ``bad_parameter``, :data:`app.http.errors.DOMAIN_ERRORS`)."""
    return {"queue": request.args.get("queue") or None, "actor": request.args.get("actor") or None}


def _check_queue(queue: object, code: str) -> None:
    """:raises ApiError: 400 ``code`` for a ``queue`` filter in a body that is no queue's name
    (checked before the retry reads anything, so a bad body says ``bad_body``)."""
    try:
        ops.check_queue_name(queue)
    except ops.BadQueueName as exc:
        raise ApiError(400, code, str(exc)) from exc


@bp.get("/api/dead-letters")
@require_admin
def list_dead_letters():
    letters = ops.list_letters(_letters(), **_filters(), limit=int_arg("limit", 100, 1, MAX_PAGE))
    return jsonify({"dead_letters": letters, "count": len(letters)})


@bp.get("/api/dead-letters/<dead_letter_id>")
@require_admin
def get_dead_letter(dead_letter_id: str):
    return jsonify(ops.show(_letters(), dead_letter_id))


@bp.post("/api/dead-letters/<dead_letter_id>/retry")
@require_admin
def retry_dead_letter(dead_letter_id: str):
    replayed = ops.retry(_letters(), sessions(), dead_letter_id)
    return jsonify(replayed.to_dict()), 202


@bp.post("/api/dead-letters/retry")
@require_admin
def retry_dead_letters():
    """Body ``{"ids": [...]}`` or ``{"all": true, "queue": ..., "actor": ...}``."""
    body = json_body()
    if not isinstance(body, dict):
        raise ApiError(400, "bad_body", 'send JSON: {"ids": [...]} or {"all": true}')
    ids, everything = body.get("ids"), body.get("all") is True
    if (ids is None) == (not everything):
        raise ApiError(400, "bad_body", 'give either "ids" or "all": true, not both')
    if ids is not None:
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str | int) for i in ids):
            raise ApiError(400, "bad_body", '"ids" must be a non-empty list of dead-letter ids')
        if body.get("queue") or body.get("actor"):
            raise ApiError(400, "bad_body", '"queue" and "actor" only go with "all"')
    filters = {key: body.get(key) for key in ("queue", "actor")}
    if any(value is not None and not isinstance(value, str) for value in filters.values()):
        raise ApiError(400, "bad_body", '"queue" and "actor" must be strings')
    _check_queue(filters["queue"], "bad_body")
    report = ops.retry_many(
        _letters(), sessions(), ids=[str(i) for i in ids] if ids else None, **filters
    )
    return jsonify(report.to_dict()), 202 if report.retried else 200


@bp.delete("/api/dead-letters/<dead_letter_id>")
@require_admin
def delete_dead_letter(dead_letter_id: str):
    ops.delete(_letters(), dead_letter_id)
    return "", 204


@bp.delete("/api/dead-letters")
@require_admin
def purge_dead_letters():
    return jsonify({"purged": ops.purge(_letters(), **_filters())})
