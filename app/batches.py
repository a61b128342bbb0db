"""Batches: several jobs under one id, an overall status, and one webhook when all have ended.

A batch is made either of files uploaded together (their new jobs) or of uploads that already
exist (the latest job of each, not run again). Its end is told by
:func:`app.webhooks.outbox.end_batch_if_done`, called when each of its jobs ends and once more
here, in the transaction that makes the batch: jobs that had all ended before (or end while it
is being made) still give the batch its one webhook.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from app.albums import album_dict
from app.models import ENDED_STATUSES, JOB_STATUSES, Batch, BatchJob, Job, Upload
from app.storage import Storage
from app.uploads import UploadNotFound
from app.webhooks import outbox

#: The most files or uploads one batch may hold.
MAX_JOBS = 100


class BatchNotFound(LookupError):
    def __init__(self, batch_id: str) -> None:
        super().__init__(f"no batch {batch_id}")


@dataclass(frozen=True)
class Member:
    """A job of a batch as its creation answers it."""

    upload_id: str
    job_id: str
    status: str


@dataclass(frozen=True)
class Created:
    """A new batch, its jobs in order, and the webhook deliveries it made (to send after the
    commit with :func:`app.webhooks.outbox.send`: its jobs had all ended already)."""

    batch_id: str
    status: str
    jobs: list[Member]
    deliveries: list[str]


def overall_status(statuses: list[str], ended: bool = False) -> str:
    """``queued`` while every job is; once all have ended, ``failed`` if any failed,
    ``canceled`` if all were canceled, else ``done`` (:func:`outbox.ended_status`: the
    webhook's rule); ``running`` otherwise. A batch left with no jobs (their uploads removed)
    is ``done`` once it has ended, else ``queued``."""
    if not statuses:
        return "done" if ended else "queued"
    if all(s == "queued" for s in statuses):
        return "queued"
    if all(s in ENDED_STATUSES for s in statuses):
        return outbox.ended_status(statuses)
    return "running"


def create(
    sessions: sessionmaker[Session],
    tenant: str,
    jobs: list[tuple[str, str]],
    callback_url: str | None,
    storage: Storage | None = None,
) -> Created:
    """A batch of ``tenant`` holding ``jobs`` (``(upload_id, job_id)``, in this order), told
    at ``callback_url``. ``storage``: where its tracks' loudness is read for its album gain,
    should it end at once (:mod:`app.albums`).

    :raises UploadNotFound: a job is gone (its upload was removed meanwhile).
    """
    with sessions.begin() as session:
        return _create(session, tenant, jobs, callback_url, storage)


def create_from_uploads(
    sessions: sessionmaker[Session],
    tenant: str,
    upload_ids: list[str],
    callback_url: str | None,
    scope: str | None,
    storage: Storage | None = None,
) -> Created:
    """A batch of ``tenant`` holding the latest job of each upload (of ``scope``, when given;
    ids distinct, in this order); no job is run again. Uploads that have all ended make an
    album at once: its gain is read from ``storage`` (:mod:`app.albums`).

    :raises UploadNotFound: no such upload (of ``scope``): another tenant's is not revealed.
    """
    with sessions.begin() as session:
        query = select(Upload.id).where(Upload.id.in_(upload_ids))
        if scope is not None:
            query = query.where(Upload.tenant == scope)
        found = set(session.scalars(query))
        latest: dict[str, str] = {}
        jobs = session.execute(
            select(Job.upload_id, Job.id)
            .where(Job.upload_id.in_(found))
            .order_by(Job.upload_id, Job.created_at.desc(), Job.id)
        )
        for upload_id, job_id in jobs:
            latest.setdefault(upload_id, job_id)
        for upload_id in upload_ids:
            if upload_id not in latest:
                raise UploadNotFound(upload_id)
        jobs_in_order = [(u, latest[u]) for u in upload_ids]
        return _create(session, tenant, jobs_in_order, callback_url, storage)


def _create(
    session: Session,
    tenant: str,
    jobs: list[tuple[str, str]],
    callback_url: str | None,
    storage: Storage | None,
) -> Created:
    """Write the batch, then see whether it has ended already.

    The jobs are locked first (in id order, as every locker of several jobs must): a job ending
    at the same time either commits before the lock is granted — and is seen ended here — or
    waits for this commit, then finds the batch among its own (``outbox.on_job_end``). Were
    both to go on at once, each could miss the other and the batch would never end. (The
    foreign keys of ``batch_jobs`` take a weaker lock on each job that ``app.jobs.job_done``'s
    ``FOR UPDATE`` waits for too; this one does not depend on how the job is locked there.)
    """
    job_ids = [job_id for _, job_id in jobs]
    locked = session.scalars(
        select(Job).where(Job.id.in_(job_ids)).order_by(Job.id).with_for_update()
    ).all()
    by_id = {job.id: job for job in locked}
    for upload_id, job_id in jobs:
        if job_id not in by_id:  # removed with its upload since it was looked up
            raise UploadNotFound(upload_id)
    batch = Batch(tenant=tenant, callback_url=callback_url)
    session.add(batch)
    session.flush()
    session.add_all(
        BatchJob(batch_id=batch.id, job_id=job_id, position=position)
        for position, job_id in enumerate(job_ids)
    )
    session.flush()
    deliveries = outbox.end_batch_if_done(session, batch.id, storage)
    members = [Member(by_id[j].upload_id, j, by_id[j].status) for j in job_ids]
    status = overall_status([m.status for m in members])
    return Created(batch.id, status, members, deliveries)


def discard(sessions: sessionmaker[Session], batch_id: str) -> None:
    """Remove a batch (not its jobs) when its creation is undone."""
    with sessions.begin() as session:
        session.execute(delete(Batch).where(Batch.id == batch_id))


def get_batch(sessions: sessionmaker[Session], batch_id: str, tenant: str | None = None) -> dict:
    """A batch, its jobs in the order given, their counts by status and the overall status
    (deliveries not included: :func:`app.webhooks.outbox.deliveries_of`).

    :raises BatchNotFound: no such batch (of ``tenant``, when given: another tenant's batch is
        not found, so its existence is not revealed).
    """
    with sessions() as session:
        batch = session.get(Batch, batch_id)
        if batch is None or (tenant is not None and batch.tenant != tenant):
            raise BatchNotFound(batch_id)
        rows = session.execute(
            select(Job, Upload.filename)
            .join(BatchJob, BatchJob.job_id == Job.id)
            .join(Upload, Upload.id == Job.upload_id)
            .where(BatchJob.batch_id == batch_id)
            .order_by(BatchJob.position)
        ).all()
        counts = dict.fromkeys(JOB_STATUSES, 0)
        for job, _ in rows:
            counts[job.status] += 1
        return {
            "batch_id": batch.id,
            "created_at": batch.created_at.isoformat(),
            "ended_at": batch.ended_at.isoformat() if batch.ended_at else None,
            "status": overall_status([job.status for job, _ in rows], batch.ended_at is not None),
            "counts": counts,
            "callback_url": batch.callback_url,
            **album_dict(batch),
            "jobs": [_job_dict(job, filename) for job, filename in rows],
        }


def _job_dict(job: Job, filename: str) -> dict:
    return {
        "job_id": job.id,
        "upload_id": job.upload_id,
        "filename": filename,
        "status": job.status,
        "stage": job.stage,
        "progress": job.progress,
        "error": job.error,
    }
