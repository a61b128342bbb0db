"""The job queue: the broker built from :class:`app.config.Config`, and "start this job".

The web process and the CLI only *send* pipeline messages; they name the pipeline's actor
instead of importing it, so they never load the worker's code (nor the audio stack behind it).
:mod:`tasks.pipeline` declares its actor with these same names, on a broker made here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage, default_middleware

from broker import NatsBroker

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


def make_broker(
    nats_url: str,
    namespace: str,
    *,
    replicas: int = 1,
    middleware: Iterable[dramatiq.Middleware] = (),
    queue: str = PIPELINE_QUEUE,
) -> NatsBroker:
    """The service's broker at ``nats_url`` (no I/O until first use), its streams and
    consumers named after ``namespace`` (``NATS_NAMESPACE``), with ``queue`` declared — the
    pipeline's, so that its figures are reported even where no actor is loaded; a worker
    consumes the queues its broker declares, so the webhooks worker declares only its own.

    ``replicas`` (``NATS_REPLICAS``) is how many servers of a JetStream cluster keep a copy of
    the work stream and of the dead letters: with 3, losing any one server — the streams'
    leader too — loses no message, and work goes on once the others have elected a new leader
    (seconds). It applies when the streams are created; give every process the same value."""
    broker = NatsBroker(
        nats_url,
        namespace=namespace,
        replicas=replicas,
        middleware=[m() for m in default_middleware] + [CurrentMessage(), *middleware],
    )
    broker.declare_queue(queue)
    return broker


def start_job(broker: dramatiq.Broker, job_id: str) -> None:
    """Queue a job's first stage; returns once JetStream has stored the message.

    :raises dramatiq.errors.BrokerConnectionError: NATS did not answer.
    """
    broker.enqueue(
        dramatiq.Message(
            queue_name=PIPELINE_QUEUE,
            actor_name=PIPELINE_ACTOR,
            args=(job_id, FIRST_STAGE),
            kwargs={},
            options={},
        )
    )


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
