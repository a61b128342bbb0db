"""How far behind a queue is: what waits, what is being worked on, and since when.

The figure to scale workers on is how long the oldest message has waited (queue time), not how
many wait: a hundred one-second stages are no backlog, ten one-hour ones are. JetStream keeps
the time each message was stored, so the age of the oldest waiting message of a queue is read
from its durable consumer in two API calls:

1. the consumer's info: messages not yet delivered (``num_pending``), delivered and unsettled
   (``num_ack_pending``), and the last stream sequence it delivered (``delivered.stream_seq``);
2. when something waits, ``STREAM.MSG.GET`` with ``{"seq": delivered + 1, "next_by_subj":
   filter}``: the first message on the consumer's subject it has not delivered yet — the oldest
   waiting one (NATS 2.9 answers it). Its ``time`` is when the server stored it.

A lane message (:mod:`broker.lanes`) is counted and dated by its ticket, stored on the queue's
subject just after it: the age is the queue's as a whole — how far behind the workers are —
while one lane's message may wait longer when fairness or its key's cap holds it back.

The request is sent as raw JSON and its answer read here, so nothing depends on whether the
installed nats-py's ``get_msg`` knows next-by-subject requests or parses the stored time.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

from nats.aio.client import Client
from nats.js import JetStreamContext

from broker.topology import Topology

#: JetStream's error code for "no message found" (nothing on the subject past the sequence).
_NO_MESSAGE = 10037
#: Go's RFC 3339 with nanoseconds (trailing zeros, and the fraction itself, may be left out).
_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


@dataclass(frozen=True)
class QueueBacklog:
    """One queue as its durable consumer sees it.

    :param waiting: messages stored and not yet delivered to any worker.
    :param unsettled: messages delivered and neither acknowledged nor handed back yet.
    :param oldest_waiting_at: when the server stored the oldest waiting message (seconds since
        the epoch, the server's clock); ``None`` when nothing waits.
    """

    waiting: int
    unsettled: int
    oldest_waiting_at: float | None

    def oldest_waiting_age(self, now: float) -> float:
        """Seconds the oldest waiting message has waited at ``now`` (the epoch's seconds); 0
        when nothing waits, and never below 0 (this host's clock may be behind the server's)."""
        if self.oldest_waiting_at is None:
            return 0.0
        return max(0.0, now - self.oldest_waiting_at)


def parse_server_time(value: str) -> float:
    """Seconds since the epoch of a NATS server timestamp (``2026-12-06T21:38:07.123456789Z``).

    :raises ValueError: not such a timestamp.
    """
    match = _RFC3339.match(value)
    if match is None:
        raise ValueError(f"not an RFC 3339 time: {value!r}")
    whole, fraction, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone
    seconds = datetime.fromisoformat(whole + zone).timestamp()
    return seconds + (float(f"0.{fraction}") if fraction else 0.0)


async def read_backlog(
    nc: Client, js: JetStreamContext, topology: Topology, queue_name: str, *, timeout: float
) -> QueueBacklog:
    """The backlog of one queue whose consumer exists: one API call, two when messages wait."""
    info = await js.consumer_info(topology.stream, topology.durable(queue_name))
    waiting, unsettled = int(info.num_pending or 0), int(info.num_ack_pending or 0)
    if waiting == 0:
        return QueueBacklog(waiting, unsettled, None)
    delivered = int(info.delivered.stream_seq or 0) if info.delivered else 0
    subject = (info.config.filter_subject if info.config else None) or topology.subject(queue_name)
    request = {"seq": delivered + 1, "next_by_subj": subject}
    reply = await nc.request(
        f"$JS.API.STREAM.MSG.GET.{topology.stream}", json.dumps(request).encode(), timeout=timeout
    )
    answer = json.loads(reply.data)
    error = answer.get("error")
    if error:
        if error.get("err_code") == _NO_MESSAGE or error.get("code") == 404:
            # Delivered between the two calls: nothing (older) waits any more.
            return QueueBacklog(waiting, unsettled, None)
        raise RuntimeError(f"JetStream refused to read {subject!r}: {error}")
    return QueueBacklog(waiting, unsettled, parse_server_time(answer["message"]["time"]))
