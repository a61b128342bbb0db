"""Signing in to NATS as operators run it, against real nats-server processes: operator mode
with a ``.creds`` file, an nkey user, client-certificate TLS. Each works for the broker (a
message stored and pulled — on the wire client where it signs the nonce, through nats-py with
it turned off and over TLS), the Object Store and ``/readyz``'s probe; each refusal is one
sentence naming the setting, given at once rather than after retries."""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dramatiq
import pytest

from app.config import Config, ConfigError
from app.embedded.nats_server import NatsServer, free_port
from app.http.api.health import nats_checks
from app.nats_sign_in import SignInSettings, check_at_start, refused_line
from app.queue import make_broker
from app.storage import NatsObjectStorage, storage_of
from broker import NatsBroker, NatsSignIn, SignInRefused
from broker.pull import WirePull
from broker.wire import WireConnection, WireUnsupported
from tests.support.nats_auth import (
    Certificates,
    Operator,
    configured_server,
    make_certificates,
    nkey_users_config,
    user_key,
    write_creds,
)
from tests.support.waiting import wait_for, wait_until

#: A refusal must come back long before this (a retried one would take all of it).
CONNECT_TIMEOUT_S = 20.0


def settings(server_url: str, **env: str) -> Config:
    return Config.from_env(
        {"DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none", "NATS_URL": server_url, **env}
    )


def broker_of(config: Config, wire: bool = True) -> NatsBroker:
    broker = make_broker(
        config.nats_url,
        f"signin-{uuid.uuid4().hex[:8]}",
        queue="signed",
        sign_in=config.nats_sign_in.for_broker(),
    )
    broker.connect_timeout = CONNECT_TIMEOUT_S
    broker.connection.connect_timeout = CONNECT_TIMEOUT_S
    if not wire:
        broker.use_wire, broker._publisher = False, None  # as NatsBroker(wire=False)
    return broker


def round_trip(config: Config, *, wire: bool) -> None:
    """A message stored through the broker and pulled back, then acknowledged: on the wire
    client (``wire``) or through nats-py."""
    broker = broker_of(config, wire)
    try:
        round_trip_on(broker)
    finally:
        broker.close()


def round_trip_on(broker: NatsBroker) -> None:
    """A message through ``broker`` and back, on the client it is set to use."""
    wire = broker.use_wire
    sent = dramatiq.Message(
        queue_name="signed", actor_name="noop", args=("hello",), kwargs={}, options={}
    )
    broker.enqueue(sent)
    consumer = broker.consume("signed", prefetch=1, timeout=1000)
    try:
        received = wait_until(lambda: next(consumer), 30, "the message")
        assert received is not None and received.message_id == sent.message_id
        assert received.args == ("hello",)
        # Neither sending nor pulling fell back from the wire client (nor took it up).
        assert broker.use_wire is wire and (broker._publisher is not None) is wire
        assert isinstance(consumer._transport, WirePull) is wire
        consumer.ack(received)
    finally:
        consumer.close()
    # Acks are sent in the background: wait for the server to count this one.
    assert wait_for(lambda: broker.queue_stats()["signed"] == (0, 0), timeout=30)
    assert nats_checks(broker) == {"nats": "ok", "jetstream": "ok"}
    broker.delete_streams()


def bucket_round_trip(config: Config) -> None:
    store = storage_of(config)
    assert isinstance(store, NatsObjectStorage)
    try:
        store.save("signed/in.txt", [b"signed ", b"in"])
        with store.local_path("signed/in.txt") as path:
            assert path.read_bytes() == b"signed in"
        assert store.exists("signed/in.txt")
    finally:
        store.close()


def refused_at_start(config: Config) -> str:
    """What a process says at start with these settings (and that it says it at once)."""
    broker = broker_of(config)
    try:
        started = time.monotonic()
        line = check_at_start(broker, config.nats_sign_in, config.nats_url)
        assert time.monotonic() - started < CONNECT_TIMEOUT_S
        readyz = nats_checks(broker)
    finally:
        broker.close()
    assert line is not None and "\n" not in line
    assert readyz["nats"].startswith("unreachable: ") and readyz["jetstream"] == "not checked"
    return line


