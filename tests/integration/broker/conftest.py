"""Fixtures for the broker tests: a broker per test on its own namespace, and workers."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator

import dramatiq
import pytest
from dramatiq.middleware import default_middleware
from nats.js.api import ConsumerInfo

from broker import NatsBroker


@pytest.fixture
def make_broker(nats_url: str) -> Iterator[Callable[..., NatsBroker]]:
    """Build brokers on a fresh namespace; their streams are deleted after the test."""
    made: list[NatsBroker] = []

    def make(**options) -> NatsBroker:
        options.setdefault("namespace", f"test-{uuid.uuid4().hex[:10]}")
        options.setdefault("middleware", [m() for m in default_middleware])
        options.setdefault("connect_timeout", 3.0)
        broker = NatsBroker(options.pop("url", nats_url), **options)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        with contextlib.suppress(Exception):
            broker.delete_streams()
        broker.close()


@pytest.fixture
def broker(make_broker) -> NatsBroker:
    broker = make_broker(ack_wait=5.0)
    dramatiq.set_broker(broker)
    return broker


@pytest.fixture
def start_worker() -> Iterator[Callable[..., dramatiq.Worker]]:
    """Start in-process Dramatiq workers; all are stopped after the test."""
    workers: list[dramatiq.Worker] = []

    def start(broker: NatsBroker, **options) -> dramatiq.Worker:
        options.setdefault("worker_timeout", 100)
        options.setdefault("worker_threads", 2)
        worker = dramatiq.Worker(broker, **options)
        worker.start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def worker(broker, start_worker) -> dramatiq.Worker:
    return start_worker(broker)


@pytest.fixture
def consumer_info() -> Callable[[NatsBroker, str], ConsumerInfo]:
    """Read a queue's durable consumer as the server sees it: what it holds, has delivered,
    is waiting to deliver. Evidence for tests that something *could* have happened."""

    def read(broker: NatsBroker, queue_name: str) -> ConsumerInfo:
        async def info() -> ConsumerInfo:
            await broker.ensure_queue_async(queue_name)
            js = await broker.connection.jetstream()
            durable = broker.topology.durable(queue_name)
            return await js.consumer_info(broker.topology.stream, durable)

        return broker.connection.run(info, timeout=broker.connect_timeout + 5)

    return read
