"""Several NATS URLs: the broker uses whichever answers, and fails over in a cluster."""

from __future__ import annotations

import uuid

import dramatiq
import pytest
from dramatiq.errors import BrokerConnectionError
from dramatiq.middleware import default_middleware

from app.embedded.nats_server import free_port
from broker import NatsBroker
from tests.support.waiting import wait_for


def make(url: str | list[str], **options) -> NatsBroker:
    return NatsBroker(
        url,
        namespace=f"multi-{uuid.uuid4().hex[:8]}",
        middleware=[m() for m in default_middleware],
        **options,
    )


def sends(actor, *args) -> bool:
    try:
        actor.send(*args)
        return True
    except BrokerConnectionError:
        return False


def test_a_dead_first_url_is_skipped(nats_server, start_worker):
    dead = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    broker = make(f"{dead}, {nats_server.url}", connect_timeout=5.0)
    ran = []

    @dramatiq.actor(broker=broker)
    def record(n):
        ran.append(n)

    record.send(1)  # the publisher and nats-py (stream set-up) both get past the dead URL
    worker = start_worker(broker)  # so does the pull consumer
    assert wait_for(lambda: ran == [1])
    assert broker.use_wire  # the URL list was handled, not dodged by falling back to nats-py
    worker.stop()
    broker.delete_streams()
    broker.close()


@pytest.mark.slow
def test_a_worker_fails_over_when_its_server_stops(nats_cluster, start_worker):
    broker = make(
        [node.url for node in nats_cluster], replicas=3, connect_timeout=5.0, ack_wait=5.0
    )
    ran: set[int] = set()

    @dramatiq.actor(broker=broker, max_retries=0)
    def record(n):
        ran.add(n)

    # The cluster elects its JetStream leader a few seconds after starting.
    assert wait_for(lambda: sends(record, 1), timeout=60)
    worker = start_worker(broker)
    assert wait_for(lambda: 1 in ran)

    nats_cluster[0].stop()  # the first URL: where the wire publisher and pull consumer are
    assert wait_for(lambda: sends(record, 2), timeout=60)
    assert wait_for(lambda: 2 in ran, timeout=60)
    assert broker.use_wire
    worker.stop()
    broker.close()
