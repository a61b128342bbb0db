"""Worker-side logs and metrics, as one Dramatiq middleware.

In each worker process started by the ``dramatiq`` CLI it sets up JSON (or text) logging and
the metrics directory once the process boots; it keeps the messages in flight (sampled once a
second), retries and dead letters by actor (the pipeline itself puts job, upload and stage into
the log context, and times the stages). The worker master also forks
:func:`serve_worker_metrics`. Worker processes and that fork end when their master dies
(:func:`die_with_master`), even by ``kill -9``.

Per message that is one dict write and one pop, no lock: ``bench/broker.py --only
nats-metrics`` measures the cost.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy

from app import metrics as app_metrics
from app.config import Config
from app.logs import configure_logging
from tasks.parent import (
    die_with_parent,
    is_forked_child,
    parent_gone,
    parent_pid,
    shutdown_timeout_s,
)

#: Seconds between two readings of the messages in flight.
SAMPLE_S = 1.0
#: Seconds an orphaned worker process is given past its shutdown timeout (closing the broker,
#: handing messages back) before it exits regardless.
ORPHAN_GRACE_S = 30.0


class Observability(dramatiq.Middleware):
    """Logs and Prometheus metrics for worker processes."""

    def __init__(self, config: Config, *, webhooks: bool = False) -> None:
        """``webhooks``: in the webhooks worker, whose metrics go to ``WEBHOOK_METRICS_PORT``."""
        self.config = config
        self.webhooks = webhooks
        self._active: dict[str, str] = {}  # message id -> actor, while it runs

    @property
    def forks(self) -> list:
        if self.webhooks:
            return [serve_webhook_metrics] if self.config.webhook_metrics_port else []
        return [serve_worker_metrics] if self.config.worker_metrics_port else []

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        configure_logging(self.config.log_level, self.config.log_format)
        master = parent_pid()
        if is_forked_child():
            die_with_master(master)
        app_metrics.use_multiprocess_dir(self.config.metrics_dir, "worker", master)
        app_metrics.metrics()  # import and create now, not while the first message waits

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        app_metrics.mark_process_dead(os.getpid())

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        actors = set(broker.get_declared_actors())
        threading.Thread(
            target=self._sample, args=(actors,), name="in-flight-sampler", daemon=True
        ).start()

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._active[message.message_id] = message.actor_name

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._active.pop(message.message_id, None)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
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

    def after_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        app_metrics.metrics().dead_letters.labels(message.actor_name).inc()


class MetricsServer(ThreadingHTTPServer):
    """The worker metrics' HTTP server. ``SO_REUSEADDR`` (http.server's default, stated here
    because a restart depends on it): connections of a server that just ended, still in
    ``TIME_WAIT``, do not keep the next master's server from binding the port."""

    allow_reuse_address = True
    daemon_threads = True


