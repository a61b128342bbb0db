"""Cancel through the Procfile's processes on their own nats-server and PostgreSQL: a running
stage stops between two blocks of audio within 2 s of the cancel and leaves nothing; a queued
job canceled while NATS is away never runs once NATS is back; a cancel while PostgreSQL is away
is a 503 the client sends again, and the running stage rides the outage out and stops after.

One stack for the module (its tests run one after the other on one xdist worker): one worker
process with one thread, so a job's stage holds it for the length of a long file.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import psutil
import psycopg
import pytest

from tests.e2e.faults.test_outages import Stack, running_stack
from tests.support.audio.signals import tone, write_audio
from tests.support.http_calls import get_json, upload
from tests.support.songs import song_flac
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.xdist_group("cancel-faults")]

#: Ten minutes of audio: its transcode takes seconds, long enough to be canceled mid-stage.
LONG_S = 600
#: Bytes of MP3 that say a transcode is past its first blocks (about 4 s of audio at 192k).
ENCODED = 100_000
STOPPED = re.compile(
    r"transcode stopped for the cancel \(between blocks, stopped on request after "
    r"(?P<audio>[\d.]+) s of audio; (?P<delay>[\d.]+) s after the cancel\)"
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    tmp_path = tmp_path_factory.mktemp("cancel")
    # the worker's temporary folder, where a transcode writes its outputs block by block
    (tmp_path / "worker-tmp").mkdir()
    with running_stack(tmp_path, "cancel", {}, {"TMPDIR": str(tmp_path / "worker-tmp")}) as stack:
        yield stack


@pytest.fixture(scope="module")
def long_song(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("long")
    samples = tone(220.0, seconds=LONG_S, rate=22050, amplitude=0.3)
    return write_audio(folder / "long.flac", samples, 22050, "flac").read_bytes()


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> bytes:
    return song_flac(
        tmp_path_factory.mktemp("short"), 120.0, "D", "minor", seconds=2, rate=22050, seed=31
    )


def post(port: int, path: str) -> tuple[int, dict[str, str], dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"{}")


def events(stack: Stack, job_id: str) -> list[str]:
    return [e["message"] for e in get_json(stack.api.port, f"/api/jobs/{job_id}")["events"]]


def start_long_job(stack: Stack, long_song: bytes) -> tuple[str, str]:
    """A job on the long file, once its transcode is encoding blocks (its MP3 grown past its
    first blocks in the worker's temporary folder): ``(job_id, upload_id)``."""
    status, body = upload(stack.api.port, long_song, name="long.flac")
    assert status == 202, body
    job_id = body["job_id"]
    folder = stack.deployment.tmp / "worker-tmp"

    def encoding() -> bool:
        return any(p.stat().st_size > ENCODED for p in folder.rglob("out.mp3"))

    assert wait_for(encoding, 60), events(stack, job_id)
    assert "transcode started" in events(stack, job_id)
    return job_id, body["upload_id"]


def stopped_line(stack: Stack, job_id: str) -> re.Match | None:
    """The worker's line saying the job's transcode stopped for the cancel, parsed."""
    for line in stack.workers.log_lines():
        if job_id in line and "stopped for the cancel" in line:
            return STOPPED.search(json.loads(line)["message"])
    return None


def assert_nothing_made(stack: Stack, upload_id: str) -> None:
    """No output or analysis row, no file but the original: a canceled job keeps its upload."""
    with psycopg.connect(stack.database_url, autocommit=True) as db:
        for table in ("outputs", "analyses"):
            query = f"SELECT count(*) FROM {table} WHERE upload_id = %s"
            assert db.execute(query, (upload_id,)).fetchone() == (0,), table
    files = [p for p in stack.store.rglob(f"*{upload_id}*") if p.is_file()]
    files += [p for p in (stack.store / "outputs" / upload_id).glob("*")]
    assert [p.name for p in files if not p.name.startswith("original.")] == []
    assert get_json(stack.api.port, f"/api/uploads/{upload_id}")["id"] == upload_id


def test_a_running_stage_stops_between_blocks_within_2_s_and_leaves_nothing(stack, long_song):
    job_id, upload_id = start_long_job(stack, long_song)
    status, _, body = post(stack.api.port, f"/api/jobs/{job_id}/cancel")
    canceled_at = time.monotonic()
    assert status == 202 and body == {"id": job_id, "status": "canceled"}
    assert wait_for(lambda: stopped_line(stack, job_id), 30), stack.workers.log.read_text()[-3000:]
    line = stopped_line(stack, job_id)
    assert line is not None
    # it stopped mid-file, between blocks, promptly; the bound is generous, never a figure
    assert 0 < float(line["audio"]) < LONG_S - 60
    assert float(line["delay"]) < 2.0, line.group(0)
    print(f"\ncancel -> stop: {line['delay']} s (worker), {line['audio']} s of audio decoded")
    job = get_json(stack.api.port, f"/api/jobs/{job_id}")
    assert job["status"] == "canceled"
    messages = [e["message"] for e in job["events"] if not e["message"].startswith("webhook ")]
    assert messages == ["transcode started", "canceled by an admin"], messages  # nothing else
    assert wait_for(lambda: removed(stack, job_id), 30)
    assert_nothing_made(stack, upload_id)
    status, _, body = post(stack.api.port, f"/api/jobs/{job_id}/cancel")
    assert status == 409 and "already ended (canceled)" in body["error"]["message"]
    assert wait_for(lambda: told(stack, job_id), 30)
    assert told(stack, job_id) == ["job.canceled"]
    assert time.monotonic() - canceled_at < 60


def told(stack: Stack, job_id: str) -> list[str]:
    """The types of the webhooks the receiver got about the job (signed)."""
    return [
        m.json["type"]
        for m in stack.receiver.on("/ok")
        if m.verified and m.json.get("job_id") == job_id
    ]


def removed(stack: Stack, job_id: str) -> bool:
    return any(
        job_id in line and "removed what the canceled job made" in line
        for line in stack.workers.log_lines()
    )


def test_a_job_canceled_while_nats_is_away_never_runs(stack, song):
    """The cancel is a database write: NATS being away does not matter to it. The job's
    message, delivered once NATS is back, is skipped."""
    workers = psutil.Process(stack.workers.popen.pid).children(recursive=True)
    for process in workers:  # so that the job is still queued when canceled
        process.suspend()
    try:
        status, body = upload(stack.api.port, song, name="queued.flac")
        assert status == 202, body
        job_id = body["job_id"]
        stack.nats.stop()
        try:
            status, _, answer = post(stack.api.port, f"/api/jobs/{job_id}/cancel")
            assert status == 202, answer
        finally:
            stack.nats.start()
    finally:
        for process in workers:
            process.resume()

    def skipped() -> bool:
        return any(
            job_id in line and "skipped: the job was canceled" in line
            for line in stack.workers.log_lines()
        )

    assert wait_for(skipped, 60), stack.workers.log.read_text()[-3000:]
    assert events(stack, job_id) == ["canceled by an admin"]  # nothing started
    assert get_json(stack.api.port, f"/api/jobs/{job_id}")["status"] == "canceled"
    assert_nothing_made(stack, body["upload_id"])


def test_a_cancel_while_postgres_is_away_is_a_503_and_the_stage_rides_it_out(stack, long_song):
    job_id, upload_id = start_long_job(stack, long_song)
    stack.postgres.fast_shutdown()
    try:
        status, headers, body = post(stack.api.port, f"/api/jobs/{job_id}/cancel")
        assert status == 503 and body["error"]["code"] == "database_unavailable", body
        assert int(headers["Retry-After"]) >= 1
        # the stage's check failed meanwhile and went on: not a crash, not a retry
        assert wait_for(lambda: asked_in_vain(stack, job_id), 10)
        assert "attempt 1 failed" not in stack.workers.log.read_text()
    finally:
        stack.postgres.start_again()
    assert wait_for(lambda: post(stack.api.port, f"/api/jobs/{job_id}/cancel")[0] == 202, 30)
    assert wait_for(lambda: removed(stack, job_id), 60), stack.workers.log.read_text()[-3000:]
    assert get_json(stack.api.port, f"/api/jobs/{job_id}")["status"] == "canceled"
    assert "done" not in events(stack, job_id)
    assert_nothing_made(stack, upload_id)


def asked_in_vain(stack: Stack, job_id: str) -> bool:
    return any(
        job_id in line and "could not ask whether the job was canceled" in line
        for line in stack.workers.log_lines()
    )


def test_removing_an_upload_whose_stage_runs_cancels_it_and_leaves_no_file(stack, long_song):
    """``DELETE`` cancels the job, then removes the rows and files at once (204); the worker,
    still encoding, finds the job gone at its next check, stops, and deletes what it may have
    written since: nothing of the upload is left, in the database or in storage."""
    job_id, upload_id = start_long_job(stack, long_song)
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.api.port}/api/uploads/{upload_id}", method="DELETE"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 204
    assert wait_for(lambda: removed(stack, job_id), 30), stack.workers.log.read_text()[-3000:]
    # The worker stops whether its check saw the job canceled (the first step of the DELETE)
    # or already gone (the second): either way, between blocks.
    assert any(
        job_id in line and "stopped for the cancel" in line for line in stack.workers.log_lines()
    ), stack.workers.log.read_text()[-3000:]
    with psycopg.connect(stack.database_url, autocommit=True) as db:
        for table in ("uploads", "jobs", "outputs", "analyses"):
            column = "id" if table == "uploads" else "upload_id"
            query = f"SELECT count(*) FROM {table} WHERE {column} = %s"
            assert db.execute(query, (upload_id,)).fetchone() == (0,), table
    assert [p for p in stack.store.rglob(f"*{upload_id}*") if p.is_file()] == []
    assert not (stack.store / "outputs" / upload_id).exists()
