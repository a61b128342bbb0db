"""Uploads and what the pipeline made of them: the rows behind an upload's routes, and the
one owner of the ``analyses`` and ``outputs`` rows the pipeline's stages write.

Lookups raise typed errors (:class:`UploadNotFound`, :class:`OutputNotFound`,
:class:`NotReady`, :class:`AnalysisFailed`) that ``app.http.errors`` turns into statuses, so
every route says "not found" the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from app.albums import loudness_key
from app.models import LIVE_STATUSES, Analysis, Job, Output, Upload
from app.tenants import quotas
from audio.formats import FORMATS
from audio.replaygain import replaygain
from audio.verdicts import NOT_MEASURED, REASON_KEYS, VALUE_KEYS


class UploadNotFound(LookupError):
    def __init__(self, upload_id: str) -> None:
        super().__init__(f"no upload {upload_id}")


class OutputNotFound(LookupError):
    def __init__(self, upload_id: str, fmt: str) -> None:
        super().__init__(f"no {fmt} output for upload {upload_id}")


class StillRunning(Exception):
    """The upload's job is queued or running: it is removed once it has ended (the API and
    the CLI cancel it first, :func:`app.jobs.remove_upload`)."""

    def __init__(self, upload_id: str) -> None:
        super().__init__(
            f"upload {upload_id} is still being processed; remove it once its job has ended"
        )


class NotReady(Exception):
    """Asked for something the pipeline has not made yet."""


class AnalysisFailed(Exception):
    """The upload's job failed: the message is its reason."""


class AnalysisCanceled(Exception):
    """The upload's job was canceled: there is no analysis, and none is coming."""

    def __init__(self, upload_id: str) -> None:
        super().__init__(f"the job of upload {upload_id} was canceled: there is no analysis")


@dataclass(frozen=True)
class Accepted:
    """An upload and the job it started."""

    upload_id: str
    job_id: str
    status: str


@dataclass(frozen=True)
class Earlier:
    """What an ``Idempotency-Key`` made before: the answer, and what it was made from."""

    accepted: Accepted
    sha256: str
    formats: list[str]
    normalize: dict | None
    callback_url: str | None = None
    bpm_range: list[float] | None = None

    def same_request(
        self,
        sha256: str,
        formats: list[str],
        normalize: dict | None,
        callback_url: str | None = None,
        bpm_range: list[float] | None = None,
    ) -> bool:
        return (
            self.sha256 == sha256
            and sorted(self.formats) == sorted(formats)
            and self.normalize == normalize
            and self.callback_url == callback_url
            and self.bpm_range == bpm_range
        )


@dataclass(frozen=True)
class Pending:
    """The analysis is not there yet: the job's state."""

    status: str
    stage: str | None
    progress: int


def upload_dict(upload: Upload) -> dict:
    return {
        "id": upload.id,
        "filename": upload.filename,
        "content_type": upload.content_type,
        "size_bytes": upload.size_bytes,
        "sha256": upload.sha256,
        "created_at": upload.created_at.isoformat(),
        "duration_s": upload.duration_s,
        "sample_rate": upload.sample_rate,
        "channels": upload.channels,
        "codec": upload.codec,
        "bitrate": upload.bitrate,
    }


def check_quotas(
    sessions: sessionmaker[Session],
    tenant: str,
    limits: quotas.Quotas,
    adding_bytes: int = 0,
    adding_uploads: int = 1,
) -> None:
    """:raises app.tenants.quotas.QuotaExceeded: the tenant may not upload (this) now."""
    with sessions() as session:
        quotas.check(session, tenant, limits, adding_bytes, adding_uploads)


