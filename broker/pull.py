"""Pulling from a durable JetStream consumer: the transports behind :mod:`broker.consumer`.

Two implementations of one small contract (:class:`PullTransport`):

* :class:`WirePull` speaks the protocol on its own blocking socket (:mod:`broker.wire`). Pull
  requests are *credits*: a request for ``n`` messages stays open on the server until ``n`` were
  delivered or it expires, so a busy worker gets each message the moment one is stored, with one
  request per batch instead of a round trip per fetch. Acks are one ``PUB`` each, written by the
  worker thread that settles the message.
* :class:`AsyncPull` uses nats-py on the broker's event-loop thread, for servers the wire client
  cannot speak to (TLS, nkeys/JWT).

Deliveries carry their ack subject; any connection may settle them, so a message survives its
consumer being rebuilt after a connection error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from dramatiq.errors import BrokerConnectionError

from broker.sign_in import NatsSignIn
from broker.wire import WireConnection, connect_first

if TYPE_CHECKING:
    from nats.js.client import JetStreamContext

    from broker.connection import LoopConnection

logger = logging.getLogger(__name__)

#: Seconds a pull request may stay open on the server.
MAX_REQUEST_S = 5.0
#: Shortest pull request worth sending.
MIN_REQUEST_S = 0.1
#: Most grace after a request's expiry for the server's "request timeout" notice to arrive
#: (short requests get less: 0.2 s plus their own length).
EXPIRY_GRACE_S = 2.0


@dataclass(slots=True)
class Delivery:
    """One delivery of a stored message.

    :param data: the message as it was published.
    :param reply: its ack subject (``$JS.ACK.<stream>.<consumer>.<delivered>.<seq>…``).
    :param num_delivered: how many times JetStream has delivered it, this time included.
    """

    data: bytes
    reply: bytes
    num_delivered: int


def num_delivered(reply: bytes) -> int:
    """The delivery count in a JetStream ack subject (both the v1 and the v2 layout)."""
    tokens = reply.split(b".")
    # v1: $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
    # v2: $JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>…
    index = 4 if len(tokens) == 9 else 6
    try:
        return int(tokens[index])
    except (IndexError, ValueError):
        return 1


def nak_payload(delay_s: float | None) -> bytes:
    if delay_s is None:
        return b"-NAK"
    return b"-NAK " + json.dumps({"delay": int(delay_s * 1e9)}).encode()


class PullTransport(Protocol):
    """What :class:`broker.consumer.NatsConsumer` needs from a way of talking to NATS."""

    def fetch(self, room: int, timeout: float) -> list[Delivery]:
        """Up to ``room`` more deliveries (counting those already on their way), or ``[]``."""

    @property
    def in_flight(self) -> int:
        """Messages requested from the server and not yet received."""

    def settle(self, delivery: Delivery, payload: bytes) -> None:
        """Send ``+ACK``, ``-NAK…`` or ``+WPI`` for ``delivery``."""

    def close(self) -> list[Delivery]:
        """Stop pulling; returns deliveries that arrived meanwhile (to be handed back)."""

    def shutdown(self) -> None:
        """Release the connection (after :meth:`close`'s deliveries were handed back)."""


class WirePull:
    """Credit-based pulls on one durable consumer over a :class:`WireConnection`.

    :param servers: NATS URLs.
    :param stream: the stream name.
    :param durable: the durable consumer's name.
    :param min_batch: don't open a new request for fewer messages than this while others are
        on their way (fewer, larger requests).
    :param timeout: seconds for connecting and writing.
    :param sign_in: signs the server's nonce (a ``.creds`` file, an nkey seed).
    """

    def __init__(
        self,
        servers: list[str],
        stream: str,
        durable: str,
        *,
        min_batch: int,
        timeout: float,
        sign_in: NatsSignIn | None = None,
    ) -> None:
        self.servers = servers
        self.sign_in = sign_in
        self.next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}".encode()
        self.min_batch = max(1, min_batch)
        self.timeout = timeout
        self._conn: WireConnection | None = None
        self._conn_lock = threading.Lock()
        # One reader at a time: a worker shutting down past its timeout closes the consumer
        # from another thread while the consumer thread may still be reading.
        self._read_lock = threading.Lock()
        self._pending: dict[bytes, float] = {}  # open requests: reply subject -> expiry
        self._credits = 0  # messages the open requests may still bring
        self._pending_conn: WireConnection | None = None
        self._requests = 0

    @property
    def in_flight(self) -> int:
        return self._credits

    def fetch(self, room: int, timeout: float) -> list[Delivery]:
        with self._read_lock:
            return self._fetch(room, timeout)

    def _fetch(self, room: int, timeout: float) -> list[Delivery]:
        conn = self._connection()
        if self._pending_conn is not conn:
            self._forget_requests()
            self._pending_conn = conn
        try:
            if self._pending and min(self._pending.values()) < time.monotonic():
                # A request may have lapsed: read what already arrived first (deliveries, and
                # the notices that end requests), so only requests the server really left
                # unanswered count as lapsed.
                waiting = self._receive(conn, 0.0)
                self._drop_lapsed()
                if waiting:
                    return waiting
            wanted = room - self._credits
            if wanted > 0 and (not self._pending or wanted >= self.min_batch):
                self._request(conn, wanted, timeout)
            deadline = time.monotonic() + timeout
            while self._pending:
                deliveries = self._receive(conn, deadline - time.monotonic())
                if deliveries or time.monotonic() >= deadline:
                    return deliveries
            return []
        except (OSError, ValueError) as exc:
            self._discard(conn)
            raise BrokerConnectionError(f"pulling messages failed: {exc!r}") from exc

    def _request(self, conn: WireConnection, batch: int, timeout: float) -> None:
        expires = min(MAX_REQUEST_S, max(MIN_REQUEST_S, timeout))
        self._requests += 1
        reply = b"%s.%d" % (conn.inbox, self._requests)
        body = b'{"batch":%d,"expires":%d}' % (batch, int(expires * 1e9))
        # Forgotten if no notice came by then (NATS 2.9 now and then drops one silently).
        self._pending[reply] = time.monotonic() + expires + min(EXPIRY_GRACE_S, 0.2 + expires)
        self._credits += batch
        conn.publish(self.next_subject, body, reply)

    def _receive(self, conn: WireConnection, timeout: float) -> list[Delivery]:
        """Deliveries arriving within ``timeout``; keeps the credit count.

        The server spreads deliveries over the open requests (round robin), so credits are
        counted in total; a request that ends early says how many it leaves unused.
        """
        deliveries: list[Delivery] = []
        for frame in conn.read(max(0.0, timeout)):
            if frame.reply.startswith(b"$JS.ACK."):
                deliveries.append(Delivery(frame.payload, frame.reply, num_delivered(frame.reply)))
                self._credits = max(0, self._credits - 1)
                if not self._credits:
                    self._pending.clear()  # every open request has been filled
                continue
            if self._pending.pop(frame.subject, None) is None:
                continue  # a notice about a request we already forgot
            # 404 no messages, 408 expired, 409 limits or leadership change: the request is over.
            unused = frame.header(b"Nats-Pending-Messages")
            if unused is not None and unused.isdigit():
                self._credits = max(0, self._credits - int(unused))
            if not self._pending or not self._credits:
                self._forget_requests()
            if frame.status in (409, 503) and (
                frame.status == 503 or "Consumer Deleted" in frame.description
            ):
                raise ConnectionError(f"the consumer is gone ({frame.status} {frame.description})")
        return deliveries

    def _drop_lapsed(self) -> None:
        """Forget requests whose end the server never announced (it restarted, say): their
        credits would otherwise hold back new requests forever."""
        now = time.monotonic()
        lapsed = [r for r, give_up_at in self._pending.items() if give_up_at < now]
        for reply in lapsed:
            del self._pending[reply]
        if lapsed:
            logger.debug("%d pull requests lapsed without a notice from the server", len(lapsed))
            if not self._pending:
                self._credits = 0

    def _forget_requests(self) -> None:
        self._pending.clear()
        self._credits = 0

    def settle(self, delivery: Delivery, payload: bytes) -> None:
        try:
            conn = self._connection()
        except BrokerConnectionError:
            raise
        try:
            conn.publish(delivery.reply, payload)
        except OSError as exc:
            self._discard(conn)
            raise BrokerConnectionError(f"settling a message failed: {exc!r}") from exc

    def close(self) -> list[Delivery]:
        """Wait out the open requests (at most about a second) and return what they bring.

        Gives up on that if the consumer thread is still reading after a while: the server then
        redelivers whatever it sent after its ack wait.
        """
        conn = self._conn
        arrived: list[Delivery] = []
        if not self._read_lock.acquire(timeout=MAX_REQUEST_S):
            return arrived
        try:
            if conn is not None and self._pending_conn is conn and self._pending:
                deadline = min(max(self._pending.values()), time.monotonic() + 1.5)
                with contextlib.suppress(OSError, ValueError):
                    while self._pending and time.monotonic() < deadline:
                        arrived.extend(self._receive(conn, deadline - time.monotonic()))
            self._forget_requests()
        finally:
            self._read_lock.release()
        return arrived

    def shutdown(self) -> None:
        """Close the socket (after :meth:`close` and after handing back what it returned)."""
        with self._conn_lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _connection(self) -> WireConnection:
        conn = self._conn
        if conn is not None:
            return conn
        with self._conn_lock:
            if self._conn is None:
                try:
                    self._conn = connect_first(
                        self.servers, self.timeout, "dramatiq-consumer", self.sign_in
                    )
                except (OSError, ValueError) as exc:
                    raise BrokerConnectionError(f"cannot reach NATS: {exc!r}") from exc
            return self._conn

    def _discard(self, conn: WireConnection) -> None:
        with self._conn_lock:
            if self._conn is conn:
                self._conn = None
        conn.close()


