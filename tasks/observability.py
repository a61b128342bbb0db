"""Worker-side logs and metrics, as one Dramatiq middleware.

In each worker process started by the ``dramatiq`` CLI it sets up JSON (or text) logging and
the metrics directory once the process boots, and then, per message: the in-flight gauge, the
log context (actor, message id; the pipeline adds job, upload and stage), retries and dead
letters by actor. The worker master also forks :func:`app.metrics.serve_worker_metrics`.

The per-message work is a few dict lookups and memory-mapped increments: it stays out of the
broker's hot loops (``bench/broker.py --metrics`` measures the cost).
"""

from __future__ import annotations

import os
from typing import Any

import dramatiq

from app import metrics as app_metrics
from app.logs import configure_logging, log_context


class Observability(dramatiq.Middleware):
    """Logs and Prometheus metrics for worker processes."""

    def __init__(self) -> None:
        self._contexts: dict[str, Any] = {}

    @property
    def forks(self) -> list:
        if os.environ.get("WORKER_METRICS_PORT", "").strip() == "0":
            return []
        return [app_metrics.serve_worker_metrics]

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        configure_logging(
            os.environ.get("LOG_LEVEL", "").upper() or "INFO",
            os.environ.get("LOG_FORMAT", "").lower() or "json",
        )
        app_metrics.use_multiprocess_dir("worker", os.getppid())

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        app_metrics.mark_process_dead(os.getpid())

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        app_metrics.metrics().in_flight.labels(message.actor_name).inc()
        context = log_context(actor=message.actor_name, message_id=message.message_id)
        context.__enter__()
        self._contexts[message.message_id] = context

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.Message,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        family = app_metrics.metrics()
        family.in_flight.labels(message.actor_name).dec()
        outcome = "ok" if exception is None else "error"
        family.messages.labels(message.actor_name, outcome).inc()
        context = self._contexts.pop(message.message_id, None)
        if context is not None:
            context.__exit__(None, None, None)

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        self.after_process_message(broker, message, exception=None)

    def after_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message, delay: Any) -> None:
        if "retries" in message.options:  # set by the Retries middleware
            app_metrics.metrics().retries.labels(message.actor_name).inc()

    def after_nack(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        app_metrics.metrics().dead_letters.labels(message.actor_name).inc()
