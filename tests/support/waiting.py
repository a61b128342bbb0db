"""Waiting for what a test can observe: a predicate that turns true, processes that stop."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.05
) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed; return its last value.

    Deadlines here are generous bounds for a busy machine, never assertions about speed.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    what: str,
    ignoring: tuple[type[BaseException], ...] = (OSError,),
    interval: float = 0.3,
) -> T:
    """Poll ``predicate`` until it returns something true, and return that; an exception in
    ``ignoring`` (a server not answering yet) counts as "not yet".

    :raises AssertionError: naming ``what`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except ignoring:
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def stop_all(processes, timeout: float = 30.0) -> None:
    """SIGTERM every process, then wait for each (SIGKILL the ones still there at ``timeout``)."""
    import signal
    import subprocess

    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def kill_groups(processes) -> None:
    """SIGKILL each process's whole group (started with ``start_new_session=True``): a worker
    master and its children end at once, without the graceful stop a test did not ask about."""
    import os
    import signal

    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
