"""A child process of the ``dramatiq`` master ends when the master does.

The master forks its worker processes and its fork processes (the metrics server); killed with
``SIGKILL`` (or by the OOM killer) it cannot tell them to stop, and they would go on, orphaned:
holding NATS and Postgres connections, and the metrics server keeping ``WORKER_METRICS_PORT``,
so the master started again by the supervisor could not serve its metrics.

:func:`die_with_parent` asks the kernel to signal this process when its parent ends
(``prctl(PR_SET_PDEATHSIG)``, Linux); elsewhere a daemon thread notices the new parent within
:data:`POLL_S`. Either way it first checks that the parent is still the process that forked this
one: a master that died between the fork and the call would never be reported.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import sys
import threading
import time

#: ``<linux/prctl.h>``: signal this process when its parent ends.
PR_SET_PDEATHSIG = 1
#: Seconds between two looks at the parent where the kernel cannot watch it.
POLL_S = 1.0


def parent_pid() -> int:
    """The pid of the process that forked this one, as recorded before the fork.

    ``os.getppid()`` would already name the new parent (pid 1 or a subreaper) if the parent died
    before this process got here; multiprocessing keeps the pid its parent had.
    """
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid:
        return parent.pid
    return os.getppid()


def is_forked_child() -> bool:
    """True in a process started by :mod:`multiprocessing` (as the dramatiq CLI starts its
    worker and fork processes); False in a process run on its own (tests, benchmarks)."""
    return multiprocessing.parent_process() is not None


def parent_gone(parent: int) -> bool:
    """True once ``parent`` is no longer this process's parent (its children were re-parented)."""
    return os.getppid() != parent


def set_pdeathsig(sig: int) -> bool:
    """``prctl(PR_SET_PDEATHSIG, sig)``; False where it is not available (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    return prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(int(sig)), 0, 0, 0) == 0


def die_with_parent(sig: int, parent: int, *, poll: float = POLL_S, kernel: bool = True) -> bool:
    """Have ``sig`` sent to this process when ``parent`` ends; False if it has ended already.

    The kernel sends it (``prctl``) where it can; otherwise — or with ``kernel=False`` — a daemon
    thread looks at the parent every ``poll`` seconds and sends ``sig`` itself. A False answer
    means no signal will come: the caller exits now.
    """
    if not (kernel and set_pdeathsig(sig)):
        threading.Thread(
            target=_watch, args=(parent, sig, poll), name="parent-watch", daemon=True
        ).start()
    return not parent_gone(parent)  # after arming: a death a moment later is signalled


def _watch(parent: int, sig: int, poll: float) -> None:
    while not parent_gone(parent):
        time.sleep(poll)
    os.kill(os.getpid(), sig)


def shutdown_timeout_s(argv: list[str], default_ms: int = 600_000) -> float:
    """The ``--worker-shutdown-timeout`` (milliseconds) of a ``dramatiq`` command line, in
    seconds; dramatiq's own default (10 minutes) when it is not given."""
    value: str | None = None
    for i, arg in enumerate(argv):
        if arg == "--worker-shutdown-timeout" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--worker-shutdown-timeout="):
            value = arg.split("=", 1)[1]
    try:
        return float(value) / 1000 if value is not None else default_ms / 1000
    except ValueError:
        return default_ms / 1000
