"""A process armed with :func:`tasks.parent.die_with_parent` ends when its parent is killed —
by the kernel's signal or, where there is none, by its own polling — and learns at once of a
parent that died before it was armed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import psutil
import pytest

from tasks.parent import shutdown_timeout_s
from tests.support.paths import ROOT
from tests.support.waiting import wait_for

#: A parent that forks a child, which arms itself (``kernel`` or ``poll``), says so, and sleeps;
#: or (``late``) waits for the parent to be gone first, then reports what arming answered.
FAMILY = textwrap.dedent(
    """
    import os, signal, sys, time
    from tasks import parent
    mode = sys.argv[1]
    me = os.getpid()
    child = os.fork()
    if child:
        os.write(1, f"child {child}\\n".encode())  # one write: the lines do not interleave
        if mode == "late":
            os._exit(0)
        time.sleep(600)
        os._exit(0)
    if mode == "late":
        deadline = time.monotonic() + 60
        while os.getppid() == me and time.monotonic() < deadline:
            time.sleep(0.01)
    armed = parent.die_with_parent(signal.SIGTERM, me, poll=0.05, kernel=mode != "poll")
    os.write(1, f"armed {armed}\\n".encode())
    if armed:
        time.sleep(600)
    os._exit(0)
    """
)


def gone(pid: int) -> bool:
    """Ended: no such process, or a zombie nobody reaped (an orphan's new parent may not)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@contextlib.contextmanager
def family(mode: str) -> Iterator[tuple[subprocess.Popen, int, str]]:
    """Run :data:`FAMILY`; yield the parent, the child's pid and what arming answered; kill
    whatever is left of them at the end."""
    popen = subprocess.Popen(
        [sys.executable, "-c", FAMILY, mode],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    child = 0
    try:
        said = dict(popen.stdout.readline().split() for _ in range(2))
        child = int(said["child"])
        yield popen, child, said["armed"]
    finally:
        if child and not gone(child):
            os.kill(child, signal.SIGKILL)
        if popen.poll() is None:
            popen.kill()
        popen.wait()
        popen.stdout.close()


@pytest.mark.parametrize("mode", ["kernel", "poll"])
def test_a_child_ends_when_its_parent_is_killed(mode):
    with family(mode) as (popen, child, armed):
        assert armed == "True"
        assert not gone(child)
        popen.send_signal(signal.SIGKILL)
        popen.wait(30)
        assert wait_for(lambda: gone(child), 30)


def test_a_parent_gone_before_arming_is_reported_at_once():
    with family("late") as (popen, child, armed):
        assert popen.wait(30) == 0
        assert armed == "False"
        assert wait_for(lambda: gone(child), 30)


def test_the_shutdown_timeout_is_read_from_the_worker_command_line():
    line = ["dramatiq", "tasks.pipeline", "--processes", "2", "--worker-shutdown-timeout", "25000"]
    assert shutdown_timeout_s(line) == 25
    assert shutdown_timeout_s([*line[:-2], "--worker-shutdown-timeout=100"]) == 0.1
    assert shutdown_timeout_s(["dramatiq", "tasks.pipeline"]) == 600  # dramatiq's default
