"""What workers see: retries, delays, requeues, heartbeats, poison and unknown messages."""

from __future__ import annotations

import asyncio
import threading
import time

import dramatiq
import nats
import pytest
from dramatiq.common import current_millis

from tests.support.waiting import wait_for


def test_failing_actor_is_retried_with_backoff_until_it_succeeds(broker, worker):
    attempts = []

    @dramatiq.actor(broker=broker, max_retries=5, min_backoff=100, max_backoff=400)
    def flaky():
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise RuntimeError("not yet")

    flaky.send()
    assert wait_for(lambda: len(attempts) == 3)
    broker.join(flaky.queue_name, timeout=10_000)
    assert len(attempts) == 3
    assert attempts[1] - attempts[0] >= 0.09  # the backoff was honoured
    assert broker.dead_letters.list() == []


def test_exhausted_retries_end_in_the_dead_letters_with_the_traceback(broker, worker):
    @dramatiq.actor(broker=broker, max_retries=1, min_backoff=50, max_backoff=100)
    def always_fails():
        raise ValueError("bad input 42")

    always_fails.send()
    assert wait_for(lambda: len(broker.dead_letters.list()) == 1)
    (letter,) = broker.dead_letters.list()
    assert letter.actor_name == "always_fails"
    assert letter.queue_name == "default"
    assert "ValueError: bad input 42" in letter.reason
    assert "bad input 42" in (letter.traceback or "")


def test_delayed_messages_run_at_their_own_times(broker, worker):
    ran: dict[str, int] = {}
    sent: dict[str, int] = {}

    @dramatiq.actor(broker=broker)
    def stamp(name):
        ran[name] = current_millis()

    for name, delay in (("late", 2000), ("soon", 700), ("now", None)):
        sent[name] = current_millis()
        stamp.send_with_options(args=(name,), delay=delay)

    assert wait_for(lambda: len(ran) == 3)
    assert sorted(ran, key=ran.get) == ["now", "soon", "late"]
    assert ran["soon"] >= sent["soon"] + 700
    assert ran["late"] >= sent["late"] + 2000
    assert ran["late"] - (sent["late"] + 2000) < 1500  # fires about on time


def test_delayed_message_survives_a_worker_restart(broker, start_worker, consumer_info):
    ran = []
    gate = threading.Event()

    @dramatiq.actor(broker=broker)
    def block():
        gate.wait(60)

    @dramatiq.actor(broker=broker)
    def later():
        ran.append(current_millis())

    try:
        # The first worker's only thread is busy until it is stopped: it can take the delayed
        # message, never run it, however slow this machine is.
        block.send()
        first = start_worker(broker, worker_threads=1)
        assert wait_for(lambda: broker.queue_stats()["default"] == (0, 1))
        due = current_millis() + 2500
        later.send_with_options(delay=2500)
        assert wait_for(lambda: consumer_info(broker, "default.DQ").delivered.consumer_seq >= 1)
        stop_idle(first, gate)
    finally:
        gate.set()
    assert ran == []

    start_worker(broker)
    assert wait_for(lambda: len(ran) == 1)
    assert ran[0] >= due
    # Nothing is left on the server, waiting or unsettled, that could still run: a settled
    # message ran before it was settled.
    broker.join("default", timeout=10_000)
    assert len(ran) == 1


def stop_idle(worker: dramatiq.Worker, gate: threading.Event) -> None:
    """Stop ``worker`` while its threads are blocked on ``gate``, so that none of them starts
    another message: open the gate only once every thread has been told to stop."""
    stopping = threading.Thread(target=worker.stop, kwargs={"timeout": 60_000})
    stopping.start()
    try:
        assert wait_for(lambda: not any(thread.running for thread in worker.workers))
    finally:
        gate.set()
    stopping.join(90)
    assert not stopping.is_alive()


def test_requeue_hands_unstarted_messages_back_at_once(make_broker):
    broker = make_broker(ack_wait=30.0)

    @dramatiq.actor(broker=broker)
    def noop(n):
        pass

    for n in range(4):
        noop.send(n)

    first = broker.consume("default", prefetch=4, timeout=2000)
    held = [first.__next__() for _ in range(4)]
    assert all(m is not None for m in held)
    first.requeue(held)
    first.close()

    second = broker.consume("default", prefetch=4, timeout=2000)
    started = time.monotonic()
    again = [second.__next__() for _ in range(4)]
    assert sorted(m.args[0] for m in again if m is not None) == [0, 1, 2, 3]
    assert time.monotonic() - started < 10  # well before the 30 s ack wait
    for message in again:
        second.ack(message)
    second.close()
    broker.join("default", timeout=5_000)


def test_worker_stop_hands_its_prefetched_messages_back(make_broker, start_worker):
    # Far longer than the bounds below: only a hand-back, never a redelivery, can pass them.
    broker = make_broker(ack_wait=60.0)
    done: list[int] = []
    gate = threading.Event()

    @dramatiq.actor(broker=broker)
    def slow(n):
        gate.wait(60)
        done.append(n)

    for n in range(6):
        slow.send(n)
    try:
        first = start_worker(broker, worker_threads=1)
        prefetch = first.queue_prefetch
        assert 1 < prefetch < 6
        # One message runs (blocked), the others it fetched wait in the worker, unstarted.
        assert wait_for(lambda: broker.queue_stats()["default"] == (6 - prefetch, prefetch))
        stop_idle(first, gate)
    finally:
        gate.set()
    assert len(done) == 1

    # The unstarted ones were handed back: the next worker gets them at once. (The server
    # counts a handed-back message as unsettled until it is delivered again, so its figures
    # cannot tell; kept by the stopped worker, they would only come back after the ack wait.)
    start_worker(broker, worker_threads=2)
    broker.join("default", timeout=30_000)
    assert sorted(done) == list(range(6))


