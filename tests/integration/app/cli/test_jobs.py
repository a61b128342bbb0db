"""The ``phantomchain jobs`` commands as an operator runs them (the console script, a
subprocess) against a real Postgres, NATS and storage, with workers started by the ``dramatiq``
CLI when a test asks."""

from __future__ import annotations

import os

import pytest

from tests.support.app_client import upload, wait_done
from tests.support.checked_files import checked_flac
from tests.support.waiting import wait_for


@pytest.mark.slow
def test_cli_jobs_list_show_retry(make_stack, short_song, tmp_path):
    stack = make_stack()
    stack.start_workers()
    good = upload(stack.client, short_song, name="good.flac").json
    bad = upload(stack.client, b"fLaC" + os.urandom(20000), name="broken.flac").json
    clipped = upload(stack.client, checked_flac(tmp_path, "clipped"), name="clipped.flac").json
    assert wait_done(stack.client, good["upload_id"], timeout=90).status_code == 200
    assert wait_done(stack.client, bad["upload_id"], timeout=90).status_code == 409
    assert wait_done(stack.client, clipped["upload_id"], timeout=90).status_code == 200

    listed = stack.cli_json("jobs", "list")
    assert listed["total"] == 3
    assert {j["id"]: j["status"] for j in listed["jobs"]} == {
        good["job_id"]: "done",
        bad["job_id"]: "failed",
        clipped["job_id"]: "done",
    }
    failing = stack.cli_json("jobs", "list", "--failing", "clipping")
    assert [j["id"] for j in failing["jobs"]] == [clipped["job_id"]]
    not_a_check = stack.cli("jobs", "list", "--failing", "clip")
    assert not_a_check.returncode == 2 and "dc_offset" in not_a_check.stderr
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


def test_cli_does_not_show_the_password_in_nats_url_when_nats_does_not_answer(make_stack):
    from app.embedded.nats_server import free_port

    stack = make_stack()
    nobody = free_port()
    env = stack.env(NATS_URL=f"nats://bob:hunter2@127.0.0.1:{nobody}")
    no_nats = stack.cli("dlq", "list", env=env)
    assert no_nats.returncode == 1, no_nats.stderr
    assert no_nats.stderr.startswith(f"error: cannot reach NATS at nats://***@127.0.0.1:{nobody}")
    assert "hunter2" not in no_nats.stderr


def test_cli_jobs_cancel_says_what_became_of_each_id(make_stack, short_song):
    """No worker runs: the job stays queued until canceled. One line per id; exit 1 when any
    could not be canceled (unknown, or already ended), as ``retry`` does."""
    stack = make_stack()
    queued = upload(stack.client, short_song, name="queued.flac").json
    job_id = queued["job_id"]
    canceled = stack.cli("jobs", "cancel", job_id, "no-such-job")
    assert canceled.returncode == 1, canceled.stderr
    assert canceled.stdout.splitlines() == [f"job {job_id} canceled"]
    assert canceled.stderr.splitlines() == ["error: no job no-such-job"]
    job = stack.job(job_id)
    assert job["status"] == "canceled"
    assert job["events"][-1]["message"] == "canceled by an admin (CLI)"
    again = stack.cli("jobs", "cancel", job_id)
    assert again.returncode == 1
    assert "has already ended (canceled): there is nothing to cancel" in again.stderr
    listed = stack.cli_json("jobs", "list", "--status", "canceled")
    assert [j["id"] for j in listed["jobs"]] == [job_id]
