"""Faults while a burst of uploads goes through the Procfile's processes: NATS stopped or
killed, PostgreSQL shut down. Every accepted upload must end ``done`` with each stage's
results written once, no job is left ``queued`` or ``running``, no file without its row,
every job's end told to its webhook receiver (signed; one message per job, whatever was sent
again), and ``/readyz`` says 503 while a server is away and 200 after.

Run them alone with ``pytest -m faults``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg
import pytest

from app.embedded.nats_server import NatsServer, cluster_nodes
from tests.support.deployment import Deployment, Process
from tests.support.http_calls import get, upload
from tests.support.namespace import SERVICE_NAMESPACE
from tests.support.receiver import Receiver
from tests.support.servers import StoppablePostgres, stream_info
from tests.support.songs import song_flac
from tests.support.waiting import stop_all, wait_for

SECRET = "whsec_" + "A" * 43 + "="  # 32 bytes
pytestmark = [pytest.mark.faults, pytest.mark.slow]

STAGES = ["transcode", "loudness", "normalize", "tempo_key", "finalize"]


@dataclass
class Stack:
    nats: NatsServer
    postgres: StoppablePostgres
    database_url: str
    deployment: Deployment
    api: Process
    workers: Process
    store: Path
    receiver: Receiver
    timeline: list[str] = field(default_factory=list)
    down_at: float | None = None  # time.monotonic() when the server was taken down
    back_at: float | None = None  # ... and when it answered again

    def ready(self) -> int:
        return get(self.api.port, "/readyz")[0]


@contextmanager
def running_stack(
    tmp_path: Path, database: str, settings: dict[str, str], worker_env: dict[str, str]
) -> Iterator[Stack]:
    """The Procfile's processes (``settings`` over the deployment's, ``worker_env`` for the
    workers) on a nats-server and a PostgreSQL of their own, stopped after."""
    nats = NatsServer(store_dir=tmp_path / "nats").start()
    postgres = StoppablePostgres(tmp_path / "pg", delete_on_stop=True)
    postgres.start()
    database_url = postgres.create_database(database)
    deployment = Deployment(tmp_path, database_url, nats.url)
    deployment.env.update(settings)
    deployment.release()
    receiver = told_to_receiver(deployment, database_url)
    api, workers = deployment.api(), deployment.workers(**worker_env)
    deployment.webhooks()
    yield Stack(
        nats, postgres, database_url, deployment, api, workers, tmp_path / "store", receiver
    )
    stop_all([process.popen for process in deployment.processes])
    receiver.close()
    nats.stop()
    # A server started again by a test (start_again) is not the one stop() knows: shut it down
    # by its pid file first, or it outlives the test.
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        postgres.fast_shutdown()
    postgres.stop()


@pytest.fixture
def stack(tmp_path) -> Iterator[Stack]:
    settings = {"WORKER_PROCESSES": "2", "STUCK_JOB_AFTER_S": "20", "SWEEP_INTERVAL_S": "3"}
    with running_stack(tmp_path, "faults", settings, {}) as stack:
        yield stack


def told_to_receiver(deployment: Deployment, database_url: str) -> Receiver:
    """A webhook receiver, made the open tenant's default (every job's end is told to it)."""
    deployment.env.update(WEBHOOK_SECRET=SECRET, WEBHOOK_ALLOW_PRIVATE="1")
    receiver = Receiver(SECRET)
    with psycopg.connect(database_url, autocommit=True) as db:
        db.execute(
            "INSERT INTO tenant_settings (tenant, callback_url, updated_at) "
            "VALUES ('@open', %s, now())",
            (receiver.url("/ok"),),
        )
    return receiver


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> bytes:
    return song_flac(
        tmp_path_factory.mktemp("faults"), 120.0, "D", "minor", seconds=2, rate=22050, seed=31
    )


def burst_through(stack: Stack, song: bytes, outage: Callable[[], None]) -> list[dict]:
    """Upload continuously while ``outage`` runs in a thread, and 8 more after it (a 503 sent
    again, as clients do: right after a failover one may still meet it); returns the accepted
    uploads. Refusals must be 503: never a 500."""
    accepted, statuses = [], Counter()
    fault = threading.Thread(target=outage)
    workers = psutil.Process(stack.workers.popen.pid).children(recursive=True)
    for process in workers:  # so that the fault finds every job of the burst unfinished
        process.suspend()
    try:
        for n in range(8):
            status, body = upload(stack.api.port, song, name=f"before{n}.flac")
            assert status == 202, body
            accepted.append(body)
        fault.start()
        assert wait_for(lambda: stack.back_at is None and stack.down_at is not None, 30)
    finally:
        for process in workers:  # they meet the outage mid-stage
            process.resume()
    while fault.is_alive():
        status, body = upload(stack.api.port, song, name="during.flac")
        statuses[status] += 1
        if status == 202:
            accepted.append(body)
        else:
            assert status == 503, body
        time.sleep(0.2)
    fault.join()
    retried = 0
    for n in range(8):  # as a client does: a 503 means nothing was kept, send it again
        for _ in range(10):
            status, body = upload(stack.api.port, song, name=f"after{n}.flac")
            if status != 503:
                break
            retried += 1
            time.sleep(1)
        assert status == 202, body
        accepted.append(body)
    stack.timeline.append(f"uploads during the outage: {dict(statuses)}")
    stack.timeline.append(f"503s after it, each sent again 1 s later: {retried}")
    return accepted


def recover(stack: Stack, accepted: list[dict]) -> None:
    """Wait for ready and for every job; the times go to the timeline (printed: ``-s``)."""
    assert wait_for(lambda: stack.ready() == 200, 60)
    ready = time.monotonic() - stack.back_at
    assert_nothing_lost(stack, accepted)
    done = time.monotonic() - stack.back_at
    stack.timeline.append(
        f"ready again {ready:.1f} s after the server was back; "
        f"{len(accepted)} accepted uploads all done by {done:.1f} s"
    )
    print("\n".join(stack.timeline))


def away(
    stack: Stack, what: str, stop: Callable[[], None], start: Callable[[], None], seconds: float
) -> Callable[[], None]:
    """An outage of ``what``: stopped, ``/readyz`` watched for its 503, started ``seconds``
    later; the times go to ``stack``."""

    def outage() -> None:
        stop()
        stack.down_at = time.monotonic()
        try:
            stack.timeline.append(f"readyz 503 without {what}: {wait_for(is_503(stack), 8)}")
            time.sleep(seconds)
        finally:
            start()
            stack.back_at = time.monotonic()

    return outage


def is_503(stack: Stack) -> Callable[[], bool]:
    return lambda: stack.ready() == 503


def assert_nothing_lost(stack: Stack, accepted: list[dict], timeout: float = 240) -> None:
    job_ids = [a["job_id"] for a in accepted]
    with psycopg.connect(stack.database_url, autocommit=True) as db:

        def unfinished() -> list:
            return db.execute(
                "SELECT id, status FROM jobs WHERE status IN ('queued', 'running')"
            ).fetchall()

        assert wait_for(lambda: not unfinished(), timeout, interval=0.5), unfinished()
        statuses = dict(db.execute("SELECT id, status FROM jobs").fetchall())
        assert all(statuses[j] == "done" for j in job_ids), {
            j: statuses[j] for j in job_ids if statuses[j] != "done"
        }
        for job_id in job_ids:
            query = "SELECT message FROM job_events WHERE job_id = %s ORDER BY id"
            events = [m for (m,) in db.execute(query, (job_id,))]
            assert events.count("done") == 1, events
            started = {s for s in STAGES if f"{s} started" in events}
            assert started == set(STAGES), events
        outputs = db.execute(
            "SELECT upload_id, format, count(*) FROM outputs GROUP BY upload_id, format"
        ).fetchall()
        assert all(count == 1 for _, _, count in outputs)
        per_upload = Counter(upload_id for upload_id, _, _ in outputs)
        assert all(per_upload[a["upload_id"]] >= 1 for a in accepted)
        rows = {key for (key,) in db.execute("SELECT storage_key FROM uploads")}
    stored = {str(p.relative_to(stack.store)) for p in stack.store.glob("uploads/*/original.*")}
    assert stored == rows, {
        "files without a row": stored - rows,
        "rows without a file": rows - stored,
    }
    assert_every_end_told(stack, job_ids, timeout)


def assert_every_end_told(stack: Stack, job_ids: list[str], timeout: float) -> None:
    """Each job's end reached the receiver, signed, under one message id (a message sent again
    after an outage keeps its id, so a receiver dropping duplicates by id sees each end once)."""

    def told() -> dict[str, set[str]]:
        ids: dict[str, set[str]] = {}
        for message in stack.receiver.on("/ok"):
            assert message.verified, message.headers
            ids.setdefault(message.json["job_id"], set()).add(message.headers["webhook-id"])
        return ids

    assert wait_for(lambda: set(job_ids) <= set(told()), timeout, interval=0.5), set(job_ids) - set(
        told()
    )
    assert all(len(told()[job_id]) == 1 for job_id in job_ids), told()
    with psycopg.connect(stack.database_url, autocommit=True) as db:
        rows = db.execute("SELECT job_id, status FROM webhook_deliveries").fetchall()
    assert sorted(job for job, _ in rows if job in job_ids) == sorted(job_ids)
    duplicates = len(stack.receiver.on("/ok")) - len(job_ids)
    stack.timeline.append(f"webhooks: {len(job_ids)} ends told, {duplicates} sent twice")


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_nats_away_for_10_s_mid_burst(stack, song, how):
    stop = stack.nats.stop if how == "sigterm" else stack.nats.kill
    outage = away(stack, "NATS", stop, stack.nats.start, seconds=10)
    accepted = burst_through(stack, song, outage)
    assert any(line.endswith(": True") for line in stack.timeline), stack.timeline
    recover(stack, accepted)


def test_postgres_fast_shutdown_for_15_s_mid_burst(stack, song):
    pg = stack.postgres
    outage = away(stack, "Postgres", pg.fast_shutdown, pg.start_again, seconds=15)
    accepted = burst_through(stack, song, outage)
    assert any(line.endswith(": True") for line in stack.timeline), stack.timeline
    recover(stack, accepted)


@pytest.fixture
def cluster_stack(tmp_path) -> Iterator[tuple[Stack, list[NatsServer]]]:
    """The stack on a 3-node JetStream cluster with ``NATS_REPLICAS=3``."""
    nodes = [node.start() for node in cluster_nodes(tmp_path / "cluster")]
    postgres = StoppablePostgres(tmp_path / "pg", delete_on_stop=True)
    postgres.start()
    database_url = postgres.create_database("faults")
    deployment = Deployment(tmp_path, database_url, ",".join(node.url for node in nodes))
    deployment.env.update(
        WORKER_PROCESSES="2", NATS_REPLICAS="3", STUCK_JOB_AFTER_S="20", SWEEP_INTERVAL_S="3"
    )
    deployment.release()
    receiver = told_to_receiver(deployment, database_url)
    api = deployment.api()
    # The cluster elects its JetStream leader, and /readyz makes the streams, in a few seconds.
    assert wait_for(lambda: get(api.port, "/readyz")[0] == 200, 90)
    workers = deployment.workers()
    deployment.webhooks()
    stack = Stack(
        nodes[0], postgres, database_url, deployment, api, workers, tmp_path / "store", receiver
    )
    yield stack, nodes
    stop_all([process.popen for process in deployment.processes])
    receiver.close()
    for node in nodes:
        node.stop()
    postgres.stop()


def stream_leader(nodes: list[NatsServer]) -> str | None:
    """The name of the node leading the service's work stream (None during an election)."""
    info = stream_info([n.url for n in nodes if n.process], SERVICE_NAMESPACE)
    return info.cluster.leader if info is not None and info.cluster else None


def test_the_node_leading_the_streams_killed_mid_burst(cluster_stack, song):
    stack, nodes = cluster_stack
    assert wait_for(lambda: stream_leader(nodes) is not None, 60)
    leader = stream_leader(nodes)

    def outage() -> None:
        (node,) = [n for n in nodes if n.extra_args[1] == leader]
        node.kill()
        stack.down_at = time.monotonic()
        new = wait_for(lambda: stream_leader(nodes) not in (None, leader), 60)
        stack.timeline.append(f"a new leader for the streams: {new}")
        stack.back_at = time.monotonic()

    accepted = burst_through(stack, song, outage)
    assert "a new leader for the streams: True" in stack.timeline, stack.timeline
    recover(stack, accepted)
