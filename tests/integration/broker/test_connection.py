"""Connection trouble: a nats-server stopped and restarted under a running worker, and fork."""

from __future__ import annotations

import os
import time
import uuid

import dramatiq
import pytest
from dramatiq.errors import BrokerConnectionError
from dramatiq.middleware import default_middleware

from app.embedded.nats_server import NatsServer
from broker import NatsBroker
from tests.helpers import wait_for


@pytest.fixture
def own_server(tmp_path):
    """A nats-server this test may stop and restart (same port, same store)."""
    server = NatsServer(store_dir=tmp_path / "store").start()
    yield server
    server.stop()


def make(server: NatsServer, **options) -> NatsBroker:
    return NatsBroker(
        server.url,
        namespace=f"conn-{uuid.uuid4().hex[:8]}",
        middleware=[m() for m in default_middleware],
        connect_timeout=options.pop("connect_timeout", 3.0),
        **options,
    )


def test_nothing_is_lost_when_the_server_restarts_mid_run(own_server, start_worker):
    broker = make(own_server, ack_wait=3.0, connect_timeout=1.0)
    seen: set[int] = set()

    @dramatiq.actor(broker=broker, max_retries=0)
    def record(n):
        time.sleep(0.002)
        seen.add(n)

    start_worker(broker, worker_threads=4)
    stored = []
    for n in range(300):
        if n == 100:
            own_server.stop()
        if n == 110:
            own_server.start()
        try:
            record.send(n)
            stored.append(n)
        except BrokerConnectionError:
            pass  # refused while the server was down: the caller knows

    assert len(stored) >= 290
    assert wait_for(lambda: set(stored) <= seen, timeout=60)
    broker.close()


def test_ack_after_the_server_came_back_does_not_crash_the_worker(own_server, start_worker):
    broker = make(own_server, ack_wait=2.0)
    runs = []

    @dramatiq.actor(broker=broker, max_retries=0)
    def slow(n):
        runs.append(n)
        time.sleep(1.5)

    slow.send(1)
    start_worker(broker, worker_threads=1)
    assert wait_for(lambda: runs == [1])
    own_server.stop()  # the ack of message 1 happens while the server is down
    time.sleep(2.0)
    own_server.start()

    slow.send(2)
    assert wait_for(lambda: 2 in runs, timeout=30)
    broker.join("default", timeout=30_000)
    broker.close()


def test_enqueue_while_the_server_is_down_raises_connection_error(own_server):
    broker = make(own_server, connect_timeout=1.0)

    @dramatiq.actor(broker=broker)
    def noop():
        pass

    noop.send()
    own_server.stop()
    started = time.monotonic()
    with pytest.raises(BrokerConnectionError):
        noop.send()
    assert time.monotonic() - started < 10
    own_server.start()
    assert wait_for(lambda: _sends(noop))
    broker.close()


def _sends(actor) -> bool:
    try:
        actor.send()
        return True
    except BrokerConnectionError:
        return False


def test_a_forked_child_gets_its_own_connection(own_server):
    broker = make(own_server)

    @dramatiq.actor(broker=broker)
    def noop(who):
        pass

    noop.send("parent")  # the parent is connected before the fork
    pid = os.fork()
    if pid == 0:  # child: use the inherited broker object
        code = 1
        try:
            noop.send("child")
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    noop.send("parent-again")  # the parent's connection still works

    consumer = broker.consume("default", prefetch=3, timeout=2000)
    got = sorted(consumer.__next__().args[0] for _ in range(3))
    assert got == ["child", "parent", "parent-again"]
    consumer.close()
    broker.close()


@pytest.mark.parametrize(
    ("args", "credentials"),
    [(("--auth", "s3cret"), "s3cret@"), (("--user", "ann", "--pass", "pa55"), "ann:pa55@")],
    ids=["token", "user-password"],
)
def test_servers_requiring_authentication(tmp_path, start_worker, args, credentials):
    server = NatsServer(store_dir=tmp_path / "auth", extra_args=args).start()
    try:
        url = server.url.replace("nats://", f"nats://{credentials}")
        broker = NatsBroker(url, namespace="auth", connect_timeout=2.0)
        ran = []

        @dramatiq.actor(broker=broker)
        def noop():
            ran.append(1)

        noop.send()
        start_worker(broker)
        assert wait_for(lambda: ran == [1])
        broker.close()

        wrong = NatsBroker(server.url, namespace="auth", connect_timeout=1.0)
        with pytest.raises(BrokerConnectionError):
            wrong.enqueue(noop.message())
        wrong.close()
    finally:
        server.stop()
