"""The sweep: a job with no message left to move it is sent again once, then failed; a job
that a message, a backlog or a recent event may still move is left alone."""

from __future__ import annotations

import uuid
from datetime import timedelta

import dramatiq
import pytest

from app import jobs
from app.db import make_sessions
from app.models import Job, JobEvent, Upload, utcnow
from app.queue import PIPELINE_QUEUE, make_broker
from tasks.sweep import STRANDED, sweep


@pytest.fixture
def world(migrated_database_url, service_nats_url):
    """(sessions, broker) on a fresh database and a namespace of the test's own."""
    sessions = make_sessions(migrated_database_url)
    broker = make_broker(service_nats_url, f"test-sweep-{uuid.uuid4().hex[:8]}")
    broker.flush_all()  # creates the streams: the queues exist and are empty
    yield sessions, broker
    broker.delete_streams()
    broker.close()
    sessions.kw["bind"].dispose()


def add_job(sessions, status: str, stage: str | None, quiet_for_s: float) -> str:
    """A job whose creation and only event lie ``quiet_for_s`` seconds back."""
    then = utcnow() - timedelta(seconds=quiet_for_s)
    with sessions.begin() as session:
        upload = Upload(
            tenant="test",
            filename="a.flac",
            content_type="audio/flac",
            size_bytes=1,
            sha256="0",
            storage_key=f"uploads/{uuid.uuid4()}",
            created_at=then,
        )
        session.add(upload)
        session.flush()
        job = Job(upload_id=upload.id, tenant="test", status=status, stage=stage, created_at=then)
        session.add(job)
        session.flush()
        if stage:
            session.add(JobEvent(job_id=job.id, stage=stage, message=f"{stage} started", at=then))
        return job.id


def messages(broker) -> list[tuple]:
    """The pipeline messages waiting, as (job id, stage); the queue is emptied."""
    found = []
    consumer = broker.consume(PIPELINE_QUEUE, prefetch=10, timeout=1000)
    while (message := consumer.__next__()) is not None:
        found.append(tuple(message.args))
        consumer.ack(message)
    consumer.close()
    return found


def test_a_stranded_job_is_sent_again_once_then_failed(world):
    sessions, broker = world
    stranded = add_job(sessions, "running", "loudness", quiet_for_s=600)
    never_started = add_job(sessions, "queued", None, quiet_for_s=600)
    recent = add_job(sessions, "running", "tempo_key", quiet_for_s=5)
    finished = add_job(sessions, "done", "finalize", quiet_for_s=600)

    assert sweep(sessions, broker, stuck_after_s=120) == 2
    assert sorted(messages(broker)) == sorted(
        [(stranded, "loudness"), (never_started, "transcode")]
    )
    job = jobs.get_job(sessions, stranded)
    assert job["status"] == "queued" and job["events"][-1]["message"] == jobs.RESENT_BY_SWEEP
    assert jobs.job_status(sessions, recent) == "running"
    assert jobs.job_status(sessions, finished) == "done"

    # Stranded again (its message lost once more), once its new event is old too:
    with sessions.begin() as session:
        for event in session.query(JobEvent).filter(JobEvent.job_id.in_([stranded, never_started])):
            event.at -= timedelta(seconds=600)
    assert sweep(sessions, broker, stuck_after_s=120) == 2
    assert messages(broker) == []
    job = jobs.get_job(sessions, stranded)
    assert job["status"] == "failed" and job["error"] == STRANDED
    assert jobs.job_status(sessions, recent) == "running"


def test_a_message_in_the_queue_means_nothing_is_stranded(world):
    sessions, broker = world
    quiet = add_job(sessions, "queued", None, quiet_for_s=600)
    other = ("another-job", "transcode")
    broker.enqueue(dramatiq.Message(PIPELINE_QUEUE, "run_stage", other, {}, {}))
    assert sweep(sessions, broker, stuck_after_s=120) == 0
    assert jobs.job_status(sessions, quiet) == "queued"
    assert messages(broker) == [other]
    assert sweep(sessions, broker, stuck_after_s=120) == 1  # the backlog is gone


def test_one_sweep_at_a_time(world):
    sessions, broker = world
    add_job(sessions, "queued", None, quiet_for_s=600)
    from sqlalchemy import func, select

    from tasks.sweep import SWEEP_LOCK

    with sessions.begin() as session:  # another process is sweeping
        assert session.scalar(select(func.pg_try_advisory_xact_lock(SWEEP_LOCK)))
        assert sweep(sessions, broker, stuck_after_s=120) == 0
    assert sweep(sessions, broker, stuck_after_s=120) == 1
