"""The tables: uploads, jobs and their events, analyses, outputs (SQLAlchemy 2).

Stages write their results with ``upsert``-style keys (one analysis per upload, one output per
upload and format), so a stage re-run after a crash overwrites instead of duplicating.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

JOB_STATUSES = ("queued", "running", "done", "failed", "canceled")
#: A job in one of these has ended: nothing runs for it any more (a late message is skipped).
ENDED_STATUSES = ("done", "failed", "canceled")
#: A job in one of these may still run a stage: it can be canceled.
LIVE_STATUSES = ("queued", "running")
#: The tenant of rows made before tenants existed: only admins see them.
LEGACY_TENANT = "@legacy"
#: The PostgreSQL channel a job's new event is announced on (payload: the job's id), when the
#: transaction that adds it commits: the web process's event streams wake on it
#: (:mod:`app.http.job_watch`) instead of waiting for their next look.
JOB_EVENTS_CHANNEL = "job_events"


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    pass


class Upload(Base):
    __tablename__ = "uploads"
    __table_args__ = (
        UniqueConstraint("tenant", "idempotency_key", name="uploads_tenant_idempotency_key"),
        Index("uploads_tenant_created", "tenant", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    #: Who uploaded it (``app.http.auth.Caller.tenant``): only they and admins see it.
    tenant: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    storage_key: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    duration_s: Mapped[float | None] = mapped_column(Float)
    sample_rate: Mapped[int | None] = mapped_column(Integer)
    channels: Mapped[int | None] = mapped_column(Integer)
    codec: Mapped[str | None] = mapped_column(String(50))
    bitrate: Mapped[int | None] = mapped_column(Integer)
    #: The client's ``Idempotency-Key`` (unique per tenant): a retried upload with the same key
    #: gets the first answer.
    idempotency_key: Mapped[str | None] = mapped_column(String(200))

    jobs: Mapped[list[Job]] = relationship(back_populates="upload")


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed', 'canceled')",
            name="jobs_status_valid",
        ),
        CheckConstraint("progress BETWEEN 0 AND 100", name="jobs_progress_percent"),
        CheckConstraint("priority IN ('high', 'normal', 'low')", name="jobs_priority_valid"),
        Index("jobs_status_created", "status", "created_at"),
        Index("jobs_tenant_created", "tenant", "created_at"),
        Index("jobs_finished_at", "finished_at"),  # the operations page's last hour
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    #: The upload's tenant, kept on the job too so a tenant's list needs no join.
    tenant: Mapped[str] = mapped_column(String(64))
    upload_id: Mapped[str] = mapped_column(ForeignKey("uploads.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    stage: Mapped[str | None] = mapped_column(String(32))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    formats: Mapped[list] = mapped_column(JSON, default=list)
    #: The loudness target of its outputs (``audio.targets.Target.to_dict``); None: as decoded.
    normalize: Mapped[dict | None] = mapped_column(JSON)
    #: Where to POST the job's end (a webhook); None: the tenant's default, if any, else none.
    callback_url: Mapped[str | None] = mapped_column(Text)
    #: Its place among its tenant's work (``high``, ``normal``, ``low``; batches ``low``):
    #: the queue runs a tenant's most urgent job first (:mod:`broker.lanes`).
    priority: Mapped[str] = mapped_column(String(8), default="normal", server_default="normal")
    #: ``[low, high]``: the BPM is folded by octaves into this range; None: chosen automatically.
    bpm_range: Mapped[list | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    upload: Mapped[Upload] = relationship(back_populates="jobs")
    events: Mapped[list[JobEvent]] = relationship(
        back_populates="job", order_by="JobEvent.id", cascade="all, delete-orphan"
    )


class JobEvent(Base):
    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    stage: Mapped[str | None] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(10), default="info")
    message: Mapped[str] = mapped_column(Text)

    job: Mapped[Job] = relationship(back_populates="events")


@event.listens_for(JobEvent, "after_insert")
def _announce_job_event(mapper, connection, target: JobEvent) -> None:
    """``NOTIFY`` the new event's job in the transaction that adds it: PostgreSQL delivers it
    on commit only (a rollback drops it), and only to listeners, so it costs one statement."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_notify(:channel, :job_id)"),
            {"channel": JOB_EVENTS_CHANNEL, "job_id": target.job_id},
        )


