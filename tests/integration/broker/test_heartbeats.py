"""Heartbeats keep a running message for its actor's time limit plus a grace, and no longer."""

from __future__ import annotations

import threading

import dramatiq
import pytest

import broker.consumer
from broker.pull import num_delivered
from tests.support.waiting import wait_for

ACK_WAIT_S = 3.0
TIME_LIMIT_MS = 5_000
GRACE_S = 5.0  # the real grace (30 s), shortened for the test


@pytest.mark.slow
def test_heartbeats_stop_at_the_time_limit_plus_the_grace(make_broker, start_worker, monkeypatch):
    monkeypatch.setattr(broker.consumer, "TIME_LIMIT_GRACE_S", GRACE_S)
    nats = make_broker(ack_wait=ACK_WAIT_S)
    stream, durable = nats.topology.stream, nats.topology.durable("default")
    interval = ACK_WAIT_S / 3
    release = threading.Event()
    runs = []

    @dramatiq.actor(broker=nats, time_limit=TIME_LIMIT_MS, max_retries=0)
    def stuck():
        runs.append(1)
        # Blocked in C: the TimeLimit middleware's exception cannot land until this returns,
        # so the thread outlives its time limit, as one stuck in native code would.
        release.wait()

    beats: dict[int, int] = {}  # delivery number -> heartbeats seen for it

    async def watch():
        client = await nats.connection.client()

        async def seen(msg):
            if msg.data == b"+WPI" and f".{stream}.{durable}." in msg.subject:
                number = num_delivered(msg.subject.encode())
                beats[number] = beats.get(number, 0) + 1

        subscription = await client.subscribe("$JS.ACK.>", cb=seen)
        await client.flush()
        return subscription

    async def consumer_info():
        js = await nats.connection.jetstream()
        return await js.consumer_info(stream, durable)

    nats.ensure_queue("default")
    subscription = nats.connection.run(watch)
    try:
        stuck.send()
        start_worker(nats, worker_threads=2)

        # Beats come at least `interval` apart: six of them span two ack waits, after which an
        # unbeaten message would have gone back to the stream.
        assert wait_for(lambda: beats.get(1, 0) >= 6 or len(runs) > 1, timeout=60)
        info = nats.connection.run(consumer_info)
        assert (runs, info.num_redelivered, info.num_ack_pending) == ([1], 0, 1)
        assert beats[1] >= 6

        # Past time limit + grace the beats stop, and the server hands the message out again.
        assert wait_for(lambda: len(runs) == 2, timeout=60)
        budget_s = TIME_LIMIT_MS / 1000 + GRACE_S
        assert 6 <= beats[1] <= budget_s / interval + 1
        assert nats.connection.run(consumer_info).num_redelivered == 1
    finally:
        release.set()
        nats.connection.run(subscription.unsubscribe)
