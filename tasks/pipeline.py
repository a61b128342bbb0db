"""The pipeline, as data: ``transcode → loudness → normalize → tempo/key → finalize``.

One actor runs any stage of a job and, on success, sends the job's next stage. Adding a stage
is one line in :data:`STAGES`. This module is the worker (``dramatiq tasks.pipeline``): it loads
the stage functions and the audio stack with them; the web process never imports it, it sends
the first stage by the actor's name (:func:`app.queue.start_job`). Failures:

* input that can never work (not audio, truncated beyond repair, or past a bound on the work:
  too long, outputs too big, a decode out of time — a permanent
  :class:`audio.errors.AudioError`) fails the job at once with the reason, no retries;
* a stage stopped by its time limit (``STAGE_TIME_LIMIT_S``, dramatiq's ``TimeLimitExceeded``)
  fails the job at once too: the same work would be stopped again;
* anything else is retried with exponential backoff (``MAX_RETRIES`` times); the last failure
  fails the job and leaves the message in the dead letters, from where it can be replayed.

A canceled job (:func:`app.jobs.cancel_job`) runs nothing more: a stage in progress stops
between two blocks of audio (its ``should_stop`` check, :class:`tasks.cancellation.Cancellation`),
a stage whose completion finds the job canceled does not record it, a later message is
skipped; each removes what the job's stages made (:func:`tasks.cancellation.clean_up`) before
its message is acknowledged, and records nothing else: no retry, no dead letter, no event.

The job's error and events only ever hold sentences for the person who uploaded: an internal
error is told as one ("… failed after 4 attempts because of an internal error …"), its type,
message and traceback go to the logs and the dead letter.

The hand-off from one stage to the next cannot be lost. A stage commits its completion (the
job's progress), then sends the next stage's message, then its own message is acknowledged; a
delivery of a stage whose completion is already recorded only sends the next stage again
(:func:`app.jobs.begin_stage`). Of the designs that make the hand-off durable this one needs no
outbox table nor relay process: the stage's own message *is* the outbox until it is acknowledged.
Its price is a rare second message for the next stage (a worker dying between the send and the
acknowledgement), which that stage's delivery shrugs off in the same way. Connection trouble
with Postgres or NATS in that bookkeeping is ridden out in place (:mod:`tasks.outages`), for
longer than a database failover or a NATS restart lasts.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import dramatiq
from dramatiq.middleware import CurrentMessage, TimeLimitExceeded

from app import jobs
from app.logs import log_context
from app.metrics import metrics
from app.queue import FIRST_STAGE, PIPELINE_ACTOR, PIPELINE_QUEUE, make_broker, send_webhook
from audio.errors import AudioError, Canceled, StopCheck
from tasks import stages
from tasks.cancellation import Cancellation, clean_up
from tasks.context import WorkerContext, get_context, refuse_at_start, worker_config
from tasks.observability import Observability
from tasks.outages import riding_out
from tasks.sweep import Sweeper

logger = logging.getLogger(__name__)

MAX_RETRIES = 3
#: The options that keep a job's messages in its tenant's lane (:func:`app.queue.stage_message`).
LANE = ("lane", "lane_priority")

config = worker_config()
broker = make_broker(
    config.nats_url,
    config.nats_namespace,
    replicas=config.nats_replicas,
    middleware=[Observability(config), Sweeper(config, get_context)],
    tenant_max_running=config.tenant_max_running or None,
    prefetch=config.worker_threads,  # the Procfile's --threads
    sign_in=config.nats_sign_in.for_broker(),
)
refuse_at_start(broker, config)
dramatiq.set_broker(broker)


@dataclass(frozen=True)
class Stage:
    name: str
    #: (context, job_id, should_stop) -> a line for the job's events; ``should_stop`` goes to
    #: the audio engine's block loops (true: the job was canceled, raise ``Canceled``).
    run: Callable[[WorkerContext, str, StopCheck], str]
    progress: int  # percent done when it finishes


STAGES: list[Stage] = [
    Stage(FIRST_STAGE, stages.transcode_stage, 40),  # "transcode"
    Stage("loudness", stages.loudness_stage, 50),
    Stage("normalize", stages.normalize_stage, 70),
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
    time_limit=config.stage_time_limit_s * 1000,
)
def run_stage(job_id: str, stage_name: str) -> None:
    """Run one stage of a job; on success, send the next."""
    ctx = get_context()
    index = _BY_NAME[stage_name]
    stage = STAGES[index]
    with log_context(job_id=job_id, stage=stage.name):
        try:
            _deliver(ctx, job_id, index, stage)
        except TimeLimitExceeded:  # a BaseException, raised wherever the thread was
            reason = _time_limit_reason(stage.name)
            logger.error("job failed: %s", reason, exc_info=True)  # the trace says where
            _fail_for_good(ctx, job_id, stage.name, reason)


def _deliver(ctx: WorkerContext, job_id: str, index: int, stage: Stage) -> None:
    """Do what this delivery of the stage's message calls for (see :func:`jobs.begin_stage`)."""
    before = STAGES[index - 1].progress if index else 0
    try:
        decision, upload_id = riding_out(
            lambda: jobs.begin_stage(ctx.sessions, job_id, stage.name, before, stage.progress)
        )
    except Exception as exc:
        _failed_attempt(ctx, job_id, stage.name, exc)
        raise
    with log_context(upload_id=upload_id):
        if decision == jobs.SKIP:
            logger.info("%s skipped: the job has ended or is gone (a late message)", stage.name)
        elif decision == jobs.CANCELED:
            logger.info("%s skipped: the job was canceled; removing what it made", stage.name)
            _clean_up(ctx, upload_id)
        elif decision == jobs.HAND_ON:
            logger.info("%s already done: handing on to the next stage", stage.name)
            try:
                _hand_on(ctx, job_id, index)
            except jobs.JobCanceled:  # canceled since begin_stage: job_done did not record it
                _clean_up(ctx, upload_id)
        else:
            _run(ctx, job_id, index, stage, upload_id)


