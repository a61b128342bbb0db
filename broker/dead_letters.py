"""Dead letters: messages that failed for good, kept in their own stream to inspect and replay.

A dead letter is one JetStream message on ``<ns>.dlq.<queue>`` whose body is a JSON record: the
Dramatiq message (or, for bytes that never decoded, those bytes in base64), why it died, its
traceback, how many times it was delivered, and when. The stream's ``max_age`` expires them
(7 days by default). The dead letter's id is its sequence number in that stream.
"""

from __future__ import annotations

import base64
import builtins
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dramatiq
from dramatiq.errors import BrokerConnectionError
from nats.js import api
from nats.js.errors import APIError, NotFoundError

from broker.connection import TRANSIENT_ERRORS, LoopConnection
from broker.topology import Topology

#: How long an admin call may take before it gives up.
ADMIN_TIMEOUT_S = 10.0
#: JetStream error codes meaning "that message is not there".
ALREADY_GONE = frozenset({10057, 10043})


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message.

    :param id: its sequence number in the dead-letter stream, as a string.
    :param payload: the Dramatiq message as a dict (``None`` if the bytes never decoded;
        then ``raw`` holds them).
    """

    id: str
    queue_name: str
    actor_name: str | None
    message_id: str | None
    reason: str
    traceback: str | None
    deliveries: int
    failed_at: datetime
    enqueued_at: datetime | None
    payload: dict[str, Any] | None
    raw: bytes | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (for the CLI and the HTTP admin routes)."""
        return {
            "id": self.id,
            "queue_name": self.queue_name,
            "actor_name": self.actor_name,
            "message_id": self.message_id,
            "reason": self.reason,
            "traceback": self.traceback,
            "deliveries": self.deliveries,
            "failed_at": self.failed_at.isoformat(),
            "enqueued_at": self.enqueued_at.isoformat() if self.enqueued_at else None,
            "payload": self.payload,
        }


def encode_record(
    *,
    queue_name: str,
    reason: str,
    deliveries: int,
    message: dramatiq.Message | None = None,
    raw: bytes | None = None,
    traceback: str | None = None,
) -> bytes:
    """Serialize what is kept of a failed message."""
    record: dict[str, Any] = {
        "queue_name": queue_name,
        "reason": reason,
        "traceback": traceback,
        "deliveries": deliveries,
        "failed_at": time.time(),
    }
    if message is not None:
        record["message"] = message.asdict()
    if raw is not None:
        record["raw"] = base64.b64encode(raw).decode("ascii")
    return json.dumps(record, default=str).encode()


def decode_record(seq: int, data: bytes) -> DeadLetter:
    record = json.loads(data)
    message = record.get("message")
    raw = record.get("raw")
    options = (message or {}).get("options") or {}
    timestamp = (message or {}).get("message_timestamp")
    return DeadLetter(
        id=str(seq),
        queue_name=record["queue_name"],
        actor_name=(message or {}).get("actor_name"),
        message_id=(message or {}).get("message_id"),
        reason=record["reason"],
        traceback=record.get("traceback") or options.get("traceback"),
        deliveries=int(record.get("deliveries") or 0),
        failed_at=datetime.fromtimestamp(record["failed_at"], tz=UTC),
        enqueued_at=datetime.fromtimestamp(timestamp / 1000, tz=UTC) if timestamp else None,
        payload=message,
        raw=base64.b64decode(raw) if raw else None,
    )


