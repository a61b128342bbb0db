"""Connection trouble: a nats-server stopped and restarted under a running worker, and fork."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid

import dramatiq
import pytest
from dramatiq.errors import BrokerConnectionError
from dramatiq.middleware import default_middleware

from app.embedded.nats_server import NatsServer
from broker import NatsBroker
from broker.pull import AsyncPull
from tests.support.waiting import wait_for


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


@pytest.mark.slow
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
    runs, finished, release = [], [], threading.Event()

    @dramatiq.actor(broker=broker, max_retries=0)
    def slow(n):
        runs.append(n)
        if n == 1:
            release.wait(30)
        finished.append(n)

    slow.send(1)
    start_worker(broker, worker_threads=1)
    assert wait_for(lambda: runs == [1])
    own_server.stop()
    release.set()  # message 1 ends now: its ack is sent while the server is away
    assert wait_for(lambda: finished == [1])
    own_server.start()

    slow.send(2)
    assert wait_for(lambda: 2 in finished, timeout=30)
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


def _tls_server(tmp_path, monkeypatch) -> tuple[NatsServer, str]:
    """A server requiring TLS, with a certificate for 127.0.0.1 from a CA trusted here."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=test CA")
    openssl("req", *ec, "-keyout", "key.pem", "-out", "req.csr", "-subj", "/CN=127.0.0.1")
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    sign = ("-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-extfile", "san.ext")
    openssl("x509", "-req", "-in", "req.csr", *sign, "-out", "cert.pem")
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))  # nats-py's default context
    args = ("--tls", "--tlscert", str(tmp_path / "cert.pem"), "--tlskey", str(tmp_path / "key.pem"))
    server = NatsServer(store_dir=tmp_path / "store", extra_args=args).start()
    return server, f"tls://127.0.0.1:{server.port}"


#: A valid nkey user public key (its seed is never needed: the test's client uses a password).
NKEY_USER = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"


def _nkeys_server(tmp_path, monkeypatch) -> tuple[NatsServer, str]:
    """A server with nkey users, so it sends every client a nonce to sign; the broker's own
    user signs in with a password."""
    config = tmp_path / "nkeys.conf"
    config.write_text(
        "authorization {\n  users = [\n"
        f'    {{nkey: "{NKEY_USER}"}}\n'
        '    {user: "ann", password: "pa55"}\n'
        "  ]\n}\n"
    )
    server = NatsServer(store_dir=tmp_path / "store", extra_args=("-c", str(config))).start()
    return server, server.url.replace("nats://", "nats://ann:pa55@")


@pytest.mark.parametrize("start_server", [_tls_server, _nkeys_server], ids=["tls", "nkeys"])
def test_servers_the_wire_client_cannot_speak_to_switch_to_nats_py(
    tmp_path, monkeypatch, start_worker, start_server
):
    server, url = start_server(tmp_path, monkeypatch)
    try:
        broker = NatsBroker(url, namespace="nats-py", connect_timeout=3.0)
        ran = []

        @dramatiq.actor(broker=broker)
        def noop():
            ran.append(1)

        worker = start_worker(broker)

        def transport():
            consumer = worker.consumers["default"].consumer
            return consumer and consumer._transport

        # The consumer, first to meet the server, gives up on the wire client...
        assert wait_for(lambda: isinstance(transport(), AsyncPull))
        assert not broker.use_wire
        # ...and so does the publisher, when it meets the server in its turn.
        noop.send()
        assert broker._publisher is None
        assert wait_for(lambda: ran == [1])
        assert isinstance(transport(), AsyncPull)
        worker.stop()
        broker.close()
    finally:
        server.stop()