def _clean_up(ctx: WorkerContext, upload_id: str) -> None:
    """Remove what a canceled job's stages made, riding out outages; raises if it cannot, so
    the message is not acknowledged and its next delivery cleans up (:data:`jobs.CANCELED`)."""
    removed = riding_out(lambda: clean_up(ctx.sessions, ctx.storage, upload_id))
    logger.info("removed what the canceled job made (%d keys asked)", removed)


def _stopped(ctx: WorkerContext, stage: str, stop: Cancellation, upload_id: str, how: str) -> None:
    """The stage stopped (``how``) because its job was canceled: say so, and clean up."""
    stop.confirmed()  # learn when the cancel was committed, if not polled yet
    delay = stop.delay_s()
    after = f"{delay:.2f} s after the cancel" if delay is not None else "the job is gone"
    logger.info("%s stopped for the cancel (%s; %s)", stage, how, after)
    _clean_up(ctx, upload_id)


def _run(ctx: WorkerContext, job_id: str, index: int, stage: Stage, upload_id: str) -> None:
    started = time.perf_counter()
    outcome = "error"
    stop = Cancellation(ctx.sessions, job_id)
    try:
        message = stage.run(ctx, job_id, stop)
        outcome = "ok"
        logger.info("%s done in %.2f s: %s", stage.name, time.perf_counter() - started, message)
        done = stage.progress
        riding_out(lambda: jobs.stage_done(ctx.sessions, job_id, stage.name, done, message))
        _hand_on(ctx, job_id, index)
    except Canceled as exc:  # between two blocks of audio
        outcome = "canceled"
        _stopped(ctx, stage.name, stop, upload_id, f"between blocks, {exc}")
    except jobs.JobCanceled:  # the cancel committed before the stage's completion: it wins
        outcome = "canceled"
        _stopped(ctx, stage.name, stop, upload_id, "its work done, not recorded")
    except AudioError as exc:
        if stop.confirmed():  # whatever the file did, the job is canceled: nothing to report
            outcome = "canceled"
            _stopped(ctx, stage.name, stop, upload_id, f"on {type(exc).__name__}")
            return
        if not exc.permanent:
            _failed_attempt(ctx, job_id, stage.name, exc)
            raise
        outcome = "rejected"
        reason = stages.reason(exc)
        logger.warning("job failed: %s", reason)
        _fail_for_good(ctx, job_id, stage.name, reason)
    except TimeLimitExceeded:
        outcome = "stopped"
        raise  # settled by run_stage, which catches it wherever it lands
    except Exception as exc:
        if stop.confirmed():  # e.g. its upload removed under it: the rows it wrote to are gone
            outcome = "canceled"
            _stopped(ctx, stage.name, stop, upload_id, f"on {type(exc).__name__}")
            return
        _failed_attempt(ctx, job_id, stage.name, exc)
        raise
    finally:
        elapsed = time.perf_counter() - started
        metrics().stage_duration.labels(stage.name, outcome).observe(elapsed)