# -- operator mode ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OperatorServer:
    server: NatsServer
    operator: Operator
    creds: Path
    expired: Path
    stranger: Path


@pytest.fixture(scope="module")
def operator_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorServer]:
    folder = tmp_path_factory.mktemp("operator")
    operator = Operator.make()
    user, jwt = operator.user("worker")
    old, old_jwt = operator.user("retired", expires=time.time() - 60)
    other = Operator.make()  # a user of an account this server has never heard of
    stranger, stranger_jwt = other.user("stranger")
    with configured_server(folder / "server", operator.server_config()) as server:
        yield OperatorServer(
            server,
            operator,
            write_creds(folder / "worker.creds", user, jwt),
            write_creds(folder / "retired.creds", old, old_jwt),
            write_creds(folder / "stranger.creds", stranger, stranger_jwt),
        )


@pytest.mark.parametrize("wire", [True, False], ids=["wire", "nats-py"])
def test_operator_mode_creds_sign_in_the_broker_and_readyz(operator_server, wire):
    config = settings(operator_server.server.url, NATS_CREDS=str(operator_server.creds))
    round_trip(config, wire=wire)


@pytest.mark.parametrize("layout", ["crlf", "blank-lines", "indented"])
@pytest.mark.parametrize("wire", [True, False], ids=["wire", "nats-py"])
def test_a_creds_file_saved_otherwise_than_nsc_writes_it_signs_in(
    operator_server, tmp_path, layout, wire
):
    """Windows line ends, a blank line after each marker, indented lines: the checks at start
    take them, so the broker (nats-py as well as the wire client) and the bucket must too."""
    text = operator_server.creds.read_text()
    if layout == "crlf":
        text = text.replace("\n", "\r\n")
    elif layout == "blank-lines":
        text = text.replace("-----\n", "-----\n\n")
    else:
        text = "".join(f"  {line}\n" for line in text.splitlines())
    creds = tmp_path / "saved.creds"
    creds.write_bytes(text.encode())
    creds.chmod(0o600)
    config = settings(
        operator_server.server.url,
        NATS_CREDS=str(creds),
        STORAGE_URL=f"nats:///signed-{uuid.uuid4().hex[:8]}",
    )
    round_trip(config, wire=wire)
    bucket_round_trip(config)


def test_operator_mode_creds_sign_in_the_object_store(operator_server):
    config = settings(
        operator_server.server.url,
        NATS_CREDS=str(operator_server.creds),
        STORAGE_URL=f"nats:///signed-{uuid.uuid4().hex[:8]}",
    )
    bucket_round_trip(config)


def test_creds_of_another_account_are_refused_in_one_line(operator_server):
    config = settings(operator_server.server.url, NATS_CREDS=str(operator_server.stranger))
    line = refused_at_start(config)
    assert line == (
        f"NATS at {operator_server.server.url} refused the sign-in (authorization violation): "
        "check NATS_CREDS (a current user JWT of an account this server trusts)"
    )


def test_without_credentials_the_operator_server_refuses(operator_server):
    broker = make_broker(operator_server.server.url, "signin-none", queue="signed")
    try:
        with pytest.raises(SignInRefused) as refused:
            broker.check_sign_in()
        assert refused.value.reason == "authorization violation"
        assert nats_checks(broker)["nats"] == "unreachable: authorization violation"
    finally:
        broker.close()


def test_an_expired_user_jwt_is_refused_at_start_and_by_the_server(operator_server):
    with pytest.raises(ConfigError) as error:
        settings(operator_server.server.url, NATS_CREDS=str(operator_server.expired))
    assert "its user JWT expired at" in str(error.value)

    # Past the configuration (a JWT that expired since the process was configured), the
    # server's refusal is the same one line.
    config = settings(operator_server.server.url)
    expired = SignInSettings(creds=str(operator_server.expired))
    line = refused_at_start(dataclasses.replace(config, nats_sign_in=expired))
    assert "refused the sign-in (authorization violation): check NATS_CREDS" in line


