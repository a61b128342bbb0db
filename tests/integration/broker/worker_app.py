"""Actors for the multi-process tests, loaded by the ``dramatiq`` CLI in worker subprocesses.

Configured from the environment: ``NATS_URL``, ``NATS_NAMESPACE``, ``ACK_WAIT``,
``MAX_DELIVERIES`` and ``RECORD_DIR`` (each worker process appends what it ran to its own file
there, so the test can count runs exactly without another server).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import dramatiq

from broker import NatsBroker

broker = NatsBroker(
    os.environ.get("NATS_URL", "nats://127.0.0.1:4222"),
    namespace=os.environ.get("NATS_NAMESPACE", "dramatiq"),
    ack_wait=float(os.environ.get("ACK_WAIT", "30")),
    max_deliveries=int(os.environ.get("MAX_DELIVERIES", "5")),
)
dramatiq.set_broker(broker)
RECORD_DIR = Path(os.environ.get("RECORD_DIR", "."))


def record(line: str) -> None:
    with open(RECORD_DIR / f"ran-{os.getpid()}.txt", "a") as out:
        out.write(line + "\n")


@dramatiq.actor(max_retries=0)
def count(n: int) -> None:
    record(str(n))


@dramatiq.actor(max_retries=0, time_limit=120_000)
def sleepy(n: int, seconds: float) -> None:
    record(f"start {n}")
    time.sleep(seconds)
    record(f"done {n}")


@dramatiq.actor(max_retries=0)
def poison() -> None:
    record("poison")
    os.kill(os.getpid(), signal.SIGKILL)
