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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dramatiq.errors import BrokerConnectionError
from flask import Blueprint, Response, jsonify, redirect, request, url_for
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import FileStorage
from werkzeug.utils import secure_filename

from app import results, uploads
from app.api import current
from app.api.auth import caller, require_token
from app.api.current import broker, sessions, storage
from app.api.errors import ApiError, unavailable
from app.callback_urls import BadCallbackUrl, check_callback_url
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
    limits = None if who.admin else tenant_quotas()
    if limits is not None and earlier is None:
        uploads.check_quotas(sessions(), who.tenant, limits, request.content_length or 0)
    options = job_options()
    file = request.files.get("file")
    if file is None:
        raise ApiError(400, "no_file", "send the audio as a multipart form field named 'file'")
    audio = sniffed(file)
    if earlier is not None:  # a retry: answer as the first time, if it is the same request
        return _replay(earlier, sha256_of(audio.chunks), options)
    try:
        kept = keep(audio, who.tenant, options, limits, key)
    except KeyTaken as taken:  # the same Idempotency-Key raced us: answer with the first upload
        earlier = uploads.by_idempotency_key(sessions(), who.tenant, key) if key else None
        if earlier is None:  # …which was withdrawn meanwhile (its queueing failed)
            raise ApiError(
                409, "idempotency_key_in_use",
                "another upload with this Idempotency-Key was being made; retry", retry_after=1,
            ) from None  # fmt: skip
        return _replay(earlier, taken.sha256, options)
    start(kept)
    return accepted(kept.accepted)


# -- accepting one file: the single upload's path, which a batch takes for each of its files --


@dataclass(frozen=True)
class JobOptions:
    """What a request asks of the job of each file it sends."""

    formats: list[str]
    normalize: dict | None  # the loudness target (``audio.targets.Target.to_dict``)
    callback_url: str | None  # the job's own webhook


@dataclass(frozen=True)
class Sniffed:
    """A file whose first bytes say it is audio; ``chunks`` yields all of it, those included."""

    filename: str
    extension: str
    content_type: str
    chunks: Iterator[bytes]


@dataclass(frozen=True)
class Kept:
    """A file stored and its rows written, its job not queued yet (:func:`start`)."""

    accepted: uploads.Accepted
    stored: Stored


class KeyTaken(Exception):
    """Another upload holds this ``Idempotency-Key`` (it raced us); this one's file is removed."""

    def __init__(self, sha256: str) -> None:
        super().__init__("Idempotency-Key taken")
        self.sha256 = sha256


def job_options(*, callback: bool = True) -> JobOptions:
    """The request's ``formats``, ``normalize`` and ``true_peak`` and — unless not the job's
    (``callback=False``: a batch's is its own) — ``callback_url`` (form or query), checked.

    :raises ApiError: 400 for a bad one; :raises UnknownFormat: an unknown format.
    """
    formats = list(parse_formats(request.form.get("formats") or request.args.get("formats")))
    target = _normalize_target()
    return JobOptions(formats, target, callback_url_field() if callback else None)


def sniffed(file: FileStorage, which: str | None = None) -> Sniffed:
    """The file, once its first bytes say it is audio.

    :raises ApiError: 400 ``not_audio`` (the message starts with ``which`` — a batch's "file 2
        ('notes.txt')" — when given).
    """
    head = file.stream.read(HEAD_BYTES)
    kind = sniff(head)
    if kind is None:
        refused = "not an audio file (MP3, WAV, FLAC, Ogg, M4A or AIFF)"
        raise ApiError(400, "not_audio", f"{which} is {refused}" if which else refused)
    extension, content_type = kind
    filename = secure_filename(file.filename or "") or f"upload.{extension}"
    chunks = itertools.chain([head], iter(lambda: file.stream.read(CHUNK), b""))
    return Sniffed(filename[:255], extension, content_type, chunks)


def keep(audio: Sniffed, tenant: str, options: JobOptions, limits: Quotas | None,
         key: str | None = None) -> Kept:  # fmt: skip
    """Store the file (sha256 on the way), then write its upload and queued job, within the
    tenant's ``limits`` when given. Nothing is kept when this raises.

    :raises ApiError: 503 ``storage_unavailable``.
    :raises app.quotas.QuotaExceeded: the upload would pass a limit (429).
    :raises KeyTaken: ``key`` is another upload's.
    """
    upload_id = new_id()
    stored = _store(f"uploads/{upload_id}/original.{audio.extension}", audio.chunks)
    upload = Upload(
        id=upload_id, tenant=tenant, filename=audio.filename, content_type=audio.content_type,
        size_bytes=stored.size, sha256=stored.sha256, storage_key=stored.key,
        idempotency_key=key,
    )  # fmt: skip
    try:
        done = uploads.record(sessions(), upload, options.formats, limits, options.normalize,
                              options.callback_url)  # fmt: skip
    except IntegrityError:
        _remove_file(stored.key)
        raise KeyTaken(stored.sha256) from None
    except BaseException:  # over a quota (429), the database away (503), anything: keep nothing
        _remove_file(stored.key)
        raise
    return Kept(done, stored)


