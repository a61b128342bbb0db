"""The ``phantomchain dlq`` commands as an operator runs them (the console script, a
subprocess) against a real Postgres, NATS and storage, with workers started by the ``dramatiq``
CLI when a test asks."""

from __future__ import annotations

import pytest

from tests.support.app_client import upload, wait_done
from tests.support.stack import bury, storage_key
from tests.support.waiting import wait_for


@pytest.mark.slow
def test_failed_stage_is_dead_lettered_then_replayed_from_the_cli(make_stack, short_song):
    stack = make_stack()
    accepted = upload(stack.client, short_song, name="lost.flac").json
    job_id, upload_id = accepted["job_id"], accepted["upload_id"]
    original = stack.store / storage_key(stack, upload_id)
    assert original.read_bytes() == short_song
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

    original.write_bytes(short_song)
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


@pytest.mark.slow
def test_cli_dlq_show_delete_purge_and_errors(make_stack):
    stack = make_stack()
    a = bury(stack.broker, "pipeline", "run_stage", ["job-a", "loudness"])
    b = bury(stack.broker, "mail", "notify", ["x@example.com"], reason="SMTPError: refused")
    c = bury(stack.broker, "mail", "notify", ["y@example.com"])

    table = stack.cli("dlq", "list")
    assert table.returncode == 0 and table.stdout.splitlines()[0].split()[:3] == [
        "id",
        "queue",
        "actor",
    ]
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

    # A NATS wildcard would mean every queue: refused, nothing purged (the list below says 2).
    bad = stack.cli("dlq", "purge", "--queue", "*", "--yes")
    assert bad.returncode == 2 and "queue must be a queue's name" in bad.stderr
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


def test_cli_dlq_retry_all_takes_only_what_the_filters_name(make_stack, short_song):
    stack = make_stack()
    first, second = (upload(stack.client, short_song, name=f"{n}.flac").json for n in "ab")
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
        letter: job_id for job_id, letter in letters.items()
    }
    assert [d["id"] for d in stack.cli_json("dlq", "list")] == [mail]
    assert stack.cli("dlq", "retry", "--all", "--actor", "no_such_actor").stdout.strip() == (
        "no dead letters to retry"
    )

    stack.start_workers()
    for accepted in (first, second):
        assert wait_done(stack.client, accepted["upload_id"], timeout=90).status_code == 200
    assert [d["id"] for d in stack.cli_json("dlq", "list")] == [mail]