def die_with_master(master: int) -> None:
    """Stop this worker process when its ``dramatiq`` master dies; exit now if it has already.

    The master forwards ``SIGTERM`` to its worker processes; killed (``kill -9``, the OOM
    killer) it cannot, and they would go on orphaned, holding connections and messages. So the
    kernel sends ``SIGTERM`` when the master dies (:func:`tasks.parent.die_with_parent`).

    ``SIGTERM``, not ``SIGKILL``: it is the stop every deploy gives. The messages the worker
    fetched but had not started are handed back to the other workers at once, the stage it is
    running gets ``--worker-shutdown-timeout`` to finish (and is handed back past it) — where
    ``SIGKILL`` would throw away a running stage's work and leave every message the process held
    unsettled for the ack wait (30 s). That stop is bounded: by the shutdown timeout, then by
    the broker's connect timeouts while handing back; and lest anything hang it, the process
    ends itself (``os._exit``) :data:`ORPHAN_GRACE_S` past that timeout, its unsettled
    messages then coming back after the ack wait.

    Its logs then go to the stderr it inherited from the master (the supervisor's log), not
    through the pipe the dead master read: nobody reads that pipe any more, and once full it
    would block the next log line for good.

    The kernel signals a child each time its parent *thread* ends: a dying master's main thread
    first (the child passes to another thread of the master, its parent pid unchanged), then
    the last one (the child passes to pid 1). dramatiq takes a second ``SIGTERM`` for "kill
    now"; so a ``SIGTERM`` that finds the master gone while the process is already stopping is
    not passed on — the stop goes on, bounded as above. Any later one is (an operator's).
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, StopWithMaster(master, signal.getsignal(signal.SIGTERM)))
    if not die_with_parent(signal.SIGTERM, master):
        _log_to_inherited_stderr()
        logging.getLogger(__name__).warning(
            "the dramatiq master (pid %d) ended while this worker process booted: exiting", master
        )
        raise SystemExit(1)


class StopWithMaster:
    """A worker process's ``SIGTERM`` handler: dramatiq's, and what the master's death adds
    (:func:`die_with_master`)."""

    def __init__(self, master: int, dramatiq_handler: Any) -> None:
        self.master = master
        self.dramatiq_handler = dramatiq_handler
        self.stopping = False
        self.orphaned = False

    def __call__(self, signum: int, frame: Any) -> None:
        first = not self.stopping
        self.stopping = True
        if not self.orphaned and parent_gone(self.master):
            self.orphaned = True
            _orphaned(self.master)
            if not first:
                return  # already stopping when the master died: let that stop go on
        if callable(self.dramatiq_handler):
            self.dramatiq_handler(signum, frame)
        else:
            raise SystemExit(1)


def _orphaned(master: int) -> None:
    _log_to_inherited_stderr()
    limit = shutdown_timeout_s(sys.argv) + ORPHAN_GRACE_S
    logging.getLogger(__name__).warning(
        "the dramatiq master (pid %d) is gone: stopping this worker process (it ends within"
        " %.0f s)",
        master,
        limit,
    )
    timer = threading.Timer(limit, _exit_now, args=(limit,))
    timer.daemon = True
    timer.start()


def _exit_now(limit: float) -> None:
    logging.getLogger(__name__).error(
        "still stopping %.0f s after the dramatiq master died: exiting now (unsettled messages"
        " come back after the ack wait)",
        limit,
    )
    os._exit(1)


def _log_to_inherited_stderr() -> None:
    """Point the log handlers (and ``sys.stderr``) writing into dramatiq's log pipe at fd 2."""
    try:
        stream = open(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    except OSError:
        return
    piped = (sys.stderr, sys.stdout)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and any(
            handler.stream is pipe for pipe in piped
        ):
            handler.setStream(stream)
    sys.stdout = sys.stderr = stream


def serve_webhook_metrics() -> None:
    """Dramatiq fork process: as :func:`serve_worker_metrics`, for the webhooks worker, on
    ``WEBHOOK_METRICS_PORT``."""
    serve_worker_metrics(webhooks=True)


def serve_worker_metrics(webhooks: bool = False) -> None:
    """Dramatiq fork process: serve the worker processes' metrics on ``WORKER_METRICS_PORT``.

    Runs in a process of its own next to the worker processes of one dramatiq master, reading
    the directory they count into. A taken port is logged, not fatal: the workers go on. It
    imports little (no database, no audio), so the metrics answer as soon as the workers run;
    the settings were checked by the worker processes already.

    It ends with its master: the kernel sends it ``SIGKILL`` when the master dies (see
    :func:`die_with_master`), so the port is free for the master the supervisor starts next.
    ``SIGKILL``, not ``SIGTERM``: it holds nothing but the listening socket and reads files the
    workers write; there is nothing to finish, and nothing can delay the exit.
    """
    master = parent_pid()
    if is_forked_child() and not die_with_parent(signal.SIGKILL, master):
        return  # the master died before this process got here: nothing to serve for
    config = Config.from_env()
    configure_logging(config.log_level, config.log_format)
    logger = logging.getLogger(__name__)
    app_metrics.use_multiprocess_dir(config.metrics_dir, "worker", master)

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

    port = config.webhook_metrics_port if webhooks else config.worker_metrics_port
    setting = "WEBHOOK_METRICS_PORT" if webhooks else "WORKER_METRICS_PORT"
    try:
        server = MetricsServer(("0.0.0.0", port), Handler)
    except OSError as exc:
        logger.error("worker metrics not served: port %d: %s (set %s)", port, exc, setting)
        return
    logger.info("worker metrics on http://0.0.0.0:%d/metrics", port)
    server.serve_forever()