def record(
    sessions: sessionmaker[Session],
    upload: Upload,
    formats: list[str],
    limits: quotas.Quotas | None = None,
    normalize: dict | None = None,
    callback_url: str | None = None,
    priority: str = "normal",
    bpm_range: list[float] | None = None,
) -> Accepted:
    """Store the rows of a file already in storage, and its queued job (of the upload's
    tenant), within the tenant's ``limits`` when given; ``normalize`` is the loudness target of
    its outputs (``audio.targets.Target.to_dict``), ``callback_url`` the webhook told of its end,
    ``priority`` its place among the tenant's work, ``bpm_range`` the ``[low, high]`` its BPM
    is folded into (None: the octave chosen automatically).

    :raises sqlalchemy.exc.IntegrityError: the tenant's idempotency key is taken.
    :raises app.tenants.quotas.QuotaExceeded: the upload would pass a limit.
    """
    with sessions.begin() as session:
        if limits is not None:
            quotas.lock_tenant(session, upload.tenant)
            quotas.check(session, upload.tenant, limits, upload.size_bytes)
        session.add(upload)
        quotas.log_upload(session, upload.tenant)
        session.flush()
        job = Job(
            upload_id=upload.id,
            tenant=upload.tenant,
            formats=formats,
            normalize=normalize,
            callback_url=callback_url,
            priority=priority,
            bpm_range=bpm_range,
        )
        session.add(job)
        session.flush()
        return Accepted(upload.id, job.id, job.status)


def discard(sessions: sessionmaker[Session], upload_id: str) -> None:
    """Remove an upload's rows — its jobs and their events go with it — when the upload is
    refused after :func:`record` (its job could not be queued), so a retry starts clean."""
    with sessions.begin() as session:
        session.execute(delete(Upload).where(Upload.id == upload_id))


def remove(sessions: sessionmaker[Session], upload_id: str, tenant: str | None = None) -> list[str]:
    """Remove an upload whose job has ended — rows now (its jobs, analysis and outputs go with
    it) — and return the storage keys of its files, for the caller to delete.

    :raises UploadNotFound: no such upload (of ``tenant``, when given).
    :raises StillRunning: its job is queued or running (the workers would write after us).
    """
    with sessions.begin() as session:
        upload = session.get(Upload, upload_id, with_for_update=True)
        if upload is None or (tenant is not None and upload.tenant != tenant):
            raise UploadNotFound(upload_id)
        busy = _jobs(upload_id).where(Job.status.in_(LIVE_STATUSES))
        if session.scalars(busy.limit(1)).first() is not None:
            raise StillRunning(upload_id)
        keys = [upload.storage_key, *_made_keys(session, upload_id)]
        session.execute(delete(Upload).where(Upload.id == upload_id))  # the rest cascades
        return keys


def live_jobs(sessions: sessionmaker[Session], upload_id: str) -> list[str]:
    """The ids of the upload's jobs still queued or running."""
    with sessions() as session:
        live = _jobs(upload_id).where(Job.status.in_(LIVE_STATUSES))
        return [job.id for job in session.scalars(live)]


def remove_made(sessions: sessionmaker[Session], upload_id: str) -> list[str]:
    """Remove what the pipeline made of an upload — its outputs' and analysis' rows now —
    and return the storage keys of every file it may have made, for the caller to delete
    (idempotent: a key or row already gone is no matter). The original stays.

    Rows go first, so no reader is ever shown a row whose file is gone; the files are then
    deleted by their keys, which are known from the upload's id alone — a file stored by a
    worker that died before writing its row is found too.
    """
    with sessions.begin() as session:
        keys = _made_keys(session, upload_id)
        session.execute(delete(Output).where(Output.upload_id == upload_id))
        session.execute(delete(Analysis).where(Analysis.upload_id == upload_id))
        return keys


def made_keys(upload_id: str) -> list[str]:
    """Every key the pipeline's stages may store for an upload (``tasks.stages``): each
    format's output, the waveform image and peaks, the features and the limiter's profile
    between stages, the gating blocks albums are pooled from."""
    outputs = [f"outputs/{upload_id}/{fmt}.{spec.extension}" for fmt, spec in FORMATS.items()]
    waveforms = [f"waveforms/{upload_id}.png", f"waveforms/{upload_id}.json"]
    between = [f"features/{upload_id}.npz", f"profiles/{upload_id}.npz"]
    return [*outputs, *waveforms, *between, loudness_key(upload_id)]


def _made_keys(session: Session, upload_id: str) -> list[str]:
    """:func:`made_keys`, and any other key the upload's rows name (none today)."""
    keys = list(session.scalars(select(Output.storage_key).where(Output.upload_id == upload_id)))
    found = session.get(Analysis, upload_id)
    if found is not None:
        keys += [k for k in (found.waveform_png_key, found.waveform_json_key) if k]
    return list(dict.fromkeys([*keys, *made_keys(upload_id)]))


