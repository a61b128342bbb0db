"""Fair shares between lanes: which waiting message a worker takes next.

A queue's plain consumer is first come, first served: one tenant's batch of a hundred files
makes every later upload wait for all of it. A message sent with a ``lane`` option (a tenant,
say) and a ``lane_priority`` (``high``, ``normal`` or ``low``) is stored apart, on its lane's
subject (:class:`broker.topology.Topology`), and the queue itself gets a *ticket*: a tiny
message that says "one message is waiting in some lane". A worker that receives a ticket takes
the message that is fairest to run now:

1. among the lanes holding waiting messages, those of the key with the fewest messages running
   across all workers (JetStream counts them: a lane consumer's ``num_ack_pending``), ties going
   to the key this process served least recently — round robin while all are busy;
2. within that key, the most urgent priority; within a priority, oldest first;
3. keys already running ``max_running`` messages are passed over (a cap per tenant).

So tickets keep the queue's own consumer an exact count of the work waiting and running (what
KEDA and the operations page read), and any ticket may take any lane's message: tickets and
lane messages need not pair up. A lane message is stored before its ticket; a ticket that finds
nothing to take is surplus and acknowledged; lane messages left without a ticket (their ticket
was never stored) get one from an idle worker (:meth:`LaneReader.stranded`).

Everything here is NATS 2.9: consumer listing, ``no_wait`` pulls, inactive thresholds.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from enum import Enum

from nats.js.errors import BadRequestError, NotFoundError

from broker.connection import LoopConnection
from broker.pull import Delivery, num_delivered
from broker.topology import Topology

logger = logging.getLogger(__name__)

#: The payload of a ticket (a Dramatiq message is JSON, so it can never look like this).
TICKET = b"\x00ticket"
#: Seconds between two looks for lanes without a consumer (a worker retrying a ticket while
#: every waiting key is at its cap would otherwise look four times a second).
DISCOVER_EVERY_S = 5.0


@dataclass
class Lane:
    """One lane of a queue, as JetStream counts it."""

    key: str
    priority: int
    durable: str
    waiting: int  # stored, not yet delivered
    running: int  # delivered, not yet settled


class Outcome(Enum):
    """Why :meth:`LaneReader.take` returned no delivery."""

    #: Nothing waits and nothing runs in any lane: the ticket is surplus.
    EMPTY = "empty"
    #: Nothing waits, but messages are running: one may come back later (its worker died
    #: and its ack wait is not over yet).
    BUSY = "busy"
    #: Messages wait, but only in keys at their cap: try again shortly.
    CAPPED = "capped"


class LaneReader:
    """Takes the fairest waiting message of one queue's lanes (see the module's docstring).

    :param connection: the broker's connection (lanes are read through nats-py on its loop).
    :param topology: the broker's names.
    :param queue_name: the queue whose lanes are read.
    :param max_running: most messages of one key running at once; ``None``: no cap.
    :param timeout: seconds one JetStream call may take.
    """

    def __init__(
        self,
        connection: LoopConnection,
        topology: Topology,
        queue_name: str,
        *,
        max_running: int | None = None,
        timeout: float = 5.0,
    ) -> None:
        self._conn = connection
        self.topology = topology
        self.queue_name = queue_name
        self.max_running = max_running
        self.timeout = timeout
        self._served: dict[str, float] = {}
        self._discover_at = 0.0

    # -- taking ------------------------------------------------------------------------------

    def take(self) -> Delivery | Outcome:
        """The fairest waiting lane message (delivered to this process), or why there is none."""
        return self._conn.run(self._take, timeout=self.timeout * 4)

    async def _take(self) -> Delivery | Outcome:
        for attempt in range(2):
            lanes = await self._lanes()
            for lane in self.order(lanes):
                delivery = await self._next(lane.durable)
                if delivery is not None:
                    self._served[lane.key] = time.monotonic()
                    return delivery
            if attempt or not await self._discover(lanes):
                break  # every lane with stored messages has its consumer: the counts stand
        # A message whose worker died counts as running until it is pulled again: look for
        # such redeliveries (past any cap: they were counted against it all along).
        for lane in lanes:
            if lane.running and not lane.waiting:  # so what it brings can only be a redelivery
                delivery = await self._next(lane.durable)
                if delivery is not None:
                    return delivery
        if any(lane.waiting for lane in lanes):
            return Outcome.CAPPED
        return Outcome.BUSY if any(lane.running for lane in lanes) else Outcome.EMPTY

    def order(self, lanes: list[Lane]) -> list[Lane]:
        """Lanes with waiting messages, fairest first (keys at their cap left out)."""
        running: dict[str, int] = {}
        for lane in lanes:
            running[lane.key] = running.get(lane.key, 0) + lane.running
        open_keys = {
            key
            for key, count in running.items()
            if self.max_running is None or count < self.max_running
        }
        candidates = [lane for lane in lanes if lane.waiting > 0 and lane.key in open_keys]
        return sorted(
            candidates,
            key=lambda lane: (
                running[lane.key],
                self._served.get(lane.key, 0.0),
                lane.key,
                lane.priority,
            ),
        )

    async def _next(self, durable: str) -> Delivery | None:
        """One message from a lane consumer if it has one now (a ``no_wait`` pull)."""
        client = await self._conn.client()
        subject = f"$JS.API.CONSUMER.MSG.NEXT.{self.topology.stream}.{durable}"
        try:
            # An inbox of its own (``old_style``): JetStream delivers the message under its
            # original subject, which the shared inbox of nats-py's requests cannot match.
            msg = await client.request(
                subject, b'{"batch":1,"no_wait":true}', self.timeout, old_style=True
            )
        except Exception as exc:  # the lane's consumer vanished, or the server is away
            logger.debug("pulling from lane %s failed: %r", durable, exc)
            return None
        if not msg.reply or not msg.reply.startswith("$JS.ACK."):
            return None  # 404 no messages, 408, 409: nothing now
        reply = msg.reply.encode()
        return Delivery(msg.data, reply, num_delivered(reply))

    # -- the lanes as JetStream counts them --------------------------------------------------

    async def _lanes(self) -> list[Lane]:
        client = await self._conn.client()
        stream = self.topology.stream
        lanes: list[Lane] = []
        offset = 0
        while True:
            body = json.dumps({"offset": offset}).encode()
            msg = await client.request(f"$JS.API.CONSUMER.LIST.{stream}", body, self.timeout)
            page = json.loads(msg.data)
            if "error" in page:
                if page["error"].get("code") == 404:
                    return lanes  # no stream yet
                raise ConnectionError(f"listing consumers failed: {page['error']}")
            consumers = page.get("consumers") or []
            for info in consumers:
                lane = self._lane_of(info)
                if lane is not None:
                    lanes.append(lane)
                    await self._align(lane, info)
            offset += len(consumers)
            if not consumers or offset >= int(page.get("total", 0)):
                return lanes

    def _lane_of(self, info: dict) -> Lane | None:
        config = info.get("config") or {}
        parsed = self.topology.parse_lane_subject(self.queue_name, config.get("filter_subject", ""))
        if parsed is None:
            return None
        key, priority = parsed
        return Lane(
            key=key,
            priority=priority,
            durable=info.get("name", ""),
            waiting=int(info.get("num_pending") or 0),
            running=int(info.get("num_ack_pending") or 0),
        )

    async def _align(self, lane: Lane, info: dict) -> None:
        """Give a lane consumer made by a sender with another ack wait the workers' own: it is
        theirs that says when a message held by a dead worker goes to another."""
        ack_wait_ns = int((info.get("config") or {}).get("ack_wait") or 0)
        if ack_wait_ns == int(self.topology.ack_wait * 1e9):
            return
        js = await self._conn.jetstream()
        config = self.topology.lane_consumer_config(self.queue_name, lane.key, lane.priority)
        try:
            await js.add_consumer(self.topology.stream, config)  # updates a durable in place
        except Exception as exc:  # the old ack wait stays: redelivery is only later
            logger.debug("could not update lane %s: %r", lane.durable, exc)

    async def _discover(self, known: list[Lane]) -> bool:
        """Make the consumers of lanes that hold messages but have none (the server removed an
        idle one, or its sender could not make it); True if any was made. At most every
        :data:`DISCOVER_EVERY_S`: such lanes are rare (a day idle)."""
        now = time.monotonic()
        if now < self._discover_at:
            return False
        self._discover_at = now + DISCOVER_EVERY_S
        js = await self._conn.jetstream()
        try:
            info = await js.stream_info(
                self.topology.stream, subjects_filter=self.topology.lanes_filter(self.queue_name)
            )
        except NotFoundError:
            return False
        durables = {lane.durable for lane in known}
        made = False
        for subject, count in (info.state.subjects or {}).items():
            parsed = self.topology.parse_lane_subject(self.queue_name, subject)
            if not count or parsed is None:
                continue
            key, priority = parsed
            if self.topology.lane_durable(self.queue_name, key, priority) in durables:
                continue
            await ensure_lane(js, self.topology, self.queue_name, key, priority)
            made = True
        return made

    # -- tickets lost on the way ---------------------------------------------------------------

    def stranded(self) -> int:
        """How many lane messages wait with no ticket left to take them: messages waiting in
        lanes beyond every ticket not yet used (waiting or held by a worker)."""

        async def count() -> int:
            lanes = await self._lanes()
            waiting = sum(lane.waiting for lane in lanes)
            if not waiting:
                return 0
            js = await self._conn.jetstream()
            info = await js.consumer_info(
                self.topology.stream, self.topology.durable(self.queue_name)
            )
            tickets = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
            return max(0, waiting - tickets)

        return self._conn.run(count, timeout=self.timeout * 2)


async def ensure_lane(
    js, topology: Topology, queue_name: str, key: str, priority: int
) -> None:  # js: JetStreamContext
    """Make a lane's durable consumer if it is missing (idempotent, safe to race)."""
    durable = topology.lane_durable(queue_name, key, priority)
    try:
        await js.consumer_info(topology.stream, durable)
        return
    except NotFoundError:
        pass
    try:
        await js.add_consumer(
            topology.stream, topology.lane_consumer_config(queue_name, key, priority)
        )
    except BadRequestError:
        await js.consumer_info(topology.stream, durable)  # made by another process meanwhile
