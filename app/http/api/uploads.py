"""Uploads: receive a file (Werkzeug spools the body, over 500 KB to a file in TMPDIR; it is then
sniffed and copied to storage while hashed), queue its job, serve results.

An upload is accepted (202) only once its file is stored, its rows written and its job queued;
if any of that fails, what was done is undone (the file removed, the rows too) and the answer
is an error — 503 with ``Retry-After`` when Postgres, NATS or the storage is away — so a retry
starts clean. Only a process killed in between leaves a file: ``app.storage.orphans`` sweeps those.

The Go service's routes stay as aliases: ``POST /upload``, ``GET /uploads/<id>``,
``GET /uploads/<id>/analysis``. (The ``/api`` rule of each view is declared first, nearest the
function, so ``url_for`` builds links to it. ``GET /uploads/<id>`` is served by
:mod:`app.http.web.result_page`: this view's JSON to a client that does not prefer HTML, the result
page to a browser.)
"""

from __future__ import annotations

import itertools
import logging

from flask import Blueprint, Response, jsonify, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from app import jobs, uploads
from app.http import current, ranges
from app.http.api import accepting
from app.http.auth import caller, require_token
from app.http.current import broker, sessions, storage
from app.http.errors import ApiError, error_response
from app.storage import Storage, StorageError, sha256_of
from app.webhooks import outbox
from audio.formats import FORMATS

logger = logging.getLogger(__name__)
bp = Blueprint("uploads", __name__)


def links(upload_id: str, job_id: str) -> dict:
    return {
        "upload": url_for("uploads.get_upload", upload_id=upload_id),
        "analysis": url_for("uploads.get_analysis", upload_id=upload_id),
        "job": url_for("jobs.get_job", job_id=job_id),
        "events": url_for("jobs.job_events", job_id=job_id),
    }


def accepted(done: uploads.Accepted):
    body = {
        "upload_id": done.upload_id,
        "job_id": done.job_id,
        "status": done.status,
        "links": links(done.upload_id, done.job_id),
    }
    return jsonify(body), 202


#: The longest ``Idempotency-Key`` kept (longer ones are refused before anything is stored).
MAX_IDEMPOTENCY_KEY = 200


@bp.post("/upload")
@bp.post("/api/uploads")
@require_token
def create_upload():
    who = caller()
    key = _idempotency_key()
    # A retry is answered as the first time even when a quota is now full; a new upload is
    # refused on its quota before its body is parsed.
    earlier = uploads.by_idempotency_key(sessions(), who.tenant, key) if key else None
    limits = None if who.admin else accepting.tenant_quotas()
    if limits is not None and earlier is None:
        uploads.check_quotas(sessions(), who.tenant, limits, request.content_length or 0)
    options = accepting.job_options()
    file = request.files.get("file")
    if file is None:
        raise ApiError(400, "no_file", "send the audio as a multipart form field named 'file'")
    audio = accepting.sniffed(file)
    if earlier is not None:  # a retry: answer as the first time, if it is the same request
        return _replay(earlier, sha256_of(audio.chunks), options)
    try:
        kept = accepting.keep(audio, who.tenant, options, limits, key)
    except accepting.KeyTaken as taken:  # the same Idempotency-Key raced us: answer the first
        earlier = uploads.by_idempotency_key(sessions(), who.tenant, key) if key else None
        if earlier is None:  # …which was withdrawn meanwhile (its queueing failed)
            raise ApiError(
                409,
                "idempotency_key_in_use",
                "another upload with this Idempotency-Key was being made; retry",
                retry_after=1,
            ) from None
        return _replay(earlier, taken.sha256, options)
    accepting.start(kept)
    return accepted(kept.accepted)


def _idempotency_key() -> str | None:
    """The client's ``Idempotency-Key``; one longer than :data:`MAX_IDEMPOTENCY_KEY` is a 400."""
    key = request.headers.get("Idempotency-Key", "").strip() or None
    if key is not None and (len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable()):
        raise ApiError(
            400,
            "bad_idempotency_key",
            f"Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY} printable characters",
        )
    return key


def _replay(earlier: uploads.Earlier, sha256: str, options: accepting.JobOptions):
    """The first answer to a key again, or a 422 when the key came with another request."""
    if not earlier.same_request(
        sha256, options.formats, options.normalize, options.callback_url, options.bpm_range
    ):
        raise ApiError(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was sent before with another file, other formats, another "
            "loudness target, bpm_range or callback_url; use a new key for a new upload",
        )
    return accepted(earlier.accepted)


@bp.get("/api/uploads/<id:upload_id>")  # and /uploads/<id>: app.http.web.result_page
@require_token
def get_upload(upload_id: str):
    found = uploads.get_upload(sessions(), upload_id, caller().scope)
    return jsonify(uploads.upload_dict(found))


