"""The API while NATS or PostgreSQL is down: uploads are refused with 503 and ``Retry-After``
and leave nothing behind (no file, no row, no job queued forever); ``/readyz`` names the server
that is away, within seconds; all is well again once it is back. Real servers, stopped and
started inside each test."""

from __future__ import annotations

import io
import subprocess
import time
import uuid
import wave
from pathlib import Path

import psutil
import pytest
from sqlalchemy import func, select

import app.http.api.accepting as accepting
from app.config import Config
from app.embedded.nats_server import NatsServer, find_binary, free_port, port_answers
from app.embedded.postgres import EmbeddedPostgres
from app.http import create_app
from app.models import Job, Upload
from app.storage import StorageUnavailable
from tests.support.servers import migrate
from tests.support.waiting import wait_for

#: A generous bound on /readyz with a server away (it takes a fraction of a second): it must
#: answer, not hang.
READYZ_BOUND_S = 6.0


@pytest.fixture
def own_nats(tmp_path):
    """A nats-server this test may stop and restart (same port, same store)."""
    server = NatsServer(store_dir=tmp_path / "nats").start()
    yield server
    server.stop()


@pytest.fixture
def own_postgres(tmp_path):
    """A PostgreSQL server of this test's own, migrated, that it may stop and start:
    ``(server, database url)``."""
    (tmp_path / "pg").mkdir()
    server = EmbeddedPostgres(tmp_path / "pg" / "data")
    server.start()
    url = server.create_database("phantomchain")
    migrate(url)
    yield server, url
    server.stop()


@pytest.fixture
def make_api(tmp_path, monkeypatch):
    """``make(database_url, nats_url, storage_url=…) -> (app, client)``; each app's
    connections are closed after the test. ``/readyz`` answers are not reused here (these
    tests time each probe; ``test_tenants`` checks the reuse)."""
    from app.http.api import health

    monkeypatch.setattr(health, "READY_CACHE_S", 0.0)
    apps = []

    def make(database_url: str, nats_url: str, storage_url: str | None = None):
        config = Config.from_env(
            {
                "DATABASE_URL": database_url,
                "NATS_URL": nats_url,
                "NATS_NAMESPACE": f"outage-{uuid.uuid4().hex[:8]}",
                "STORAGE_URL": storage_url or f"file://{tmp_path}/store",
            }
        )
        apps.append(create_app(config))
        return apps[-1], apps[-1].test_client()

    yield make
    for app in apps:
        app.extensions["broker"].close()
        close = getattr(app.extensions["storage"], "close", None)
        if close is not None:
            close()
        app.extensions["sessions"].kw["bind"].dispose()


