"""Event streams (Server-Sent Events) that no client can hold for good.

Each open stream keeps one of the web process's ``WEB_THREADS`` threads for as long as it
lasts (the server runs one request per thread). Unbounded, a handful of clients with streams
open would take every thread and ``/healthz`` would wait behind them. So a stream:

* ends after ``EVENT_STREAM_MAX_S`` with a ``retry:`` hint: ``EventSource`` reconnects by
  itself, sending the id of the last event it saw as ``Last-Event-ID``, and the new stream
  carries on after it (:func:`last_event_id`; a ``last_event_id`` query parameter does the same
  for clients without ``EventSource``);
* counts against its tenant: at most ``EVENT_STREAMS_PER_TENANT`` open in one process (the next
  is a 429 with ``Retry-After``), so one tenant cannot take the process's share from the others;
* counts against the process: at most :func:`process_cap` open at once (the next is a 503 with
  ``Retry-After``), so some threads always stay free for ordinary requests;
* ends at once when the server is told to stop (:func:`close_all`), so a deploy does not wait
  ``GRACEFUL_TIMEOUT`` for streams that would never end by themselves.

A stream's place is given back when the server closes the response (the client went away, the
stream ended, or the response was never read): the response's ``close``, which the WSGI server
always calls, not the generator's end, which a client that disconnects never reaches.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator

from flask import Response, current_app, request, stream_with_context

from app.http import current
from app.http.errors import ApiError

#: Threads kept free of event streams for ordinary requests (at most half of ``WEB_THREADS``).
RESERVED_THREADS = 8
#: Seconds a client refused a stream is asked to wait (``Retry-After``).
RETRY_AFTER_S = 5
#: Milliseconds ``EventSource`` waits before reconnecting once a stream has been ended.
RECONNECT_MS = 1000
#: Larger ids are not ids we gave out (Postgres ``bigint``).
MAX_EVENT_ID = 2**63 - 1

_closing = threading.Event()
_limits_lock = threading.Lock()
#: The streams open in this process, for :func:`close_all` to wake.
_live: weakref.WeakSet[Live] = weakref.WeakSet()


def process_cap(web_threads: int) -> int:
    """Streams one process serves at once: every thread but :data:`RESERVED_THREADS` (or half
    of them, for a small pool)."""
    return web_threads - min(RESERVED_THREADS, web_threads // 2)


def close_all() -> None:
    """The server is stopping: every stream ends now (its wait is cut short), new ones at once."""
    _closing.set()
    with _limits_lock:
        waiting = list(_live)
    for live in waiting:
        live.woken.set()


class Slot:
    """One open stream's place; :meth:`release` gives it back (once, however often called)."""

    def __init__(self, limits: StreamLimits, tenant: str) -> None:
        self._limits, self._tenant = limits, tenant
        self._released = False

    def release(self) -> None:
        with self._limits.lock:
            if not self._released:
                self._released = True
                self._limits.let_go(self._tenant)


class StreamLimits:
    """Open streams of one process, by tenant and in all."""

    def __init__(self, per_tenant: int, total: int) -> None:
        self.per_tenant, self.total = per_tenant, total
        self.lock = threading.Lock()
        self.by_tenant: dict[str, int] = {}
        self.open = 0

    def take(self, tenant: str) -> Slot:
        """A place for a new stream of ``tenant``.

        :raises ApiError: 429 when the tenant has its share open, 503 when the process has.
        """
        with self.lock:
            if self.by_tenant.get(tenant, 0) >= self.per_tenant:
                raise ApiError(
                    429,
                    "too_many_streams",
                    f"at most {self.per_tenant} event streams may be open at once "
                    "(EVENT_STREAMS_PER_TENANT); close one or retry later",
                    retry_after=RETRY_AFTER_S,
                )
            if self.open >= self.total:
                raise ApiError(
                    503,
                    "server_busy",
                    "this server has as many event streams open as it serves; retry shortly",
                    retry_after=RETRY_AFTER_S,
                )
            self.by_tenant[tenant] = self.by_tenant.get(tenant, 0) + 1
            self.open += 1
        return Slot(self, tenant)

    def let_go(self, tenant: str) -> None:
        """Called with :attr:`lock` held, by :meth:`Slot.release` only."""
        left = self.by_tenant.get(tenant, 0) - 1
        if left > 0:
            self.by_tenant[tenant] = left
        else:
            self.by_tenant.pop(tenant, None)
        self.open -= 1


def limits() -> StreamLimits:
    """This app's stream limits, made from its settings on first use."""
    extensions = current_app.extensions
    with _limits_lock:
        if "event_streams" not in extensions:
            config = current.config()
            extensions["event_streams"] = StreamLimits(
                config.event_streams_per_tenant, process_cap(config.web_threads)
            )
        return extensions["event_streams"]


def last_event_id() -> int:
    """The id the client saw last (``Last-Event-ID``, else ``?last_event_id=``), 0 for none.

    :raises ApiError: 400 when it is not an id we could have sent.
    """
    raw = request.headers.get("Last-Event-ID") or request.args.get("last_event_id") or ""
    raw = raw.strip()
    if not raw:
        return 0
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_EVENT_ID:
        raise ApiError(400, "bad_parameter", "Last-Event-ID must be the id of an event")
    return int(raw)


class Live:
    """What a stream's body asks between two sends: may it go on?"""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.cut = False  # told to stop: time was up, or the server is stopping
        #: Set to end the current wait early: there is something new to read (a
        #: :class:`app.http.job_watch.JobWatch` sets it), or the server is stopping.
        self.woken = threading.Event()
        with _limits_lock:
            _live.add(self)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, or until :attr:`woken`; False when the stream must end
        now (time is up, or the server is stopping)."""
        remaining = self.deadline - time.monotonic()
        if remaining > 0 and not _closing.is_set():
            self.woken.wait(min(seconds, remaining))
        self.woken.clear()  # what set it is read next: a later set wakes the next wait
        self.cut = _closing.is_set() or time.monotonic() >= self.deadline
        return not self.cut


def respond(tenant: str, body: Callable[[Live], Iterator[str]]) -> Response:
    """A ``text/event-stream`` response of ``body``'s blocks, within the limits above.

    ``body`` yields SSE blocks and calls :meth:`Live.wait` between them; when that says stop,
    it returns and the stream ends with a ``retry:`` hint.

    :raises ApiError: 429 / 503 when the tenant or the process has too many streams open.
    """
    slot = limits().take(tenant)
    try:
        live = Live(time.monotonic() + current.config().event_stream_max_s)
        response = Response(
            stream_with_context(_bounded(body, live)),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    except BaseException:
        slot.release()
        raise
    response.call_on_close(slot.release)
    return response


def _bounded(body: Callable[[Live], Iterator[str]], live: Live) -> Iterator[str]:
    yield from body(live)
    if live.cut:  # not over: the client is to come back for the rest
        yield f"retry: {RECONNECT_MS}\n: stream time is up; reconnect with Last-Event-ID\n\n"
