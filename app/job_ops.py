"""Job operations shared by the HTTP routes and the ``phantomchain jobs`` CLI.

They take a session factory rather than reaching for Flask's, so the CLI (no application) and
the web process run the very same code: a retry from the terminal is a retry from the API.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.models import Job, JobEvent


class JobNotFound(LookupError):
    """No job with that id."""


class JobNotFailed(ValueError):
    """Only a failed job may be retried; this one is queued, running or done."""

    def __init__(self, job_id: str, status: str) -> None:
        super().__init__(f"job {job_id} is {status}, not failed")
        self.status = status


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
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
    if events is not None:
        body["events"] = [event_dict(e) for e in events]
    return body


def event_dict(event: JobEvent) -> dict:
    return {"id": event.id, "at": event.at.isoformat(), "stage": event.stage,
            "level": event.level, "message": event.message}  # fmt: skip


def list_jobs(
    sessions: sessionmaker[Session], *, status: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[dict], int]:
    """A page of jobs, newest first, and how many match in all."""
    query = select(Job)
    if status:
        query = query.where(Job.status == status)
    with sessions() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
        ).all()
        return [job_dict(j) for j in rows], total


def get_job(sessions: sessionmaker[Session], job_id: str) -> dict:
    """One job with its events, oldest event first.

    :raises JobNotFound: no such job.
    """
    with sessions() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id}")
        events = session.scalars(
            select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
        ).all()
        return job_dict(job, list(events))


def retry_job(sessions: sessionmaker[Session], job_id: str, *, by: str = "an admin") -> None:
    """Run a failed job again from its first stage (the job is reset, an event says who).

    :raises JobNotFound: no such job.
    :raises JobNotFailed: the job is not failed (retrying a live job would run it twice).
    """
    from tasks import pipeline  # the broker and actors: only when a job is really sent

    with sessions.begin() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None:
            raise JobNotFound(f"no job {job_id}")
        if job.status != "failed":
            raise JobNotFailed(job_id, job.status)
        job.status, job.error, job.progress, job.stage, job.finished_at = (
            "queued", None, 0, None, None,
        )  # fmt: skip
        session.add(JobEvent(job_id=job_id, stage=None, level="info", message=f"retried by {by}"))
    pipeline.start(job_id)