def by_idempotency_key(sessions: sessionmaker[Session], tenant: str, key: str) -> Earlier | None:
    """The upload (and first job) the tenant's ``Idempotency-Key`` made, if any."""
    with sessions() as session:
        upload = session.scalars(
            select(Upload).where(Upload.tenant == tenant, Upload.idempotency_key == key)
        ).first()
        if upload is None:
            return None
        job = _jobs(upload.id).order_by(Job.created_at)
        first = session.scalars(job).first()
        assert first is not None  # an upload is recorded with its job (record)
        accepted = Accepted(upload.id, first.id, first.status)
        return Earlier(
            accepted,
            upload.sha256,
            list(first.formats or []),
            first.normalize,
            first.callback_url,
            first.bpm_range,
        )


def get_upload(
    sessions: sessionmaker[Session], upload_id: str, tenant: str | None = None
) -> Upload:
    """:raises UploadNotFound: no such upload (of ``tenant``, when given)."""
    with sessions() as session:
        return _upload(session, upload_id, tenant)


def analysis(
    sessions: sessionmaker[Session], upload_id: str, tenant: str | None = None
) -> tuple[Analysis, list[Output]] | Pending:
    """The analysis and outputs when the upload's latest job is done, else its state.

    :raises UploadNotFound: no such upload (of ``tenant``, when given).
    :raises AnalysisFailed: the job failed (the message says why).
    :raises AnalysisCanceled: the job was canceled.
    """
    with sessions() as session:
        _upload(session, upload_id, tenant)
        job = session.scalars(_jobs(upload_id).order_by(Job.created_at.desc())).first()
        if job is not None and job.status == "failed":
            raise AnalysisFailed(job.error or "the analysis failed")
        if job is not None and job.status == "canceled":
            raise AnalysisCanceled(upload_id)
        if job is None or job.status != "done":
            return Pending(
                job.status if job else "queued", job and job.stage, job.progress if job else 0
            )
        outputs = session.scalars(select(Output).where(Output.upload_id == upload_id)).all()
        found = session.get(Analysis, upload_id)
        assert found is not None  # a job is done only after its analysis is stored
        return found, list(outputs)


def output(
    sessions: sessionmaker[Session], upload_id: str, fmt: str, tenant: str | None = None
) -> tuple[Upload, Output]:
    """:raises UploadNotFound, OutputNotFound: no such upload (of ``tenant``), or no such
    output of it."""
    with sessions() as session:
        upload = _upload(session, upload_id, tenant)
        found = session.scalars(
            select(Output).where(Output.upload_id == upload_id, Output.format == fmt)
        ).first()
        if found is None:
            raise OutputNotFound(upload_id, fmt)
        return upload, found


def waveform_key(
    sessions: sessionmaker[Session], upload_id: str, kind: str, tenant: str | None = None
) -> str:
    """The storage key of the waveform as ``png`` or ``json``.

    :raises UploadNotFound: no such upload (of ``tenant``, when given).
    :raises NotReady: not drawn yet.
    """
    with sessions() as session:
        _upload(session, upload_id, tenant)
        found = session.get(Analysis, upload_id)
        key = found and (found.waveform_png_key if kind == "png" else found.waveform_json_key)
        if not key:
            raise NotReady("the waveform is not drawn yet")
        return key


def save_analysis(sessions: sessionmaker[Session], upload_id: str, **values) -> None:
    """Write some of an upload's figures (each stage writes its own), overwriting what an
    earlier run of the same stage wrote."""
    statement = insert(Analysis).values(upload_id=upload_id, **values)
    statement = statement.on_conflict_do_update(index_elements=["upload_id"], set_=values)
    with sessions.begin() as session:
        session.execute(statement)


def save_output(
    sessions: sessionmaker[Session],
    upload_id: str,
    fmt: str,
    *,
    storage_key: str,
    size_bytes: int,
    bitrate: int | None,
    duration_s: float | None,
    normalization: dict | None = None,
) -> None:
    """The row of one stored output, overwriting an earlier run's (one per format)."""
    values = {
        "bitrate": bitrate,
        "storage_key": storage_key,
        "size_bytes": size_bytes,
        "duration_s": duration_s,
        "normalization": normalization,
    }
    statement = insert(Output).values(upload_id=upload_id, format=fmt, **values)
    statement = statement.on_conflict_do_update(constraint="outputs_one_per_format", set_=values)
    with sessions.begin() as session:
        session.execute(statement)


