"""Dead letters and jobs from the admin routes: real Postgres, NATS and storage, workers started
by the ``dramatiq`` CLI when a test asks. (The ``phantomchain dlq``/``jobs`` commands are tested
in ``tests/integration/app/cli/``.)"""

from __future__ import annotations

import uuid

import dramatiq
import pytest

from app.queue import make_broker
from tests.support.app_client import upload, wait_done
from tests.support.stack import bury

ADMIN = {"Authorization": "Bearer admin-token"}


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
    for wildcard in ("*", ">"):  # a NATS wildcard would mean every queue: refused, none gone
        for call in (client.get, client.delete):
            refused = call(f"/api/dead-letters?queue={wildcard}")
            assert refused.status_code == 400 and refused.json["error"]["code"] == "bad_parameter"
    assert client.delete("/api/dead-letters?queue=mail").json == {"purged": 1}
    assert [d["id"] for d in client.get("/api/dead-letters").json["dead_letters"]] == [b]
    assert client.delete("/api/dead-letters?actor=notify").json == {"purged": 0}
    assert client.delete("/api/dead-letters").json == {"purged": 1}
    assert client.get("/api/dead-letters").json == {"dead_letters": [], "count": 0}


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {},
        {"ids": []},
        {"ids": "1"},
        {"ids": ["1"], "all": True},
        {"all": "yes"},
        {"ids": ["1"], "queue": "mail"},
        {"all": True, "queue": 5},
    ],
)
def test_bulk_retry_refuses_a_bad_body(make_stack, body):
    response = make_stack().client.post("/api/dead-letters/retry", json=body)
    assert response.status_code == 400 and response.json["error"]["code"] == "bad_body"


def test_bulk_retry_of_a_queue_reopens_its_jobs(make_stack, short_song):
    stack = make_stack()
    broker = stack.broker
    accepted = upload(stack.client, short_song).json
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
    calls = [
        ("get", every),
        ("get", one),
        ("post", f"{one}/retry"),
        ("post", f"{every}/retry"),
        ("delete", one),
        ("delete", every),
    ]
    for method, path in calls:
        for headers, status in (({}, 401), (user, 403)):  # no token; a tenant's token
            response = getattr(stack.client, method)(path, headers=headers, json={"all": True})
            assert response.status_code == status, (method, path, headers)
    assert stack.client.get("/api/jobs", headers=user).status_code == 200  # the user token works
    assert stack.client.get(f"/api/dead-letters/{letter}", headers=ADMIN).json["id"] == letter
    assert stack.client.delete(f"/api/dead-letters/{letter}", headers=ADMIN).status_code == 204


def test_the_suite_never_touches_another_namespace(make_stack, service_nats_url, short_song):
    """Another deployment's queue and dead letters on the suite's NATS (as on a server an
    exported ``NATS_URL`` or ``TEST_NATS_URL`` names) survive the suite's fixtures, its API and
    its workers: they all work on the session's own namespace."""
    other = make_broker(service_nats_url, f"other-{uuid.uuid4().hex[:8]}")
    try:
        args = ("their-job", "transcode")
        other.enqueue(
            dramatiq.Message(
                queue_name="pipeline", actor_name="run_stage", args=args, kwargs={}, options={}
            )
        )
        letter = bury(other, "pipeline", "run_stage", ["their-job", "loudness"])
        stack = make_stack()  # flushes and purges the suite's queues, as every fixture does
        stack.start_workers()
        accepted = upload(stack.client, short_song).json
        assert wait_done(stack.client, accepted["upload_id"]).status_code == 200
        stack.broker.flush_all()  # and what the fixtures do at teardown
        stack.broker.dead_letters.purge()
        assert other.queue_stats()["pipeline"] == (1, 0)
        assert other.dead_letters.get(letter).payload["args"] == ["their-job", "loudness"]
    finally:
        other.delete_streams()
        other.close()