# -- nkey users ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NkeyServer:
    server: NatsServer
    seed: str


@pytest.fixture(scope="module")
def nkey_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NkeyServer]:
    folder = tmp_path_factory.mktemp("nkey")
    user = user_key()
    with configured_server(folder / "server", nkey_users_config(user)) as server:
        yield NkeyServer(server, user.seed)


@pytest.mark.parametrize("wire", [True, False], ids=["wire", "nats-py"])
def test_an_nkey_seed_signs_in_the_broker_readyz_and_the_bucket(nkey_server, wire):
    round_trip(settings(nkey_server.server.url, NATS_NKEY_SEED=nkey_server.seed), wire=wire)
    bucket_round_trip(
        settings(
            nkey_server.server.url,
            NATS_NKEY_SEED=nkey_server.seed,
            STORAGE_URL=f"nats:///signed-{uuid.uuid4().hex[:8]}",
        )
    )


def test_an_nkey_seed_file_signs_in(nkey_server, tmp_path):
    seed_file = tmp_path / "nats.seed"
    seed_file.write_text(nkey_server.seed + "\n")
    round_trip(settings(nkey_server.server.url, NATS_NKEY_SEED_FILE=str(seed_file)), wire=True)


def test_a_seed_the_server_does_not_list_is_refused_in_one_line(nkey_server):
    wrong = user_key().seed
    line = refused_at_start(settings(nkey_server.server.url, NATS_NKEY_SEED=wrong))
    assert line == (
        f"NATS at {nkey_server.server.url} refused the sign-in (authorization violation): "
        "check NATS_NKEY_SEED (a user the server lists)"
    )
    assert wrong not in line


def test_the_wire_client_signs_the_nonce_and_says_when_it_is_refused(nkey_server):
    url = nkey_server.server.url
    WireConnection(url, 5, sign_in=NatsSignIn(nkey_seed=nkey_server.seed)).close()
    with pytest.raises(SignInRefused) as refused:
        WireConnection(url, 5, sign_in=NatsSignIn(nkey_seed=user_key().seed))
    assert refused.value.reason == "authorization violation"
    with pytest.raises(WireUnsupported):  # no key to sign with: the broker uses nats-py
        WireConnection(url, 5)


# -- client-certificate TLS ------------------------------------------------------------------


@dataclass(frozen=True)
class TlsServer:
    server: NatsServer
    certs: Certificates

    @property
    def tls_url(self) -> str:
        return f"tls://127.0.0.1:{self.server.port}"

    def client(self, ca: Path | None = None) -> dict[str, str]:
        return {
            "NATS_TLS_CERT": str(self.certs.client_cert),
            "NATS_TLS_KEY": str(self.certs.client_key),
            "NATS_TLS_CA": str(ca or self.certs.ca),
        }


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    folder = tmp_path_factory.mktemp("mtls")
    certs = make_certificates(folder / "pki")
    with configured_server(folder / "server", certs.server_config()) as server:
        yield TlsServer(server, certs)


def test_a_client_certificate_signs_in_over_tls(tls_server):
    round_trip(settings(tls_server.tls_url, **tls_server.client()), wire=False)


def test_a_plain_nats_url_upgrades_to_tls_with_the_same_files(tls_server):
    config = settings(
        tls_server.server.url,
        **tls_server.client(),
        STORAGE_URL=f"nats:///signed-{uuid.uuid4().hex[:8]}",
    )
    round_trip(config, wire=False)  # the wire client speaks no TLS
    bucket_round_trip(config)


def test_without_a_client_certificate_the_server_refuses_in_one_line(tls_server):
    line = refused_at_start(settings(tls_server.tls_url, NATS_TLS_CA=str(tls_server.certs.ca)))
    assert line.startswith(f"NATS at {tls_server.tls_url} refused the sign-in (the TLS handshake")
    assert line.endswith(
        "check NATS_TLS_CERT and NATS_TLS_KEY (a client certificate the server's CA signed)"
    )


