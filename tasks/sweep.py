"""The safety net: jobs left ``queued`` or ``running`` with no message left to move them.

The pipeline hands each stage on durably (see :mod:`tasks.pipeline`), yet a job can still be
stranded: its message dead-lettered by the broker after workers kept dying on it, or while the
database was away so that the failure could not be written; a message lost with a JetStream
node that had no replica. Every worker process runs :class:`Sweeper` every
``SWEEP_INTERVAL_S``; one sweep at a time across all of them (a Postgres advisory lock) looks
for jobs with no event for ``STUCK_JOB_AFTER_S`` — only while the pipeline's queues hold no
message at all, waiting or in progress, so a backlog or a long stage is never mistaken for a
stranded job. Such a job's stage is sent again once; a job stranded a second time is failed
with a reason, its dead letter (if any) left for an operator. The same sweep removes stored
originals that no upload row refers to (:mod:`app.storage.orphans`) once ``ORPHAN_AFTER_S`` old,
and sends again the webhook deliveries whose message was lost (:func:`app.webhooks.outbox.overdue`).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from typing import Any

import dramatiq
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app import jobs
from app.config import Config
from app.queue import FIRST_STAGE, PIPELINE_QUEUE, stage_message
from app.storage import Storage, StorageUnavailable
from app.storage.orphans import remove_orphans
from app.webhooks import outbox
from broker import NatsBroker
from tasks.context import WorkerContext

logger = logging.getLogger(__name__)

#: Any number: the advisory lock that lets one process sweep at a time.
SWEEP_LOCK = 0x5EED_C4A1
STRANDED = (
    "processing stopped and could not be resumed (a worker kept failing on this file, or a "
    "server was unreachable for too long); an operator can retry the job"
)


def pipeline_idle(broker: NatsBroker) -> bool:
    """True when the pipeline's queue and delay queue hold no message, waiting or held."""
    stats = broker.queue_stats()
    return not any(
        waiting or held
        for name, (waiting, held) in stats.items()
        if name.split(".")[0] == PIPELINE_QUEUE
    )


def sweep(
    sessions: sessionmaker[Session],
    broker: NatsBroker,
    stuck_after_s: float,
    *,
    storage: Storage | None = None,
    orphan_after_s: float = 3600,
) -> int:
    """One sweep; returns how many jobs it sent again or failed. With ``storage``, it also
    removes stored originals with no upload row older than ``orphan_after_s``."""
    with sessions.begin() as session:
        if not session.scalar(select(func.pg_try_advisory_xact_lock(SWEEP_LOCK))):
            return 0  # another process is sweeping
        if storage is not None:
            try:
                for key in remove_orphans(sessions, storage, orphan_after_s):
                    logger.warning("removed %s: a stored original with no upload", key)
            except StorageUnavailable as exc:  # the rest of the sweep needs no storage
                logger.warning("stored originals not swept this time: %s", exc)
        lost = outbox.overdue(sessions)
        if lost:
            logger.warning(
                "%d webhook deliveries lost their message: sending them again", len(lost)
            )
            outbox.send(broker, lost)
        if not pipeline_idle(broker):
            return 0
        stranded = jobs.quiet_jobs(sessions, stuck_after_s)
        for job in stranded:
            stage = job.stage or FIRST_STAGE
            if job.resent:
                logger.error("job %s stranded again at %s: failing it", job.id, stage)
                outbox.send(broker, jobs.job_failed(sessions, job.id, stage, STRANDED, storage))
                continue
            logger.warning("job %s stranded at %s: sending the stage again", job.id, stage)
            with jobs.reopening(sessions, job.id, stage, why=jobs.RESENT_BY_SWEEP) as exists:
                if exists:
                    broker.enqueue(
                        stage_message(job.id, stage, tenant=job.tenant, priority=job.priority)
                    )
        return len(stranded)


class Sweeper(dramatiq.Middleware):
    """Runs :func:`sweep` every ``SWEEP_INTERVAL_S`` (± 20 %) in each worker process."""

    def __init__(self, config: Config, context: Callable[[], WorkerContext]) -> None:
        self.config = config
        self._context = context  # made once the worker process runs
        self._stop = threading.Event()

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        if self.config.sweep_interval_s > 0:
            threading.Thread(
                target=self._loop, args=(broker,), name="job-sweeper", daemon=True
            ).start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.set()

    def _loop(self, broker: NatsBroker) -> None:  # the workers' broker (app.queue)
        config = self.config
        while not self._stop.wait(config.sweep_interval_s * random.uniform(0.8, 1.2)):
            try:
                ctx = self._context()
                sweep(
                    ctx.sessions,
                    broker,
                    config.stuck_job_after_s,
                    storage=ctx.storage,
                    orphan_after_s=config.orphan_after_s,
                )
            except Exception:  # a server away: the next round tries again
                logger.warning("the sweep failed", exc_info=True)
