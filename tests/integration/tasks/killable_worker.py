"""The pipeline's worker (``dramatiq tests.integration.tasks.killable_worker``) with changes for
the kill tests, all from the environment:

* ``TEST_ACK_WAIT``: seconds before a dead worker's message goes to another (30 in service);
* ``TEST_HOLD_DIR``: where a worker writes ``held-<job>-<stage>`` (holding its pid) when it
  holds one of the pairs below, then waits to be killed. Each pair is held once (the marker
  says it was), so the worker started after the kill runs them through;
* ``TEST_HOLD``: ``job_id:stage`` pairs held after the stage's real work and before its
  completion is recorded — a worker dying in the middle of a stage;
* ``TEST_HOLD_BEFORE_ACK``: pairs held after the completion is recorded and the next stage
  sent, before the message is acknowledged — a worker dying in the last instant, whose message
  is delivered again though its work is done.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import dramatiq

from tasks import pipeline
from tasks.pipeline import STAGES, Stage, broker

broker.topology = dataclasses.replace(broker.topology, ack_wait=float(os.environ["TEST_ACK_WAIT"]))
HOLD_DIR = Path(os.environ["TEST_HOLD_DIR"])


def _pairs(variable: str) -> set[tuple[str, ...]]:
    return {tuple(pair.split(":")) for pair in os.environ.get(variable, "").split(",") if pair}


HOLD, HOLD_BEFORE_ACK = _pairs("TEST_HOLD"), _pairs("TEST_HOLD_BEFORE_ACK")


def _hold_once(job_id: str, stage: str) -> None:
    """Write the marker and wait to be killed, unless this pair was held before."""
    marker = HOLD_DIR / f"held-{job_id}-{stage}"
    if marker.exists():
        return
    partial = marker.with_suffix(".partial")
    partial.write_text(str(os.getpid()))
    partial.rename(marker)  # whole, or not there: the test reads the pid as soon as it appears
    while True:  # until the test kills this process
        time.sleep(1)


def _held(stage: Stage) -> Stage:
    def run(ctx, job_id: str, stop) -> str:
        message = stage.run(ctx, job_id, stop)
        if (job_id, stage.name) in HOLD:
            _hold_once(job_id, stage.name)
        return message

    return Stage(stage.name, run, stage.progress)


class HoldBeforeAck(dramatiq.Middleware):
    """Runs after the actor returned — the completion recorded, the next stage sent — and
    before the worker acknowledges the message."""

    def after_process_message(self, broker, message, *, result=None, exception=None):
        job_id, stage = message.args
        if exception is None and (job_id, stage) in HOLD_BEFORE_ACK:
            _hold_once(job_id, stage)


STAGES[:] = [_held(stage) for stage in STAGES]
broker.add_middleware(HoldBeforeAck())
run_stage = pipeline.run_stage