def test_a_ca_that_did_not_sign_the_server_is_refused_in_one_line(tls_server):
    config = settings(tls_server.tls_url, **tls_server.client(ca=tls_server.certs.other_ca))
    line = refused_at_start(config)
    assert "refused the sign-in (the server's certificate did not verify" in line
    assert line.endswith("check NATS_TLS_CA (the CA that signed the server's certificate)")


def test_a_sign_in_refused_while_reconnecting_is_logged_and_ridden_out(tmp_path, caplog):
    """A user removed from the server (credentials revoked, a JWT expired) while a process
    runs: its reconnects are refused and it says why, then it carries on once let in again."""
    user = user_key()
    listed = tmp_path / "listed.conf"
    listed.write_text(nkey_users_config(user))
    unlisted = tmp_path / "unlisted.conf"
    unlisted.write_text(nkey_users_config(user_key()))

    def serve(conf: Path, port: int | None = None) -> NatsServer:
        return NatsServer(store_dir=tmp_path / "js", port=port, extra_args=("-c", str(conf)))

    server = serve(listed).start()
    broker = broker_of(settings(server.url, NATS_NKEY_SEED=user.seed))
    try:
        broker.check_sign_in()
        assert broker.connection.connected
        server.stop()
        server = serve(unlisted, server.port).start()
        with caplog.at_level(logging.ERROR, logger="broker.connection"):
            assert wait_for(
                lambda: any(
                    "refused the sign-in: authorization violation" in r.getMessage()
                    for r in caplog.records
                ),
                timeout=30,
            )
        assert user.seed not in caplog.text
        server.stop()
        server = serve(listed, server.port).start()
        assert wait_for(lambda: broker.connection.connected, timeout=30)
        assert nats_checks(broker) == {"nats": "ok", "jetstream": "ok"}
    finally:
        broker.close()
        server.stop()


def test_a_creds_file_replaced_in_place_is_read_at_the_next_connection(tmp_path):
    """Renewed credentials (a secret mounted anew) are picked up by a running process: here
    the server comes back trusting another operator, whose user's creds replace the file."""
    before, after = Operator.make(), Operator.make()
    creds = write_creds(tmp_path / "worker.creds", *before.user())
    first = tmp_path / "before.conf"
    first.write_text(before.server_config())
    second = tmp_path / "after.conf"
    second.write_text(after.server_config())
    server = NatsServer(store_dir=tmp_path / "js1", extra_args=("-c", str(first))).start()
    broker = broker_of(settings(server.url, NATS_CREDS=str(creds)))
    try:
        broker.check_sign_in()
        write_creds(creds, *after.user())
        server.stop()
        server = NatsServer(
            store_dir=tmp_path / "js2", port=server.port, extra_args=("-c", str(second))
        ).start()
        assert wait_for(lambda: broker.connection.connected, timeout=30)
        round_trip_on(broker)
    finally:
        broker.close()
        server.stop()


# -- TLS asked for, and a server that does not require it ----------------------------------------