def analysis_dict(analysis: Analysis, outputs: list[Output]) -> dict:
    """What a finished job made, as JSON: one shape for the API (``GET /api/uploads/<id>/
    analysis``), the result page and the webhook a job's end sends, so a receiver reads exactly
    what a client polling would. Links are paths on the API, built here rather than by Flask so
    that workers can build them."""
    upload = f"/api/uploads/{analysis.upload_id}"
    key = f"{analysis.key} {analysis.key_scale}" if analysis.key else None
    return {
        "upload_id": analysis.upload_id,
        "integrated_lufs": analysis.integrated_lufs,
        "loudness_range_lu": analysis.loudness_range_lu,
        "true_peak_dbtp": analysis.true_peak_dbtp,
        "sample_peak_dbfs": analysis.sample_peak_dbfs,
        "short_term_lufs": analysis.short_term_lufs,
        "bpm": analysis.bpm,
        "bpm_confidence": analysis.bpm_confidence,
        "key": key,
        "key_scale": analysis.key_scale,
        "key_confidence": analysis.key_confidence,
        "camelot": analysis.camelot,
        "loudness_reason": analysis.loudness_reason,
        "loudness_range_reason": analysis.loudness_range_reason,
        **_replaygain(analysis),
        "bpm_reason": analysis.bpm_reason,
        "bpm_estimate": analysis.bpm_estimate,
        "bpm_estimate_confidence": analysis.bpm_estimate_confidence,
        "key_reason": analysis.key_reason,
        "beats": analysis.beats,
        **silence_dict(analysis.silence),
        **checks_dict(analysis),
        "waveform": {"png": f"{upload}/waveform.png", "json": f"{upload}/waveform.json"},
        "outputs": {
            o.format: {
                "url": f"{upload}/outputs/{o.format}",
                "size_bytes": o.size_bytes,
                "bitrate": o.bitrate,
                "normalization": o.normalization,
            }
            for o in outputs
        },
    }


def checks_dict(analysis: Analysis) -> dict:
    """The quality checks (``audio.checks``), flat; a row analysed before they existed reads
    as nulls, each check with the sentence saying so."""
    values = {key: getattr(analysis, key) for key in VALUE_KEYS}
    if analysis.quality_reasons is None:
        return {**values, **dict.fromkeys(REASON_KEYS, NOT_MEASURED), "failed_checks": None}
    reasons = {key: analysis.quality_reasons.get(key) for key in REASON_KEYS}
    return {**values, **reasons, "failed_checks": list(analysis.failed_checks or [])}


def _replaygain(analysis: Analysis) -> dict:
    """The upload's ReplayGain as the loudness stage saved it; for rows analysed before it
    did, the same figures from the stored loudness and true peak (null without a loudness)."""
    if analysis.replaygain_track_gain_db is not None:
        return {
            "replaygain_track_gain_db": analysis.replaygain_track_gain_db,
            "replaygain_track_peak": analysis.replaygain_track_peak,
        }
    return replaygain(analysis.integrated_lufs, analysis.true_peak_dbtp).to_dict()


def silence_dict(silence: dict | None) -> dict:
    """Where the sound starts and ends (all null when the audio is silent throughout, or was
    analysed before silence was measured)."""
    silence = silence or {}
    return {
        "audio_start_s": silence.get("start_s"),
        "audio_end_s": silence.get("end_s"),
        "leading_silence_s": silence.get("leading_s"),
        "trailing_silence_s": silence.get("trailing_s"),
    }


def _upload(session: Session, upload_id: str, tenant: str | None = None) -> Upload:
    """Another tenant's upload is not found: its existence is not revealed."""
    upload = session.get(Upload, upload_id)
    if upload is None or (tenant is not None and upload.tenant != tenant):
        raise UploadNotFound(upload_id)
    return upload


def _jobs(upload_id: str):
    return select(Job).where(Job.upload_id == upload_id)
