"""Uploads: receive a file (Werkzeug spools the body, over 500 KB to a file in TMPDIR; it is then
sniffed and copied to storage while hashed), queue its job, serve results.

An upload is accepted (202) only once its file is stored, its rows written and its job queued;
if any of that fails, what was done is undone (the file removed, the rows too) and the answer
is an error — 503 with ``Retry-After`` when Postgres, NATS or the storage is away — so a retry
starts clean. Only a process killed in between leaves a file: ``app.orphans`` sweeps those.

The Go service's routes stay as aliases: ``POST /upload``, ``GET /uploads/<id>``,
``GET /uploads/<id>/analysis``. (The ``/api`` rule of each view is declared first, nearest the
function, so ``url_for`` builds links to it. ``GET /uploads/<id>`` is served by
:mod:`app.web.result_page`: this view's JSON to a client that does not prefer HTML, the result
page to a browser.)
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable

from dramatiq.errors import BrokerConnectionError
from flask import Blueprint, Response, jsonify, request, url_for
from sqlalchemy.exc import IntegrityError
from werkzeug.utils import secure_filename

from app import results, uploads
from app.api import current
from app.api.auth import caller, require_token
from app.api.current import broker, sessions, storage
from app.api.errors import ApiError, unavailable
from app.logs import bind
from app.metrics import metrics
from app.models import Upload, new_id
from app.queue import start_job
from app.quotas import Quotas
from app.storage import StorageError, Stored, sha256_of
from audio.errors import BadTargetError
from audio.formats import FORMATS, parse_formats
from audio.sniff import HEAD_BYTES, sniff
from audio.targets import parse_target
from broker.connection import TRANSIENT_ERRORS

logger = logging.getLogger(__name__)
bp = Blueprint("uploads", __name__)
CHUNK = 1 << 20


def links(upload_id: str, job_id: str) -> dict:
    return {
        "upload": url_for("uploads.get_upload", upload_id=upload_id),
        "analysis": url_for("uploads.get_analysis", upload_id=upload_id),
        "job": url_for("jobs.get_job", job_id=job_id),
        "events": url_for("jobs.job_events", job_id=job_id),
    }


def accepted(done: uploads.Accepted):
    body = {"upload_id": done.upload_id, "job_id": done.job_id, "status": done.status,
            "links": links(done.upload_id, done.job_id)}  # fmt: skip
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
    limits = None if who.admin else _quotas()
    if limits is not None and earlier is None:
        uploads.check_quotas(sessions(), who.tenant, limits, request.content_length or 0)
    formats = list(parse_formats(request.form.get("formats") or request.args.get("formats")))
    target = _normalize_target()
    file = request.files.get("file")
    if file is None:
        raise ApiError(400, "no_file", "send the audio as a multipart form field named 'file'")
    head = file.stream.read(HEAD_BYTES)
    kind = sniff(head)
    if kind is None:
        raise ApiError(400, "not_audio", "not an audio file (MP3, WAV, FLAC, Ogg, M4A or AIFF)")
    chunks = itertools.chain([head], iter(lambda: file.stream.read(CHUNK), b""))
    if earlier is not None:  # a retry: answer as the first time, if it is the same request
        return _replay(earlier, sha256_of(chunks), formats, target)
    extension, content_type = kind
    upload_id = new_id()
    filename = secure_filename(file.filename or "") or f"upload.{extension}"
    stored = _store(f"uploads/{upload_id}/original.{extension}", chunks)
    upload = Upload(
        id=upload_id, tenant=who.tenant, filename=filename[:255], content_type=content_type,
        size_bytes=stored.size, sha256=stored.sha256, storage_key=stored.key,
        idempotency_key=key,
    )  # fmt: skip
    try:
        done = uploads.record(sessions(), upload, formats, limits, target)
    except IntegrityError:  # the same Idempotency-Key raced us: answer with the first upload
        _remove_file(stored.key)
        earlier = uploads.by_idempotency_key(sessions(), who.tenant, key) if key else None
        if earlier is None:  # …which was withdrawn meanwhile (its queueing failed)
            raise ApiError(
                409, "idempotency_key_in_use",
                "another upload with this Idempotency-Key was being made; retry", retry_after=1,
            ) from None  # fmt: skip
        return _replay(earlier, stored.sha256, formats, target)
    except BaseException:  # over a quota (429), the database away (503), anything: keep nothing
        _remove_file(stored.key)
        raise
    bind(upload_id=done.upload_id, job_id=done.job_id)
    _queue(done, stored.key)
    metrics().uploads.inc()
    metrics().upload_bytes.inc(stored.size)
    logger.info("upload %s stored (%d bytes), job %s queued", upload_id, stored.size, done.job_id)
    return accepted(done)


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


def _normalize_target() -> dict | None:
    """The upload's ``normalize`` (a platform or a number of LUFS) and optional ``true_peak``
    ceiling, as the job keeps them; None when not asked.

    :raises ApiError: 400 ``bad_normalize`` with the sentence saying what is accepted.
    """
    normalize = _field("normalize")
    true_peak = _field("true_peak")
    if normalize is None:
        if true_peak is not None:
            raise ApiError(400, "bad_normalize", "true_peak needs normalize (a platform or LUFS)")
        return None
    try:
        return parse_target(normalize, true_peak).to_dict()
    except BadTargetError as exc:
        raise ApiError(400, "bad_normalize", str(exc)) from None


def _field(name: str) -> str | None:
    """A form field, or the query parameter of that name; blank is absent."""
    value = request.form.get(name) or request.args.get(name)
    return value.strip() or None if value else None


def _quotas() -> Quotas:
    config = current.config()
    return Quotas(config.uploads_per_hour, config.storage_quota_mb << 20)


def _replay(earlier: uploads.Earlier, sha256: str, formats: list[str], target: dict | None):
    """The first answer to a key again, or a 422 when the key came with another request."""
    if not earlier.same_request(sha256, formats, target):
        raise ApiError(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was sent before with another file, other formats or another "
            "loudness target; "
            "use a new key for a new upload",
        )
    return accepted(earlier.accepted)


def _store(key: str, chunks: Iterable[bytes]) -> Stored:
    """Save the original; storage that does not answer (a NATS bucket, a failing disk) is a 503.

    :raises ApiError: 503 ``storage_unavailable``.
    """
    try:
        return storage().save(key, chunks)
    except (BrokerConnectionError, *TRANSIENT_ERRORS) as exc:
        logger.error("could not store %s: %r", key, exc)
        raise unavailable(
            "storage_unavailable", "file storage is unavailable; retry shortly"
        ) from exc


def _queue(done: uploads.Accepted, stored_key: str) -> None:
    """Send the job's first stage, or undo the upload: rows, then file.

    The client is told 503 (NATS away), so nothing of the upload must run or remain: its retry
    — with the same ``Idempotency-Key`` or without — starts from nothing. Should the database
    fail too, the rows cannot be removed; they and the file stay, the job ``queued``, and the
    workers' sweep of quiet jobs sends it later (a retry with the key then answers with it).
    """
    try:
        start_job(broker(), done.job_id)
    except BaseException as exc:  # BrokerConnectionError: answered 503 by app.api.errors
        logger.error("could not queue job %s (%r): removing the upload", done.job_id, exc)
        try:
            uploads.discard(sessions(), done.upload_id)
        except Exception:
            logger.error(
                "could not remove upload %s either: its job stays queued for the sweep",
                done.upload_id,
                exc_info=True,
            )
        else:
            _remove_file(stored_key)
        raise


def _remove_file(key: str) -> None:
    """Best effort: a file that cannot be removed now is left to the orphan sweep."""
    try:
        storage().delete(key)
    except Exception:
        logger.warning("could not remove %s: the orphan sweep will", key, exc_info=True)


@bp.get("/api/uploads/<id:upload_id>")  # and /uploads/<id>: app.web.result_page
@require_token
def get_upload(upload_id: str):
    found = uploads.get_upload(sessions(), upload_id, caller().scope)
    return jsonify(uploads.upload_dict(found))


@bp.delete("/api/uploads/<id:upload_id>")
@require_token
def delete_upload(upload_id: str):
    """Remove an upload whose job has ended, with everything made from it (it stops counting
    in the tenant's storage quota)."""
    for key in uploads.remove(sessions(), upload_id, caller().scope):
        _remove_file(key)
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
    return jsonify(results.analysis_dict(*found))


def _stream(key: str, mimetype: str, filename: str | None = None) -> Response:
    """A stored file, streamed. Its first chunk is read here, so storage that is away is a
    503 (and a file gone from it a 404) rather than a response cut after its headers."""
    chunks = storage().read_chunks(key)
    try:
        first = next(chunks, b"")
    except StorageError as exc:
        logger.error("%s is in the database but not in storage: %s", key, exc)
        raise ApiError(404, "not_found", "the file is no longer in storage") from exc
    except (BrokerConnectionError, *TRANSIENT_ERRORS) as exc:
        logger.error("could not read %s: %r", key, exc)
        raise unavailable(
            "storage_unavailable", "file storage is unavailable; retry shortly"
        ) from exc
    response = Response(itertools.chain([first], chunks), mimetype=mimetype)
    if filename:
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
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
    return _stream(output.storage_key, known.mime_type if known else "application/octet-stream",
                   name)  # fmt: skip


@bp.get("/api/uploads/<id:upload_id>/waveform.<kind>")
@require_token
def waveform(upload_id: str, kind: str):
    if kind not in ("png", "json"):
        raise ApiError(404, "not_found", "waveform.png or waveform.json")
    key = uploads.waveform_key(sessions(), upload_id, kind, caller().scope)
    return _stream(key, "image/png" if kind == "png" else "application/json")
