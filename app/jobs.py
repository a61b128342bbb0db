"""A job's state and its story: the one place that changes a job's status, stage, progress
and events, for the workers, the HTTP routes, the CLI and dead-letter replays alike.

Each change is its own short transaction (the job row locked while it is written), so a crash
loses at most the step in progress and readers see progress as it happens. The functions take
a session factory rather than reaching for Flask's, so the terminal and the API run the very
same code: a retry from the CLI is a retry from the API.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta

import dramatiq
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from app import uploads
from app.failing import check_failing
from app.failing_query import failing_clause
from app.metrics import metrics
from app.models import ENDED_STATUSES, JOB_STATUSES, LIVE_STATUSES, Job, JobEvent, utcnow
from app.queue import start_job
from app.storage import Storage
from app.webhooks import outbox


class JobNotFound(LookupError):
    """No job with that id."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id}")


class JobNotFailed(ValueError):
    """Only a failed job may be retried; this one is queued, running or done."""

    def __init__(self, job_id: str, status: str) -> None:
        super().__init__(f"job {job_id} is {status}, not failed")
        self.status = status


class JobEnded(ValueError):
    """Only a queued or running job may be canceled; this one has ended."""

    def __init__(self, job_id: str, status: str) -> None:
        super().__init__(f"job {job_id} has already ended ({status}): there is nothing to cancel")
        self.status = status


