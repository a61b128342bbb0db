"""``queue_backlog``: how many messages wait, and since when the oldest has waited.

Times are compared with the stored times of marker messages sent before, between and after
(on queues of their own in the same stream), so only the server's clock is involved, never
how long something took.
"""

from __future__ import annotations

import time

import dramatiq


def test_the_oldest_waiting_message_is_the_first_not_yet_delivered_on_its_queue(broker):
    markers = {}
    for name in ("before", "between", "after"):
        markers[name] = dramatiq.actor(
            lambda: None, broker=broker, actor_name=name, queue_name=name
        )

    @dramatiq.actor(broker=broker)
    def work(n):
        pass

    empty = broker.queue_backlog()["default"]
    assert (empty.waiting, empty.unsettled, empty.oldest_waiting_at) == (0, 0, None)
    assert empty.oldest_waiting_age(time.time()) == 0

    # Older, on another queue of the same stream: never the oldest of "default".
    markers["before"].send()
    work.send(1)
    markers["between"].send()
    work.send(2)
    markers["after"].send()
    work.send(3)

    backlogs = broker.queue_backlog()
    at = {name: backlogs[name].oldest_waiting_at for name in markers}
    backlog = backlogs["default"]
    assert (backlog.waiting, backlog.unsettled) == (3, 0)
    assert at["before"] < backlog.oldest_waiting_at < at["between"]  # the first one sent
    now = time.time()
    assert backlog.oldest_waiting_age(now) == max(0.0, now - backlog.oldest_waiting_at)

    # A worker takes the first message and holds it: it is in progress, no longer waiting, and
    # the second one is now the oldest waiting.
    consumer = broker.consume("default", prefetch=1, timeout=2000)
    try:
        taken = next(message for message in consumer if message is not None)
        assert tuple(taken.args) == (1,)
        backlog = broker.queue_backlog()["default"]
        assert (backlog.waiting, backlog.unsettled) == (2, 1)
        assert at["between"] < backlog.oldest_waiting_at < at["after"]
        consumer.ack(taken)
    finally:
        consumer.close()


def test_a_lane_message_waits_as_its_ticket(broker):
    """A message sent on a lane is stored on its lane subject; its queue gets a ticket, which
    the queue's consumer (the one KEDA reads too) counts and dates."""
    before = dramatiq.actor(lambda: None, broker=broker, actor_name="before", queue_name="before")
    after = dramatiq.actor(lambda: None, broker=broker, actor_name="after", queue_name="after")

    @dramatiq.actor(broker=broker)
    def work(n):
        pass

    before.send()
    work.send_with_options(args=(1,), lane="tenant-a")
    after.send()

    backlogs = broker.queue_backlog()
    backlog = backlogs["default"]
    assert (backlog.waiting, backlog.unsettled) == (1, 0)
    assert (
        backlogs["before"].oldest_waiting_at
        < backlog.oldest_waiting_at
        < backlogs["after"].oldest_waiting_at
    )
