"""Dead letters and jobs from the admin routes and the ``phantomchain dlq``/``jobs`` CLI.

Real Postgres, NATS and storage, workers started by the ``dramatiq`` CLI, the console script run
as a subprocess. The workers start only when a test asks, so a test can break an upload (remove
its stored original) before any worker could read it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.api import create_app
from app.config import Config
from app.models import Upload
from app.queue import make_broker
from broker import NatsBroker
from broker.dead_letters import encode_record
from tests.integration.app.api.test_api import upload, wait_done
from tests.support.namespace import service_broker, service_settings
from tests.support.paths import ROOT
from tests.support.songs import song_flac
from tests.support.waiting import stop_all, wait_for

PHANTOMCHAIN = Path(sys.executable).parent / "phantomchain"
ADMIN = {"Authorization": "Bearer admin-token"}


@dataclass
class Stack:
    """The API (test client), its settings, and workers started on demand."""

    settings: dict[str, str]
    client: FlaskClient
    store: Path
    log_dir: Path
    workers: list[subprocess.Popen] = field(default_factory=list)

    def start_workers(self) -> None:
        with (self.log_dir / f"workers{len(self.workers)}.log").open("wb") as log:
            self.workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "dramatiq", "tasks.pipeline",
                     "--processes", "2", "--threads", "1"],
                    env=self.env(), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                )
            )  # fmt: skip

    @property
    def broker(self) -> NatsBroker:
        """The API's broker: the session's own namespace on the test NATS."""
        return self.client.application.extensions["broker"]

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, **self.settings, "PYTHONPATH": str(ROOT), **extra}

    def cli(self, *args: str, input: str | None = None, env: dict | None = None):
        """``phantomchain ARGS`` as an operator runs it; returns the finished process."""
        return subprocess.run(
            [str(PHANTOMCHAIN), *args], env=env or self.env(), cwd=ROOT, input=input,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    def cli_json(self, *args: str) -> Any:
        done = self.cli(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def job(self, job_id: str) -> dict:
        return self.client.get(f"/api/jobs/{job_id}").json


@pytest.fixture
def make_stack(migrated_database_url, service_nats_url, tmp_path):
    broker = service_broker(service_nats_url)

    stacks: list[Stack] = []

    def make(**env: str) -> Stack:
        settings = service_settings(migrated_database_url, service_nats_url, tmp_path, **env)
        broker.flush_all()
        broker.dead_letters.purge()
        client = create_app(Config.from_env(settings)).test_client()
        stacks.append(Stack(settings, client, tmp_path / "store", tmp_path))
        return stacks[-1]

    yield make
    for stack in stacks:
        stack.client.application.extensions["broker"].close()
    stop_all([w for stack in stacks for w in stack.workers])
    broker.flush_all()
    broker.dead_letters.purge()


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("dlq")
    return song_flac(folder, 120.0, "A", "minor", seconds=4, rate=22050, seed=3)


def bury(
    broker: NatsBroker, queue: str, actor: str, args: list, reason: str = "RuntimeError: boom"
) -> str:
    """A dead letter as the consumer writes one (same record, same stream); returns its id."""
    message = dramatiq.Message(queue_name=queue, actor_name=actor, args=tuple(args), kwargs={},
                               options={"max_retries": 3})  # fmt: skip
    record = encode_record(
        queue_name=queue, reason=reason, deliveries=4, message=message,
        traceback=f"Traceback (most recent call last):\n  ...\n{reason}\n",
    )  # fmt: skip

    async def publish() -> str:
        js = await broker.connection.jetstream()
        await broker.topology.ensure_streams(js)
        ack = await js.publish(
            broker.topology.dead_letter_subject(queue), record,
            stream=broker.topology.dead_letter_stream,
        )  # fmt: skip
        return str(ack.seq)

    return broker.connection.run(publish, timeout=10)


def storage_key(stack: Stack, upload_id: str) -> str:
    engine = create_engine(Config.from_env(stack.settings).database_url)
    try:
        with Session(engine) as session:
            return session.scalar(select(Upload.storage_key).where(Upload.id == upload_id))
    finally:
        engine.dispose()


@pytest.mark.slow
def test_failed_stage_is_dead_lettered_then_replayed_from_the_cli(make_stack, song):
    stack = make_stack()
    accepted = upload(stack.client, song, name="lost.flac").json
    job_id, upload_id = accepted["job_id"], accepted["upload_id"]
    original = stack.store / storage_key(stack, upload_id)
    assert original.read_bytes() == song
    original.unlink()  # a fixable failure: the transcode cannot find its input
    stack.start_workers()

    assert wait_for(lambda: stack.job(job_id)["status"] == "failed", timeout=90)
    job = stack.job(job_id)
    assert job["error"] == (  # the StorageError is for the dead letter below, not the person
        "the transcode stage failed after 4 attempts because of an internal error; the "
        "operators' logs and the dead letter have the details"
    )
    assert job["attempts"] == 4
    assert wait_for(lambda: stack.client.get("/api/dead-letters").json["count"] == 1, timeout=30)
    (letter,) = stack.client.get("/api/dead-letters").json["dead_letters"]
    assert letter["actor_name"] == "run_stage" and letter["queue_name"] == "pipeline"
    assert letter["payload"]["args"] == [job_id, "transcode"]
    assert letter["reason"].startswith("StorageError") and "no object" in letter["traceback"]

    listed = stack.cli_json("dlq", "list")
    assert [d["id"] for d in listed] == [letter["id"]]
    shown = stack.cli("dlq", "show", letter["id"])
    assert shown.returncode == 0, shown.stderr
    assert f"'{job_id}', 'transcode'" in shown.stdout and "StorageError" in shown.stdout
    assert "Traceback" in shown.stdout

    original.write_bytes(song)
    retried = stack.cli("dlq", "retry", letter["id"])
    assert retried.returncode == 0, retried.stderr
    assert f"retried dead letter {letter['id']}" in retried.stdout and job_id in retried.stdout

    assert wait_done(stack.client, upload_id, timeout=90).status_code == 200
    job = stack.job(job_id)
    assert job["status"] == "done" and job["error"] is None
    messages = [e["message"] for e in job["events"]]
    replay = f"replayed from dead letter {letter['id']} (stage transcode)"
    assert replay in messages
    event = job["events"][messages.index(replay)]
    assert event["level"] == "warning" and event["stage"] == "transcode"
    # The replay is written before the worker starts the stage again, never after.
    assert messages.index(replay) < len(messages) - 1 - messages[::-1].index("transcode started")
    assert stack.client.get("/api/dead-letters").json["count"] == 0
    assert stack.client.get(f"/api/dead-letters/{letter['id']}").status_code == 404
    assert stack.cli_json("dlq", "list") == []


def test_http_show_delete_purge_with_filters(make_stack):
    stack = make_stack()
    a = bury(stack.broker, "pipeline", "run_stage", ["job-a", "loudness"])
    b = bury(stack.broker, "pipeline", "run_stage", ["job-b", "tempo_key"])
    c = bury(stack.broker, "mail", "notify", ["someone@example.com"], reason="SMTPError: refused")
    client = stack.client

    everything = client.get("/api/dead-letters").json
    assert [d["id"] for d in everything["dead_letters"]] == [a, b, c]
    assert [d["id"] for d in client.get("/api/dead-letters?queue=mail").json["dead_letters"]] == [c]
    by_actor = client.get("/api/dead-letters?actor=run_stage").json["dead_letters"]
    assert [d["id"] for d in by_actor] == [a, b]
    assert client.get("/api/dead-letters?queue=mail&actor=run_stage").json["count"] == 0
    assert client.get("/api/dead-letters?limit=1").json["count"] == 1
    assert client.get("/api/dead-letters?limit=0").status_code == 400

    shown = client.get(f"/api/dead-letters/{c}").json
    assert shown["payload"]["args"] == ["someone@example.com"] and shown["deliveries"] == 4
    assert shown["reason"] == "SMTPError: refused" and "SMTPError" in shown["traceback"]
    for unknown in ("999999", "not-a-number"):
        for method, path in (("get", ""), ("delete", ""), ("post", "/retry")):
            response = getattr(client, method)(f"/api/dead-letters/{unknown}{path}")
            assert response.status_code == 404, (method, unknown)
            assert response.json["error"]["code"] == "not_found"

    assert client.delete(f"/api/dead-letters/{a}").status_code == 204
    assert client.delete(f"/api/dead-letters/{a}").status_code == 404
    assert client.delete("/api/dead-letters?queue=mail").json == {"purged": 1}
    assert [d["id"] for d in client.get("/api/dead-letters").json["dead_letters"]] == [b]
    assert client.delete("/api/dead-letters?actor=notify").json == {"purged": 0}
    assert client.delete("/api/dead-letters").json == {"purged": 1}
    assert client.get("/api/dead-letters").json == {"dead_letters": [], "count": 0}


@pytest.mark.parametrize(
    "body",
    [None, [], {}, {"ids": []}, {"ids": "1"}, {"ids": ["1"], "all": True}, {"all": "yes"},
     {"ids": ["1"], "queue": "mail"}, {"all": True, "queue": 5}],
)  # fmt: skip
def test_bulk_retry_refuses_a_bad_body(make_stack, body):
    response = make_stack().client.post("/api/dead-letters/retry", json=body)
    assert response.status_code == 400 and response.json["error"]["code"] == "bad_body"


def test_bulk_retry_of_a_queue_reopens_its_jobs(make_stack, song):
    stack = make_stack()
    broker = stack.broker
    accepted = upload(stack.client, song).json
    broker.flush("pipeline")  # its first message is gone: only the dead letter can run it
    job_id = accepted["job_id"]
    letter = bury(stack.broker, "pipeline", "run_stage", [job_id, "transcode"])
    other = bury(stack.broker, "mail", "notify", ["x@example.com"])
    patched = stack.client.patch(f"/api/jobs/{job_id}", json={"status": "failed", "error": "x"})
    assert patched.json["status"] == "failed"

    unknown = stack.client.post("/api/dead-letters/retry", json={"ids": ["424242"]})
    assert unknown.status_code == 200 and unknown.json["not_found"] == ["424242"]
    response = stack.client.post("/api/dead-letters/retry", json={"all": True, "queue": "pipeline"})
    assert response.status_code == 202, response.json
    assert [r["id"] for r in response.json["retried"]] == [letter]
    assert response.json["retried"][0]["job_id"] == job_id
    assert [d["id"] for d in stack.client.get("/api/dead-letters").json["dead_letters"]] == [other]
    reopened = stack.job(job_id)
    assert (reopened["status"], reopened["error"], reopened["finished_at"]) == (
        "queued",
        None,
        None,
    )

    stack.start_workers()
    assert wait_done(stack.client, accepted["upload_id"], timeout=90).status_code == 200
    messages = [e["message"] for e in stack.job(job_id)["events"]]
    assert f"replayed from dead letter {letter} (stage transcode)" in messages
    assert messages.count("transcode started") == 1


def test_admin_routes_need_the_admin_token(make_stack):
    stack = make_stack(API_TOKENS="user-token", ADMIN_TOKEN="admin-token")
    letter = bury(stack.broker, "mail", "notify", ["x@example.com"])
    user = {"Authorization": "Bearer user-token"}
    one, every = f"/api/dead-letters/{letter}", "/api/dead-letters"
    calls = [("get", every), ("get", one), ("post", f"{one}/retry"), ("post", f"{every}/retry"),
             ("delete", one), ("delete", every)]  # fmt: skip
    for method, path in calls:
        for headers, status in (({}, 401), (user, 403)):  # no token; a tenant's token
            response = getattr(stack.client, method)(path, headers=headers, json={"all": True})
            assert response.status_code == status, (method, path, headers)
    assert stack.client.get("/api/jobs", headers=user).status_code == 200  # the user token works
    assert stack.client.get(f"/api/dead-letters/{letter}", headers=ADMIN).json["id"] == letter
    assert stack.client.delete(f"/api/dead-letters/{letter}", headers=ADMIN).status_code == 204


@pytest.mark.slow
def test_cli_dlq_show_delete_purge_and_errors(make_stack):
    stack = make_stack()
    a = bury(stack.broker, "pipeline", "run_stage", ["job-a", "loudness"])
    b = bury(stack.broker, "mail", "notify", ["x@example.com"], reason="SMTPError: refused")
    c = bury(stack.broker, "mail", "notify", ["y@example.com"])

    table = stack.cli("dlq", "list")
    assert table.returncode == 0 and table.stdout.splitlines()[0].split()[:3] == [
        "id", "queue", "actor"]  # fmt: skip
    assert [line.split()[0] for line in table.stdout.splitlines()[1:]] == [a, b, c]
    assert [d["id"] for d in stack.cli_json("dlq", "list", "--queue", "mail")] == [b, c]
    assert [d["id"] for d in stack.cli_json("dlq", "list", "--actor", "run_stage")] == [a]
    assert len(stack.cli_json("dlq", "list", "--limit", "2")) == 2
    shown = stack.cli_json("dlq", "show", b)
    assert shown["reason"] == "SMTPError: refused" and shown["payload"]["args"] == ["x@example.com"]

    for args in (("show", "999999"), ("retry", "999999"), ("delete", "999999")):
        missing = stack.cli("dlq", *args)
        assert missing.returncode == 1, args
        assert "no dead letter 999999" in missing.stderr and "Traceback" not in missing.stderr
    assert stack.cli("dlq", "retry").returncode == 2  # neither ids nor --all: a usage error
    partly = stack.cli("dlq", "delete", a, "999999")
    assert partly.returncode == 1 and f"deleted dead letter {a}" in partly.stdout

    refused = stack.cli("dlq", "purge", "--actor", "notify", input="n\n")
    assert refused.returncode == 1 and "Aborted" in refused.stderr
    assert len(stack.cli_json("dlq", "list")) == 2
    agreed = stack.cli("dlq", "purge", "--queue", "mail", "--actor", "notify", input="y\n")
    assert agreed.returncode == 0 and "purged 2 dead letters" in agreed.stdout
    assert stack.cli("dlq", "purge", "--yes").stdout.strip() == "purged 0 dead letters"

    no_db = {k: v for k, v in stack.env().items() if k != "DATABASE_URL"}
    broken = stack.cli("dlq", "list", env=no_db)
    assert broken.returncode == 2 and "DATABASE_URL is not set" in broken.stderr
    assert "Traceback" not in broken.stderr


@pytest.mark.slow
def test_cli_jobs_list_show_retry(make_stack, song):
    stack = make_stack()
    stack.start_workers()
    good = upload(stack.client, song, name="good.flac").json
    bad = upload(stack.client, b"fLaC" + os.urandom(20000), name="broken.flac").json
    assert wait_done(stack.client, good["upload_id"], timeout=90).status_code == 200
    assert wait_done(stack.client, bad["upload_id"], timeout=90).status_code == 409

    listed = stack.cli_json("jobs", "list")
    assert listed["total"] == 2
    assert {j["id"]: j["status"] for j in listed["jobs"]} == {
        good["job_id"]: "done", bad["job_id"]: "failed"}  # fmt: skip
    failed = stack.cli("jobs", "list", "--status", "failed")
    assert failed.returncode == 0 and bad["job_id"] in failed.stdout
    assert good["job_id"] not in failed.stdout
    assert stack.cli("jobs", "list", "--status", "nonsense").returncode == 2

    shown = stack.cli_json("jobs", "show", good["job_id"])
    started = [e["stage"] for e in shown["events"] if e["message"].endswith("started")]
    assert started == ["transcode", "loudness", "normalize", "tempo_key", "finalize"]
    text = stack.cli("jobs", "show", bad["job_id"]).stdout
    assert "status:      failed" in text and "damaged or truncated" in text

    missing = stack.cli("jobs", "show", "no-such-job")
    assert missing.returncode == 1 and "no job no-such-job" in missing.stderr
    not_failed = stack.cli("jobs", "retry", good["job_id"])
    assert not_failed.returncode == 1 and "is done, not failed" in not_failed.stderr

    retried = stack.cli("jobs", "retry", bad["job_id"])
    assert retried.returncode == 0 and f"job {bad['job_id']} queued" in retried.stdout
    assert wait_for(lambda: stack.job(bad["job_id"])["attempts"] == 2, timeout=60)
    assert wait_for(lambda: stack.job(bad["job_id"])["status"] == "failed", timeout=60)
    messages = [e["message"] for e in stack.job(bad["job_id"])["events"]]
    assert messages.count("retried by an admin") == 1 and messages.count("transcode started") == 2


def test_the_suite_never_touches_another_namespace(make_stack, service_nats_url, song):
    """Another deployment's queue and dead letters on the suite's NATS (as on a server an
    exported ``NATS_URL`` or ``TEST_NATS_URL`` names) survive the suite's fixtures, its API and
    its workers: they all work on the session's own namespace."""
    other = make_broker(service_nats_url, f"other-{uuid.uuid4().hex[:8]}")
    try:
        args = ("their-job", "transcode")
        other.enqueue(dramatiq.Message(queue_name="pipeline", actor_name="run_stage", args=args,
                                       kwargs={}, options={}))  # fmt: skip
        letter = bury(other, "pipeline", "run_stage", ["their-job", "loudness"])
        stack = make_stack()  # flushes and purges the suite's queues, as every fixture does
        stack.start_workers()
        accepted = upload(stack.client, song).json
        assert wait_done(stack.client, accepted["upload_id"]).status_code == 200
        stack.broker.flush_all()  # and what the fixtures do at teardown
        stack.broker.dead_letters.purge()
        assert other.queue_stats()["pipeline"] == (1, 0)
        assert other.dead_letters.get(letter).payload["args"] == ["their-job", "loudness"]
    finally:
        other.delete_streams()
        other.close()


