"""Lanes: fair shares between keys, priorities within a key, a cap per key (broker.lanes).

Each test reads a queue through one consumer, settling each message before taking the next,
and checks the *order* it gets them in: first come, first served would give another.
"""

from __future__ import annotations

import threading

import dramatiq
import pytest

from broker import NatsBroker
from broker.consumer import NatsConsumer
from tests.support.waiting import wait_until

QUEUE = "work"


def send(broker: NatsBroker, body: str, lane: str | None, priority: str | None = None) -> None:
    options: dict = {}
    if lane is not None:
        options["lane"] = lane
    if priority is not None:
        options["lane_priority"] = priority
    broker.enqueue(dramatiq.Message(QUEUE, "act", (body,), {}, options))


def take(consumer: NatsConsumer, count: int) -> list[str]:
    """The bodies of the next ``count`` messages, each acknowledged before the next is taken."""
    bodies = []
    for _ in range(count):
        message = next(consumer)
        assert message is not None, f"nothing to take after {bodies}"
        bodies.append(message.args[0])
        consumer.ack(message)
    return bodies


@pytest.fixture
def lanes_broker(make_broker) -> NatsBroker:
    broker = make_broker(ack_wait=2.0)
    broker.declare_queue(QUEUE)
    return broker


def test_keys_take_turns_where_a_single_queue_would_serve_the_backlog_first(lanes_broker):
    for i in range(6):
        send(lanes_broker, f"a{i}", "tenant-a")
    send(lanes_broker, "b0", "tenant-b")
    send(lanes_broker, "b1", "tenant-b")
    consumer = lanes_broker.consume(QUEUE, prefetch=1, timeout=3000)
    try:
        order = take(consumer, 8)
    finally:
        consumer.close()
    assert [body[0] for body in order] == list("ababaaaa"), order
    assert [body for body in order if body[0] == "a"] == [f"a{i}" for i in range(6)]


def test_a_high_message_behind_a_thousand_low_ones_is_the_next_taken(lanes_broker):
    for i in range(1000):
        send(lanes_broker, f"low{i}", "tenant-a", "low")
    send(lanes_broker, "urgent", "tenant-a", "high")
    send(lanes_broker, "usual", "tenant-a")
    assert lanes_broker.queue_stats()[QUEUE] == (1002, 0)  # the queue counts every message
    consumer = lanes_broker.consume(QUEUE, prefetch=1, timeout=3000)
    try:
        assert take(consumer, 3) == ["urgent", "usual", "low0"]
    finally:
        consumer.close()
    assert sum(lanes_broker.queue_stats()[QUEUE]) == 999  # (a hand-back may be on its way)


def test_a_key_at_its_cap_waits_while_others_go_on(make_broker):
    broker = make_broker(ack_wait=2.0, lane_max_running=1)
    broker.declare_queue(QUEUE)
    send(broker, "a0", "a")
    send(broker, "a1", "a")
    send(broker, "b0", "b")
    consumer = broker.consume(QUEUE, prefetch=3, timeout=500)
    try:
        first = next(consumer)
        second = next(consumer)
        assert (first.args[0], second.args[0]) == ("a0", "b0")
        assert next(consumer) is None  # a1 waits: a0 is running
        consumer.ack(first)
        third = next(consumer)
        assert third is not None and third.args[0] == "a1"
        consumer.ack(second)
        consumer.ack(third)
    finally:
        consumer.close()
    broker.join(QUEUE, timeout=5000)


def test_plain_and_laned_messages_share_one_queue(lanes_broker):
    send(lanes_broker, "plain", None)
    send(lanes_broker, "laned", "x")
    consumer = lanes_broker.consume(QUEUE, prefetch=1, timeout=3000)
    try:
        assert sorted(take(consumer, 2)) == ["laned", "plain"]
    finally:
        consumer.close()
    lanes_broker.join(QUEUE, timeout=5000)


def test_a_message_held_by_a_dead_consumer_comes_back_with_its_ticket(lanes_broker):
    send(lanes_broker, "only", "x")
    lost = lanes_broker.consume(QUEUE, prefetch=1, timeout=3000)
    message = next(lost)
    assert message is not None and message.args[0] == "only"
    lost._closed.set()  # its heartbeats stop, as when the process dies; nothing is settled
    survivor = lanes_broker.consume(QUEUE, prefetch=1, timeout=1000)
    try:
        again = wait_until(lambda: next(survivor), 30, "the message back from the dead consumer")
        assert again.args[0] == "only"
        survivor.ack(again)
    finally:
        survivor.close()
    lanes_broker.join(QUEUE, timeout=5000)


def test_a_lane_message_without_a_ticket_gets_one_from_an_idle_consumer(lanes_broker, monkeypatch):
    """Its ticket's publish never got through: the first idle worker (one that has seen no
    ticket yet) sends one, and then takes the message with it."""
    monkeypatch.setattr("broker.consumer.STRANDED_CHECK_S", 0.0)
    message = dramatiq.Message(QUEUE, "act", ("stranded",), {}, {"lane": "x"})
    subject = lanes_broker.topology.lane_subject(QUEUE, "x", 1)
    lanes_broker._publish(
        QUEUE, message.encode(), msg_id="stranded", subject=subject, lane=("x", 1)
    )
    assert lanes_broker.queue_stats()[QUEUE] == (0, 0)  # no ticket: the queue sees nothing
    idle = lanes_broker.consume(QUEUE, prefetch=1, timeout=300)
    try:
        late = wait_until(lambda: next(idle), 30, "a ticket for the stranded message")
        assert late.args[0] == "stranded"
        idle.ack(late)
    finally:
        idle.close()
    lanes_broker.join(QUEUE, timeout=5000)


def test_a_worker_runs_laned_messages_of_every_key(lanes_broker, start_worker):
    done: list[str] = []
    lock = threading.Lock()

    @dramatiq.actor(broker=lanes_broker, queue_name=QUEUE, actor_name="act")
    def act(body: str) -> None:
        with lock:
            done.append(body)

    for i in range(20):
        act.send_with_options(args=(f"m{i}",), lane=f"k{i % 3}", lane_priority="low")
    start_worker(lanes_broker, worker_threads=2)
    lanes_broker.join(QUEUE, timeout=20_000)
    assert sorted(done) == sorted(f"m{i}" for i in range(20))


def test_a_free_thread_gets_work_while_the_others_run_long_messages(make_broker, start_worker):
    """With the broker's prefetch equal to the worker's threads (what lanes want), three
    threads held by long messages must not keep the fourth from the rest."""
    broker = make_broker(ack_wait=5.0, prefetch=4)
    release = threading.Event()
    quick: list[int] = []

    @dramatiq.actor(broker=broker, queue_name=QUEUE, actor_name="long")
    def long() -> None:
        release.wait(60)

    @dramatiq.actor(broker=broker, queue_name=QUEUE, actor_name="short")
    def short(n: int) -> None:
        quick.append(n)

    for _ in range(3):
        long.send_with_options(lane="a")
    for n in range(5):
        short.send_with_options(args=(n,), lane="b")
    start_worker(broker, worker_threads=4)
    try:
        wait_until(lambda: len(quick) == 5, 30, "the short messages, on the fourth thread")
    finally:
        release.set()
    broker.join(QUEUE, timeout=20_000)
