"""Prometheus metrics: what they are, where their files live, how they are served.

Every process (the web process, dramatiq worker processes) counts in prometheus-client's
multiprocess mode: values live in files under ``$METRICS_DIR/<role>-<owner>``, where the owner
is the web process or the dramatiq master of this run. A new owner starts with an empty
directory and removes those of owners that are gone, so a restart never adds up old values.
The web process serves ``/metrics`` on ``METRICS_PORT`` (its own figures plus queue figures
read from JetStream at scrape time; :mod:`app.server`); the worker master runs a small
server of its own on ``WORKER_METRICS_PORT``
(:func:`tasks.observability.serve_worker_metrics`).

``prometheus_client`` is imported only once the directory is chosen: it decides at import
whether values go to files or to memory. With no directory chosen (tests, ``flask`` shell),
values stay in the process.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds buckets for request durations (fast) and stage durations (slow).
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)


#: This process's multiprocess directory, once chosen (inherited by forked children).
_directory: Path | None = None


def process_identity(pid: int) -> str:
    """``<pid>-<start time>``: unique per process even when pids are reused (containers)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        start = stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return str(pid)
    return f"{pid}-{start}"


def _owner_alive(identity: str) -> bool:
    pid = int(identity.split("-", 1)[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return process_identity(pid) == identity


def use_multiprocess_dir(base: Path, role: str, owner_pid: int) -> Path:
    """Count into ``<base>/<role>-<owner>`` (``base`` is ``METRICS_DIR``) from now on, in this
    process and its children.

    Removes directories of the same role whose owner is gone. Must run before the first metric
    of the process is created.
    """
    global _directory
    base.mkdir(parents=True, exist_ok=True)
    for stale in base.glob(f"{role}-*"):
        if not _owner_alive(stale.name.removeprefix(f"{role}-")):
            shutil.rmtree(stale, ignore_errors=True)
    directory = base / f"{role}-{process_identity(owner_pid)}"
    directory.mkdir(exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)  # prometheus_client reads it at import
    _directory = directory
    return directory


def mark_process_dead(pid: int) -> None:
    """Drop a dead process's live gauges (its counters stay counted)."""
    if _directory is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, str(_directory))


class Metrics:
    """The metric families. One prefix, seconds, ``_total`` counters, no ids as labels."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.http_requests = Counter(
            "phantomchain_http_requests", "HTTP requests answered.", ["method", "route", "status"]
        )
        self.http_duration = Histogram(
            "phantomchain_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
        )
        self.uploads = Counter("phantomchain_uploads", "Uploads accepted.")
        self.upload_bytes = Counter("phantomchain_upload_bytes", "Bytes of accepted uploads.")
        self.jobs_finished = Counter(
            "phantomchain_jobs_finished", "Jobs that ended, by final status.", ["status"]
        )
        self.stage_duration = Histogram(
            "phantomchain_stage_duration_seconds",
            "Time one attempt of a pipeline stage took.",
            ["stage", "outcome"],
            buckets=STAGE_BUCKETS,
        )
        self.audio_seconds = Counter(
            "phantomchain_audio_processed_seconds", "Seconds of audio transcoded and analysed."
        )
        self.retries = Counter(
            "phantomchain_message_retries", "Messages sent again after a failure.", ["actor"]
        )
        self.dead_letters = Counter(
            "phantomchain_dead_lettered_messages", "Messages that failed for good.", ["actor"]
        )
        self.webhook_attempts = Counter(
            "phantomchain_webhook_attempts",
            "Webhook POSTs, by outcome: delivered, retrying (tried again later) or failed.",
            ["outcome"],
        )
        self.in_flight = Gauge(
            "phantomchain_messages_in_flight",
            "Messages being processed right now (sampled every second).",
            ["actor"],
            multiprocess_mode="livesum",
        )


_metrics: Metrics | None = None
_lock = threading.Lock()


def metrics() -> Metrics:
    """The process's metric families, created on first use."""
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = Metrics()
    return _metrics


class QueueCollector:
    """Queue figures read from JetStream when Prometheus scrapes (never stored, never stale).

    ``phantomchain_queue_oldest_waiting_seconds`` is the signal to scale workers on: how long
    the oldest message not yet delivered has waited (0 when none waits), from the time
    JetStream stored it (:mod:`broker.backlog`; one or two API calls per queue a scrape).

    :param broker: a :class:`broker.NatsBroker`.
    """

    def __init__(self, broker: Any) -> None:
        self.broker = broker

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        waiting = GaugeMetricFamily(
            "phantomchain_queue_waiting_messages", "Messages not yet delivered.", labels=["queue"]
        )
        unsettled = GaugeMetricFamily(
            "phantomchain_queue_unsettled_messages",
            "Messages delivered to a worker and not yet settled (consumer ack pending).",
            labels=["queue"],
        )
        oldest = GaugeMetricFamily(
            "phantomchain_queue_oldest_waiting_seconds",
            "How long the oldest message not yet delivered has waited (0: none waits).",
            labels=["queue"],
        )
        dead = GaugeMetricFamily(
            "phantomchain_dead_letters", "Dead letters kept, by queue.", labels=["queue"]
        )
        up = GaugeMetricFamily("phantomchain_nats_up", "1 when JetStream answered the scrape.")
        try:
            backlogs = self.broker.queue_backlog()
            now = time.time()
            for queue, backlog in backlogs.items():
                waiting.add_metric([queue], backlog.waiting)
                unsettled.add_metric([queue], backlog.unsettled)
                oldest.add_metric([queue], backlog.oldest_waiting_age(now))
            for queue, count in self.broker.dead_letters.count().items():
                dead.add_metric([queue], count)
            up.add_metric([], 1)
        except Exception:  # an unreachable NATS must not break the scrape of everything else
            up.add_metric([], 0)
        return [waiting, unsettled, oldest, dead, up]


class WaitingJobsCollector:
    """Jobs waiting to start per tenant, read from PostgreSQL when Prometheus scrapes.

    Only the tenants with the most waiting jobs are labelled by name, the rest add up under
    one label (:func:`app.queue.waiting_jobs_by_tenant`), so the series stay few however many
    tenants there are. The family is made anew each scrape: a tenant whose jobs have all
    started simply has no series any more, rather than a stale one.

    :param read: ``() -> {tenant label: jobs}``; raising (the database away) leaves the family
        empty without failing the scrape.
    """

    def __init__(self, read: Callable[[], Mapping[str, int]]) -> None:
        self.read = read

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(
            "phantomchain_waiting_jobs",
            "Jobs accepted and not yet started, by tenant (the busiest tenants; the rest: @other).",
            labels=["tenant"],
        )
        try:
            counts = self.read()
        except Exception:  # the database away: the other families are still worth scraping
            logger.debug("waiting jobs per tenant not read", exc_info=True)
            counts = {}
        for tenant, count in counts.items():
            family.add_metric([tenant], count)
        return [family]


def render(extra_collectors: tuple = ()) -> tuple[bytes, str]:
    """The exposition text of this process (or of all processes sharing its directory)."""
    import prometheus_client as prom
    from prometheus_client import multiprocess

    metrics()  # families appear (at zero) before their first use
    if _directory is not None:
        registry = prom.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, str(_directory))
        body = prom.generate_latest(registry)
    else:
        body = prom.generate_latest(prom.REGISTRY)
    if extra_collectors:
        extra = prom.CollectorRegistry()
        for collector in extra_collectors:
            extra.register(collector)
        body += prom.generate_latest(extra)
    return body, prom.CONTENT_TYPE_LATEST
