"""Accepting one file: sniff it, store it (hashed), write its rows within the tenant's quotas,
queue its job — or undo what was done. The single upload's path (:mod:`app.http.api.uploads`), which
a batch (:mod:`app.http.api.batches`) takes for each of its files; and the upload fields they share
(``formats``, ``normalize``, ``true_peak``, ``bpm_range``, ``callback_url``).

Storage, the database or NATS away is a 503 with ``Retry-After`` and nothing kept: a retry
starts clean. Only a process killed in between leaves a file: ``app.storage.orphans`` sweeps those.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from flask import request
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import FileStorage
from werkzeug.utils import secure_filename

from app import uploads
from app.http import current
from app.http.current import broker, sessions, storage
from app.http.errors import ApiError
from app.logs import bind
from app.metrics import metrics
from app.models import Upload, new_id
from app.queue import PRIORITIES, start_job
from app.storage import CHUNK, Stored
from app.tenants.quotas import Quotas
from app.webhooks.addresses import BadCallbackUrl, check_callback_url
from audio.bpm_range import BadBpmRangeError, parse_bpm_range
from audio.errors import BadTargetError
from audio.formats import parse_formats
from audio.sniff import HEAD_BYTES, sniff
from audio.targets import parse_target

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobOptions:
    """What a request asks of the job of each file it sends."""

    formats: list[str]
    normalize: dict | None  # the loudness target (``audio.targets.Target.to_dict``)
    callback_url: str | None  # the job's own webhook
    priority: str = "normal"  # among the tenant's work: high, normal or low
    bpm_range: list[float] | None = None  # ``[low, high]`` the BPM is folded into; None: auto


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
    tenant: str
    priority: str


class KeyTaken(Exception):
    """Another upload holds this ``Idempotency-Key`` (it raced us); this one's file is removed."""

    def __init__(self, sha256: str) -> None:
        super().__init__("Idempotency-Key taken")
        self.sha256 = sha256


def job_options(*, callback: bool = True, priority: str = "normal") -> JobOptions:
    """The request's ``formats``, ``normalize``, ``true_peak`` and ``priority`` (``priority``
    when not given) and — unless not the job's (``callback=False``: a batch's is its own) —
    ``callback_url`` (form or query), checked.

    :raises ApiError: 400 for a bad one; :raises UnknownFormat: an unknown format.
    """
    formats = list(parse_formats(request.form.get("formats") or request.args.get("formats")))
    target = _normalize_target()
    chosen = _field("priority") or priority
    if chosen not in PRIORITIES:
        raise ApiError(400, "bad_priority", "priority must be high, normal or low")
    callback_url = callback_url_field() if callback else None
    return JobOptions(formats, target, callback_url, chosen, _bpm_range())


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


def keep(
    audio: Sniffed, tenant: str, options: JobOptions, limits: Quotas | None, key: str | None = None
) -> Kept:
    """Store the file (sha256 on the way), then write its upload and queued job, within the
    tenant's ``limits`` when given. Nothing is kept when this raises.

    :raises app.storage.StorageUnavailable: the storage does not answer (a 503).
    :raises app.tenants.quotas.QuotaExceeded: the upload would pass a limit (429).
    :raises KeyTaken: ``key`` is another upload's.
    """
    upload_id = new_id()
    stored = _store(f"uploads/{upload_id}/original.{audio.extension}", audio.chunks)
    upload = Upload(
        id=upload_id,
        tenant=tenant,
        filename=audio.filename,
        content_type=audio.content_type,
        size_bytes=stored.size,
        sha256=stored.sha256,
        storage_key=stored.key,
        idempotency_key=key,
    )
    try:
        done = uploads.record(
            sessions(),
            upload,
            options.formats,
            limits,
            options.normalize,
            options.callback_url,
            options.priority,
            options.bpm_range,
        )
    except IntegrityError:
        remove_file(stored.key)
        raise KeyTaken(stored.sha256) from None
    except BaseException:  # over a quota (429), the database away (503), anything: keep nothing
        remove_file(stored.key)
        raise
    return Kept(done, stored, tenant, options.priority)


def start(kept: Kept) -> None:
    """Queue the job of a kept file, or undo the upload (:func:`_queue`)."""
    done, stored = kept.accepted, kept.stored
    bind(upload_id=done.upload_id, job_id=done.job_id)
    _queue(done, stored.key, kept.tenant, kept.priority)
    metrics().uploads.inc()
    metrics().upload_bytes.inc(stored.size)
    logger.info(
        "upload %s stored (%d bytes), job %s queued", done.upload_id, stored.size, done.job_id
    )


def undo(kept: Kept) -> None:
    """Remove a kept file's rows (its job goes with them: a stage message already sent finds
    no job and does nothing), then its file; best effort, as :func:`_queue`'s undo."""
    try:
        uploads.discard(sessions(), kept.accepted.upload_id)
    except Exception:
        logger.error(
            "could not remove upload %s: its job stays queued for the sweep",
            kept.accepted.upload_id,
            exc_info=True,
        )
    else:
        remove_file(kept.stored.key)


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


def _bpm_range() -> list[float] | None:
    """The ``bpm_range`` field (``LOW-HIGH``) as the job keeps it, ``[low, high]``; None when
    not asked (the octave is chosen automatically).

    :raises ApiError: 400 ``bad_bpm_range`` with the sentence saying what is accepted.
    """
    raw = _field("bpm_range")
    if raw is None:
        return None
    try:
        return parse_bpm_range(raw).to_list()
    except BadBpmRangeError as exc:
        raise ApiError(400, "bad_bpm_range", str(exc)) from None


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
        raise ApiError(
            400,
            "webhooks_off",
            "this service sends no webhooks (WEBHOOK_SECRET is "
            "not set); poll the job or follow its events instead",
        )
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


def _store(key: str, chunks: Iterable[bytes]) -> Stored:
    """Save the original.

    :raises app.storage.StorageUnavailable: the storage does not answer (a 503).
    """
    return storage().save(key, chunks)


def _queue(done: uploads.Accepted, stored_key: str, tenant: str, priority: str) -> None:
    """Send the job's first stage, or undo the upload: rows, then file.

    The client is told 503 (NATS away), so nothing of the upload must run or remain: its retry
    — with the same ``Idempotency-Key`` or without — starts from nothing. Should the database
    fail too, the rows cannot be removed; they and the file stay, the job ``queued``, and the
    workers' sweep of quiet jobs sends it later (a retry with the key then answers with it).
    """
    try:
        start_job(broker(), done.job_id, tenant=tenant, priority=priority)
    except BaseException as exc:  # BrokerConnectionError: answered 503 by app.http.errors
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
            remove_file(stored_key)
        raise


def remove_file(key: str) -> None:
    """Best effort: a file that cannot be removed now is left to the orphan sweep."""
    try:
        storage().delete(key)
    except Exception:
        logger.warning("could not remove %s: the orphan sweep will", key, exc_info=True)
