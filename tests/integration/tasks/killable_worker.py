"""The pipeline's worker (``dramatiq tests.integration.tasks.killable_worker``) with two
changes for the kill tests, both from the environment:

* ``TEST_ACK_WAIT``: seconds before a dead worker's message goes to another (30 in service);
* ``TEST_HOLD_DIR`` and ``TEST_HOLD``: ``job_id:stage`` pairs. The first time a worker runs one
  of those stages for that job, it does the stage's real work, then writes
  ``held-<job>-<stage>`` (holding its pid) in that folder and waits to be killed — the moment
  between a stage's results being written and its message being acknowledged.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from tasks import pipeline
from tasks.pipeline import STAGES, Stage, broker

broker.topology = dataclasses.replace(broker.topology, ack_wait=float(os.environ["TEST_ACK_WAIT"]))
HOLD_DIR = Path(os.environ["TEST_HOLD_DIR"])
HOLD = {tuple(pair.split(":")) for pair in os.environ.get("TEST_HOLD", "").split(",") if pair}


def _held(stage: Stage) -> Stage:
    def run(ctx, job_id: str) -> str:
        message = stage.run(ctx, job_id)
        marker = HOLD_DIR / f"held-{job_id}-{stage.name}"
        if (job_id, stage.name) in HOLD and not marker.exists():
            marker.write_text(str(os.getpid()))
            while True:  # until the test kills this process
                time.sleep(1)
        return message

    return Stage(stage.name, run, stage.progress)


STAGES[:] = [_held(stage) for stage in STAGES]
run_stage = pipeline.run_stage
