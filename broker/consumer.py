"""Pulling one queue's messages for a Dramatiq worker, and settling them.

Contract with Dramatiq's worker (see :class:`dramatiq.broker.Consumer`):

* ``__next__`` returns a message, or ``None`` after ``timeout`` with nothing to do; it never holds
  more than ``prefetch`` unsettled messages;
* ``ack`` after success; ``nack`` sends the message to the dead letters; ``requeue`` (shutdown)
  hands unstarted messages straight back to the stream.

What JetStream adds: while a message is held, a heartbeat (``+WPI``) every ``ack_wait / 3`` keeps
the server from redelivering it, for as long as the actor may run (its time limit plus a grace);
if the worker process dies the beats stop and another worker gets the message after ``ack_wait``.
A message delivered more than ``max_deliveries`` times (its workers keep dying) is dead-lettered
instead of run. A *ticket* (:mod:`broker.lanes`) is exchanged for the fairest waiting lane
message; the two are settled together. Delay-queue messages are only handed over when nearly
due: earlier, they are ``NAK``-ed with a delay so the server keeps them, not the worker's memory.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterable
from typing import Protocol, cast

import dramatiq
from dramatiq.broker import Consumer, MessageProxy
from dramatiq.common import current_millis
from dramatiq.errors import BrokerConnectionError

from broker.connection import TRANSIENT_ERRORS, LoopConnection
from broker.dead_letters import encode_record
from broker.lanes import TICKET, LaneReader, Outcome
from broker.pull import AsyncPull, Delivery, PullTransport, WirePull, nak_payload
from broker.topology import Topology
from broker.wire import WireUnsupported

logger = logging.getLogger(__name__)

#: A delayed message is handed to the worker when it is due within this many milliseconds.
DELAY_HANDOVER_MS = 500
#: Dramatiq's TimeLimit middleware default, used when neither message nor actor sets one.
DEFAULT_TIME_LIMIT_MS = 600_000
#: Extra heartbeat time beyond the time limit, for the TimeLimit middleware to act.
TIME_LIMIT_GRACE_S = 30.0
#: Seconds between looks at the lanes while every waiting lane message is over its key's cap.
CAPPED_RETRY_S = 0.25
#: Seconds a ticket is handed back for when no lane message waits but some are running (one of
#: them may come back from a dead worker).
BUSY_TICKET_DELAY_S = 2.0
#: Seconds an idle consumer waits between looks for lane messages that lost their ticket.
STRANDED_CHECK_S = 10.0


class NatsMessageProxy(MessageProxy):
    """A Dramatiq message together with the JetStream delivery it came from."""

    def __init__(
        self,
        message: dramatiq.Message,
        delivery: Delivery,
        beat_until: float,
        ticket: Delivery | None = None,
    ) -> None:
        super().__init__(message)
        self._delivery = delivery
        self._beat_until = beat_until
        #: The ticket this lane message was taken with (settled with it), if any.
        self._ticket = ticket
        #: Set when the worker must not acknowledge it (:meth:`NatsBroker.emit_after`).
        self.unsettled_on_purpose = False


class QueueOwner(Protocol):
    """What a consumer needs of the broker that made it (:class:`broker.NatsBroker`)."""

    connection: LoopConnection
    topology: Topology
    connect_timeout: float
    max_deliveries: int
    #: Pull on plain sockets; a consumer that finds the server needs nats-py turns it off.
    use_wire: bool
    #: Set when the worker starts shutting down: held messages are handed back.
    shutting_down: bool
    #: Most messages of one lane key running at once (``None``: no cap).
    lane_max_running: int | None
    #: The prefetch it sets for every queue but delay queues (``None``: the worker's).
    prefetch: int | None

    def ensure_queue(self, queue_name: str) -> None:
        """Create the queue's stream and durable consumer if they are missing."""

    def send_tickets(self, queue_name: str, count: int) -> None:
        """Store ``count`` tickets on the queue (for lane messages that lost theirs)."""

    def get_actor(self, actor_name: str) -> dramatiq.Actor: ...


