"""Worker-side logs and metrics, as one Dramatiq middleware.

In each worker process started by the ``dramatiq`` CLI it sets up JSON (or text) logging and
the metrics directory once the process boots; it keeps the messages in flight (sampled once a
second), retries and dead letters by actor (the pipeline itself puts job, upload and stage into
the log context, and times the stages). The worker master also forks
:func:`serve_worker_metrics`.

Per message that is one dict write and one pop, no lock: ``bench/broker.py --only
nats-metrics`` measures the cost.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dramatiq

from app import metrics as app_metrics
from app.config import Config
from app.logs import configure_logging

#: Seconds between two readings of the messages in flight.
SAMPLE_S = 1.0


class Observability(dramatiq.Middleware):
    """Logs and Prometheus metrics for worker processes."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._active: dict[str, str] = {}  # message id -> actor, while it runs

    @property
    def forks(self) -> list:
        return [serve_worker_metrics] if self.config.worker_metrics_port else []

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        configure_logging(self.config.log_level, self.config.log_format)
        app_metrics.use_multiprocess_dir(self.config.metrics_dir, "worker", os.getppid())
        app_metrics.metrics()  # import and create now, not while the first message waits

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        app_metrics.mark_process_dead(os.getpid())

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        actors = set(broker.get_declared_actors())
        threading.Thread(
            target=self._sample, args=(actors,), name="in-flight-sampler", daemon=True
        ).start()

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        self._active[message.message_id] = message.actor_name

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.Message,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._active.pop(message.message_id, None)

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        self._active.pop(message.message_id, None)

    def _sample(self, actors: set[str]) -> None:
        """Copy the in-flight count to its gauge every ``SAMPLE_S``: a lock-free dict write per
        message instead of two locked gauge updates (worker threads convoy on those locks)."""
        seen = set(actors)  # every actor shows, at 0 when idle
        gauge = app_metrics.metrics().in_flight
        while True:
            counts = Counter(list(self._active.values()))
            seen.update(counts)
            for actor in seen:
                gauge.labels(actor).set(counts.get(actor, 0))
            time.sleep(SAMPLE_S)

    def after_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message, delay: Any) -> None:
        # The Retries middleware sends a failed message again with a backoff delay; when that
        # delay is over it is enqueued once more (undelayed): count the first only.
        if delay and "retries" in message.options:
            app_metrics.metrics().retries.labels(message.actor_name).inc()

    def after_nack(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        app_metrics.metrics().dead_letters.labels(message.actor_name).inc()


def serve_worker_metrics() -> None:
    """Dramatiq fork process: serve the worker processes' metrics on ``WORKER_METRICS_PORT``.

    Runs in a process of its own next to the worker processes of one dramatiq master, reading
    the directory they count into. A taken port is logged, not fatal: the workers go on. It
    imports little (no database, no audio), so the metrics answer as soon as the workers run;
    the settings were checked by the worker processes already.
    """
    config = Config.from_env()
    configure_logging(config.log_level, config.log_format)
    logger = logging.getLogger(__name__)
    app_metrics.use_multiprocess_dir(config.metrics_dir, "worker", os.getppid())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404)
                return
            body, content_type = app_metrics.render()
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug(format, *args)

    port = config.worker_metrics_port
    try:
        server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    except OSError as exc:
        logger.error("worker metrics not served: port %d: %s (set WORKER_METRICS_PORT)", port, exc)
        return
    logger.info("worker metrics on http://0.0.0.0:%d/metrics", port)
    server.serve_forever()
