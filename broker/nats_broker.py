"""A Dramatiq broker on NATS JetStream.

>>> import dramatiq
>>> from broker import NatsBroker
>>> dramatiq.set_broker(NatsBroker(url="nats://127.0.0.1:4222"))

Messages are stored by JetStream before :meth:`NatsBroker.enqueue` returns; every worker process
on every machine pulls from one durable consumer per queue; failed messages go to a dead-letter
stream (see :mod:`broker.dead_letters`). Nothing touches the network until first use, and each
process (after ``fork()`` too) opens its own connection.
"""

from __future__ import annotations

import contextlib
import time
import uuid

import dramatiq
from dramatiq.common import current_millis, dq_name, q_name
from dramatiq.errors import BrokerConnectionError, QueueJoinTimeout
from nats.js.errors import NotFoundError

from broker.backlog import QueueBacklog, read_backlog
from broker.connection import TRANSIENT_ERRORS, LoopConnection
from broker.consumer import NatsConsumer
from broker.dead_letters import DeadLetters
from broker.lanes import TICKET, ensure_lane
from broker.publisher import BlockingPublisher, PublishRejected
from broker.sign_in import NatsSignIn
from broker.topology import Topology
from broker.wire import WireUnsupported

#: Seconds one publish waits for JetStream's acknowledgement before it is tried again.
PUBLISH_ACK_TIMEOUT_S = 2.0