def test_cli_dlq_retry_all_takes_only_what_the_filters_name(make_stack, song):
    stack = make_stack()
    first, second = (upload(stack.client, song, name=f"{n}.flac").json for n in ("one", "two"))
    stack.broker.flush("pipeline")  # their first messages are gone: only dead letters can run them
    letters = {
        accepted["job_id"]: bury(
            stack.broker, "pipeline", "run_stage", [accepted["job_id"], "transcode"]
        )
        for accepted in (first, second)
    }
    mail = bury(stack.broker, "mail", "notify", ["x@example.com"])

    retried = stack.cli_json("dlq", "retry", "--all", "--queue", "pipeline")
    assert {item["id"]: item["job_id"] for item in retried["retried"]} == {
        letter: job_id for job_id, letter in letters.items()}  # fmt: skip
    assert [d["id"] for d in stack.cli_json("dlq", "list")] == [mail]
    assert stack.cli("dlq", "retry", "--all", "--actor", "no_such_actor").stdout.strip() == (
        "no dead letters to retry")  # fmt: skip

    stack.start_workers()
    for accepted in (first, second):
        assert wait_done(stack.client, accepted["upload_id"], timeout=90).status_code == 200
    assert [d["id"] for d in stack.cli_json("dlq", "list")] == [mail]


def test_cli_exits_1_with_one_line_when_a_server_does_not_answer(make_stack):
    from app.embedded.nats_server import free_port

    stack = make_stack()
    nobody = free_port()
    no_nats = stack.cli("dlq", "list", env=stack.env(NATS_URL=f"nats://127.0.0.1:{nobody}"))
    assert no_nats.returncode == 1, no_nats.stderr
    assert no_nats.stderr.startswith(f"error: cannot reach NATS at nats://127.0.0.1:{nobody}")
    no_database = stack.cli(
        "jobs", "list", env=stack.env(DATABASE_URL=f"postgresql://nobody@127.0.0.1:{nobody}/x")
    )
    assert no_database.returncode == 1, no_database.stderr
    assert no_database.stderr.startswith("error: cannot reach the database")
    for done in (no_nats, no_database):
        assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
