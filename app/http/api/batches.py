"""Batches: several files (or existing uploads) under one id, one status, one webhook.

``POST /api/batches`` takes either a multipart form of several ``file`` fields — each goes
through the single upload's path (:mod:`app.http.api.accepting`: ``sniffed``, ``keep``, ``start``)
with the same ``formats``, ``normalize`` and ``true_peak`` — or
a JSON body ``{"upload_ids": [...], "callback_url": ...}`` grouping the latest job of each of
those uploads. Either way ``callback_url`` is the batch's webhook, made once when all its jobs
have ended (:func:`app.webhooks.outbox.end_batch_if_done`).

A batch of files is all or nothing. Every file is sniffed before any is stored, so a file that
is not audio keeps nothing; then each is stored and recorded (quotas checked per file), the
batch written, and only then each job queued — no job runs before its batch exists. A file
refused on the way (a quota, storage or the database away, NATS away while queueing) undoes the
files already accepted: rows, files and the batch. A job already queued then finds no row and
does nothing (``app.jobs.begin_stage``).
"""

from __future__ import annotations

import logging
import re

from flask import Blueprint, jsonify, request, url_for

from app import batches, uploads
from app.http.api import accepting as single
from app.http.auth import caller, require_token
from app.http.current import broker, sessions, storage
from app.http.errors import ApiError
from app.http.params import IdConverter, json_body
from app.webhooks import outbox

logger = logging.getLogger(__name__)
bp = Blueprint("batches", __name__)

#: The keys a JSON batch may hold.
_JSON_KEYS = frozenset({"upload_ids", "callback_url"})


@bp.post("/api/batches")
@require_token
def create_batch():
    created = _from_uploads() if request.is_json else _from_files()
    outbox.send(broker(), created.deliveries)
    body = {
        "batch_id": created.batch_id,
        "status": created.status,
        "jobs": [
            {"upload_id": m.upload_id, "job_id": m.job_id, "status": m.status} for m in created.jobs
        ],
        "links": {"batch": url_for("batches.get_batch", batch_id=created.batch_id)},
    }
    return jsonify(body), 202


@bp.get("/api/batches/<id:batch_id>")
@require_token
def get_batch(batch_id: str):
    found = batches.get_batch(sessions(), batch_id, caller().scope)
    found["deliveries"] = outbox.deliveries_of(sessions(), batch_id=batch_id)
    return jsonify(found)


def _from_files() -> batches.Created:
    """Accept every file, make the batch, queue the jobs; undo it all if any step fails."""
    who = caller()
    limits = None if who.admin else single.tenant_quotas()
    size = request.content_length or 0
    if limits is not None:  # refused before the body is parsed, as a single upload
        uploads.check_quotas(sessions(), who.tenant, limits, size)
    callback_url = single.callback_url_field()
    # The batch's callback_url is its own: each job's webhook is its tenant's default, if any.
    options = single.job_options(callback=False, priority="low")  # behind single uploads
    files = request.files.getlist("file")
    _check_count(len(files), "send the audio as several multipart form fields named 'file'")
    if limits is not None and len(files) > 1:  # the whole batch within the hourly limit
        uploads.check_quotas(sessions(), who.tenant, limits, size, len(files))
    audio = [
        single.sniffed(file, f"file {n} ({(file.filename or '')[:100]!r})")
        for n, file in enumerate(files, 1)
    ]
    kept: list[single.Kept] = []
    try:
        for each in audio:
            kept.append(single.keep(each, who.tenant, options, limits))
        members = [(k.accepted.upload_id, k.accepted.job_id) for k in kept]
        created = batches.create(sessions(), who.tenant, members, callback_url, storage())
    except BaseException:
        _undo(kept)
        raise
    for position, one in enumerate(kept):
        try:
            single.start(one)  # undoes this one itself when it cannot be queued
        except BaseException:
            logger.error(
                "batch %s: could not queue file %d, removing the batch",
                created.batch_id,
                position + 1,
            )
            _undo(kept[:position] + kept[position + 1 :], created.batch_id)
            raise
    logger.info("batch %s: %d files, jobs queued", created.batch_id, len(kept))
    return created


def _undo(kept: list[single.Kept], batch_id: str | None = None) -> None:
    """Remove what a refused batch kept: its row, then each file's rows and file."""
    if batch_id is not None:
        try:
            batches.discard(sessions(), batch_id)
        except Exception:
            logger.error("could not remove batch %s", batch_id, exc_info=True)
    for each in kept:
        single.undo(each)


def _from_uploads() -> batches.Created:
    """``{"upload_ids": [...], "callback_url": ...}``: the latest job of each upload."""
    body = json_body()
    if not isinstance(body, dict) or set(body) - _JSON_KEYS:
        raise ApiError(
            400,
            "bad_body",
            'send {"upload_ids": [...]} with an optional '
            '"callback_url", or the files as a multipart form',
        )
    upload_ids = body.get("upload_ids")
    if not isinstance(upload_ids, list) or not all(isinstance(u, str) for u in upload_ids):
        raise ApiError(400, "bad_body", "upload_ids must be a list of upload ids")
    _check_count(len(upload_ids), "upload_ids must name at least one upload")
    unknown = next((u for u in upload_ids if not _is_id(u)), None)
    if unknown is not None:  # the answer to an id of no upload: not found
        raise uploads.UploadNotFound(unknown[:100])
    upload_ids = [u.lower() for u in upload_ids]
    twice = next((u for n, u in enumerate(upload_ids) if u in upload_ids[:n]), None)
    if twice is not None:
        raise ApiError(400, "duplicate_upload", f"upload {twice} is named more than once")
    callback_url = body.get("callback_url")
    if callback_url is not None and not isinstance(callback_url, str):
        raise ApiError(400, "bad_callback_url", "callback_url must be a URL (a string)")
    callback_url = single.checked_callback_url((callback_url or "").strip() or None)
    who = caller()
    return batches.create_from_uploads(
        sessions(), who.tenant, upload_ids, callback_url, who.scope, storage()
    )


def _check_count(count: int, none_message: str) -> None:
    """:raises ApiError: 400 ``empty_batch`` for none, ``too_many`` over the limit."""
    if count == 0:
        raise ApiError(400, "empty_batch", none_message)
    if count > batches.MAX_JOBS:
        raise ApiError(
            400,
            "too_many",
            f"a batch holds at most {batches.MAX_JOBS} files or "
            f"uploads, not {count}; send several batches",
        )


def _is_id(value: str) -> bool:
    return re.fullmatch(IdConverter.regex, value) is not None
