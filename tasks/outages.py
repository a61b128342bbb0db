"""Riding out the outages operators see: a database failover, a NATS restart — tens of seconds.

A stage's bookkeeping (its row in Postgres, the message for the next stage) is retried here, in
the worker thread, with exponential backoff and jitter, for up to :data:`RIDE_OUT_S`. Only
connection trouble is retried (:mod:`app.outages` says what that is): any other error is
raised at once. The stage's message stays
held meanwhile (heartbeats); if the worker dies, it is delivered again and the job's row says
how far the job got (:func:`app.jobs.begin_stage`).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from app.outages import is_outage, outage_of

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds to keep trying before the error is raised to the actor's retries.
RIDE_OUT_S = 120.0
#: First and longest pause between two tries (seconds, before jitter).
FIRST_PAUSE_S, LONGEST_PAUSE_S = 0.5, 8.0


def riding_out(call: Callable[[], T], *, within: float | None = None) -> T:
    """``call()``, tried again while Postgres or NATS is away, for up to ``within`` seconds
    (:data:`RIDE_OUT_S`); the last error is raised after that."""
    deadline = time.monotonic() + (RIDE_OUT_S if within is None else within)
    pause = FIRST_PAUSE_S
    while True:
        try:
            return call()
        except Exception as exc:
            if not is_outage(exc) or time.monotonic() + pause > deadline:
                raise
            logger.warning("%s; trying again in %.1f s", _describe(exc), pause)
        time.sleep(pause * random.uniform(0.5, 1.5))
        pause = min(pause * 2, LONGEST_PAUSE_S)


def _describe(exc: BaseException) -> str:
    away = outage_of(exc)
    return f"{away.server if away else 'a server'} is unreachable ({type(exc).__name__})"