class JobCanceled(Exception):
    """A worker's step found its job canceled (or gone with its upload) meanwhile: what the
    stage wrote must be removed, and nothing more recorded (:func:`stage_done`,
    :func:`job_done`)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} was canceled")


class BadStatus(ValueError):
    """Not one of :data:`app.models.JOB_STATUSES`."""

    def __init__(self) -> None:
        super().__init__(f"status must be one of {', '.join(JOB_STATUSES)}")


# -- reading ---------------------------------------------------------------------------------


def job_dict(job: Job, events: list[JobEvent] | None = None) -> dict:
    """A job as JSON (with its events when given)."""
    body = {
        "id": job.id,
        "upload_id": job.upload_id,
        "status": job.status,
        "stage": job.stage,
        "progress": job.progress,
        "attempts": job.attempts,
        "error": job.error,
        "formats": job.formats,
        "normalize": job.normalize,
        "priority": job.priority,
        "bpm_range": job.bpm_range,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
    if events is not None:
        body["events"] = [event_dict(e) for e in events]
    return body


def event_dict(event: JobEvent) -> dict:
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "stage": event.stage,
        "level": event.level,
        "message": event.message,
    }


def check_status(status: str | None) -> str | None:
    """``status`` if it is a job status (or ``None``).

    :raises BadStatus: anything else.
    """
    if status is not None and status not in JOB_STATUSES:
        raise BadStatus()
    return status


def list_jobs(
    sessions: sessionmaker[Session],
    *,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
    tenant: str | None = None,
    ident: str | None = None,
    failing: str | None = None,
) -> tuple[list[dict], int]:
    """A page of jobs, newest first, and how many match in all (of ``tenant`` when given; the
    job, or the jobs of the upload, whose id is ``ident`` when given; the jobs whose upload's
    analysis fails the check ``failing`` names, or any check, when given).

    :raises BadStatus: ``status`` is not a job status.
    :raises BadFailing: ``failing`` is neither a check's name nor ``any``.
    """
    query = select(Job)
    if tenant is not None:
        query = query.where(Job.tenant == tenant)
    if ident is not None:
        query = query.where(or_(Job.id == ident, Job.upload_id == ident))
    if check_status(status):
        query = query.where(Job.status == status)
    failing = check_failing(failing)
    if failing is not None:
        query = query.where(failing_clause(failing))
    with sessions() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
        ).all()
        return [job_dict(j) for j in rows], total


def count_by_status(sessions: sessionmaker[Session], tenant: str | None = None) -> dict[str, int]:
    """How many jobs have each status (every status named, 0 for none), of ``tenant`` when
    given."""
    query = select(Job.status, func.count()).group_by(Job.status)
    if tenant is not None:
        query = query.where(Job.tenant == tenant)
    counts = dict.fromkeys(JOB_STATUSES, 0)
    with sessions() as session:
        for status, count in session.execute(query).all():
            counts[status] = int(count)
    return counts


def job_status(sessions: sessionmaker[Session], job_id: str, tenant: str | None = None) -> str:
    """:raises JobNotFound: no such job (of ``tenant``, when given)."""
    with sessions() as session:
        query = select(Job.status).where(Job.id == job_id)
        if tenant is not None:
            query = query.where(Job.tenant == tenant)
        status = session.scalar(query)
        if status is None:
            raise JobNotFound(job_id)
        return status


def get_job(sessions: sessionmaker[Session], job_id: str, tenant: str | None = None) -> dict:
    """One job with its events, oldest event first.

    :raises JobNotFound: no such job (of ``tenant``, when given: another tenant's job is not
        found, so its existence is not revealed).
    """
    with sessions() as session:
        job = session.get(Job, job_id)
        if job is None or (tenant is not None and job.tenant != tenant):
            raise JobNotFound(job_id)
        return job_dict(job, _events(session, job_id))


def events_after(
    sessions: sessionmaker[Session], job_id: str, last_id: int
) -> tuple[dict, list[dict]]:
    """The job, and its events newer than ``last_id`` (for a live stream).

    :raises JobNotFound: no such job.
    """
    with sessions() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job_dict(job), [event_dict(e) for e in _events(session, job_id, after=last_id)]


def _events(session: Session, job_id: str, after: int = 0) -> list[JobEvent]:
    return list(
        session.scalars(
            select(JobEvent)
            .where(JobEvent.job_id == job_id, JobEvent.id > after)
            .order_by(JobEvent.id)
        ).all()
    )


# -- the pipeline's steps (workers) ----------------------------------------------------------


#: What a worker does with a stage's message, decided from the job's row (:func:`begin_stage`).
RUN = "run"  # do the stage's work
HAND_ON = "hand_on"  # its work is recorded as done: only send the next stage (again)
SKIP = "skip"  # the job has ended: a late or duplicate message, nothing to do
CANCELED = "canceled"  # the job was canceled: remove what its stages made, nothing else


def begin_stage(
    sessions: sessionmaker[Session],
    job_id: str,
    stage: str,
    progress_before: int,
    progress_after: int,
) -> tuple[str, str]:
    """Decide what a delivery of ``stage`` should do; ``(decision, upload_id)``.

    A stage's message can arrive again: redelivered after its worker died, or handed over
    twice by the server. Its completion is recorded as the job's progress reaching
    ``progress_after`` (:func:`stage_done`), so a delivery after that only hands on to the next
    stage — the message for it may never have been sent — and one for an ended job does
    nothing, nor does one for a job that no longer exists (an upload withdrawn because its
    message seemed not to be stored, when only the acknowledgement was lost). One for a
    canceled job runs nothing either, but its worker removes what the job's stages made
    (:data:`CANCELED`): a stage whose worker died after writing an output and before seeing the
    cancel leaves that to this delivery. Otherwise the stage starts: status ``running``, an
    attempt, a "started" event.
    """
    with sessions.begin() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None:
            return SKIP, ""
        if job.status == "canceled":
            return CANCELED, job.upload_id
        if job.status in ENDED_STATUSES:
            return SKIP, job.upload_id
        if job.progress >= progress_after:
            return HAND_ON, job.upload_id
        job.status = "running"
        job.stage = stage
        job.progress = max(job.progress, progress_before)
        job.attempts += 1
        job.started_at = job.started_at or utcnow()
        session.add(JobEvent(job_id=job_id, stage=stage, level="info", message=f"{stage} started"))
        return RUN, job.upload_id


def stage_done(
    sessions: sessionmaker[Session], job_id: str, stage: str, progress: int, message: str
) -> None:
    """Record a stage's completion (once: a second run of the same stage adds no event).

    :raises JobCanceled: the job was canceled while the stage ran (the cancel committed first,
        so it wins), or is gone with its upload.
    """
    with sessions.begin() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None or job.status == "canceled":
            raise JobCanceled(job_id)
        if job.progress >= progress:
            return
        job.progress = progress
        session.add(JobEvent(job_id=job_id, stage=stage, level="info", message=message))


def stage_retrying(sessions: sessionmaker[Session], job_id: str, stage: str, reason: str) -> None:
    """Record a failed attempt that will be retried — unless the job has ended meanwhile (a
    cancel: its story ends with who canceled it; the retry will find it canceled)."""
    with sessions.begin() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None or job.status in ENDED_STATUSES:
            return
        session.add(
            JobEvent(job_id=job_id, stage=stage, level="warning", message=f"will retry: {reason}")
        )


def job_done(
    sessions: sessionmaker[Session], job_id: str, storage: Storage | None = None
) -> list[str]:
    """The job ends ``done`` (once: a duplicate of its last stage changes nothing); returns the
    webhook deliveries its end made, for :func:`app.webhooks.outbox.send`. ``storage``: where
    a batch it ends reads its tracks' loudness for the album gain (:mod:`app.albums`).

    :raises JobCanceled: the job was canceled after its last stage was recorded and before
        this (a cancel never turns into ``done``), or is gone with its upload.
    """
    with sessions.begin() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None or job.status == "canceled":
            raise JobCanceled(job_id)
        if job.status == "done":
            return []
        job.status, job.progress, job.stage, job.error = "done", 100, None, None
        job.finished_at = utcnow()
        session.add(JobEvent(job_id=job_id, stage="finalize", level="info", message="done"))
        session.flush()
        deliveries = outbox.on_job_end(session, job, storage)
    metrics().jobs_finished.labels("done").inc()
    return deliveries


def job_failed(
    sessions: sessionmaker[Session],
    job_id: str,
    stage: str,
    reason: str,
    storage: Storage | None = None,
) -> list[str]:
    """The job ends ``failed`` with ``reason`` (a sentence for the person who uploaded); a job
    that has already ended stays as it is. Returns the webhook deliveries its end made
    (``storage`` as for :func:`job_done`)."""
    with sessions.begin() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None or job.status in ENDED_STATUSES:
            return []
        job.status, job.error, job.finished_at = "failed", reason, utcnow()
        session.add(JobEvent(job_id=job_id, stage=stage, level="error", message=reason))
        session.flush()
        deliveries = outbox.on_job_end(session, job, storage)
    metrics().jobs_finished.labels("failed").inc()
    return deliveries


# -- the sweep (workers) ---------------------------------------------------------------------

#: The event a job gets when the sweep sends its stage again (at most once per job).
RESENT_BY_SWEEP = "sent again by the sweep: no message was left to move it"


@dataclass(frozen=True)
class QuietJob:
    """A job still ``queued`` or ``running`` with no event for a while."""

    id: str
    stage: str | None  # the last stage started (None: none yet)
    resent: bool  # the sweep has sent its stage again before
    tenant: str
    priority: str


def quiet_jobs(sessions: sessionmaker[Session], quiet_for_s: float) -> list[QuietJob]:
    """Jobs ``queued`` or ``running`` whose latest event (or creation) is older than
    ``quiet_for_s`` seconds, oldest first."""
    last = func.coalesce(func.max(JobEvent.at), Job.created_at)
    cutoff = utcnow() - timedelta(seconds=quiet_for_s)
    resent = func.bool_or(JobEvent.message == RESENT_BY_SWEEP)
    query = (
        select(Job.id, Job.stage, func.coalesce(resent, False), Job.tenant, Job.priority)
        .outerjoin(JobEvent, JobEvent.job_id == Job.id)
        .where(Job.status.in_(LIVE_STATUSES))
        .group_by(Job.id)
        .having(last < cutoff)
        .order_by(last)
    )
    with sessions() as session:
        return [QuietJob(*row) for row in session.execute(query).tuples().all()]


# -- operators' actions (API and CLI) --------------------------------------------------------


def retry_job(
    sessions: sessionmaker[Session], broker: dramatiq.Broker, job_id: str, *, by: str = "an admin"
) -> None:
    """Run a failed job again from its first stage (the job is reset, an event says who).

    :raises JobNotFound: no such job.
    :raises JobNotFailed: the job is not failed (retrying a live job would run it twice).
    """
    with sessions.begin() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None:
            raise JobNotFound(job_id)
        if job.status != "failed":
            raise JobNotFailed(job_id, job.status)
        tenant, priority = job.tenant, job.priority
        job.status, job.error, job.progress, job.stage, job.finished_at = (
            "queued",
            None,
            0,
            None,
            None,
        )
        session.add(JobEvent(job_id=job_id, stage=None, level="info", message=f"retried by {by}"))
    start_job(broker, job_id, tenant=tenant, priority=priority)


def cancel_job(
    sessions: sessionmaker[Session],
    job_id: str,
    *,
    by: str,
    tenant: str | None = None,
    storage: Storage | None = None,
) -> list[str]:
    """End a queued or running job ``canceled`` at once; returns the webhook deliveries its end
    made (``job.canceled``, and a batch's end), for :func:`app.webhooks.outbox.send`
    (``storage`` as for :func:`job_done`).

    One conditional ``UPDATE`` decides: of a cancel and a worker's last step (:func:`job_done`,
    which locks the row too) whichever commits first wins, and the other sees it. The event
    saying who (``by``), the webhook and the batch's end are written in the same transaction.
    Nothing is sent to the workers: a queued message is skipped when it comes
    (:func:`begin_stage`), a running stage sees the status between two blocks of audio and
    stops, and either removes what the job's stages made.

    :raises JobNotFound: no such job (of ``tenant``, when given).
    :raises JobEnded: the job has already ended (done, failed or canceled).
    """
    query = update(Job).where(Job.id == job_id, Job.status.in_(LIVE_STATUSES))
    if tenant is not None:
        query = query.where(Job.tenant == tenant)
    with sessions.begin() as session:
        canceled = session.scalars(
            query.values(status="canceled", finished_at=utcnow()).returning(Job.id)
        ).first()
        if canceled is None:
            raise _why_not_canceled(session, job_id, tenant)
        job = session.get(Job, job_id, populate_existing=True)
        assert job is not None  # just updated
        message = f"canceled by {by}"
        session.add(JobEvent(job_id=job_id, stage=job.stage, level="warning", message=message))
        session.flush()
        deliveries = outbox.on_job_end(session, job, storage)
    metrics().jobs_finished.labels("canceled").inc()
    return deliveries


def remove_upload(
    sessions: sessionmaker[Session],
    upload_id: str,
    *,
    by: str,
    tenant: str | None = None,
    storage: Storage | None = None,
) -> tuple[list[str], list[str]]:
    """Remove an upload and everything made from it, canceling its job first if it is still
    queued or running; returns the storage keys to delete and the webhook deliveries to send.

    The cancel commits before the rows go, so the job's batch (if any) ends with it counted
    ``canceled`` (its webhook survives: it belongs to the batch); the job's own ``job.canceled``
    webhook goes with the job's rows, as a deleted upload's pending webhooks always do. A
    worker still in the job's stage finds it gone within its check's interval, stops, and
    deletes the keys it may have written again (:mod:`tasks.cancellation`): its files never
    outlive the upload's rows for long.

    :raises app.uploads.UploadNotFound: no such upload (of ``tenant``, when given).
    :raises app.uploads.StillRunning: a job was put back to queued while this ran (a retry).
    """
    try:
        return uploads.remove(sessions, upload_id, tenant), []
    except uploads.StillRunning:
        pass
    deliveries: list[str] = []
    for job_id in uploads.live_jobs(sessions, upload_id):
        with suppress(JobEnded, JobNotFound):  # ended or removed meanwhile: nothing to cancel
            deliveries += cancel_job(sessions, job_id, by=by, tenant=tenant, storage=storage)
    return uploads.remove(sessions, upload_id, tenant), deliveries


def _why_not_canceled(session: Session, job_id: str, tenant: str | None) -> Exception:
    job = session.get(Job, job_id)
    if job is None or (tenant is not None and job.tenant != tenant):
        return JobNotFound(job_id)
    return JobEnded(job_id, job.status)


@contextmanager
def reopening(
    sessions: sessionmaker[Session], job_id: str, stage: str | None, *, why: str
) -> Iterator[bool]:
    """Put a job back to ``queued`` (an event says ``why``) while the block sends the message
    that runs it again; yields whether the job exists.

    The job row stays locked until the block is over and is committed only if the block
    succeeds: a worker that picks the message up at once waits for ``queued`` to be written,
    never the reverse, and a failed send leaves the job as it was.

    A canceled job is never reopened (it yields False, as for a job that is gone): a cancel is
    the last word on a job, whatever the sweep or a dead letter's replay found before it.
    """
    with sessions.begin() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is not None and job.status == "canceled":
            job = None
        if job is not None:
            job.status, job.error, job.finished_at = "queued", None, None
            session.add(JobEvent(job_id=job_id, stage=stage, level="warning", message=why))
        yield job is not None


def set_status(
    sessions: sessionmaker[Session],
    job_id: str,
    status: str,
    error: str | None = None,
    *,
    set_error: bool = False,
) -> dict:
    """The Go service's manual override (admins only): set ``status`` (and ``error`` when
    ``set_error``); returns the job.

    :raises BadStatus: ``status`` is not a job status.
    :raises JobNotFound: no such job.
    """
    if status not in JOB_STATUSES:
        raise BadStatus()
    with sessions.begin() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise JobNotFound(job_id)
        job.status = status
        if set_error:
            job.error = error
        session.add(
            JobEvent(job_id=job_id, level="warning", message=f"status set to {status} by an admin")
        )
    with sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None  # set just above
        return job_dict(job)