@pytest.fixture(scope="module")
def wav() -> bytes:
    """A tenth of a second of silence: audio by its first bytes (no worker runs here)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(b"\0\0" * 800)
    return out.getvalue()


def post(client, data: bytes, key: str | None = None):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(
        "/api/uploads",
        data={"file": (io.BytesIO(data), "a.wav")},
        content_type="multipart/form-data",
        headers=headers,
    )


def readyz(client):
    """(response, seconds it took)."""
    started = time.monotonic()
    response = client.get("/readyz")
    return response, time.monotonic() - started


def originals(app) -> set[str]:
    return {found.key for found in app.extensions["storage"].list_objects("uploads/")}


def counts(app) -> tuple[int, int]:
    """(uploads, jobs) in the database."""
    with app.extensions["sessions"]() as session:
        return (
            session.scalar(select(func.count()).select_from(Upload)),
            session.scalar(select(func.count()).select_from(Job)),
        )


def assert_refused(response, code: str) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers.get("Retry-After") == "5"
    error = response.json["error"]
    assert error["code"] == code
    assert "retry" in error["message"]
    for internal in ("nats://", "postgresql", "Error", "Traceback", "SELECT", "INSERT"):
        assert internal not in error["message"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["file", "nats"])
def test_while_nats_is_down(backend, own_nats, migrated_database_url, make_api, wav):
    storage_url = f"{own_nats.url}/originals" if backend == "nats" else None
    app, client = make_api(migrated_database_url, own_nats.url, storage_url)
    response, _ = readyz(client)
    assert response.status_code == 200, response.json
    assert response.json["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "nats": "ok",
        "jetstream": "ok",
    }
    first = post(client, wav)
    assert first.status_code == 202, first.json
    kept = {f"uploads/{first.json['upload_id']}/original.wav"}

    own_nats.stop()
    response, took = readyz(client)
    assert response.status_code == 503
    checks = response.json["checks"]
    assert checks["nats"].startswith("unreachable") and checks["jetstream"] != "ok"
    assert checks["database"] == "ok"
    assert took < READYZ_BOUND_S
    # An API started while NATS is away (never connected) says so as quickly.
    _, fresh = make_api(migrated_database_url, own_nats.url, storage_url)
    response, took = readyz(fresh)
    assert response.status_code == 503 and response.json["checks"]["nats"].startswith("unreach")
    assert took < READYZ_BOUND_S

    refused = post(client, wav, key="retry-me")
    # The local disk takes the file, then the job cannot be queued; a NATS bucket refuses first.
    assert_refused(refused, "queue_unavailable" if backend == "file" else "storage_unavailable")
    assert counts(app) == (1, 1)  # no row, no job queued that nothing will ever run
    if backend == "file":
        assert originals(app) == kept

    own_nats.start()
    assert wait_for(lambda: client.get("/readyz").status_code == 200, timeout=30)
    assert originals(app) == kept
    retried = post(client, wav, key="retry-me")  # the same key: a clean start, not the refusal
    assert retried.status_code == 202, retried.json
    assert retried.json["upload_id"] != first.json["upload_id"]
    assert counts(app) == (2, 2)
    assert originals(app) == kept | {f"uploads/{retried.json['upload_id']}/original.wav"}


def test_while_postgres_is_down(own_postgres, own_nats, make_api, wav):
    server, database_url = own_postgres
    app, client = make_api(database_url, own_nats.url)
    response, _ = readyz(client)
    assert response.status_code == 200, response.json

    server.stop()
    response, took = readyz(client)
    assert response.status_code == 503
    checks = response.json["checks"]
    assert checks["database"].startswith("unreachable") and checks["nats"] == "ok"
    assert took < READYZ_BOUND_S
    assert_refused(post(client, wav), "database_unavailable")  # stored, then removed
    assert_refused(post(client, wav, key="k"), "database_unavailable")  # refused before storing
    assert_refused(client.get("/api/jobs"), "database_unavailable")  # any route alike
    assert originals(app) == set()

    server.start()
    assert wait_for(lambda: client.get("/readyz").status_code == 200, timeout=30)
    accepted = post(client, wav)
    assert accepted.status_code == 202, accepted.json
    assert originals(app) == {f"uploads/{accepted.json['upload_id']}/original.wav"}


@pytest.mark.slow
def test_database_lost_while_the_queue_is_away(own_postgres, own_nats, make_api, wav, monkeypatch):
    """The rows cannot be removed: no crash, a 503, and the upload kept whole — rows and
    file — for the workers' sweep, which sends a job that has stayed queued too long."""
    server, database_url = own_postgres
    app, client = make_api(database_url, own_nats.url)
    real_start_job = accepting.start_job

    def start_job(broker, job_id, **lane):  # the rows are written; now both servers are away
        server.stop()
        return real_start_job(broker, job_id, **lane)

    monkeypatch.setattr(accepting, "start_job", start_job)
    own_nats.stop()
    refused = post(client, wav)
    assert_refused(refused, "queue_unavailable")

    server.start()
    own_nats.start()
    assert counts(app) == (1, 1)
    with app.extensions["sessions"]() as session:
        upload = session.scalars(select(Upload)).one()
        assert session.scalars(select(Job.status)).one() == "queued"
    assert originals(app) == {upload.storage_key}
    assert Path(app.extensions["storage"].root / upload.storage_key).is_file()


def test_readyz_names_jetstream_when_the_server_runs_without_it(migrated_database_url, make_api):
    port = free_port()
    plain = subprocess.Popen(
        [find_binary(), "-a", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: port_answers("127.0.0.1", port), timeout=15)
        _, client = make_api(migrated_database_url, f"nats://127.0.0.1:{port}")
        response, took = readyz(client)
        assert response.status_code == 503
        checks = response.json["checks"]
        assert checks["nats"] == "ok" and checks["jetstream"].startswith("unavailable"), checks
        assert took < READYZ_BOUND_S
    finally:
        plain.terminate()
        plain.wait()


@pytest.mark.slow
def test_a_frozen_nats_bucket_is_a_503_within_the_call_bound_not_a_request_held(
    own_nats, migrated_database_url, make_api, wav, monkeypatch
):
    """A NATS that accepts and never answers (its process stopped, not dead: connections stay
    open) used to hold an upload or a download for up to 600 s."""
    from app.storage import base, nats_bucket
    from broker import dead_letters

    for module in (base, nats_bucket):  # the bucket's own calls, and transfer_timeout's
        monkeypatch.setattr(module, "CALL_TIMEOUT_S", 2.0)
    monkeypatch.setattr(dead_letters, "ADMIN_TIMEOUT_S", 2.0)
    app, client = make_api(migrated_database_url, own_nats.url, f"{own_nats.url}/frozen")
    kept = post(client, wav)
    assert kept.status_code == 202, kept.json
    key = f"uploads/{kept.json['upload_id']}/original.wav"
    frozen = psutil.Process(own_nats.process.pid)
    frozen.suspend()
    try:
        started = time.monotonic()
        refused = post(client, wav)
        took = time.monotonic() - started
        assert_refused(refused, "storage_unavailable")
        assert took < 30  # the bound is 2 s plus the transfer allowance; 600 s before
        started = time.monotonic()
        with pytest.raises(StorageUnavailable, match="TimeoutError"):
            app.extensions["storage"].exists(key)
        assert time.monotonic() - started < 30
        # The dead letters' own calls on the stream: a 503 too, not a 500 (nor, in the CLI,
        # a traceback).
        assert_refused(client.get("/api/dead-letters"), "queue_unavailable")
    finally:
        frozen.resume()
    assert app.extensions["storage"].exists(key)  # and all is well once it answers again
