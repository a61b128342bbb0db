"""The benchmark's no-op actor, for the broker named in the environment.

Loaded both by ``bench/broker.py`` (to send) and by the ``dramatiq`` CLI workers (to run).
``BENCH_BROKER`` is ``nats``, ``nats-r3``, ``redis``, ``rabbitmq`` or ``rabbitmq-confirm``;
``BENCH_URL`` its address (several, comma-separated, for a cluster); ``BENCH_QUEUE`` a queue name
unique to the run; ``BENCH_RECORD_DIR`` where each worker process appends the ids of the messages
it ran (one file per process), so that counts are exact and need no extra server.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

import dramatiq

from bench.broker_peers import make_broker

KIND = os.environ.get("BENCH_BROKER", "nats")
QUEUE = os.environ.get("BENCH_QUEUE", "bench")
broker = make_broker(KIND, os.environ.get("BENCH_URL", ""), f"bench-{QUEUE}")
dramatiq.set_broker(broker)

_out: IO[str] | None = None
_out_pid: int | None = None


def _record(line: str) -> None:
    global _out, _out_pid
    if _out is None or _out_pid != os.getpid():
        directory = Path(os.environ.get("BENCH_RECORD_DIR", "."))
        _out = open(directory / f"ran-{os.getpid()}.txt", "a", buffering=1)  # noqa: SIM115
        _out_pid = os.getpid()
    _out.write(line + "\n")


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def noop(n: int, padding: str) -> None:
    """Do nothing but say it ran."""
    _record(str(n))
