"""Run the public listener until told to stop, then stop as a deploy expects.

``SIGTERM`` or ``SIGINT``: the listening socket closes at once (a load balancer's next
connection goes to another process), idle connections close, requests in flight — being
received or being answered — get ``GRACEFUL_TIMEOUT`` seconds to finish, then every
connection still open is closed and the process exits 0. A second signal cuts the grace short.

waitress's own ``serve()`` has no such stop (a signal ends its loop and drops what is in
flight), so the loop is run here, one turn at a time.
"""

from __future__ import annotations

import logging
import select
import signal
import time
from collections.abc import Callable
from types import FrameType

from waitress import wasyncore
from waitress.server import BaseWSGIServer

logger = logging.getLogger(__name__)

#: Seconds one turn of the loop waits while stopping (how soon a finished request's idle
#: connection is closed).
DRAIN_TURN_S = 0.1
#: Seconds a connection with nothing in flight must have been quiet before the stop closes it:
#: one that connected or sent a request a moment before the signal (its bytes not read yet)
#: is not idle, it is a request on its way.
IDLE_GRACE_S = 1.0


class StopSignals:
    """``SIGTERM`` / ``SIGINT``: the first asks for a graceful stop, the next for a quick one.

    Installed before the server listens (:func:`app.server.__main__.main`): a signal that arrives
    while the process is still starting — its port already answering — is a stop asked for,
    served by :func:`serve` as soon as it runs, never the default action's abrupt exit that
    resets the connections already made. The handler only sets flags and wakes the loop
    through waitress's trigger pipe (a write to a pipe, no lock: safe in a signal handler).
    """

    def __init__(self) -> None:
        self.server: BaseWSGIServer | None = None
        self.requested = False
        self.hurry = False
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            self.hurry = True
        self.requested = True
        if self.server is not None:
            self.server.trigger.pull_trigger()


def serve(
    server: BaseWSGIServer,
    graceful_timeout: float,
    on_stop: Callable[[], None],
    signals: StopSignals | None = None,
) -> None:
    """Serve until a stop signal, then drain (``on_stop`` runs as the draining begins)."""
    signals = signals or StopSignals()
    signals.server = server
    socket_map = server._map
    while not signals.requested:
        wasyncore.loop(server.adj.asyncore_loop_timeout, True, socket_map, count=1)
    logger.info(
        "stopping: no new connections; requests in flight get up to %s s (GRACEFUL_TIMEOUT)",
        graceful_timeout,
    )
    on_stop()
    _accept_waiting(server)
    server.accepting = False
    wasyncore.dispatcher.close(server)  # the listening socket only; the trigger stays
    deadline = time.monotonic() + graceful_timeout
    while server.active_channels and not signals.hurry and time.monotonic() < deadline:
        wasyncore.loop(DRAIN_TURN_S, True, socket_map, count=1)  # read what has arrived first
        _close_idle(server)
    if server.active_channels:
        logger.warning(
            "%d connection(s) still busy after GRACEFUL_TIMEOUT: closed",
            len(server.active_channels),
        )
        for channel in list(server.active_channels.values()):
            channel.handle_close()
    server.task_dispatcher.shutdown(cancel_pending=True, timeout=1)
    server.trigger.close()
    logger.info("stopped")


def _accept_waiting(server: BaseWSGIServer) -> None:
    """Accept the connections already made — waiting in the kernel's backlog, their request
    perhaps sent — before the listening socket closes: closing it would reset them, failing
    requests the client had every reason to think were received."""
    for _ in range(server.adj.connection_limit):
        if not select.select([server.socket], [], [], 0)[0]:
            return
        server.handle_accept()


def _close_idle(server: BaseWSGIServer) -> None:
    """Close connections with nothing in flight — no request being read, answered or sent —
    and quiet for :data:`IDLE_GRACE_S` (waitress keeps ``last_activity`` in wall-clock time)."""
    quiet_since = time.time() - IDLE_GRACE_S
    for channel in server.active_channels.values():
        idle = not channel.requests and channel.request is None and not channel.total_outbufs_len
        if idle and channel.last_activity < quiet_since:
            channel.will_close = True