def _fail_for_good(ctx: WorkerContext, job_id: str, stage: str, reason: str) -> None:
    """End the job ``failed`` with ``reason``; the message is then acknowledged, not retried
    (the same work would fail the same way) nor dead-lettered (nothing to replay)."""
    made = riding_out(lambda: jobs.job_failed(ctx.sessions, job_id, stage, reason, ctx.storage))
    _send_webhooks(made)


def _send_webhooks(delivery_ids: list[str]) -> None:
    """Hand the webhooks a job's end made to the webhooks worker, riding out a NATS outage as
    the hand-off to the next stage does; one that still cannot be sent is left to the sweep
    (it is pending in the database, :func:`app.webhooks.outbox.overdue`)."""
    for delivery_id in delivery_ids:
        try:
            riding_out(functools.partial(send_webhook, broker, delivery_id))
        except Exception:
            logger.warning("could not queue webhook %s: the sweep will", delivery_id, exc_info=True)


def _time_limit_reason(stage: str) -> str:
    """Why a stage stopped by dramatiq's time limit failed, with the limit in force (the
    message's own, or the actor's: ``STAGE_TIME_LIMIT_S``)."""
    message = CurrentMessage.get_current_message()
    options = message.options if message is not None else {}
    limit_ms = options.get("time_limit") or run_stage.options["time_limit"]
    return (
        f"the {stage} stage ran longer than STAGE_TIME_LIMIT_S ({limit_ms / 1000:g} s) "
        "and was stopped"
    )


def _hand_on(ctx: WorkerContext, job_id: str, index: int) -> None:
    """Send the job's next stage — or end the job after the last — riding out outages.

    Runs after the stage's completion is committed and before its message is acknowledged: a
    worker that dies in between leaves the message to be delivered again, and that delivery
    only hands on (:func:`app.jobs.begin_stage`). So the hand-off cannot be lost, at the price
    of sending the next stage twice in that rare case (its own delivery then skips the work
    already recorded, or runs it again with the same result).
    """
    if index + 1 < len(STAGES):
        # In the same lane as this stage (its tenant's, at its priority).
        current = CurrentMessage.get_current_message()
        lane = {k: v for k, v in (current.options if current else {}).items() if k in LANE}
        args = (job_id, STAGES[index + 1].name)
        riding_out(lambda: run_stage.send_with_options(args=args, **lane))
    else:
        made = riding_out(lambda: jobs.job_done(ctx.sessions, job_id, ctx.storage))
        _send_webhooks(made)
        logger.info("job done")


def _failed_attempt(ctx: WorkerContext, job_id: str, stage: str, exc: BaseException) -> None:
    """Record an attempt that failed and will be retried, or the job's failure after the last.

    The details (type, message, traceback) are logged here and kept by the dead letter the
    last attempt leaves; the job gets a sentence, since ``RuntimeError: Not currently
    encoding`` means nothing to the person who uploaded (and may tell an attacker much).
    """
    message = CurrentMessage.get_current_message()
    options = message.options if message is not None else {}
    retries = options.get("retries", 0) if message is not None else _max_retries(options)
    attempt = retries + 1
    logger.warning("attempt %d failed: %s: %s", attempt, type(exc).__name__, exc, exc_info=exc)
    try:
        if retries >= _max_retries(options):
            reason = (
                f"the {stage} stage failed after {attempt} attempt{'s' * (attempt > 1)} because "
                "of an internal error; the operators' logs and the dead letter have the details"
            )
            made = riding_out(
                lambda: jobs.job_failed(ctx.sessions, job_id, stage, reason, ctx.storage)
            )
            _send_webhooks(made)
        else:
            reason = f"attempt {attempt} of the {stage} stage failed because of an internal error"
            riding_out(lambda: jobs.stage_retrying(ctx.sessions, job_id, stage, reason))
    except Exception:  # the database stayed away: the sweep settles the job later
        logger.error("could not record the failed attempt of job %s", job_id, exc_info=True)


def _max_retries(options: dict) -> int:
    """The retries the Retries middleware allows this message (its own figure, or the
    actor's), so that the attempt it gives up on is the one that fails the job."""
    return options.get("max_retries", run_stage.options.get("max_retries", MAX_RETRIES))