class NatsBroker(dramatiq.Broker):
    """A Dramatiq broker backed by NATS JetStream (server 2.9 or newer).

    :param url: a NATS URL, several separated by commas, or a list of them.
    :param middleware: as for :class:`dramatiq.Broker`.
    :param namespace: prefix of the stream, subject and consumer names; brokers with different
        namespaces share a server without seeing each other.
    :param storage: ``"file"`` (survives server restarts) or ``"memory"``.
    :param replicas: stream replicas in a JetStream cluster.
    :param ack_wait: seconds after which a message held by a dead worker goes to another one.
        Live workers keep their messages with heartbeats however long they run.
    :param max_deliveries: a message delivered this many times without being settled (its
        workers keep dying) is dead-lettered.
    :param dead_letter_ttl: seconds dead letters are kept.
    :param connect_timeout: seconds connection trouble is retried before
        :class:`dramatiq.errors.BrokerConnectionError` is raised.
    :param wire: publish, pull and ack on plain sockets speaking the NATS protocol (fast);
        ``False`` uses nats-py for everything. Servers needing TLS (or nkeys we have no seed
        for) switch to nats-py by themselves, and so does a ``sign_in`` with TLS files.
    :param lane_max_running: most messages of one lane key (a message's ``lane`` option)
        running at once across all workers; ``None``: no cap (:mod:`broker.lanes`).
    :param prefetch: most messages a worker process holds unsettled per queue; ``None``: what
        the worker asks (dramatiq: twice its threads). Lanes choose a message when it is
        fetched, so a prefetch equal to the worker's threads lets each choice see the work
        waiting when a thread frees up, not when the one before it started.
    :param sign_in: credentials (``.creds``, nkey seed) and TLS files beyond what the URL holds
        (:mod:`broker.sign_in`).

    A message whose options name a ``lane`` (and optionally a ``lane_priority``: ``high``,
    ``normal`` or ``low``) shares the workers fairly with other lanes instead of waiting its
    turn behind everything sent before it (:mod:`broker.lanes`).
    """

    def __init__(
        self,
        url: str | list[str] = "nats://127.0.0.1:4222",
        *,
        middleware: list[dramatiq.Middleware] | None = None,
        namespace: str = "dramatiq",
        storage: str = "file",
        replicas: int = 1,
        ack_wait: float = 30.0,
        max_deliveries: int = 5,
        dead_letter_ttl: float = 7 * 86400.0,
        connect_timeout: float = 5.0,
        wire: bool = True,
        lane_max_running: int | None = None,
        prefetch: int | None = None,
        sign_in: NatsSignIn | None = None,
    ) -> None:
        super().__init__(middleware=middleware)
        #: Set when a worker starts shutting down: messages its threads still hold once the
        #: shutdown timeout is over are handed back to the server, not left to the ack wait.
        self.shutting_down = False
        servers = url if isinstance(url, list) else [u.strip() for u in url.split(",")]
        if not servers or not all(servers):
            raise ValueError(f"invalid NATS url {url!r}")
        if max_deliveries < 1:
            raise ValueError("max_deliveries must be at least 1")
        self.topology = Topology(
            namespace=namespace,
            storage=storage,
            replicas=replicas,
            ack_wait=ack_wait,
            dead_letter_ttl=dead_letter_ttl,
        )
        self.max_deliveries = max_deliveries
        if lane_max_running is not None and lane_max_running < 1:
            raise ValueError("lane_max_running must be at least 1")
        self.lane_max_running = lane_max_running
        if prefetch is not None and prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        self.prefetch = prefetch
        self._ready_lanes: set[tuple[str, str, int]] = set()
        self.connect_timeout = connect_timeout
        self.sign_in = sign_in or NatsSignIn()
        self.connection = LoopConnection(
            servers,
            connect_timeout=connect_timeout,
            name=f"dramatiq-{namespace}",
            sign_in=self.sign_in,
        )
        self.queues: set[str] = set()
        self._ready_queues: set[str] = set()
        self._streams_ready = False
        # The wire client speaks no TLS (it signs nonces: creds and nkey seeds keep it): TLS
        # files or a tls:// server leave everything to nats-py, which keeps to TLS.
        tls_url = any(s.lower().startswith(("tls://", "ws://", "wss://")) for s in servers)
        wire = wire and not tls_url and not self.sign_in.uses_tls
        self.use_wire = wire
        self._publisher: BlockingPublisher | None = (
            BlockingPublisher(servers, timeout=PUBLISH_ACK_TIMEOUT_S, sign_in=self.sign_in)
            if wire
            else None
        )
        self.dead_letters = DeadLetters(self.connection, self.topology, self.enqueue)

    @property
    def namespace(self) -> str:
        return self.topology.namespace

    # -- queues ------------------------------------------------------------------------------

    def declare_queue(self, queue_name: str) -> None:
        """Declare a queue and its delay queue. No I/O: JetStream objects appear on first use."""
        if queue_name in self.queues:
            return
        Topology.check_queue_name(queue_name)
        self.emit_before("declare_queue", queue_name)
        self.queues.add(queue_name)
        self.emit_after("declare_queue", queue_name)
        delayed = dq_name(queue_name)
        self.delay_queues.add(delayed)
        self.emit_after("declare_delay_queue", delayed)

    async def ensure_queue_async(self, queue_name: str) -> None:
        """Create the streams and this queue's consumer if they are missing (on the loop)."""
        if queue_name in self._ready_queues and self._streams_ready:
            return
        js = await self.connection.jetstream()
        if not self._streams_ready:
            await self.topology.ensure_streams(js)
            self._streams_ready = True
        await self.topology.ensure_consumer(js, queue_name)
        self._ready_queues.add(queue_name)

    def ensure_queue(self, queue_name: str) -> None:
        """Create the streams and this queue's consumer if they are missing."""
        self._call(lambda: self.ensure_queue_async(queue_name), f"declaring {queue_name!r}")

    def get_declared_queues(self) -> set[str]:
        return self.queues.copy()

    # -- sending -----------------------------------------------------------------------------

    def enqueue(self, message: dramatiq.Message, *, delay: int | None = None) -> dramatiq.Message:
        """Store ``message`` in JetStream; returns once the server has acknowledged it.

        :param delay: milliseconds to wait before the message may run.
        :raises BrokerConnectionError: NATS did not answer within ``connect_timeout``.
        """
        queue_name = message.queue_name
        if delay is not None:
            queue_name = dq_name(queue_name)
            message = message.copy(
                queue_name=queue_name, options={"eta": current_millis() + int(delay)}
            )
        self.emit_before("enqueue", message, delay)
        msg_id = f"{message.message_id}-{uuid.uuid4()}"
        lane = message.options.get("lane")
        if lane is None or delay is not None:
            self._publish(queue_name, message.encode(), msg_id=msg_id)
        else:
            # The lane's message first, then its ticket: a ticket always finds a message.
            key = self.topology.lane_key(lane)
            priority = self.topology.priority_rank(message.options.get("lane_priority", "normal"))
            subject = self.topology.lane_subject(queue_name, key, priority)
            self._publish(
                queue_name, message.encode(), msg_id=msg_id, subject=subject, lane=(key, priority)
            )
            self._publish(queue_name, TICKET, msg_id=f"{msg_id}-t")
        self.emit_after("enqueue", message, delay)
        return message

    def send_tickets(self, queue_name: str, count: int) -> None:
        """Store ``count`` tickets on ``queue_name`` (for lane messages that lost theirs)."""
        for _ in range(count):
            self._publish(queue_name, TICKET, msg_id=f"ticket-{uuid.uuid4()}")

    def _publish(
        self,
        queue_name: str,
        payload: bytes,
        *,
        msg_id: str,
        subject: str | None = None,
        lane: tuple[str, int] | None = None,
    ) -> None:
        """Store one message (on ``queue_name``'s subject, or ``subject``), retrying connection
        trouble with the same ``Nats-Msg-Id``; ``lane`` names the lane consumer to make first."""
        subject = subject or self.topology.subject(queue_name)
        canonical = q_name(queue_name)
        deadline = time.monotonic() + self.connect_timeout
        while True:
            try:
                if canonical not in self._ready_queues or not self._streams_ready:
                    self._call(lambda: self._ensure_pair(canonical), f"declaring {canonical!r}")
                if lane is not None and (canonical, *lane) not in self._ready_lanes:
                    self._call(lambda: self._ensure_lane(canonical, *lane), "declaring a lane")
                self._send(subject, payload, msg_id)
                return
            except BrokerConnectionError:
                raise
            except (PublishRejected, NotFoundError) as exc:
                if getattr(exc, "code", 503) not in (503, 404, 10059):
                    raise
                # The stream vanished (an operator deleted it): create it again and retry.
                self._streams_ready = False
                self._ready_queues.clear()
                self._ready_lanes.clear()
                error: BaseException = exc
            except TRANSIENT_ERRORS as exc:
                error = exc
            if time.monotonic() >= deadline:
                raise BrokerConnectionError(f"could not enqueue on {queue_name!r}: {error!r}")
            time.sleep(0.1)

    async def _ensure_lane(self, queue_name: str, key: str, priority: int) -> None:
        js = await self.connection.jetstream()
        await ensure_lane(js, self.topology, queue_name, key, priority)
        self._ready_lanes.add((queue_name, key, priority))

    async def _ensure_pair(self, queue_name: str) -> None:
        await self.ensure_queue_async(queue_name)
        await self.ensure_queue_async(dq_name(queue_name))

    def _send(self, subject: str, payload: bytes, msg_id: str) -> None:
        if self._publisher is not None:
            try:
                self._publisher.publish(
                    subject, payload, msg_id=msg_id, stream=self.topology.stream
                )
                return
            except WireUnsupported:
                self._publisher = None  # e.g. TLS: the asyncio client handles it from now on
                self.use_wire = False

        async def publish() -> None:
            js = await self.connection.jetstream()
            await js.publish(
                subject,
                payload,
                timeout=PUBLISH_ACK_TIMEOUT_S,
                stream=self.topology.stream,
                headers={"Nats-Msg-Id": msg_id},
            )

        self.connection.run(publish, timeout=PUBLISH_ACK_TIMEOUT_S + 1)

    # -- consuming ---------------------------------------------------------------------------

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> NatsConsumer:
        """A consumer of ``queue_name`` holding at most ``prefetch`` messages at once.

        :param timeout: milliseconds an idle ``next()`` waits before returning ``None``.
        """
        if self.prefetch is not None and not queue_name.endswith(".DQ"):
            prefetch = self.prefetch
        return NatsConsumer(self, queue_name, prefetch, timeout)

    # -- maintenance -------------------------------------------------------------------------

    def flush(self, queue_name: str) -> None:
        """Drop every message of ``queue_name`` and of its delay queue."""

        async def purge() -> None:
            js = await self.connection.jetstream()
            for name in (q_name(queue_name), dq_name(queue_name)):
                await self.ensure_queue_async(name)
                await js.purge_stream(self.topology.stream, subject=self.topology.subject(name))
            lanes = self.topology.lanes_filter(q_name(queue_name))
            await js.purge_stream(self.topology.stream, subject=lanes)

        self._call(purge, f"flushing {queue_name!r}")

    def flush_all(self) -> None:
        """Drop every message of every declared queue."""
        for queue_name in self.get_declared_queues():
            self.flush(queue_name)

    def join(self, queue_name: str, *, timeout: int | None = None) -> None:
        """Wait until ``queue_name`` and its delay queue hold no message, run or unrun.

        :param timeout: milliseconds; ``None`` waits forever.
        :raises QueueJoinTimeout: still busy after ``timeout``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout / 1000
        names = (q_name(queue_name), dq_name(queue_name))
        while True:
            # Settled messages of a delay queue become new messages on the queue itself:
            # look at the queue once more so none slips between the two reads.
            if all(self._outstanding(name) == 0 for name in names) and (
                self._outstanding(names[0]) == 0
            ):
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise QueueJoinTimeout(queue_name)
            time.sleep(0.05)

    def queue_stats(self, timeout: float = 3.0) -> dict[str, tuple[int, int]]:
        """``{queue: (waiting, in_progress)}`` for every declared queue, read from JetStream in
        one round of calls: messages not yet delivered, and delivered but not yet settled."""
        names = sorted(self.get_declared_queues())

        async def read() -> dict[str, tuple[int, int]]:
            return {name: await self._counts(name) for name in names}

        return self._call(read, "reading queue statistics", timeout=timeout)

    def queue_backlog(self, timeout: float = 3.0) -> dict[str, QueueBacklog]:
        """``{queue: QueueBacklog}`` for every declared queue: what :meth:`queue_stats` reads,
        plus when the oldest waiting message was stored (one more call per queue where
        messages wait; :mod:`broker.backlog`). What to scale workers on."""
        names = sorted(self.get_declared_queues())

        async def read() -> dict[str, QueueBacklog]:
            nc = await self.connection.client()
            js = await self.connection.jetstream()
            found = {}
            for name in names:
                await self.ensure_queue_async(name)
                found[name] = await read_backlog(nc, js, self.topology, name, timeout=timeout)
            return found

        return self._call(read, "reading queue backlogs", timeout=timeout)

    def emit_after(self, signal: str, *args, **kwargs) -> None:
        """As dramatiq's, but a failed message whose retry could not be scheduled is marked to
        come back after the ack wait instead of being acknowledged.

        The Retries middleware schedules a retry by enqueueing the message again. When that
        enqueue fails (NATS away), dramatiq logs the failure and acknowledges the message
        all the same: it would be gone, retries and all.
        """
        if signal != "process_message" or kwargs.get("exception") is None:
            super().emit_after(signal, *args, **kwargs)
            return
        message = args[0]
        for middleware in reversed(self.middleware):
            try:
                middleware.after_process_message(self, *args, **kwargs)
            except Exception:
                self.logger.critical(
                    "Unexpected failure in after_process_message of %r; the message will be "
                    "delivered again after the ack wait",
                    middleware,
                    exc_info=True,
                )
                message.unsettled_on_purpose = True

    def emit_before(self, signal: str, *args, **kwargs) -> None:
        if signal == "worker_shutdown":
            self.shutting_down = True
        super().emit_before(signal, *args, **kwargs)

    def _outstanding(self, queue_name: str) -> int:
        async def count() -> int:
            return sum(await self._counts(queue_name))

        return self._call(count, f"inspecting {queue_name!r}")

    async def _counts(self, queue_name: str) -> tuple[int, int]:
        """(not yet delivered, delivered but unsettled) of one queue's consumer."""
        await self.ensure_queue_async(queue_name)
        js = await self.connection.jetstream()
        info = await js.consumer_info(self.topology.stream, self.topology.durable(queue_name))
        return int(info.num_pending or 0), int(info.num_ack_pending or 0)

    def delete_streams(self) -> None:
        """Delete this namespace's streams and everything in them (tests, teardown)."""

        async def delete() -> None:
            js = await self.connection.jetstream()
            for stream in (self.topology.stream, self.topology.dead_letter_stream):
                with contextlib.suppress(NotFoundError):
                    await js.delete_stream(stream)
            self._streams_ready = False
            self._ready_queues.clear()
            self._ready_lanes.clear()

        self._call(delete, "deleting streams")

    def check_sign_in(self) -> None:
        """Connect now, so that a refused sign-in is known at start.

        :raises broker.sign_in.SignInRefused: the server refused our credentials, or we its
            certificate.
        :raises BrokerConnectionError: no server answered within ``connect_timeout``.
        """
        self._call(self.connection.client, "connecting")

    def close(self) -> None:
        """Close this process's connection (after draining what it sent)."""
        self.connection.close()
        if self._publisher is not None:
            self._publisher.close()
        self._ready_queues.clear()
        self._ready_lanes.clear()
        self._streams_ready = False

    def _call(self, coro_fn, what: str, timeout: float | None = None):
        try:
            return self.connection.run(coro_fn, timeout=timeout or self.connect_timeout + 5)
        except BrokerConnectionError:
            raise
        except TRANSIENT_ERRORS as exc:
            raise BrokerConnectionError(f"{what} failed: {exc!r}") from exc
