"""The webhooks worker (``dramatiq tasks.webhooks``, the Procfile's ``webhooks`` line): POSTs
each job's and batch's end to the URL that asked (:mod:`app.webhooks.outbox` keeps the messages).

It runs in processes of its own, with many threads: a delivery mostly waits on someone else's
server, up to ``WEBHOOK_TIMEOUT_S``, and a receiver that is slow or dead must never hold a
worker the pipeline needs. The pipeline only writes the delivery row and sends this actor a
message naming it; an attempt that should be tried again is sent back to this queue with a
delay (JetStream keeps it meanwhile), and a message lost on the way is sent again by the
pipeline workers' sweep.
"""

from __future__ import annotations

import logging

import dramatiq

from app.logs import log_context
from app.metrics import metrics
from app.queue import WEBHOOK_ACTOR, WEBHOOK_QUEUE, make_broker, send_webhook
from app.webhooks import outbox
from app.webhooks.delivery import attempt
from tasks.context import get_context, refuse_at_start, worker_config
from tasks.observability import Observability
from tasks.outages import riding_out

logger = logging.getLogger(__name__)

config = worker_config()
#: Seconds a claimed delivery is left to this attempt before another message may take it.
LEASE_S = 2 * config.webhook_timeout_s + 30
broker = make_broker(
    config.nats_url,
    config.nats_namespace,
    replicas=config.nats_replicas,
    middleware=[Observability(config, webhooks=True)],  # metrics on WEBHOOK_METRICS_PORT
    queue=WEBHOOK_QUEUE,
    sign_in=config.nats_sign_in.for_broker(),
)
refuse_at_start(broker, config)
dramatiq.set_broker(broker)
if not config.webhook_secret:
    logger.error("WEBHOOK_SECRET is not set: deliveries are tried again until it is")


@dramatiq.actor(
    broker=broker,
    actor_name=WEBHOOK_ACTOR,
    queue_name=WEBHOOK_QUEUE,
    max_retries=3,
    min_backoff=1_000,
    max_backoff=30_000,
    time_limit=LEASE_S * 1000,
)
def deliver_webhook(delivery_id: str) -> None:
    """Attempt a delivery if it is pending and due; schedule the next attempt if one is owed."""
    ctx = get_context()
    with log_context(webhook_id=delivery_id):
        claimed = riding_out(lambda: outbox.claim(ctx.sessions, delivery_id, LEASE_S))
        if claimed is None:
            logger.info("webhook %s is not due or has ended: nothing to do", delivery_id)
            return
        outcome = attempt(
            claimed,
            secret=config.webhook_secret,
            timeout_s=config.webhook_timeout_s,
            allow_private=config.webhook_allow_private,
        )
        delay = riding_out(lambda: outbox.record(ctx.sessions, claimed, outcome))
        settled = "delivered" if outcome.delivered else "retrying" if delay else "failed"
        metrics().webhook_attempts.labels(settled).inc()
        logger.info(
            "webhook %s attempt %d: %s",
            delivery_id,
            claimed.attempt,
            outcome.status_code or outcome.error,
        )
        if delay is not None:
            try:
                send_webhook(broker, delivery_id, delay)
            except Exception:  # NATS away: the sweep sends it once overdue
                logger.warning("could not schedule webhook %s again", delivery_id, exc_info=True)