class AsyncPull:
    """Pulls through nats-py on the broker's event-loop thread (TLS, nkeys, JWT servers).

    :param connection: the broker's :class:`~broker.connection.LoopConnection`.
    :param stream: the stream name.
    :param durable: the durable consumer's name.
    :param connect_timeout: seconds added to a fetch's own timeout before giving up.
    """

    def __init__(
        self, connection: LoopConnection, stream: str, durable: str, *, connect_timeout: float
    ) -> None:
        self._conn = connection
        self.stream = stream
        self.durable = durable
        self.connect_timeout = connect_timeout
        self._sub: JetStreamContext.PullSubscription | None = None

    @property
    def in_flight(self) -> int:
        return 0  # each fetch is finished before it returns

    def fetch(self, room: int, timeout: float) -> list[Delivery]:
        async def fetch() -> list[Delivery]:
            if self._sub is None:
                js = await self._conn.jetstream()
                self._sub = await js.pull_subscribe_bind(durable=self.durable, stream=self.stream)
            try:
                msgs = await self._sub.fetch(room, timeout=max(0.05, timeout))
            except TimeoutError:
                return []
            return [Delivery(m.data, m.reply.encode(), m.metadata.num_delivered) for m in msgs]

        try:
            return self._conn.run(fetch, timeout=timeout + self.connect_timeout)
        except BrokerConnectionError:
            raise
        except Exception as exc:
            raise BrokerConnectionError(f"pulling messages failed: {exc!r}") from exc

    def settle(self, delivery: Delivery, payload: bytes) -> None:
        if not self._conn.connected:
            raise BrokerConnectionError("not connected to NATS; the operation will be retried")
        subject = delivery.reply.decode()

        async def publish() -> None:
            client = await self._conn.client()
            await client.publish(subject, payload)

        self._conn.submit(publish)

    def close(self) -> list[Delivery]:
        return []

    def shutdown(self) -> None:
        sub, self._sub = self._sub, None
        if sub is None or not self._conn.is_running:
            return

        async def stop() -> None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

        with contextlib.suppress(Exception):
            self._conn.run(stop, timeout=5)