class Analysis(Base):
    __tablename__ = "analyses"

    upload_id: Mapped[str] = mapped_column(
        ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True
    )
    integrated_lufs: Mapped[float | None] = mapped_column(Float)
    loudness_range_lu: Mapped[float | None] = mapped_column(Float)
    true_peak_dbtp: Mapped[float | None] = mapped_column(Float)
    sample_peak_dbfs: Mapped[float | None] = mapped_column(Float)
    short_term_lufs: Mapped[list | None] = mapped_column(JSON)
    bpm: Mapped[float | None] = mapped_column(Float)
    bpm_confidence: Mapped[float | None] = mapped_column(Float)
    #: The best guess at a tempo even without a steady beat (then ``bpm`` is null), with a low
    #: confidence; equal to ``bpm`` and ``bpm_confidence`` otherwise (``audio.tempo``).
    bpm_estimate: Mapped[float | None] = mapped_column(Float)
    bpm_estimate_confidence: Mapped[float | None] = mapped_column(Float)
    key: Mapped[str | None] = mapped_column(String(3))
    key_scale: Mapped[str | None] = mapped_column(String(5))
    key_confidence: Mapped[float | None] = mapped_column(Float)
    camelot: Mapped[str | None] = mapped_column(String(3))
    #: Why a loudness, tempo or key is null (a sentence), when it is.
    loudness_reason: Mapped[str | None] = mapped_column(Text)
    loudness_range_reason: Mapped[str | None] = mapped_column(Text)
    bpm_reason: Mapped[str | None] = mapped_column(Text)
    key_reason: Mapped[str | None] = mapped_column(Text)
    #: Seconds of each beat (the beat grid).
    beats: Mapped[list | None] = mapped_column(JSON)
    #: Where the sound starts and ends: ``audio.silence.Silence.to_dict``.
    silence: Mapped[dict | None] = mapped_column(JSON)
    #: The quality checks (``audio.checks``): loudness maxima and per channel, peak to loudness
    #: ratio, clipping, DC offset, mono compatibility, bandwidth and lossy origin.
    max_momentary_lufs: Mapped[float | None] = mapped_column(Float)
    max_short_term_lufs: Mapped[float | None] = mapped_column(Float)
    plr_db: Mapped[float | None] = mapped_column(Float)
    channel_loudness_lufs: Mapped[list | None] = mapped_column(JSON)
    clipping: Mapped[dict | None] = mapped_column(JSON)
    dc_offset_dbfs: Mapped[list | None] = mapped_column(JSON)
    stereo_correlation: Mapped[float | None] = mapped_column(Float)
    mono_loss_lu: Mapped[float | None] = mapped_column(Float)
    bandwidth_hz: Mapped[float | None] = mapped_column(Float)
    lossy_origin: Mapped[bool | None] = mapped_column(Boolean)
    #: ReplayGain 2.0 of the upload (−18 LUFS reference), as written into its outputs' tags.
    replaygain_track_gain_db: Mapped[float | None] = mapped_column(Float)
    replaygain_track_peak: Mapped[float | None] = mapped_column(Float)
    #: Why a check's value is null, by field (``mono_reason``…); None: analysed before the
    #: checks existed.
    quality_reasons: Mapped[dict | None] = mapped_column(JSON)
    #: Names of the checks the upload fails (``clipping``, ``true_peak``…): the jobs list's filter.
    failed_checks: Mapped[list | None] = mapped_column(JSON)
    waveform_png_key: Mapped[str | None] = mapped_column(String(512))
    waveform_json_key: Mapped[str | None] = mapped_column(String(512))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Output(Base):
    __tablename__ = "outputs"
    __table_args__ = (UniqueConstraint("upload_id", "format", name="outputs_one_per_format"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    upload_id: Mapped[str] = mapped_column(ForeignKey("uploads.id", ondelete="CASCADE"), index=True)
    format: Mapped[str] = mapped_column(String(10))
    bitrate: Mapped[int | None] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(512))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    duration_s: Mapped[float | None] = mapped_column(Float)
    #: What normalising did (``audio.normalize.Normalization.to_dict``); None: not normalised.
    normalization: Mapped[dict | None] = mapped_column(JSON)


class UploadLog(Base):
    """One row per upload accepted, kept for an hour: what ``UPLOADS_PER_HOUR`` counts. Not the
    uploads themselves, so removing an upload does not give its tenant another one."""

    __tablename__ = "upload_log"
    __table_args__ = (Index("upload_log_tenant_at", "tenant", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiToken(Base):
    """A bearer token made with ``phantomchain tokens create``: only its SHA-256 is kept (the
    token itself is shown once); revoked tokens stay listed."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(64))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    #: The token's first characters, to tell tokens apart in ``tokens list``.
    hint: Mapped[str] = mapped_column(String(16))
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TenantSettings(Base):
    """What a tenant sets for itself with the CLI: the webhook its jobs call by default."""

    __tablename__ = "tenant_settings"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    callback_url: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Batch(Base):
    """Several jobs under one id, and one webhook when all of them have ended."""

    __tablename__ = "batches"
    __table_args__ = (Index("batches_tenant_created", "tenant", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(64))
    callback_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: When the batch was seen with every job ended and its webhook made (once).
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: ReplayGain 2.0 album gain and peak of its tracks, set when it ends (null: no loudness).
    replaygain_album_gain_db: Mapped[float | None] = mapped_column(Float)
    replaygain_album_peak: Mapped[float | None] = mapped_column(Float)


class BatchJob(Base):
    """A job of a batch (a job may be in several batches: they group existing uploads)."""

    __tablename__ = "batch_jobs"

    batch_id: Mapped[str] = mapped_column(
        ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True
    )
    job_id: Mapped[str] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    #: The order the batch was given its files or uploads in.
    position: Mapped[int] = mapped_column(Integer, default=0)


DELIVERY_STATUSES = ("pending", "delivered", "failed")


class WebhookDelivery(Base):
    """One webhook message (a job's or a batch's end) and its fate; the same ``id`` (the
    ``webhook-id`` header) and body on every attempt, so a receiver can drop duplicates."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')", name="webhook_deliveries_status_valid"
        ),
        Index("webhook_deliveries_status_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )
    batch_id: Mapped[str | None] = mapped_column(
        ForeignKey("batches.id", ondelete="CASCADE"), index=True
    )
    event_type: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(Text)
    #: The JSON body exactly as signed and sent.
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookAttempt(Base):
    """One POST of a delivery: the receiver's status code, or why there was none."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)
