"""A worker process's ``SIGTERM`` handler when its master dies: it stops once (the kernel may
signal twice), logs where the supervisor reads, and exits by itself if the stop hangs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tasks import observability
from tests.support.paths import ROOT

MASTER = 4242


@pytest.fixture
def orphaned(monkeypatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(observability, "_orphaned", calls.append)
    return calls


def handler(monkeypatch, *gone: bool) -> tuple[observability.StopWithMaster, list[int]]:
    """The handler, with the master's fate at each signal, and dramatiq's handler's calls."""
    answers = iter(gone)
    monkeypatch.setattr(observability, "parent_gone", lambda master: next(answers))
    dramatiq: list[int] = []
    stop = observability.StopWithMaster(MASTER, lambda signum, frame: dramatiq.append(signum))
    return stop, dramatiq


def test_the_kernels_two_signals_stop_the_worker_once(monkeypatch, orphaned):
    stop, dramatiq = handler(monkeypatch, False, True)
    stop(signal.SIGTERM, None)  # the master's main thread ended: its other threads go on a bit
    stop(signal.SIGTERM, None)  # its last thread ended: the worker now belongs to pid 1
    assert dramatiq == [signal.SIGTERM]  # a second one would make dramatiq kill the worker
    assert orphaned == [MASTER]


def test_one_signal_for_a_master_gone_stops_the_worker(monkeypatch, orphaned):
    stop, dramatiq = handler(monkeypatch, True)
    stop(signal.SIGTERM, None)
    assert dramatiq == [signal.SIGTERM]
    assert orphaned == [MASTER]


def test_a_signal_after_that_is_dramatiqs_kill_now(monkeypatch, orphaned):
    stop, dramatiq = handler(monkeypatch, True, True)
    stop(signal.SIGTERM, None)
    stop(signal.SIGTERM, None)
    assert dramatiq == [signal.SIGTERM, signal.SIGTERM]
    assert orphaned == [MASTER]


def test_signals_while_the_master_lives_are_dramatiqs(monkeypatch, orphaned):
    stop, dramatiq = handler(monkeypatch, False, False)
    stop(signal.SIGTERM, None)
    stop(signal.SIGTERM, None)
    assert dramatiq == [signal.SIGTERM, signal.SIGTERM]
    assert orphaned == []


#: A worker process whose logs went into dramatiq's pipe (here one nobody reads), whose master
#: is gone, and whose stop hangs.
ORPHAN = textwrap.dedent(
    """
    import os, sys, time
    sys.argv = ["dramatiq", "tasks.pipeline", "--worker-shutdown-timeout", "100"]
    from app.logs import configure_logging
    from tasks import observability
    observability.ORPHAN_GRACE_S = 0.2
    unread, pipe = os.pipe()
    sys.stderr = open(pipe, "w")
    configure_logging("INFO", "json")
    observability._orphaned(4242)
    time.sleep(120)
    """
)


def test_an_orphan_logs_to_its_inherited_stderr_and_ends_if_its_stop_hangs():
    popen = subprocess.Popen(
        [sys.executable, "-c", ORPHAN],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        _, stderr = popen.communicate(timeout=60)
    finally:
        if popen.poll() is None:
            popen.kill()
            popen.wait()
    assert popen.returncode == 1, stderr
    assert "the dramatiq master (pid 4242) is gone" in stderr
    assert "exiting now" in stderr