@pytest.mark.slow
def test_a_long_task_is_not_redelivered_while_its_worker_lives(make_broker, start_worker):
    broker = make_broker(ack_wait=2.0)
    runs = []

    @dramatiq.actor(broker=broker, time_limit=60_000)
    def long_task():
        runs.append(time.monotonic())
        time.sleep(7)  # over three ack waits: only the heartbeats keep it from coming back

    long_task.send()
    start_worker(broker, worker_threads=2)
    start_worker(broker, worker_threads=2)
    broker.join(long_task.queue_name, timeout=30_000)
    assert len(runs) == 1


def test_a_message_whose_workers_keep_dying_ends_in_the_dead_letters(make_broker):
    broker = make_broker(ack_wait=1.0, max_deliveries=2)

    @dramatiq.actor(broker=broker)
    def deadly():
        pass

    deadly.send()
    for _ in range(2):
        consumer = broker.consume("default", prefetch=1, timeout=3000)
        assert consumer.__next__() is not None  # taken, then its "worker" vanishes
        consumer.close()

    consumer = broker.consume("default", prefetch=1, timeout=3000)
    assert consumer.__next__() is None  # the third delivery is buried, not handed over
    consumer.close()
    letters = broker.dead_letters.list()
    assert len(letters) == 1
    assert "delivered 3 times" in letters[0].reason
    broker.join("default", timeout=5_000)


def test_messages_for_unknown_actors_are_dead_lettered(broker, worker):
    seen = []

    @dramatiq.actor(broker=broker)
    def known():
        seen.append(1)

    broker.enqueue(dramatiq.Message("default", "no_such_actor", (), {}, {}))
    known.send()
    assert wait_for(lambda: len(broker.dead_letters.list()) == 1)
    assert wait_for(lambda: seen == [1])
    (letter,) = broker.dead_letters.list()
    assert letter.actor_name == "no_such_actor"
    assert "ActorNotFound" in letter.reason


def test_undecodable_bytes_are_dead_lettered_and_the_worker_goes_on(broker, worker):
    seen = []

    @dramatiq.actor(broker=broker)
    def known():
        seen.append(1)

    known.send()  # creates the stream and the consumer
    assert wait_for(lambda: seen == [1])

    async def publish_garbage() -> None:
        nc = await nats.connect(broker.connection.servers)
        await nc.jetstream().publish(broker.topology.subject("default"), b"\x00not json")
        await nc.close()

    asyncio.run(publish_garbage())
    known.send()
    assert wait_for(lambda: seen == [1, 1])
    assert wait_for(lambda: len(broker.dead_letters.list()) == 1)
    (letter,) = broker.dead_letters.list()
    assert letter.raw == b"\x00not json"
    assert letter.payload is None
    assert "undecodable" in letter.reason


@pytest.mark.parametrize("prefetch", [1, 3])
def test_a_consumer_never_holds_more_than_prefetch(make_broker, prefetch):
    broker = make_broker()

    @dramatiq.actor(broker=broker)
    def noop():
        pass

    for _ in range(5):
        noop.send()
    consumer = broker.consume("default", prefetch=prefetch, timeout=500)
    held = [consumer.__next__() for _ in range(prefetch)]
    assert all(m is not None for m in held)
    assert consumer.__next__() is None
    consumer.ack(held[0])
    assert consumer.__next__() is not None
    consumer.close()


def test_a_retry_that_cannot_be_scheduled_comes_back_after_the_ack_wait(
    make_broker, start_worker, monkeypatch
):
    """dramatiq acknowledges a failed message even when its Retries middleware could not
    enqueue the retry (NATS away for the publish): the message and its retries would be gone.
    Here it is left unsettled and delivered again after the ack wait."""
    from dramatiq.errors import BrokerConnectionError

    broker = make_broker(ack_wait=2.0)
    attempts: list[int] = []
    refused: list[dramatiq.Message] = []
    enqueue = broker.enqueue

    def enqueue_refusing_the_first_retry(message, *, delay=None):
        if delay is not None and not refused:
            refused.append(message)
            raise BrokerConnectionError("NATS is away")
        return enqueue(message, delay=delay)

    monkeypatch.setattr(broker, "enqueue", enqueue_refusing_the_first_retry)

    @dramatiq.actor(broker=broker, max_retries=3, min_backoff=100, max_backoff=200)
    def flaky(n):
        attempts.append(n)
        if len(attempts) == 1:
            raise RuntimeError("the first attempt fails")

    flaky.send(1)
    start_worker(broker, worker_threads=1)
    assert wait_for(lambda: len(attempts) == 2, timeout=30)
    broker.join("default", timeout=30_000)
    assert attempts == [1, 1] and len(refused) == 1
    assert broker.dead_letters.list() == []
