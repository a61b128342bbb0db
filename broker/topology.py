"""Names and JetStream objects of a namespace: the work stream, its consumers, the dead letters.

Layout for namespace ``ns`` and Dramatiq queue ``q``:

* stream ``ns`` (work-queue retention) with subjects ``ns.q.>``; queue ``q`` publishes on
  ``ns.q.q`` and its delay queue ``q.DQ`` on ``ns.q.q.DQ``;
* one durable pull consumer per queue, ``ns-q`` (dots become underscores), filtered on that one
  subject and shared by every worker process on every machine;
* stream ``ns-dead-letters`` with subjects ``ns.dlq.>`` (limits retention, ``max_age`` = TTL).

Lanes (:mod:`broker.lanes`): a message sent with a ``lane`` option (a tenant, say) is stored on
``ns.l.<queue>.<lane>.<priority>`` (the queue's dots become underscores) and read through a
durable consumer of its own, ``ns-<queue>--<lane>--<priority>``, made on first use and removed by
the server after :data:`LANE_IDLE_S` without activity; the queue's own subject then carries a
*ticket* for it, so the queue's consumer still counts every message waiting or running.

Everything is created lazily and idempotently; a stream whose settings drifted from the broker's
(e.g. a new TTL) is updated in place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nats.js import JetStreamContext, api
from nats.js.errors import BadRequestError, NotFoundError

_VALID_NAMESPACE = re.compile(r"^[A-Za-z0-9_-]+$")
_VALID_QUEUE = re.compile(r"^[A-Za-z0-9_.-]+$")

#: JetStream's in-memory de-duplication window for ``Nats-Msg-Id``.
DUPLICATE_WINDOW_S = 120.0
#: Priorities of a lane, most urgent first; the token stored in the subject is the index.
PRIORITIES = ("high", "normal", "low")
#: A lane consumer with no activity this long is removed by the server (it is made again when
#: its lane next gets a message).
LANE_IDLE_S = 24 * 3600.0
_LANE_TOKEN = re.compile(r"[^A-Za-z0-9_-]")
#: Longest lane key kept as it is; longer ones are cut (consumer names have a length limit).
MAX_LANE_LENGTH = 64


@dataclass(frozen=True)
class Topology:
    """Where a namespace keeps its messages, and how they are stored.

    :param namespace: prefix of every stream, subject and consumer name.
    :param storage: ``"file"`` (durable) or ``"memory"``.
    :param replicas: stream replicas in a JetStream cluster.
    :param ack_wait: seconds before an unacknowledged delivery is handed to another worker.
    :param dead_letter_ttl: seconds dead letters are kept.
    """

    namespace: str
    storage: str = "file"
    replicas: int = 1
    ack_wait: float = 30.0
    dead_letter_ttl: float = 7 * 86400.0

    def __post_init__(self) -> None:
        if not _VALID_NAMESPACE.match(self.namespace):
            raise ValueError(f"namespace {self.namespace!r} may hold only letters, digits, _ and -")
        if self.storage not in ("file", "memory"):
            raise ValueError(f"storage must be 'file' or 'memory', not {self.storage!r}")

    # -- names -------------------------------------------------------------------------------

    @property
    def stream(self) -> str:
        return self.namespace

    @property
    def dead_letter_stream(self) -> str:
        return f"{self.namespace}-dead-letters"

    def subject(self, queue_name: str) -> str:
        return f"{self.namespace}.q.{queue_name}"

    def dead_letter_subject(self, queue_name: str) -> str:
        return f"{self.namespace}.dlq.{queue_name}"

    def durable(self, queue_name: str) -> str:
        return f"{self.namespace}-{queue_name}".replace(".", "_")

    def lane_subject(self, queue_name: str, lane: str, priority: int) -> str:
        return f"{self.namespace}.l.{_token(queue_name)}.{lane}.{priority}"

    def lanes_filter(self, queue_name: str) -> str:
        """The subjects of every lane of ``queue_name``."""
        return f"{self.namespace}.l.{_token(queue_name)}.>"

    def lane_durable(self, queue_name: str, lane: str, priority: int) -> str:
        return f"{self.namespace}-{_token(queue_name)}--{lane}--{priority}"

    def parse_lane_subject(self, queue_name: str, subject: str) -> tuple[str, int] | None:
        """``(lane, priority)`` of a lane subject of ``queue_name``, or None."""
        prefix = f"{self.namespace}.l.{_token(queue_name)}."
        if not subject.startswith(prefix):
            return None
        lane, _, priority = subject[len(prefix) :].rpartition(".")
        if not lane or "." in lane or not priority.isdigit():
            return None
        return lane, int(priority)

    @staticmethod
    def lane_key(key: object) -> str:
        """A lane key as it can appear in a subject and a consumer name."""
        text = _LANE_TOKEN.sub("_", str(key))[:MAX_LANE_LENGTH]
        return text or "_"

    @staticmethod
    def priority_rank(priority: object) -> int:
        """The index of a priority name (``high``, ``normal``, ``low``); normal if unknown."""
        try:
            return PRIORITIES.index(str(priority))
        except ValueError:
            return PRIORITIES.index("normal")

    @staticmethod
    def check_queue_name(queue_name: str) -> None:
        if not _VALID_QUEUE.match(queue_name):
            raise ValueError(
                f"queue name {queue_name!r} may hold only letters, digits, '.', '_' and '-'"
            )

    # -- objects -----------------------------------------------------------------------------

    def _storage(self) -> api.StorageType:
        return api.StorageType.FILE if self.storage == "file" else api.StorageType.MEMORY

    def stream_config(self) -> api.StreamConfig:
        return api.StreamConfig(
            name=self.stream,
            subjects=[f"{self.namespace}.q.>", f"{self.namespace}.l.>"],
            retention=api.RetentionPolicy.WORK_QUEUE,
            storage=self._storage(),
            num_replicas=self.replicas,
            duplicate_window=DUPLICATE_WINDOW_S,
        )

    def dead_letter_stream_config(self) -> api.StreamConfig:
        return api.StreamConfig(
            name=self.dead_letter_stream,
            subjects=[f"{self.namespace}.dlq.>"],
            retention=api.RetentionPolicy.LIMITS,
            storage=self._storage(),
            num_replicas=self.replicas,
            max_age=self.dead_letter_ttl,
            # JetStream refuses a de-duplication window longer than the retention.
            duplicate_window=min(DUPLICATE_WINDOW_S, self.dead_letter_ttl),
        )

    def consumer_config(self, queue_name: str) -> api.ConsumerConfig:
        return self._pull_consumer(self.durable(queue_name), self.subject(queue_name))

    def lane_consumer_config(self, queue_name: str, lane: str, priority: int) -> api.ConsumerConfig:
        config = self._pull_consumer(
            self.lane_durable(queue_name, lane, priority),
            self.lane_subject(queue_name, lane, priority),
        )
        config.inactive_threshold = LANE_IDLE_S
        return config

    def _pull_consumer(self, durable: str, subject: str) -> api.ConsumerConfig:
        """A durable pull consumer of one subject, shared by every worker process."""
        return api.ConsumerConfig(
            durable_name=durable,
            filter_subject=subject,
            deliver_policy=api.DeliverPolicy.ALL,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            # Unlimited here: the broker counts deliveries itself and dead-letters a poison
            # message, where JetStream's max_deliver would leave it stranded in the stream.
            max_deliver=-1,
            max_ack_pending=100_000,
            max_waiting=4096,
            replay_policy=api.ReplayPolicy.INSTANT,
        )

    async def ensure_streams(self, js: JetStreamContext) -> None:
        await _ensure_stream(js, self.stream_config())
        await _ensure_stream(js, self.dead_letter_stream_config())

    async def ensure_consumer(self, js: JetStreamContext, queue_name: str) -> None:
        config = self.consumer_config(queue_name)
        try:
            info = await js.consumer_info(self.stream, self.durable(queue_name))
        except NotFoundError:
            await js.add_consumer(self.stream, config)
            return
        if info.config.ack_wait != config.ack_wait:
            # Durable consumers can be updated in place by "creating" them again.
            await js.add_consumer(self.stream, config)


def _token(queue_name: str) -> str:
    return queue_name.replace(".", "_")


async def _ensure_stream(js: JetStreamContext, config: api.StreamConfig) -> None:
    assert config.name is not None  # both of Topology's stream configs are named
    try:
        info = await js.stream_info(config.name)
    except NotFoundError:
        try:
            await js.add_stream(config)
        except BadRequestError:
            # Another process created it a moment ago.
            await js.stream_info(config.name)
        return
    current = info.config
    if (
        current.max_age != config.max_age
        or list(current.subjects or []) != config.subjects
        or current.num_replicas != config.num_replicas  # NATS_REPLICAS raised on a cluster
    ):
        await js.update_stream(config)
