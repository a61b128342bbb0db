"""The pipeline, as data: ``transcode → loudness → tempo/key → finalize``.

One actor runs any stage of a job and, on success, sends the job's next stage. Adding a stage
is one line in :data:`STAGES`. This module is the worker (``dramatiq tasks.pipeline``): it loads
the stage functions and the audio stack with them; the web process never imports it, it sends
the first stage by the actor's name (:func:`app.queue.start_job`). Failures:

* input that can never work (not audio, truncated beyond repair — a permanent
  :class:`audio.errors.AudioError`) fails the job at once with the reason, no retries;
* anything else is retried with exponential backoff (``MAX_RETRIES`` times); the last failure
  fails the job and leaves the message in the dead letters, from where it can be replayed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import dramatiq
from dramatiq.middleware import CurrentMessage

from app import jobs
from app.logs import log_context
from app.metrics import metrics
from app.queue import FIRST_STAGE, PIPELINE_ACTOR, PIPELINE_QUEUE, make_broker
from audio.errors import AudioError
from tasks import stages
from tasks.context import WorkerContext, get_context, worker_config
from tasks.observability import Observability

logger = logging.getLogger(__name__)

MAX_RETRIES = 3

config = worker_config()
broker = make_broker(config.nats_url, config.nats_namespace, middleware=[Observability(config)])
dramatiq.set_broker(broker)


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[WorkerContext, str], str]  # (context, job_id) -> a line for the job's events
    progress: int  # percent done when it finishes


STAGES: list[Stage] = [
    Stage(FIRST_STAGE, stages.transcode_stage, 40),  # "transcode"
    Stage("loudness", stages.loudness_stage, 60),
    Stage("tempo_key", stages.tempo_key_stage, 85),
    Stage("finalize", stages.finalize_stage, 100),
]
_BY_NAME = {stage.name: i for i, stage in enumerate(STAGES)}


@dramatiq.actor(
    broker=broker,
    actor_name=PIPELINE_ACTOR,
    queue_name=PIPELINE_QUEUE,
    max_retries=MAX_RETRIES,
    min_backoff=1_000,
    max_backoff=60_000,
    time_limit=30 * 60_000,
)
def run_stage(job_id: str, stage_name: str) -> None:
    """Run one stage of a job; on success, send the next."""
    ctx = get_context()
    index = _BY_NAME[stage_name]
    stage = STAGES[index]
    before = STAGES[index - 1].progress if index else 0
    with log_context(job_id=job_id, stage=stage.name):
        upload_id = jobs.stage_started(ctx.sessions, job_id, stage.name, before)
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
            jobs.job_failed(ctx.sessions, job_id, stage.name, str(exc))
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
    jobs.stage_done(ctx.sessions, job_id, stage.name, stage.progress, message)
    if index + 1 < len(STAGES):
        run_stage.send(job_id, STAGES[index + 1].name)
    else:
        jobs.job_done(ctx.sessions, job_id)
        logger.info("job done")


def _failed_attempt(ctx: WorkerContext, job_id: str, stage: str, exc: Exception) -> None:
    message = CurrentMessage.get_current_message()
    retries = message.options.get("retries", 0) if message is not None else MAX_RETRIES
    reason = f"{type(exc).__name__}: {exc}"
    logger.warning("attempt %d failed: %s", retries + 1, reason, exc_info=exc)
    if retries >= MAX_RETRIES:
        jobs.job_failed(
            ctx.sessions, job_id, stage, f"gave up after {retries + 1} attempts: {reason}"
        )
    else:
        jobs.stage_retrying(ctx.sessions, job_id, stage, reason)