class NatsConsumer(Consumer):
    """A pull consumer on one queue's durable JetStream consumer.

    :param broker: the broker that made it.
    :param queue_name: the Dramatiq queue (a delay queue if it ends in ``.DQ``).
    :param prefetch: the most messages held unsettled at once.
    :param timeout: milliseconds ``__next__`` waits before returning ``None``.
    """

    def __init__(self, broker: QueueOwner, queue_name: str, prefetch: int, timeout: int) -> None:
        self.broker = broker
        self.queue_name = queue_name
        self.is_delay_queue = queue_name.endswith(".DQ")
        self.prefetch = max(1, prefetch)
        self.timeout_s = max(0.05, timeout / 1000)
        # With a prefetch as large as the worker's threads (the broker's own ``prefetch``), a
        # free thread must get a message at once: waiting to fetch several would leave it idle
        # for as long as the others' messages run.
        self._refill_at = 1 if broker.prefetch is not None else max(1, self.prefetch // 2)
        self._conn = broker.connection
        self._transport: PullTransport | None = None
        self._buffer: deque[Delivery] = deque()
        self._held: dict[int, NatsMessageProxy] = {}
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._closed = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._lanes: LaneReader | None = None
        #: A ticket kept while every waiting lane message is over its key's cap.
        self._ticket: Delivery | None = None
        self._ticket_retry_at = 0.0
        self._stranded_check_at = time.monotonic() + STRANDED_CHECK_S

    # -- iteration ---------------------------------------------------------------------------

    def __next__(self) -> NatsMessageProxy | None:
        deadline = time.monotonic() + self.timeout_s
        while True:
            if self._ticket is not None:
                # Any ticket takes any lane's message: wait for room under the cap with this
                # one rather than fetch more.
                wait = self._ticket_retry_at - time.monotonic()
                if wait > 0:
                    if deadline - time.monotonic() <= 0:
                        return None
                    self._closed.wait(min(wait, max(0.0, deadline - time.monotonic())))
                    continue
                ticket, self._ticket = self._ticket, None
                proxy = self._exchange(ticket)
                if proxy is not None:
                    return proxy
                continue
            if self._buffer:
                proxy = self._accept(self._buffer.popleft())
                if proxy is not None:
                    return proxy
                continue
            transport = self._transport or self._open()
            room = self.prefetch - len(self._held)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._find_stranded()
                return None
            if room < self._refill_at and self._held and not transport.in_flight:
                # Nearly full: wait until the worker has settled a few, then fetch them in one
                # request, rather than one round trip per settled message.
                with self._settled:
                    self._settled.wait_for(
                        lambda: self.prefetch - len(self._held) >= self._refill_at, remaining
                    )
                if self.prefetch - len(self._held) < self._refill_at:
                    return None
                continue
            try:
                self._buffer.extend(transport.fetch(room, remaining))
            except WireUnsupported:
                self.broker.use_wire = False
                self._transport = None
                continue
            if not self._buffer:
                self._find_stranded()
                return None

    def _open(self) -> PullTransport:
        """Make sure the queue exists, then pick the wire client or nats-py."""
        topology = self.broker.topology
        self.broker.ensure_queue(self.queue_name)
        durable = topology.durable(self.queue_name)
        if self.broker.use_wire:
            self._transport = WirePull(
                self.broker.connection.servers,
                topology.stream,
                durable,
                min_batch=self._refill_at,
                timeout=self.broker.connect_timeout,
                sign_in=self.broker.connection.sign_in,
            )
        else:
            self._transport = AsyncPull(
                self._conn, topology.stream, durable, connect_timeout=self.broker.connect_timeout
            )
        if self._heartbeat is None:
            self._heartbeat = threading.Thread(
                target=self._beat, name=f"heartbeat-{self.queue_name}", daemon=True
            )
            self._heartbeat.start()
        return self._transport

    def _accept(self, delivery: Delivery) -> NatsMessageProxy | None:
        """Turn a delivery into a message for the worker, or settle it here and return None."""
        if delivery.data == TICKET and not self.is_delay_queue:
            return self._exchange(delivery)
        return self._admit(delivery)

    def _admit(self, delivery: Delivery, ticket: Delivery | None = None) -> NatsMessageProxy | None:
        """A message for the worker, or None once it was settled here (``ticket`` with it)."""
        try:
            message = dramatiq.Message.decode(delivery.data)
        except Exception as exc:  # any garbage on the subject must not stop the worker
            self._bury(delivery, None, f"undecodable message: {exc}", raw=delivery.data)
            self._settle_ticket(ticket, b"+ACK")
            return None
        deliveries = delivery.num_delivered
        if self.is_delay_queue:
            due_in_ms = int(message.options.get("eta", 0)) - current_millis()
            if due_in_ms > DELAY_HANDOVER_MS:
                delay_s = (due_in_ms - DELAY_HANDOVER_MS / 2) / 1000
                self._send(delivery, nak_payload(delay_s))
                return None
        elif deliveries > self.broker.max_deliveries:
            reason = (
                f"delivered {deliveries} times without being acknowledged "
                "(its worker process probably died while running it)"
            )
            self._bury(delivery, message, reason)
            self._settle_ticket(ticket, b"+ACK")
            return None
        beat_until = time.monotonic() + self._beat_budget(message)
        proxy = NatsMessageProxy(message, delivery, beat_until, ticket)
        with self._lock:
            self._held[id(proxy)] = proxy
        return proxy

    # -- lanes -------------------------------------------------------------------------------

    def _lane_reader(self) -> LaneReader:
        if self._lanes is None:
            self._lanes = LaneReader(
                self._conn,
                self.broker.topology,
                self.queue_name,
                max_running=self.broker.lane_max_running,
                timeout=self.broker.connect_timeout,
            )
        return self._lanes

    def _exchange(self, ticket: Delivery) -> NatsMessageProxy | None:
        """Take the fairest lane message for ``ticket``; None if there is none to take now."""
        try:
            taken = self._lane_reader().take()
        except TRANSIENT_ERRORS as exc:
            # Keep the ticket (its heartbeat too) and try again shortly.
            logger.warning("reading the lanes of %r failed: %r", self.queue_name, exc)
            self._keep_ticket(ticket, 1.0)
            return None
        if taken is Outcome.CAPPED:
            self._keep_ticket(ticket, CAPPED_RETRY_S)
            return None
        if taken is Outcome.BUSY:
            self._send(ticket, nak_payload(BUSY_TICKET_DELAY_S))
            return None
        if taken is Outcome.EMPTY:
            logger.debug("a surplus ticket on %r: nothing waits in its lanes", self.queue_name)
            self._send(ticket, b"+ACK")
            return None
        assert isinstance(taken, Delivery)
        return self._admit(taken, ticket)

    def _keep_ticket(self, ticket: Delivery, retry_in: float) -> None:
        self._ticket = ticket
        self._ticket_retry_at = time.monotonic() + retry_in

    def _settle_ticket(self, ticket: Delivery | None, payload: bytes) -> None:
        if ticket is not None:
            self._send(ticket, payload)

    def _find_stranded(self) -> None:
        """While idle, now and then: send tickets for lane messages that have none."""
        if self.is_delay_queue:
            return
        now = time.monotonic()
        if now < self._stranded_check_at:
            return
        self._stranded_check_at = now + STRANDED_CHECK_S
        try:
            missing = self._lane_reader().stranded()
            if missing:
                logger.warning(
                    "%d lane messages of %r had no ticket: sending them", missing, self.queue_name
                )
                self.broker.send_tickets(self.queue_name, missing)
        except Exception as exc:  # the next idle moment tries again
            logger.debug("looking for stranded lane messages failed: %r", exc)

    def _beat_budget(self, message: dramatiq.Message) -> float:
        """Seconds this message may be kept alive with heartbeats."""
        limit = message.options.get("time_limit")
        if limit is None:
            try:
                limit = self.broker.get_actor(message.actor_name).options.get("time_limit")
            except dramatiq.errors.ActorNotFound:
                limit = None
        limit_ms = limit if limit is not None else DEFAULT_TIME_LIMIT_MS
        if self.is_delay_queue:
            limit_ms = DELAY_HANDOVER_MS * 4
        return limit_ms / 1000 + TIME_LIMIT_GRACE_S

    # -- settling ----------------------------------------------------------------------------

    # The worker hands back only the proxies this consumer made (:class:`NatsMessageProxy`),
    # hence the casts below.
    def ack(self, message: MessageProxy) -> None:
        message = cast(NatsMessageProxy, message)
        if message.unsettled_on_purpose:
            with self._lock:  # no more heartbeats: it comes back after the ack wait
                self._held.pop(id(message), None)
                self._settled.notify()
            return
        self._settle(message, b"+ACK")

    def nack(self, message: MessageProxy) -> None:
        message = cast(NatsMessageProxy, message)
        exc = message._exception
        tb = message.options.get("traceback")
        if tb is None and exc is not None:
            tb = "".join(traceback.format_exception(exc))
        reason = f"{type(exc).__name__}: {exc}" if exc is not None else "rejected by the worker"
        record = encode_record(
            queue_name=self.queue_name,
            reason=reason,
            deliveries=message._delivery.num_delivered,
            message=message._message,
            traceback=tb,
        )
        self._publish_dead_letter(record)
        self._settle(message, b"+ACK")

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        for message in messages:
            self._settle(cast(NatsMessageProxy, message), b"-NAK")
        while self._buffer:
            self._send(self._buffer.popleft(), b"-NAK")
        ticket, self._ticket = self._ticket, None
        self._settle_ticket(ticket, b"-NAK")

    def _settle(self, message: NatsMessageProxy, payload: bytes) -> None:
        self._send(message._delivery, payload)
        self._settle_ticket(message._ticket, payload)
        with self._lock:
            self._held.pop(id(message), None)
            self._settled.notify()

    def _send(self, delivery: Delivery, payload: bytes) -> None:
        transport = self._transport or self._open()
        transport.settle(delivery, payload)

    def _bury(
        self,
        delivery: Delivery,
        message: dramatiq.Message | None,
        reason: str,
        raw: bytes | None = None,
    ) -> None:
        """Dead-letter a delivery the worker never sees."""
        logger.error("dead-lettering a message from %r: %s", self.queue_name, reason)
        record = encode_record(
            queue_name=self.queue_name,
            reason=reason,
            deliveries=delivery.num_delivered,
            message=message,
            raw=raw,
        )
        self._publish_dead_letter(record)
        self._send(delivery, b"+ACK")

    def _publish_dead_letter(self, record: bytes) -> None:
        subject = self.broker.topology.dead_letter_subject(self.queue_name)

        async def publish() -> None:
            js = await self._conn.jetstream()
            await js.publish(subject, record, stream=self.broker.topology.dead_letter_stream)

        try:
            self._conn.run(publish, timeout=self.broker.connect_timeout)
        except TRANSIENT_ERRORS as exc:
            raise BrokerConnectionError(f"could not store a dead letter: {exc!r}") from exc

    # -- heartbeats --------------------------------------------------------------------------

    def _beat(self) -> None:
        """Tell the server every ``ack_wait / 3`` that held messages are still being worked on."""
        interval = max(0.1, self.broker.topology.ack_wait / 3)
        while not self._closed.wait(interval):
            now = time.monotonic()
            with self._lock:
                alive = [p for p in self._held.values() if p._beat_until > now]
            deliveries = [p._delivery for p in alive] + [p._ticket for p in alive if p._ticket]
            if self._ticket is not None:
                deliveries.append(self._ticket)
            transport = self._transport
            if transport is None:
                continue
            for delivery in deliveries:
                try:
                    transport.settle(delivery, b"+WPI")
                except Exception:  # reconnecting: the next beat tries again
                    break

    def close(self) -> None:
        self._closed.set()
        transport, self._transport = self._transport, None
        if transport is None:
            return
        abandoned: list[NatsMessageProxy] = []
        if self.broker.shutting_down:
            # The worker waited its shutdown timeout and is going: what its threads still hold
            # is abandoned. Another worker gets it now, not after the ack wait.
            with self._lock:
                abandoned = list(self._held.values())
                self._held.clear()
        # Requests still open on the server may bring messages after the worker stopped taking
        # them. Wait those out first: a message handed back while they are open can be
        # delivered straight back into them, and then waits out the ack wait.
        late = [*self._buffer]
        self._buffer.clear()
        try:
            late.extend(transport.close())
        except Exception:
            logger.warning("waiting out the open pull requests failed", exc_info=True)
        ticket, self._ticket = self._ticket, None
        if ticket is not None:
            late.append(ticket)
        for proxy in abandoned:
            logger.warning("handing back %s, unfinished at shutdown", proxy._message)
            try:
                transport.settle(proxy._delivery, b"-NAK")
                if proxy._ticket is not None:
                    transport.settle(proxy._ticket, b"-NAK")
            except Exception:  # the server redelivers it after the ack wait instead
                logger.warning("handing back %s failed", proxy._message, exc_info=True)
        try:
            for delivery in late:
                transport.settle(delivery, b"-NAK")
        except Exception:
            logger.warning("handing back late deliveries failed", exc_info=True)
        transport.shutdown()
