"""Webhooks through the whole service: signed (checked by the receiver's own implementation of
the spec), retried on 5xx and silence, final on other answers, every attempt in the job's events
and deliveries; refused for private addresses; a hanging receiver never holds the pipeline."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.db import make_sessions
from app.embedded.nats_server import free_port
from app.models import Job, WebhookDelivery, utcnow
from app.webhooks import outbox
from tasks.sweep import sweep
from tests.support.app_client import upload, wait_done
from tests.support.namespace import service_broker
from tests.support.paths import ROOT
from tests.support.receiver import Receiver
from tests.support.waiting import wait_for

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
WEBHOOKS = {"WEBHOOK_SECRET": SECRET, "WEBHOOK_ALLOW_PRIVATE": "1", "WEBHOOK_TIMEOUT_S": "30"}


@pytest.fixture
def receiver():
    made = Receiver(SECRET)
    yield made
    made.close()


def deliveries(client, job_id: str) -> list[dict]:
    response = client.get(f"/api/jobs/{job_id}/deliveries")
    assert response.status_code == 200, response.json
    return response.json["deliveries"]


def wait_delivery(client, job_id: str, status: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = deliveries(client, job_id)
        if found and found[0]["status"] == status:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no {status} delivery for {job_id}: {deliveries(client, job_id)}")


def test_a_done_job_is_told_signed_with_its_analysis(make_client, song, receiver):
    metrics_port = free_port()
    client = make_client(**WEBHOOKS, WEBHOOK_METRICS_PORT=str(metrics_port))
    made = upload(client, song, callback_url=receiver.url("/ok?token=abc")).json
    analysis = wait_done(client, made["upload_id"]).json
    [message] = receiver.wait_for("/ok")
    assert message.verified, message.headers
    body = message.json
    assert body["type"] == "job.done" and body["status"] == "done" and body["error"] is None
    assert (body["job_id"], body["upload_id"]) == (made["job_id"], made["upload_id"])
    assert body["analysis"]["integrated_lufs"] == analysis["integrated_lufs"]
    assert body["analysis"]["outputs"] == analysis["outputs"]
    for check in ("clipping", "dc_offset_dbfs", "mono_loss_lu", "lossy_origin", "failed_checks"):
        assert body["analysis"][check] == analysis[check], check
    assert message.headers["webhook-id"].startswith("msg_")
    assert message.headers["content-type"] == "application/json"
    # A signature over another body, or with another secret, is refused by the same check.
    assert not _verifies(SECRET, message, message.body + b" ")
    assert not _verifies("whsec_" + base64.b64encode(b"x" * 32).decode(), message, message.body)

    delivery = wait_delivery(client, made["job_id"], "delivered")
    assert delivery["id"] == message.headers["webhook-id"] and delivery["type"] == "job.done"
    assert [t["status_code"] for t in delivery["tries"]] == [204]
    events = client.get(f"/api/jobs/{made['job_id']}").json["events"]
    told = [e["message"] for e in events if e["stage"] == "webhook"]
    assert told == [f"webhook job.done to {receiver.url('/ok')}: answered 204 (attempt 1)"]
    assert "token=abc" not in told[0]  # the receiver's token stays out of the story
    scraped = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
    assert 'phantomchain_webhook_attempts_total{outcome="delivered"} 1.0' in scraped.read().decode()


def _verifies(secret: str, message, body: bytes) -> bool:
    from tests.support.receiver import verify

    return verify(secret, message.headers, body)


def test_5xx_is_tried_again_with_the_same_id_other_answers_are_final(make_client, song, receiver):
    client = make_client(**WEBHOOKS)
    flaky = upload(client, song, callback_url=receiver.url("/flaky")).json
    gone = upload(client, song, callback_url=receiver.url("/gone")).json
    closed = upload(client, song, callback_url="http://127.0.0.1:9/nobody").json

    first, second = receiver.wait_for("/flaky", 2, timeout=90)
    assert first.verified and second.verified
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    delivered = wait_delivery(client, flaky["job_id"], "delivered")
    assert [t["status_code"] for t in delivered["tries"]] == [503, 200]
    told = [
        e["message"]
        for e in client.get(f"/api/jobs/{flaky['job_id']}").json["events"]
        if e["stage"] == "webhook"
    ]
    assert "answered 503 (attempt 1); next attempt in" in told[0]
    assert told[1].endswith("answered 200 (attempt 2)")

    failed = wait_delivery(client, gone["job_id"], "failed")
    assert [t["status_code"] for t in failed["tries"]] == [410]
    assert len(receiver.on("/gone")) == 1

    refused = deliveries(client, closed["job_id"])
    deadline = time.monotonic() + 60
    while not (refused and refused[0]["tries"]) and time.monotonic() < deadline:
        time.sleep(0.2)
        refused = deliveries(client, closed["job_id"])
    [delivery] = refused
    assert delivery["status"] == "pending" and delivery["next_attempt_at"]
    assert delivery["tries"][0]["status_code"] is None
    assert delivery["tries"][0]["error"] == "could not connect (connection refused)"


def test_a_hanging_receiver_never_holds_the_pipeline(make_client, song, receiver):
    client = make_client(**WEBHOOKS)
    held = [upload(client, song, callback_url=receiver.url("/hang")).json for _ in range(2)]
    receiver.wait_for("/hang", 2, timeout=90)
    assert receiver.hanging == 2  # both POSTs still held: the pipeline's two workers are free?
    after = upload(client, song, callback_url=receiver.url("/ok")).json
    assert wait_done(client, after["upload_id"]).status_code == 200
    receiver.wait_for("/ok")
    assert receiver.hanging == 2 and not receiver.release.is_set()
    receiver.release.set()
    for made in held:
        assert wait_delivery(client, made["job_id"], "delivered")["tries"][0]["status_code"] == 200


#: Callback URLs that reach inside, or are not URLs webhooks go to.
INSIDE = [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[::ffff:10.0.0.1]/hook",
    "http://10.0.0.7/hook",
    "http://2130706433/hook",
    "ftp://example.com/hook",
    "http://user:pw@example.com/hook",
    "not a url",
]


def test_callback_urls_that_reach_inside_are_refused(make_client, song, tmp_path):
    client = make_client(workers=False, WEBHOOK_SECRET=SECRET)  # refusals need no worker
    for url in INSIDE:
        response = upload(client, song, callback_url=url)
        assert response.status_code == 400, (url, response.json)
        assert response.json["error"]["code"] == "bad_callback_url", url
    assert client.get("/api/jobs").json["total"] == 0
    assert not any(p.is_file() for p in (tmp_path / "store").rglob("*"))


def test_no_secret_no_webhooks(make_client, song):
    client = make_client(workers=False)
    response = upload(client, song, callback_url="http://127.0.0.1:9/hook")
    assert response.status_code == 400 and response.json["error"]["code"] == "webhooks_off"


def test_the_tenants_default_and_a_lost_message(
    make_client, song, receiver, migrated_database_url, service_nats_url
):
    """A tenant's default webhook set with the CLI is called when the upload names none; a
    delivery whose message was lost is sent by the sweep."""
    tokens = {"API_TOKENS": "acme:acme-token"}
    client = make_client(**WEBHOOKS, **tokens)
    env = {**os.environ, "DATABASE_URL": migrated_database_url, "PYTHONPATH": str(ROOT), **WEBHOOKS}
    cli = [sys.executable, "-m", "app.cli", "tokens", "webhook", "acme"]
    refused = subprocess.run(
        [*cli, "http://10.0.0.1/x"],
        env={**env, "WEBHOOK_ALLOW_PRIVATE": "0"},
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and "private address" in refused.stderr
    set_ = subprocess.run([*cli, receiver.url("/ok")], env=env, capture_output=True, text=True)
    assert set_.returncode == 0, set_.stderr
    shown = subprocess.run(cli, env=env, capture_output=True, text=True)
    assert shown.stdout.strip() == receiver.url("/ok")

    acme = {"Authorization": "Bearer acme-token"}
    made = upload(client, song, headers=acme).json
    wait_done(client, made["upload_id"], headers=acme)
    [message] = receiver.wait_for("/ok")
    assert message.verified and message.json["job_id"] == made["job_id"]

    # Lost: a pending delivery long overdue, as if its message never reached NATS.
    sessions = make_sessions(migrated_database_url)
    with sessions.begin() as session:
        job = session.get(Job, made["job_id"])
        lost = outbox._make(
            session, "acme", receiver.url("/ok"), outbox.job_payload(session, job), job_id=job.id
        )
    with sessions.begin() as session:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == lost)
            .values(next_attempt_at=utcnow() - timedelta(hours=1))
        )
    sweep(sessions, service_broker(service_nats_url), 3600)
    resent = receiver.wait_for("/ok", 2)[1]
    assert resent.headers["webhook-id"] == lost and resent.verified
    # the receiver has it; the worker is writing down its answer
    assert wait_for(lambda: _status(sessions, lost) != "pending")
    assert _status(sessions, lost) == "delivered"


def _status(sessions, delivery_id: str) -> str:
    with sessions() as session:
        query = select(WebhookDelivery.status).where(WebhookDelivery.id == delivery_id)
        return session.scalars(query).one()