def start(kept: Kept) -> None:
    """Queue the job of a kept file, or undo the upload (:func:`_queue`)."""
    done, stored = kept.accepted, kept.stored
    bind(upload_id=done.upload_id, job_id=done.job_id)
    _queue(done, stored.key)
    metrics().uploads.inc()
    metrics().upload_bytes.inc(stored.size)
    logger.info("upload %s stored (%d bytes), job %s queued", done.upload_id, stored.size,
                done.job_id)  # fmt: skip


def undo(kept: Kept) -> None:
    """Remove a kept file's rows (its job goes with them: a stage message already sent finds
    no job and does nothing), then its file; best effort, as :func:`_queue`'s undo."""
    try:
        uploads.discard(sessions(), kept.accepted.upload_id)
    except Exception:
        logger.error("could not remove upload %s: its job stays queued for the sweep",
                     kept.accepted.upload_id, exc_info=True)  # fmt: skip
    else:
        _remove_file(kept.stored.key)


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


def callback_url_field() -> str | None:
    """The ``callback_url`` field (form or query), checked: a URL webhooks may reach now.

    :raises ApiError: 400 ``bad_callback_url`` saying why; 400 ``webhooks_off`` when this
        service has no ``WEBHOOK_SECRET`` to sign with.
    """
    return checked_callback_url(_field("callback_url"))


def checked_callback_url(url: str | None) -> str | None:
    """``url`` (None: none asked) if webhooks may reach it now; raises as
    :func:`callback_url_field`."""
    if url is None:
        return None
    config = current.config()
    if not config.webhook_secret:
        raise ApiError(400, "webhooks_off", "this service sends no webhooks (WEBHOOK_SECRET is "
                       "not set); poll the job or follow its events instead")  # fmt: skip
    try:
        return check_callback_url(url, allow_private=config.webhook_allow_private)
    except BadCallbackUrl as exc:
        raise ApiError(400, "bad_callback_url", str(exc)) from None


def _field(name: str) -> str | None:
    """A form field, or the query parameter of that name; blank is absent."""
    value = request.form.get(name) or request.args.get(name)
    return value.strip() or None if value else None


def tenant_quotas() -> Quotas:
    """The limits of a tenant's uploads (an admin has none)."""
    config = current.config()
    return Quotas(config.uploads_per_hour, config.storage_quota_mb << 20)


def _replay(earlier: uploads.Earlier, sha256: str, options: JobOptions):
    """The first answer to a key again, or a 422 when the key came with another request."""
    if not earlier.same_request(sha256, options.formats, options.normalize, options.callback_url):
        raise ApiError(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was sent before with another file, other formats, another "
            "loudness target or another callback_url; use a new key for a new upload",
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
    503 (and a file gone from it a 404) rather than a response cut after its headers.

    With ``S3_PRESIGN=1`` and a storage that signs URLs (S3), a 302 to a short-lived URL of
    the object instead: the bytes go from the bucket to the client, not through the API."""
    store = storage()
    if current.config().s3_presign and hasattr(store, "presigned_url"):
        return _presigned(store, key, mimetype, filename)
    chunks = store.read_chunks(key)
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


def _presigned(store, key: str, mimetype: str, filename: str | None) -> Response:
    """A 302 to a presigned URL of ``key``, once the object is known to exist (a file gone from
    storage is a 404 here, as when streamed); not cached, as the URL expires."""
    try:
        found = store.exists(key)
        url = store.presigned_url(key, filename=filename, content_type=mimetype)
    except (BrokerConnectionError, *TRANSIENT_ERRORS) as exc:
        logger.error("could not look %s up: %r", key, exc)
        raise unavailable(
            "storage_unavailable", "file storage is unavailable; retry shortly"
        ) from exc
    if not found:
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
    return _stream(output.storage_key, known.mime_type if known else "application/octet-stream",
                   name)  # fmt: skip


@bp.get("/api/uploads/<id:upload_id>/waveform.<kind>")
@require_token
def waveform(upload_id: str, kind: str):
    if kind not in ("png", "json"):
        raise ApiError(404, "not_found", "waveform.png or waveform.json")
    key = uploads.waveform_key(sessions(), upload_id, kind, caller().scope)
    return _stream(key, "image/png" if kind == "png" else "application/json")
