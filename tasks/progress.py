"""A job's story in Postgres: status, stage, progress and an event per step.

Every write is its own short transaction, so a crash loses at most the step in progress and
the web process sees progress as it happens.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from app.metrics import metrics
from app.models import Job, JobEvent, utcnow


def stage_started(sessions: sessionmaker[Session], job_id: str, stage: str, progress: int) -> str:
    """Mark the stage running; returns the job's upload id."""
    with sessions.begin() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None:
            raise LookupError(f"job {job_id} does not exist")
        job.status = "running"
        job.stage = stage
        job.progress = max(job.progress, progress)
        job.attempts += 1
        job.started_at = job.started_at or utcnow()
        session.add(JobEvent(job_id=job_id, stage=stage, level="info", message=f"{stage} started"))
        return job.upload_id


def stage_done(
    sessions: sessionmaker[Session], job_id: str, stage: str, progress: int, message: str
) -> None:
    with sessions.begin() as session:
        job = session.get(Job, job_id, with_for_update=True)
        job.progress = max(job.progress, progress)
        session.add(JobEvent(job_id=job_id, stage=stage, level="info", message=message))


def job_done(sessions: sessionmaker[Session], job_id: str) -> None:
    with sessions.begin() as session:
        job = session.get(Job, job_id, with_for_update=True)
        job.status, job.progress, job.stage, job.error = "done", 100, None, None
        job.finished_at = utcnow()
        session.add(JobEvent(job_id=job_id, stage="finalize", level="info", message="done"))
    metrics().jobs_finished.labels("done").inc()


def job_failed(sessions: sessionmaker[Session], job_id: str, stage: str, reason: str) -> None:
    with sessions.begin() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None:
            return
        job.status, job.error, job.finished_at = "failed", reason, utcnow()
        session.add(JobEvent(job_id=job_id, stage=stage, level="error", message=reason))
    metrics().jobs_finished.labels("failed").inc()


def stage_retrying(sessions: sessionmaker[Session], job_id: str, stage: str, reason: str) -> None:
    with sessions.begin() as session:
        session.add(
            JobEvent(job_id=job_id, stage=stage, level="warning", message=f"will retry: {reason}")
        )
