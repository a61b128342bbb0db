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
instead of run. Delay-queue messages are only handed over when nearly due: earlier, they are
``NAK``-ed with a delay so the server keeps them, not the worker's memory.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

import dramatiq
from dramatiq.broker import Consumer, MessageProxy
from dramatiq.common import current_millis
from dramatiq.errors import BrokerConnectionError
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from broker.connection import TRANSIENT_ERRORS
from broker.dead_letters import encode_record

if TYPE_CHECKING:
    from broker.nats_broker import NatsBroker

logger = logging.getLogger(__name__)

#: A delayed message is handed to the worker when it is due within this many milliseconds.
DELAY_HANDOVER_MS = 500
#: Dramatiq's TimeLimit middleware default, used when neither message nor actor sets one.
DEFAULT_TIME_LIMIT_MS = 600_000
#: Extra heartbeat time beyond the time limit, for the TimeLimit middleware to act.
TIME_LIMIT_GRACE_S = 30.0


class NatsMessageProxy(MessageProxy):
    """A Dramatiq message together with the JetStream delivery it came from."""

    def __init__(self, message: dramatiq.Message, nats_msg: Msg, beat_until: float) -> None:
        super().__init__(message)
        self._nats_msg = nats_msg
        self._beat_until = beat_until


class NatsConsumer(Consumer):
    """A pull consumer on one queue's durable JetStream consumer.

    :param broker: the broker that made it.
    :param queue_name: the Dramatiq queue (a delay queue if it ends in ``.DQ``).
    :param prefetch: the most messages held unsettled at once.
    :param timeout: milliseconds ``__next__`` waits before returning ``None``.
    """

    def __init__(self, broker: NatsBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        self.broker = broker
        self.queue_name = queue_name
        self.is_delay_queue = queue_name.endswith(".DQ")
        self.prefetch = max(1, prefetch)
        self.timeout_s = max(0.05, timeout / 1000)
        self._refill_at = max(1, self.prefetch // 2)
        self._conn = broker.connection
        self._buffer: deque[Msg] = deque()
        self._held: dict[int, NatsMessageProxy] = {}
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._sub = None
        self._closed = False
        self._heartbeat: asyncio.Task | None = None

    # -- iteration ---------------------------------------------------------------------------

    def __next__(self) -> NatsMessageProxy | None:
        deadline = time.monotonic() + self.timeout_s
        while True:
            if self._buffer:
                proxy = self._accept(self._buffer.popleft())
                if proxy is not None:
                    return proxy
                continue
            room = self.prefetch - len(self._held)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if room < self._refill_at and self._held:
                # Nearly full: wait until the worker has settled a few, then fetch them in one
                # request, rather than one round trip per settled message.
                with self._settled:
                    self._settled.wait_for(
                        lambda: self.prefetch - len(self._held) >= self._refill_at, remaining
                    )
                if self.prefetch - len(self._held) < self._refill_at:
                    return None
                continue
            self._buffer.extend(self._fetch(room, remaining))
            if not self._buffer:
                return None

    def _fetch(self, batch: int, timeout: float) -> list[Msg]:
        async def fetch() -> list[Msg]:
            sub = await self._subscription()
            try:
                return await sub.fetch(batch, timeout=max(0.05, timeout))
            except TimeoutError:
                return []

        try:
            return self._conn.run(fetch, timeout=timeout + self.broker.connect_timeout)
        except BrokerConnectionError:
            raise
        except TRANSIENT_ERRORS as exc:
            raise BrokerConnectionError(
                f"fetching from {self.queue_name!r} failed: {exc!r}"
            ) from exc

    async def _subscription(self):
        if self._sub is None:
            js: JetStreamContext = await self._conn.jetstream()
            topology = self.broker.topology
            await self.broker.ensure_queue_async(self.queue_name)
            self._sub = await js.pull_subscribe_bind(
                durable=topology.durable(self.queue_name), stream=topology.stream
            )
            self._heartbeat = asyncio.ensure_future(self._beat())
        return self._sub

    def _accept(self, msg: Msg) -> NatsMessageProxy | None:
        """Turn a delivery into a message for the worker, or settle it here and return None."""
        try:
            message = dramatiq.Message.decode(msg.data)
        except Exception as exc:  # any garbage on the subject must not stop the worker
            self._bury(msg, None, f"undecodable message: {exc}", raw=msg.data)
            return None
        deliveries = msg.metadata.num_delivered
        if self.is_delay_queue:
            due_in_ms = int(message.options.get("eta", 0)) - current_millis()
            if due_in_ms > DELAY_HANDOVER_MS:
                delay_s = (due_in_ms - DELAY_HANDOVER_MS / 2) / 1000
                self._conn.submit(lambda: msg.nak(delay=delay_s))
                return None
        elif deliveries > self.broker.max_deliveries:
            reason = (
                f"delivered {deliveries} times without being acknowledged "
                "(its worker process probably died while running it)"
            )
            self._bury(msg, message, reason)
            return None
        proxy = NatsMessageProxy(message, msg, time.monotonic() + self._beat_budget(message))
        with self._lock:
            self._held[id(proxy)] = proxy
        return proxy

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

    def ack(self, message: NatsMessageProxy) -> None:
        self._settle(message, lambda: message._nats_msg.ack())

    def nack(self, message: NatsMessageProxy) -> None:
        exc = message._exception
        tb = message.options.get("traceback")
        if tb is None and exc is not None:
            tb = "".join(traceback.format_exception(exc))
        reason = f"{type(exc).__name__}: {exc}" if exc is not None else "rejected by the worker"
        record = encode_record(
            queue_name=self.queue_name,
            reason=reason,
            deliveries=message._nats_msg.metadata.num_delivered,
            message=message._message,
            traceback=tb,
        )
        self._ensure_connected()
        self._publish_dead_letter(record)
        self._settle(message, lambda: message._nats_msg.ack())

    def requeue(self, messages: Iterable[NatsMessageProxy]) -> None:
        for message in messages:
            self._settle(message, lambda m=message: m._nats_msg.nak())
        while self._buffer:
            msg = self._buffer.popleft()
            self._conn.submit(msg.nak)

    def _settle(self, message: NatsMessageProxy, action) -> None:
        self._ensure_connected()
        with self._lock:
            self._held.pop(id(message), None)
            self._settled.notify()
        self._conn.submit(action)

    def _ensure_connected(self) -> None:
        if not self._conn.connected:
            raise BrokerConnectionError("not connected to NATS; the operation will be retried")

    def _bury(
        self,
        msg: Msg,
        message: dramatiq.Message | None,
        reason: str,
        raw: bytes | None = None,
    ) -> None:
        """Dead-letter a delivery the worker never sees."""
        logger.error("dead-lettering a message from %r: %s", self.queue_name, reason)
        record = encode_record(
            queue_name=self.queue_name,
            reason=reason,
            deliveries=msg.metadata.num_delivered,
            message=message,
            raw=raw,
        )
        self._publish_dead_letter(record)
        self._conn.submit(msg.ack)

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

    async def _beat(self) -> None:
        interval = max(0.1, self.broker.topology.ack_wait / 3)
        while not self._closed:
            await asyncio.sleep(interval)
            now = time.monotonic()
            with self._lock:
                alive = [p for p in self._held.values() if p._beat_until > now]
            for proxy in alive:
                try:
                    await proxy._nats_msg.in_progress()
                except Exception:  # reconnecting: the next beat tries again
                    break

    def close(self) -> None:
        self._closed = True
        sub, self._sub = self._sub, None
        heartbeat, self._heartbeat = self._heartbeat, None
        if not self._conn.is_running:
            return  # the broker was closed first: nothing left to stop

        async def stop() -> None:
            if heartbeat is not None:
                heartbeat.cancel()
            if sub is not None:
                try:
                    await sub.unsubscribe()
                except Exception:
                    logger.debug("unsubscribe failed", exc_info=True)

        try:
            self._conn.run(stop, timeout=5)
        except Exception:
            logger.debug("closing consumer failed", exc_info=True)
