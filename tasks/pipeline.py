"""The pipeline, as data: ``transcode → loudness → tempo/key → finalize``.

One actor runs any stage of a job and, on success, sends the job's next stage. Adding a stage
is one line in :data:`STAGES`. The stage functions (:mod:`tasks.stages`, and with them the
audio stack) load when a worker process boots: the web process, which only enqueues, never
pays for them. Failures:

* input that can never work (not audio, truncated beyond repair — a permanent
  :class:`audio.errors.AudioError`) fails the job at once with the reason, no retries;
* anything else is retried with exponential backoff (``MAX_RETRIES`` times); the last failure
  fails the job and leaves the message in the dead letters, from where it can be replayed.
"""

from __future__ import annotations

import functools
import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import dramatiq
from dramatiq.middleware import CurrentMessage

from app.logs import log_context
from app.metrics import metrics
from audio.errors import AudioError
from tasks import progress
from tasks.broker import broker
from tasks.context import WorkerContext, get_context

logger = logging.getLogger(__name__)

MAX_RETRIES = 3
QUEUE = "pipeline"


@dataclass(frozen=True)
class Stage:
    name: str
    function: str  # in tasks.stages: (WorkerContext, job_id) -> a line for the job's events
    progress: int  # percent done when it finishes

    @property
    def run(self) -> Callable[[WorkerContext, str], str]:
        return getattr(_stages(), self.function)


STAGES: list[Stage] = [
    Stage("transcode", "transcode_stage", 40),
    Stage("loudness", "loudness_stage", 60),
    Stage("tempo_key", "tempo_key_stage", 85),
    Stage("finalize", "finalize_stage", 100),
]
_BY_NAME = {stage.name: i for i, stage in enumerate(STAGES)}


@functools.cache
def _stages():
    return importlib.import_module("tasks.stages")


class _LoadStages(dramatiq.Middleware):
    """Worker processes load the stages as they boot, not while their first message waits."""

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        _stages()


broker.add_middleware(_LoadStages())


def start(job_id: str) -> None:
    """Queue a job's first stage."""
    run_stage.send(job_id, STAGES[0].name)


@dramatiq.actor(
    broker=broker,
    queue_name=QUEUE,
    max_retries=MAX_RETRIES,
    min_backoff=1_000,
    max_backoff=60_000,
    time_limit=30 * 60_000,
)
def run_stage(job_id: str, stage_name: str) -> None:
    ctx = get_context()
    index = _BY_NAME[stage_name]
    stage = STAGES[index]
    before = STAGES[index - 1].progress if index else 0
    with log_context(job_id=job_id, stage=stage.name):
        upload_id = progress.stage_started(ctx.sessions, job_id, stage.name, before)
        with log_context(upload_id=upload_id):
            _run(ctx, job_id, index, stage)


def _run(ctx: WorkerContext, job_id: str, index: int, stage: Stage) -> None:
    started = time.perf_counter()
    outcome = "error"
    try:
        message = stage.run(ctx, job_id)
        outcome = "ok"
    except AudioError as exc:
        if exc.permanent:
            outcome = "rejected"
            logger.warning("job failed: %s", exc)
            progress.job_failed(ctx.sessions, job_id, stage.name, str(exc))
            return  # settled: retrying cannot help
        _failed_attempt(ctx, job_id, stage.name, exc)
        raise
    except Exception as exc:
        _failed_attempt(ctx, job_id, stage.name, exc)
        raise
    finally:
        elapsed = time.perf_counter() - started
        metrics().stage_duration.labels(stage.name, outcome).observe(elapsed)
    logger.info("%s done in %.2f s: %s", stage.name, elapsed, message)
    progress.stage_done(ctx.sessions, job_id, stage.name, stage.progress, message)
    if index + 1 < len(STAGES):
        run_stage.send(job_id, STAGES[index + 1].name)
    else:
        progress.job_done(ctx.sessions, job_id)
        logger.info("job done")


def _failed_attempt(ctx: WorkerContext, job_id: str, stage: str, exc: Exception) -> None:
    message = CurrentMessage.get_current_message()
    retries = message.options.get("retries", 0) if message is not None else MAX_RETRIES
    reason = f"{type(exc).__name__}: {exc}"
    logger.warning("attempt %d failed: %s", retries + 1, reason, exc_info=exc)
    if retries >= MAX_RETRIES:
        progress.job_failed(
            ctx.sessions, job_id, stage, f"gave up after {retries + 1} attempts: {reason}"
        )
    else:
        progress.stage_retrying(ctx.sessions, job_id, stage, reason)