@bp.delete("/api/uploads/<id:upload_id>")
@require_token
def delete_upload(upload_id: str):
    """Remove an upload with everything made from it (it stops counting in the tenant's
    storage quota); a job still queued or running is canceled first."""
    who = caller()
    by = "an admin" if who.admin else who.tenant
    keys, made = jobs.remove_upload(
        sessions(), upload_id, by=by, tenant=who.scope, storage=storage()
    )
    outbox.send(broker(), made)
    for key in keys:
        accepting.remove_file(key)
    logger.info("upload %s removed", upload_id)
    return "", 204


@bp.get("/uploads/<id:upload_id>/analysis")
@bp.get("/api/uploads/<id:upload_id>/analysis")
@require_token
def get_analysis(upload_id: str):
    found = uploads.analysis(sessions(), upload_id, caller().scope)
    if isinstance(found, uploads.Pending):
        body = {"status": found.status, "stage": found.stage, "progress": found.progress}
        return jsonify(body), 202
    return jsonify(uploads.analysis_dict(*found))


def _stream(key: str, mimetype: str, filename: str | None = None) -> BaseResponse:
    """A stored file, streamed — whole, or the byte range asked for (:mod:`app.http.ranges`:
    206, 416, ``ETag``, ``If-Range``). Its first chunk is read here, so storage that is away is
    a 503 (and a file gone from it a 404) rather than a response cut after its headers; a
    ``HEAD`` reads nothing but the file's size.

    With ``S3_PRESIGN=1`` and a storage that signs URLs (S3), a 302 to a short-lived URL of
    the object instead: the bytes go from the bucket to the client, not through the API (S3
    answers the ``Range`` the client sends there itself)."""
    store = storage()
    if current.config().s3_presign:
        url = store.presigned_url(key, filename=filename, content_type=mimetype)
        if url is not None:
            return _presigned(store, key, url)
    try:
        info = store.stat(key)
    except StorageError as exc:
        raise _gone(key, exc) from exc
    etag = ranges.etag_header(info.etag)
    headers = {"Accept-Ranges": "bytes", "ETag": etag}
    if filename:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    if ranges.not_modified(request, etag):
        return Response(status=304, headers=headers)
    try:
        span = ranges.requested(request, etag, info.size)
    except ranges.Unsatisfiable:
        answer = error_response(
            416,
            "range_not_satisfiable",
            # the header cut short: a client's own words are not echoed at any length
            f"the range {(request.headers.get('Range') or '')[:100]!r} is not within the "
            f"file's {info.size} bytes",
        )
        answer.headers.update({"Accept-Ranges": "bytes", "Content-Range": f"bytes */{info.size}"})
        return answer
    if span is None:
        status, length = 200, info.size
    else:
        status, length = 206, span.length
        headers["Content-Range"] = span.content_range
    headers["Content-Length"] = str(length)
    if request.method == "HEAD" or length == 0:  # no body: nothing to read (nor to count)
        return Response(status=status, headers=headers, mimetype=mimetype)
    chunks = store.read_range(key, span.start, span.length) if span else store.read_chunks(key)
    try:
        first = next(chunks, b"")
    except StorageError as exc:
        raise _gone(key, exc) from exc
    body = itertools.chain([first], chunks)
    return Response(body, status=status, headers=headers, mimetype=mimetype)


def _gone(key: str, exc: StorageError) -> ApiError:
    logger.error("%s is in the database but not in storage: %s", key, exc)
    return ApiError(404, "not_found", "the file is no longer in storage")


def _presigned(store: Storage, key: str, url: str) -> BaseResponse:
    """A 302 to ``url``, once the object is known to exist (a file gone from storage is a 404
    here, as when streamed); not cached, as the URL expires."""
    if not store.exists(key):
        logger.error("%s is in the database but not in storage", key)
        raise ApiError(404, "not_found", "the file is no longer in storage")
    response = redirect(url, 302)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/api/uploads/<id:upload_id>/outputs/<fmt>")
@require_token
def get_output(upload_id: str, fmt: str):
    if fmt not in FORMATS:
        raise ApiError(404, "not_found", f"no {fmt!r} output: the formats are {', '.join(FORMATS)}")
    upload, output = uploads.output(sessions(), upload_id, fmt, caller().scope)
    known = FORMATS.get(fmt)
    stem = upload.filename.rsplit(".", 1)[0] or "audio"
    name = f"{stem}.{known.extension}" if known else None
    return _stream(
        output.storage_key, known.mime_type if known else "application/octet-stream", name
    )


@bp.get("/api/uploads/<id:upload_id>/waveform.<kind>")
@require_token
def waveform(upload_id: str, kind: str):
    if kind not in ("png", "json"):
        raise ApiError(404, "not_found", "waveform.png or waveform.json")
    key = uploads.waveform_key(sessions(), upload_id, kind, caller().scope)
    return _stream(key, "image/png" if kind == "png" else "application/json")
