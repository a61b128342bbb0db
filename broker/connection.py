"""One NATS connection per process, driven by a private asyncio loop in a daemon thread.

nats-py is asyncio; Dramatiq calls the broker from many plain threads. Every blocking call hops
onto the loop with :meth:`LoopConnection.run`; fire-and-forget work (acks, heartbeats) uses
:meth:`LoopConnection.submit`. The loop, its thread and the connection belong to the process
that made them: after ``fork()`` (``dramatiq --processes N``) the child finds
the pid changed and builds its own, never touching the parent's socket.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

import nats
from dramatiq.errors import BrokerConnectionError
from nats.aio.client import Client
from nats.js import JetStreamContext

from broker.sign_in import NatsSignIn, SignInRefused, TlsNotOffered, refusal, shown

T = TypeVar("T")

logger = logging.getLogger(__name__)

#: nats-py's own words for "the server is not reachable right now".
NATS_UNREACHABLE: tuple[type[Exception], ...] = (
    nats.errors.ConnectionClosedError,
    nats.errors.NoServersError,
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,  # JetStream without a leader for a moment
)
#: Exceptions that mean "the server is not reachable right now" rather than "you asked wrong",
#: around a call the broker makes (where a socket's ``OSError`` can only be the server's).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    *NATS_UNREACHABLE,
    asyncio.TimeoutError,
    FutureTimeout,
    ConnectionError,
    OSError,
)


class NatsClient(Client):
    """nats-py's client, refusing to go on in the clear where TLS was asked for.

    nats-py upgrades to TLS only when the server's ``INFO`` says ``tls_required``: given a
    ``tls://`` URL or an SSL context, it would otherwise send ``CONNECT`` — a token, a password,
    a user JWT — over plain TCP to a server (or someone in between) that offers no TLS. Here
    such a server is refused before anything is sent (:class:`TlsNotOffered`), and one that
    offers TLS without requiring it (``tls_available``) is upgraded, as the Go client does.
    """

    async def _process_info(self, info: dict[str, Any], initial_connection: bool = False) -> None:
        if initial_connection and self._wants_tls() and not info.get("tls_required"):
            if not info.get("tls_available"):
                where = self._current_server.uri.hostname if self._current_server else "it"
                raise TlsNotOffered(f"{where} offers no TLS")
            info["tls_required"] = True  # the same dict nats-py reads next: it upgrades
        await super()._process_info(info, initial_connection)

    def _wants_tls(self) -> bool:
        server = self._current_server
        return bool(self.options.get("tls")) or (server is not None and server.uri.scheme == "tls")


class LoopConnection:
    """A lazily opened, fork-aware NATS + JetStream connection.

    :param servers: NATS server URLs.
    :param connect_timeout: seconds to keep trying to connect before giving up with
        :class:`dramatiq.errors.BrokerConnectionError`.
    :param name: client name shown by the server (``nats server report connections``).
    :param sign_in: credentials and TLS files beyond what the URLs hold.
    """

    def __init__(
        self,
        servers: list[str],
        *,
        connect_timeout: float = 5.0,
        name: str = "",
        sign_in: NatsSignIn | None = None,
    ) -> None:
        self.servers = servers
        self.connect_timeout = connect_timeout
        self.name = name
        self.sign_in = sign_in or NatsSignIn()
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._closed = False
        self._submit_lock = threading.Lock()
        self._submitted: list[Callable[[], Awaitable[Any]]] = []
        self._drain_scheduled = False
        #: The refusal last logged while reconnecting (each is logged once, not per attempt).
        self._refusal_logged: str | None = None

    # -- loop ------------------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop of this process, started on first use."""
        if self._pid != os.getpid() or self._loop is None:
            with self._lock:
                if self._pid != os.getpid() or self._loop is None:
                    self._start_loop()
        assert self._loop is not None
        return self._loop

    def _start_loop(self) -> None:
        # After fork the parent's loop thread does not exist here: forget it without closing.
        self._nc = None
        self._js = None
        self._closed = False
        self._submit_lock = threading.Lock()
        self._submitted = []
        self._drain_scheduled = False
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        thread = threading.Thread(target=run, name="nats-broker-loop", daemon=True)
        thread.start()
        ready.wait()
        self._loop, self._thread, self._pid = loop, thread, os.getpid()

    def run(self, coro_fn: Callable[[], Coroutine[Any, Any, T]], timeout: float | None = None) -> T:
        """Run ``coro_fn()`` on the loop and wait for its result from the calling thread."""
        # In a context of its own: tasks started on the loop (the client's reader, its
        # callbacks) must not keep the calling thread's context variables (a request's ids).
        future = contextvars.Context().run(asyncio.run_coroutine_threadsafe, coro_fn(), self.loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise

    def submit(self, coro_fn: Callable[[], Awaitable[Any]]) -> None:
        """Schedule ``coro_fn()`` on the loop without waiting; failures are logged.

        Calls are queued and run in order by one drain task, so a burst of acks from many
        worker threads costs one loop wake-up rather than one each.
        """
        loop = self.loop
        with self._submit_lock:
            self._submitted.append(coro_fn)
            if self._drain_scheduled:
                return
            self._drain_scheduled = True
        loop.call_soon_threadsafe(self._start_drain, context=contextvars.Context())

    def _start_drain(self) -> None:
        task = asyncio.ensure_future(self._drain())
        task.add_done_callback(_log_failure)

    async def _drain(self) -> None:
        while True:
            with self._submit_lock:
                if not self._submitted:
                    self._drain_scheduled = False
                    return
                batch, self._submitted = self._submitted, []
            for coro_fn in batch:
                try:
                    await coro_fn()
                except Exception as exc:  # the message comes back after ack_wait
                    logger.debug("background NATS operation failed: %r", exc)

    @property
    def is_running(self) -> bool:
        """True when this process's loop thread is up (it is started lazily)."""
        return self._loop is not None and self._pid == os.getpid() and not self._closed

    # -- connection ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True when this process holds an open connection that is not reconnecting."""
        nc = self._nc
        return self._pid == os.getpid() and nc is not None and nc.is_connected and not nc.is_closed

    async def client(self) -> Client:
        """The connected client (call on the loop). Connects on first use."""
        if self._nc is None or self._nc.is_closed:
            self._nc = await self._connect()
            self._js = self._nc.jetstream(timeout=self.connect_timeout)
        return self._nc

    async def jetstream(self) -> JetStreamContext:
        """The JetStream context (call on the loop)."""
        await self.client()
        assert self._js is not None
        return self._js

    async def _connect(self) -> Client:
        """A connected client, trying for ``connect_timeout`` seconds.

        :raises SignInRefused: the server refused our credentials or we refused its
            certificate — at once: the same settings would be refused again.
        :raises BrokerConnectionError: no server answered in time.
        """
        deadline = time.monotonic() + self.connect_timeout
        last_error: BaseException | None = None
        options = self.sign_in.connect_options()
        while True:
            # A client of our own, so an attempt cut short can be closed: with reconnects on,
            # nats-py's first connect never gives up by itself while no server answers (nor
            # while the server refuses us: its errors reach ``error_cb``, which stops it).
            nc = NatsClient()
            refused: asyncio.Future[SignInRefused] = asyncio.get_running_loop().create_future()
            connecting = asyncio.ensure_future(
                nc.connect(
                    servers=self.servers,
                    name=self.name or None,
                    # nats-py annotates these two in seconds as int; it takes floats.
                    connect_timeout=max(0.5, min(2.0, self.connect_timeout)),  # type: ignore[arg-type]
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.25,  # type: ignore[arg-type]
                    ping_interval=10,
                    max_outstanding_pings=3,
                    error_cb=self._error_callback(refused),
                    disconnected_cb=self._on_disconnect,
                    reconnected_cb=self._on_reconnect,
                    **options,
                )
            )
            either: set[asyncio.Future[Any]] = {connecting, refused}
            done, _ = await asyncio.wait(
                either,
                timeout=max(0.1, deadline - time.monotonic()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if connecting in done and connecting.exception() is None:
                refused.cancel()  # from now on a refusal is logged (see _error_callback)
                return nc
            if not connecting.done():
                connecting.cancel()
                await asyncio.gather(connecting, return_exceptions=True)
            await _close_quietly(nc)
            if refused.done():
                raise SignInRefused(refused.result().kind, refused.result().reason, self._where)
            if connecting.done() and not connecting.cancelled():
                error = connecting.exception()
                found = refusal(error) if error is not None else None
                if found is not None:
                    raise SignInRefused(found.kind, found.reason, self._where)
                if not isinstance(error, TRANSIENT_ERRORS):
                    raise error  # type: ignore[misc]
                last_error = error
            else:
                last_error = last_error or TimeoutError()
            if time.monotonic() >= deadline:
                raise BrokerConnectionError(
                    f"could not connect to NATS at {self._where}: {last_error!r}"
                )
            await asyncio.sleep(0.2)

    @property
    def _where(self) -> str:
        return shown(self.servers)  # never a token or password from a URL

    def _error_callback(
        self, refused: asyncio.Future[SignInRefused]
    ) -> Callable[[Exception], Awaitable[None]]:
        """nats-py's ``error_cb``: a refused sign-in while connecting ends the attempt (it would
        be tried forever); once connected, one is logged (credentials revoked or expired
        while running: the client keeps reconnecting, and an operator must see why)."""

        async def on_error(exc: Exception) -> None:
            found = refusal(exc)
            if found is None:
                logger.debug("NATS client error: %r", exc)
            elif not refused.cancelled():  # still connecting: _connect gives up
                if not refused.done():
                    refused.set_result(found)
            elif found.reason != self._refusal_logged:  # once per reason, not per attempt
                self._refusal_logged = found.reason
                logger.error("%s; reconnecting", found)

        return on_error

    async def _on_reconnect(self) -> None:
        self._refusal_logged = None
        logger.info("reconnected to NATS")

    async def _on_disconnect(self) -> None:
        # Closing on purpose is not news, nor is a first connect that failed.
        if not self._closed and self._nc is not None and not self._nc.is_closed:
            logger.warning("disconnected from NATS; reconnecting")

    def close(self) -> None:
        """Drain and close the connection and stop the loop thread of this process."""
        if self._loop is None or self._pid != os.getpid() or self._closed:
            return
        self._closed = True

        async def _close() -> None:
            if self._nc is not None and not self._nc.is_closed:
                try:
                    await asyncio.wait_for(self._nc.close(), 5)
                except Exception:  # closing is best effort
                    logger.debug("error while closing NATS connection", exc_info=True)
            self._nc = None
            self._js = None
            # Let the client's own tasks (flusher, reader, pinger) finish before the loop stops.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        try:
            self.run(_close, timeout=10)
        except Exception:
            logger.debug("error while closing NATS connection", exc_info=True)
        loop, thread = self._loop, self._thread
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
            if not thread.is_alive():
                loop.close()
        self._loop, self._thread, self._pid = None, None, None


def _log_failure(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.debug("background NATS operation failed: %r", task.exception())


async def _close_quietly(nc: Client) -> None:
    """Close a client whose first connect failed (its reconnect loop may still be running)."""
    try:
        await asyncio.wait_for(nc.close(), 2)
    except Exception:
        logger.debug("error while closing a client that never connected", exc_info=True)
