"""Sending, declaring, joining and flushing on a real nats-server."""

from __future__ import annotations

import asyncio
import time

import dramatiq
import nats
import pytest
from dramatiq.errors import BrokerConnectionError, QueueJoinTimeout

from app.embedded.nats_server import free_port
from broker import NatsBroker
from tests.support.waiting import wait_for


def test_actors_process_sent_messages(broker, worker):
    seen = []

    @dramatiq.actor(broker=broker)
    def record(value):
        seen.append(value)

    for value in range(20):
        record.send(value)
    broker.join(record.queue_name, timeout=10_000)
    worker.join()

    assert sorted(seen) == list(range(20))


def test_enqueue_returns_only_after_the_message_is_stored(broker):
    @dramatiq.actor(broker=broker)
    def noop():
        pass

    for _ in range(3):
        noop.send()

    async def count() -> int:
        nc = await nats.connect(broker.connection.servers)
        try:
            info = await nc.jetstream().stream_info(broker.topology.stream)
            return info.state.messages
        finally:
            await nc.close()

    # No worker runs: the three messages are in the stream, read by a separate client.
    assert asyncio.run(count()) == 3


def test_construction_and_declaration_do_no_network_io():
    port = free_port()
    broker = NatsBroker(f"nats://127.0.0.1:{port}", namespace="lazy", connect_timeout=0.5)

    @dramatiq.actor(broker=broker)
    def noop():
        pass

    assert broker.get_declared_queues() == {"default"}
    assert broker.connection._loop is None  # not even the loop thread was started

    started = time.monotonic()
    with pytest.raises(BrokerConnectionError):
        noop.send()
    assert time.monotonic() - started < 10  # bounded retry, no hang
    broker.close()


def test_a_publish_retried_with_the_same_msg_id_is_stored_once(broker):
    @dramatiq.actor(broker=broker)
    def noop():
        pass

    message = noop.message()
    payload = message.encode()
    broker._publish("default", payload, msg_id="same-id")
    broker._publish("default", payload, msg_id="same-id")
    broker._publish("default", payload, msg_id="other-id")

    assert broker._outstanding("default") == 2


def test_two_sends_of_one_message_object_are_two_messages(broker):
    """Dramatiq's retries re-enqueue with the same message_id: both must be stored."""

    @dramatiq.actor(broker=broker)
    def noop():
        pass

    message = noop.message()
    broker.enqueue(message)
    broker.enqueue(message)

    assert broker._outstanding("default") == 2


def test_join_times_out_while_messages_wait(broker):
    @dramatiq.actor(broker=broker)
    def noop():
        pass

    noop.send()
    with pytest.raises(QueueJoinTimeout):
        broker.join(noop.queue_name, timeout=300)


def test_flush_drops_queued_and_delayed_messages(broker):
    @dramatiq.actor(broker=broker)
    def noop():
        pass

    noop.send()
    noop.send_with_options(delay=60_000)
    assert broker._outstanding("default") == 1
    assert broker._outstanding("default.DQ") == 1

    broker.flush("default")

    broker.join("default", timeout=2_000)


def test_flush_all_drops_every_declared_queue(broker):
    @dramatiq.actor(broker=broker, queue_name="first")
    def first():
        pass

    @dramatiq.actor(broker=broker, queue_name="second")
    def second():
        pass

    first.send()
    second.send()
    broker.flush_all()

    broker.join("first", timeout=2_000)
    broker.join("second", timeout=2_000)


def test_declared_queues_include_delay_queues(broker):
    @dramatiq.actor(broker=broker, queue_name="media")
    def noop():
        pass

    assert "media" in broker.get_declared_queues()
    assert "media.DQ" in broker.get_declared_delay_queues()


@pytest.mark.parametrize("name", ["has space", "star*", "gt>", ""])
def test_queue_names_that_cannot_be_subjects_are_refused(broker, name):
    with pytest.raises(ValueError):
        broker.declare_queue(name)


def test_brokers_in_different_namespaces_do_not_see_each_other(make_broker, start_worker):
    first, second = make_broker(), make_broker()
    seen = []

    @dramatiq.actor(broker=first, actor_name="shared")
    def on_first(what):
        seen.append(("first", what))

    @dramatiq.actor(broker=second, actor_name="shared")
    def on_second(what):
        seen.append(("second", what))

    on_first.send("sent on first")
    on_second.send("marker")  # stored after it: a worker that could see it would take it too
    start_worker(second, worker_threads=1)
    assert wait_for(lambda: ("second", "marker") in seen)
    # Nothing is waiting or unsettled on second's queue: whatever it could see, it has run.
    second.join("default", timeout=10_000)
    assert seen == [("second", "marker")]
    assert first.queue_stats()["default"] == (1, 0)
