"""The webhook outbox on a real Postgres: made with a job's end (once), claimed by one attempt
at a time, retried for about a day, then given up with a sentence."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app import jobs
from app.db import make_sessions
from app.models import Job, JobEvent, Upload, WebhookDelivery, new_id
from app.webhooks import outbox
from app.webhooks.outbox import RETRY_DELAYS_S, Outcome


@pytest.fixture
def sessions(migrated_database_url):
    return make_sessions(migrated_database_url)


def a_job(sessions, callback_url: str | None = "https://hooks.example.com/in") -> str:
    upload_id = new_id()
    with sessions.begin() as session:
        session.add(
            Upload(
                id=upload_id,
                tenant="t",
                filename="a.flac",
                content_type="audio/flac",
                size_bytes=1,
                sha256="0" * 64,
                storage_key="k",
            )
        )
        job = Job(
            upload_id=upload_id, tenant="t", formats=[], status="running", callback_url=callback_url
        )
        session.add(job)
        session.flush()
        return job.id


def test_a_jobs_end_makes_one_delivery(sessions):
    job_id = a_job(sessions)
    made = jobs.job_done(sessions, job_id)
    assert len(made) == 1 and jobs.job_done(sessions, job_id) == []
    assert jobs.job_failed(sessions, job_id, "finalize", "late") == []
    failed_id = a_job(sessions)
    [failed] = jobs.job_failed(sessions, failed_id, "transcode", "not audio")
    with sessions() as session:
        row = session.get(WebhookDelivery, failed)
        assert row.event_type == "job.failed" and row.status == "pending"
        assert '"error":"not audio"' in row.body and '"analysis":null' in row.body
    assert jobs.job_done(sessions, a_job(sessions, callback_url=None)) == []  # nobody asked


def test_one_attempt_at_a_time(sessions):
    [delivery] = jobs.job_done(sessions, a_job(sessions))
    first = outbox.claim(sessions, delivery, lease_s=60)
    assert first is not None and first.attempt == 1
    assert outbox.claim(sessions, delivery, lease_s=60) is None  # a duplicate message


def test_retried_for_about_a_day_then_given_up(sessions):
    assert 86400 <= sum(RETRY_DELAYS_S) <= 1.1 * 86400  # a day
    job_id = a_job(sessions)
    [delivery] = jobs.job_done(sessions, job_id)
    silence = Outcome(None, "no answer within 10 s", 10_000)
    delays = []
    for attempt in range(1, len(RETRY_DELAYS_S) + 2):
        with sessions.begin() as session:  # as if each delay had passed
            row = session.get(WebhookDelivery, delivery)
            row.next_attempt_at = row.next_attempt_at and row.next_attempt_at - timedelta(days=2)
        claimed = outbox.claim(sessions, delivery, lease_s=60)
        assert claimed is not None and claimed.attempt == attempt
        delays.append(outbox.record(sessions, claimed, silence))
    assert delays[-1] is None and all(d is not None for d in delays[:-1])
    assert all(0.9 * s <= d <= 1.1 * s for d, s in zip(delays, RETRY_DELAYS_S, strict=False))
    with sessions() as session:
        row = session.get(WebhookDelivery, delivery)
        assert (row.status, row.attempts) == ("failed", len(RETRY_DELAYS_S) + 1)
        told = session.scalars(
            select(JobEvent.message).where(JobEvent.job_id == job_id, JobEvent.stage == "webhook")
        ).all()
    assert len(told) == len(RETRY_DELAYS_S) + 1
    assert told[0].endswith("no answer within 10 s (attempt 1); next attempt in 5 s")
    assert told[-1].endswith("(attempt 11); no more attempts")
    assert outbox.claim(sessions, delivery, lease_s=60) is None


def test_a_final_answer_ends_it_at_once(sessions):
    [delivery] = jobs.job_done(sessions, a_job(sessions))
    claimed = outbox.claim(sessions, delivery, lease_s=60)
    assert outbox.record(sessions, claimed, Outcome(400, "bad signature", 12)) is None
    [shown] = [d for d in outbox.deliveries_of(sessions) if d["id"] == delivery]
    assert shown["status"] == "failed" and shown["tries"][0]["error"] == "bad signature"


def test_attempts_whose_outcome_was_lost_still_count(sessions):
    """A worker killed mid-attempt records nothing; the attempt counts all the same, so the
    delivery still ends after the last attempt rather than being tried for ever."""
    job_id = a_job(sessions)
    [delivery] = jobs.job_done(sessions, job_id)
    for attempt in range(1, len(RETRY_DELAYS_S) + 2):
        with sessions.begin() as session:  # the lease of the lost attempt has run out
            row = session.get(WebhookDelivery, delivery)
            row.next_attempt_at = row.next_attempt_at - timedelta(days=2)
        claimed = outbox.claim(sessions, delivery, lease_s=60)
        assert claimed is not None and claimed.attempt == attempt  # ...and nothing recorded
    with sessions.begin() as session:
        row = session.get(WebhookDelivery, delivery)
        row.next_attempt_at = row.next_attempt_at - timedelta(days=2)
    assert outbox.claim(sessions, delivery, lease_s=60) is None
    with sessions() as session:
        assert session.get(WebhookDelivery, delivery).status == "failed"
        told = session.scalars(select(JobEvent.message).where(JobEvent.job_id == job_id)).all()
    assert told[-1].endswith("no answer recorded after 11 attempts; no more attempts")