@pytest.mark.parametrize("asked", ["tls-url", "tls-files"], ids=["tls-url", "tls-ca-on-nats-url"])
def test_tls_asked_of_a_server_offering_none_sends_nothing_in_the_clear(asked, tmp_path):
    # Something posing as a NATS server with no TLS (or a man in the middle who took
    # ``tls_required`` out of its INFO): nats-py alone would send CONNECT — a token, a JWT —
    # in the clear. It records all it is sent until the client hangs up.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    sent = bytearray()

    def pose() -> None:
        with listener:
            while True:
                try:
                    connection, _ = listener.accept()
                except OSError:
                    return
                with connection:
                    connection.sendall(
                        b'INFO {"server_id":"posing","version":"2.10.0","proto":1,'
                        b'"max_payload":1048576,"auth_required":true}\r\n'
                    )
                    while chunk := connection.recv(4096):
                        sent.extend(chunk)

    threading.Thread(target=pose, daemon=True).start()
    certs = make_certificates(tmp_path / "pki")
    url, env = f"tls://tok:secret@127.0.0.1:{port}", {}  # the system's CAs
    if asked == "tls-files":
        url, env = f"nats://tok:secret@127.0.0.1:{port}", {"NATS_TLS_CA": str(certs.ca)}
    config = settings(url, **env)
    broker = broker_of(config)
    try:
        # what a process starting with these settings says (TLS asked by the URL alone too)
        said = check_at_start(broker, config.nats_sign_in, config.nats_url)
        assert said is not None and said.endswith("nothing was sent in the clear)")
        with pytest.raises(SignInRefused) as refused:
            broker.check_sign_in()
        assert nats_checks(broker)["nats"] == (
            "unreachable: it offers no TLS, and TLS was asked for"
        )
    finally:
        broker.close()
        listener.close()
    assert refused.value.reason == "it offers no TLS, and TLS was asked for"
    assert b"CONNECT" not in sent and b"secret" not in sent
    line = refused_line(refused.value, settings(url, **env).nats_sign_in, url)
    # nor is the URL's password shown where the refusal is told
    assert "secret" not in str(refused.value) and "secret" not in line
    assert f"NATS at {url.split('//')[0]}//***@127.0.0.1:{port} refused the sign-in" in line
    assert line.endswith(
        "check NATS_URL (the server must offer TLS; nothing was sent in the clear)"
    )


def tls_optional_config(certs: Certificates, monitoring: int, *more: str) -> str:
    """nats-server settings offering TLS without requiring it, with the monitoring port."""
    return "\n".join(
        (
            f"http_port: {monitoring}",
            "tls {",
            f"  cert_file: {json.dumps(str(certs.server_cert))}",
            f"  key_file: {json.dumps(str(certs.server_key))}",
            "}",
            "allow_non_tls: true",
            *more,
            "",
        )
    )


def client_connections(monitoring: int) -> list[dict]:
    """The server's client connections, as its monitoring port lists them (``/connz``)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{monitoring}/connz", timeout=10) as answer:
        return json.load(answer)["connections"]


def test_a_server_offering_tls_without_requiring_it_is_spoken_to_over_tls(tmp_path):
    certs = make_certificates(tmp_path / "pki")
    monitoring = free_port()
    config = tls_optional_config(certs, monitoring)
    with configured_server(tmp_path / "server", config) as server:
        tls_url = f"tls://127.0.0.1:{server.port}"
        broker = broker_of(settings(tls_url, NATS_TLS_CA=str(certs.ca)), wire=False)
        try:
            round_trip_on(broker)
            connections = client_connections(monitoring)
        finally:
            broker.close()
    assert connections and all(c.get("tls_version") for c in connections), connections


def test_a_tls_url_without_tls_files_keeps_every_connection_on_tls(tmp_path, monkeypatch):
    """``tls://user:password@…`` with the server's CA from ``SSL_CERT_FILE`` (no NATS_TLS_*):
    the wire client speaks no TLS, so it is not used — it would have sent CONNECT, password
    and all, in the clear to a server that also takes plain connections."""
    certs = make_certificates(tmp_path / "pki")
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca))
    monitoring = free_port()
    password = "authorization { user: bob, password: hunter2 }"
    config = tls_optional_config(certs, monitoring, password)
    with configured_server(tmp_path / "server", config) as server:
        url = f"tls://bob:hunter2@127.0.0.1:{server.port}"
        with pytest.raises(WireUnsupported):
            WireConnection(url, CONNECT_TIMEOUT_S)
        broker = broker_of(settings(url))  # the wire client asked for, as by default
        try:
            assert not broker.use_wire
            round_trip_on(broker)
            connections = client_connections(monitoring)
        finally:
            broker.close()
    assert connections and all(c.get("tls_version") for c in connections), connections