class DeadLetters:
    """List, inspect, replay and delete dead letters of one namespace.

    :param connection: the broker's connection.
    :param topology: the broker's names.
    :param enqueue: puts a message back on its queue (the broker's ``enqueue``).
    """

    def __init__(
        self,
        connection: LoopConnection,
        topology: Topology,
        enqueue: Callable[[dramatiq.Message], Any],
    ) -> None:
        self._conn = connection
        self._topology = topology
        self._enqueue = enqueue

    def _run(self, coro_fn, timeout: float | None = None):
        """A call on the stream, bounded; a server that does not answer is a
        ``BrokerConnectionError``, as for every other call of the broker."""
        try:
            return self._conn.run(coro_fn, timeout=timeout or ADMIN_TIMEOUT_S)
        except BrokerConnectionError:
            raise
        except TRANSIENT_ERRORS as exc:
            raise BrokerConnectionError(f"dead letters: {exc!r}") from exc

    def list(
        self, *, queue: str | None = None, actor: str | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        """Dead letters, oldest first, optionally of one queue and/or one actor."""
        subject = self._topology.dead_letter_subject(queue) if queue else None
        letters = self._run(lambda: self._scan(subject))
        if actor is not None:
            letters = [letter for letter in letters if letter.actor_name == actor]
        return letters[:limit]

    def count(self) -> dict[str, int]:
        """How many dead letters each queue holds (queues with none are left out)."""

        async def count() -> dict[str, int]:
            js = await self._conn.jetstream()
            await self._topology.ensure_streams(js)
            return await self._counts(js)

        return self._run(count)

    async def _counts(self, js) -> dict[str, int]:
        prefix = self._topology.dead_letter_subject("")
        info = await js.stream_info(self._topology.dead_letter_stream, subjects_filter=f"{prefix}>")
        subjects = getattr(info.state, "subjects", None) or {}
        return {subject.removeprefix(prefix): int(n) for subject, n in subjects.items()}

    def get(self, dead_letter_id: str) -> DeadLetter | None:
        """One dead letter by id, or ``None`` when there is no such (or it expired)."""
        seq = _parse_id(dead_letter_id)
        if seq is None:
            return None

        async def fetch() -> DeadLetter | None:
            js = await self._conn.jetstream()
            await self._topology.ensure_streams(js)
            try:
                msg = await js.get_msg(self._topology.dead_letter_stream, seq)
            except NotFoundError:
                return None
            return decode_record(seq, msg.data or b"")

        return self._run(fetch)

    def replay(self, dead_letter_id: str) -> str:
        """Send a dead letter back to its queue with fresh retries; returns its message id.

        :raises KeyError: no such dead letter.
        :raises ValueError: it holds bytes that never decoded as a message.
        """
        letter = self.get(dead_letter_id)
        if letter is None:
            raise KeyError(f"no dead letter {dead_letter_id}")
        if letter.payload is None:
            raise ValueError(f"dead letter {dead_letter_id} is not a decodable message")
        message: dramatiq.Message[Any] = dramatiq.Message(**letter.payload)
        options = {
            k: v
            for k, v in message.options.items()
            if k not in {"retries", "traceback", "eta", "requeue_timestamp"}
        }
        message = message.copy(queue_name=dramatiq.common.q_name(letter.queue_name))
        message = dramatiq.Message(**{**message.asdict(), "options": options})
        self._enqueue(message)
        self.delete(dead_letter_id)
        return message.message_id

    def delete(self, dead_letter_id: str) -> bool:
        """Remove one dead letter; ``False`` when it was not there."""
        seq = _parse_id(dead_letter_id)
        if seq is None:
            return False

        async def remove() -> bool:
            js = await self._conn.jetstream()
            try:
                return await js.delete_msg(self._topology.dead_letter_stream, seq)
            except NotFoundError:
                return False
            except APIError as exc:
                # Already gone (deleted, purged or expired): servers say so as 10057 "no message
                # found" or, now and then, 10043 "sequence N not found".
                if exc.err_code in ALREADY_GONE:
                    return False
                raise

        return self._run(remove)

    def purge(self, *, queue: str | None = None, actor: str | None = None) -> int:
        """Remove every dead letter (of one queue and/or actor); returns how many."""
        if actor is not None:
            removed = 0
            for letter in self.list(queue=queue, actor=actor, limit=10**9):
                removed += self.delete(letter.id)
            return removed

        async def purge() -> int:
            js = await self._conn.jetstream()
            await self._topology.ensure_streams(js)
            counts = await self._counts(js)
            count = counts.get(queue, 0) if queue else sum(counts.values())
            subject = self._topology.dead_letter_subject(queue) if queue else None
            await js.purge_stream(self._topology.dead_letter_stream, subject=subject)
            return count

        return self._run(purge)

    # builtins.list: in this class, `list` is the method above.
    async def _scan(self, subject: str | None) -> builtins.list[DeadLetter]:
        """Read the dead-letter stream with a short-lived consumer that acknowledges nothing."""
        js = await self._conn.jetstream()
        await self._topology.ensure_streams(js)
        stream = self._topology.dead_letter_stream
        info = await js.stream_info(stream)
        total = info.state.messages
        if total == 0:
            return []
        config = api.ConsumerConfig(
            ack_policy=api.AckPolicy.NONE,
            deliver_policy=api.DeliverPolicy.ALL,
            filter_subject=subject,
            inactive_threshold=30.0,
        )
        sub = await js.pull_subscribe(
            subject or f"{self._topology.namespace}.dlq.>", None, stream=stream, config=config
        )
        letters: list[DeadLetter] = []
        try:
            while True:
                try:
                    batch = await sub.fetch(min(256, total), timeout=0.5)
                except TimeoutError:
                    break
                for msg in batch:
                    letters.append(decode_record(msg.metadata.sequence.stream, msg.data))
                if msg.metadata.num_pending == 0:
                    break
        finally:
            await sub.unsubscribe()
        return letters


def _parse_id(dead_letter_id: str | int) -> int | None:
    try:
        seq = int(dead_letter_id)
    except (TypeError, ValueError):
        return None
    return seq if 0 < seq < 2**63 else None  # a stream sequence is an unsigned 64-bit number
