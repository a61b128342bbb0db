"""``queue_backlog``: how many messages wait, and since when the oldest has waited.

Times are checked against this host's clock read before and after each send (the server's
stored time of a message falls between them), never against how long something took.
"""

from __future__ import annotations

import time

import dramatiq


def test_the_oldest_waiting_message_is_the_first_not_yet_delivered_on_its_queue(broker):
    @dramatiq.actor(broker=broker, queue_name="other")
    def elsewhere():
        pass

    @dramatiq.actor(broker=broker)
    def work(n):
        pass

    empty = broker.queue_backlog()["default"]
    assert (empty.waiting, empty.unsettled, empty.oldest_waiting_at) == (0, 0, None)
    assert empty.oldest_waiting_age(time.time()) == 0

    elsewhere.send()  # older, on another queue of the same stream: never counted for "default"
    before_first = time.time()
    work.send(1)
    after_first = time.time()
    work.send(2)
    after_second = time.time()
    work.send(3)

    backlog = broker.queue_backlog()["default"]
    assert (backlog.waiting, backlog.unsettled) == (3, 0)
    assert before_first <= backlog.oldest_waiting_at <= after_first
    now = time.time()
    assert backlog.oldest_waiting_age(now) == now - backlog.oldest_waiting_at
    assert broker.queue_backlog()["other"].oldest_waiting_at < before_first

    # A worker takes the first message and holds it: it is in progress, no longer waiting, and
    # the second one is now the oldest waiting.
    consumer = broker.consume("default", prefetch=1, timeout=2000)
    try:
        taken = next(message for message in consumer if message is not None)
        assert tuple(taken.args) == (1,)
        backlog = broker.queue_backlog()["default"]
        assert (backlog.waiting, backlog.unsettled) == (2, 1)
        assert after_first <= backlog.oldest_waiting_at <= after_second
        consumer.ack(taken)
    finally:
        consumer.close()
