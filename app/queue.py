"""The job queue: the broker built from :class:`app.config.Config`, "start this job", and how
the queue is doing (what the operations page shows).

The web process and the CLI only *send* pipeline messages; they name the pipeline's actor
instead of importing it, so they never load the worker's code (nor the audio stack behind it).
:mod:`tasks.pipeline` declares its actor with these same names, on a broker made here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage, default_middleware
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.models import ENDED_STATUSES, Job, JobEvent, utcnow
from broker import NatsBroker, NatsSignIn
from broker.topology import PRIORITIES as LANE_PRIORITIES

#: The queue and the actor that run the stages of a job (:func:`tasks.pipeline.run_stage`).
PIPELINE_QUEUE = "pipeline"
PIPELINE_ACTOR = "run_stage"
#: The stage every job starts with: the first of :data:`tasks.pipeline.STAGES`, which takes its
#: name from here (the pipeline's message is ``run_stage(job_id, stage_name)``).
FIRST_STAGE = "transcode"
#: The queue and the actor that POST webhooks (:mod:`tasks.webhooks`), in worker processes of
#: their own so that a slow receiver never holds a pipeline worker.
WEBHOOK_QUEUE = "webhooks"
WEBHOOK_ACTOR = "deliver_webhook"
#: A job's priority among its tenant's work, most urgent first (``jobs.priority``): the
#: broker's lane priorities.
PRIORITIES = LANE_PRIORITIES


def make_broker(
    nats_url: str,
    namespace: str,
    *,
    replicas: int = 1,
    middleware: Iterable[dramatiq.Middleware] = (),
    queue: str = PIPELINE_QUEUE,
    tenant_max_running: int | None = None,
    prefetch: int | None = None,
    sign_in: NatsSignIn | None = None,
) -> NatsBroker:
    """The service's broker at ``nats_url`` (no I/O until first use), its streams and
    consumers named after ``namespace`` (``NATS_NAMESPACE``), with ``queue`` declared — the
    pipeline's, so that its figures are reported even where no actor is loaded; a worker
    consumes the queues its broker declares, so the webhooks worker declares only its own.

    ``replicas`` (``NATS_REPLICAS``) is how many servers of a JetStream cluster keep a copy of
    the work stream and of the dead letters: with 3, losing any one server — the streams'
    leader too — loses no message, and work goes on once the others have elected a new leader
    (seconds). It applies when the streams are created; give every process the same value.

    Stage messages travel in their tenant's lane (:func:`stage_message`): workers share
    themselves fairly between tenants, at most ``tenant_max_running`` (``TENANT_MAX_RUNNING``)
    stages of one tenant at once when set. A worker passes its threads as ``prefetch``: each
    thread then takes the fairest stage when it frees up, rather than one chosen a stage
    earlier.

    ``sign_in`` (``NATS_CREDS``, ``NATS_NKEY_SEED``, ``NATS_TLS_*``:
    :meth:`app.nats_sign_in.SignInSettings.for_broker`) signs in beyond what the URL holds;
    with any of it the broker speaks through nats-py rather than its wire client."""
    broker = NatsBroker(
        nats_url,
        namespace=namespace,
        replicas=replicas,
        middleware=[m() for m in default_middleware] + [CurrentMessage(), *middleware],
        lane_max_running=tenant_max_running,
        prefetch=prefetch,
        sign_in=sign_in,
    )
    broker.declare_queue(queue)
    return broker


def stage_message(job_id: str, stage: str, *, tenant: str, priority: str) -> dramatiq.Message:
    """The message that runs ``stage`` of a job, in its tenant's lane at its priority: the
    broker shares the workers between tenants in turn and runs a tenant's most urgent job
    first (:mod:`broker.lanes`)."""
    return dramatiq.Message(
        queue_name=PIPELINE_QUEUE,
        actor_name=PIPELINE_ACTOR,
        args=(job_id, stage),
        kwargs={},
        options={"lane": tenant, "lane_priority": priority},
    )


def start_job(broker: dramatiq.Broker, job_id: str, *, tenant: str, priority: str) -> None:
    """Queue a job's first stage; returns once JetStream has stored the message.

    :raises dramatiq.errors.BrokerConnectionError: NATS did not answer.
    """
    broker.enqueue(stage_message(job_id, FIRST_STAGE, tenant=tenant, priority=priority))


def send_webhook(broker: dramatiq.Broker, delivery_id: str, delay_s: float | None = None) -> None:
    """Ask the webhooks worker to attempt a delivery (after ``delay_s`` seconds).

    :raises dramatiq.errors.BrokerConnectionError: NATS did not answer.
    """
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=WEBHOOK_QUEUE,
        actor_name=WEBHOOK_ACTOR,
        args=(delivery_id,),
        kwargs={},
        options={},
    )
    broker.enqueue(message, delay=None if delay_s is None else int(delay_s * 1000))


# How the queue is doing: the operations page's figures. Each function reads one source; a
# source that does not answer raises, so the page can say which one is away and still show the
# others: the queues as JetStream counts them, the dead letters per queue, jobs finished per
# minute (Postgres) and signs of live workers (the pipeline consumer's own figures in
# JetStream, and recent job events).

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


#: The label of the tenants past the top ones in ``phantomchain_waiting_jobs`` (``@``: a name no
#: tenant can take, so a tenant called "other" is never added up with the rest).
OTHER_TENANTS = "@other"


def waiting_jobs_by_tenant(sessions: sessionmaker[Session], top: int) -> dict[str, int]:
    """Jobs ``queued`` (accepted, no stage started yet) per tenant: the ``top`` tenants with
    the most, ties by name, and all the others added up under :data:`OTHER_TENANTS` (always
    present, 0 when none) — at most ``top + 1`` entries, whatever the number of tenants."""
    per_tenant = (
        select(Job.tenant, func.count().label("n"))
        .where(Job.status == "queued")
        .group_by(Job.tenant)
        .subquery()
    )
    # One statement, so the total and the leaders are counted on the same snapshot (the window
    # sum is taken over every tenant before the limit).
    leaders = (
        select(per_tenant.c.tenant, per_tenant.c.n, func.sum(per_tenant.c.n).over())
        .order_by(per_tenant.c.n.desc(), per_tenant.c.tenant)
        .limit(top)
    )
    with sessions() as session:
        rows = session.execute(leaders).all()
    found: dict[str, int] = {str(row[0]): int(row[1]) for row in rows}
    total = int(rows[0][2]) if rows else 0
    found[OTHER_TENANTS] = total - sum(found.values())
    return found


def throughput(
    sessions: sessionmaker[Session],
    *,
    minutes: int = THROUGHPUT_MINUTES,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Jobs that ended ``done``, ``failed`` and ``canceled`` in each minute of the last
    ``minutes``, oldest minute first (the current, unfinished minute last), by
    ``jobs.finished_at``."""
    now = (now or utcnow()).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=minutes - 1)
    minute = func.date_trunc("minute", Job.finished_at)
    query = (
        select(minute, Job.status, func.count())
        .where(Job.finished_at >= start, Job.status.in_(ENDED_STATUSES))
        .group_by(minute, Job.status)
    )
    series = {
        start + timedelta(minutes=i): dict.fromkeys(ENDED_STATUSES, 0) for i in range(minutes)
    }
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
        "canceled": sum(c["canceled"] for c in series.values()),
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
