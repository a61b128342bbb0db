"""What the operations page shows: the queues as JetStream counts them, the dead letters per
queue, jobs finished per minute (Postgres) and signs of live workers (the pipeline consumer's
own figures in JetStream, and recent job events).

Each function reads one source; a source that does not answer raises, so the page can say
which one is away and still show the others.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.models import Job, JobEvent, utcnow
from app.queue import PIPELINE_QUEUE
from broker import NatsBroker

#: Minutes of history in the throughput chart.
THROUGHPUT_MINUTES = 60
#: "Recently", for worker activity seen in job events.
RECENT_MINUTES = 5
#: Newest job events read for that (a bound on the work of one page view).
RECENT_SCAN = 5000


def queues(broker: NatsBroker) -> list[dict[str, Any]]:
    """Per queue: messages waiting, in progress (delivered, not yet settled) and dead letters;
    queues that only have dead letters are listed too."""
    stats = broker.queue_stats()
    dead = broker.dead_letters.count()
    names = sorted(set(stats) | set(dead))
    return [
        {
            "queue": name,
            "waiting": stats.get(name, (0, 0))[0],
            "in_progress": stats.get(name, (0, 0))[1],
            "dead_letters": dead.get(name, 0),
        }
        for name in names
    ]


def throughput(
    sessions: sessionmaker[Session],
    *,
    minutes: int = THROUGHPUT_MINUTES,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Jobs that ended ``done`` and ``failed`` in each minute of the last ``minutes``, oldest
    minute first (the current, unfinished minute last), by ``jobs.finished_at``."""
    now = (now or utcnow()).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=minutes - 1)
    minute = func.date_trunc("minute", Job.finished_at)
    query = (
        select(minute, Job.status, func.count())
        .where(Job.finished_at >= start, Job.status.in_(("done", "failed")))
        .group_by(minute, Job.status)
    )
    series = {start + timedelta(minutes=i): {"done": 0, "failed": 0} for i in range(minutes)}
    with sessions() as session:
        for at, status, count in session.execute(query).tuples().all():
            bucket = series.get(at.astimezone(start.tzinfo).replace(second=0, microsecond=0))
            if bucket is not None:
                bucket[status] += int(count)
    return {
        "start": start.isoformat(),
        "minutes": [{"at": at.isoformat(), **counts} for at, counts in series.items()],
        "done": sum(c["done"] for c in series.values()),
        "failed": sum(c["failed"] for c in series.values()),
    }


def pipeline_consumer(broker: NatsBroker, queue: str = PIPELINE_QUEUE) -> dict[str, Any]:
    """The pipeline queue's durable consumer, as JetStream sees it: pull requests waiting
    (workers idle and asking for work), messages held by workers (delivered, not yet
    settled), and when a message was last delivered to a worker and last acknowledged."""

    async def read():
        await broker.ensure_queue_async(queue)
        js = await broker.connection.jetstream()
        return await js.consumer_info(broker.topology.stream, broker.topology.durable(queue))

    info = broker.connection.run(read, timeout=broker.connect_timeout + 5)

    def last(sequence) -> str | None:
        at = getattr(sequence, "last_active", None)
        return at.isoformat() if at else None

    return {
        "queue": queue,
        "pull_requests_waiting": int(info.num_waiting or 0),
        "held_by_workers": int(info.num_ack_pending or 0),
        "last_delivered_at": last(info.delivered),
        "last_acknowledged_at": last(info.ack_floor),
    }


def recent_activity(
    sessions: sessionmaker[Session], *, minutes: int = RECENT_MINUTES, scan: int = RECENT_SCAN
) -> dict[str, Any]:
    """Stages workers started in the last ``minutes`` (from job events), the jobs they were
    for, and the time of the latest job event.

    Only the newest ``scan`` events are read (by the primary key's index, never the whole
    table); ``capped`` says when all of them were recent, so the counts are lower bounds."""
    since = utcnow() - timedelta(minutes=minutes)
    newest = (
        select(JobEvent.job_id, JobEvent.at, JobEvent.message)
        .order_by(JobEvent.id.desc())
        .limit(scan)
        .subquery()
    )
    recent = newest.c.at >= since
    started = recent & newest.c.message.like("% started")
    query = select(
        func.count().filter(started),
        func.count(func.distinct(newest.c.job_id)).filter(started),
        func.count().filter(recent),
        func.max(newest.c.at),
    )
    with sessions() as session:
        stages, jobs, seen, latest = session.execute(query).tuples().one()
    return {
        "minutes": minutes,
        "stages_started": int(stages),
        "jobs": int(jobs),
        "capped": int(seen) >= scan,
        "last_event_at": latest.isoformat() if latest else None,
    }
