"""Bounds on the work one upload can cause, on the real stack (the pipeline fixture's NATS,
Postgres and storage, an in-process worker): each bound passed ends the job ``failed`` at once
with a sentence naming its setting, never retried nor dead-lettered; an internal error reaches
the person as a sentence, its details the logs and the dead letter."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dramatiq.middleware.time_limit import TimeLimit

from app.models import JobEvent, Output
from app.queue import FIRST_STAGE, PIPELINE_QUEUE, start_job
from tests.integration.tasks import test_pipeline
from tests.integration.tasks.test_pipeline import add_upload, wait_finished
from tests.support.audio import signals
from tests.support.paths import ROOT

pipeline = test_pipeline.pipeline  # the same real stack, set up and torn down the same way


def bound(ctx, **settings) -> None:
    """Run the worker under these settings from now on (the context it reads them from)."""
    ctx.config = dataclasses.replace(ctx.config, **settings)


def run_job(module, ctx, source: Path, formats: list[str], **options):
    """Upload ``source``, run its job to the end (first stage sent with ``options``)."""
    job_id = add_upload(ctx, source, formats)
    if options:
        module.run_stage.send_with_options(args=(job_id, FIRST_STAGE), **options)
    else:
        start_job(module.broker, job_id, tenant="default", priority="normal")
    return wait_finished(ctx, job_id, timeout=60)


def assert_failed_for_good(module, ctx, job, reason: str) -> None:
    """Failed with ``reason`` on the first attempt: no retry waits, no dead letter, no output."""
    assert (job.status, job.error) == ("failed", reason)
    assert job.attempts <= 1
    module.broker.join(PIPELINE_QUEUE, timeout=30_000)  # a retry would wait in the delay queue
    assert module.broker.dead_letters.list() == []
    with ctx.sessions() as session:
        events = session.query(JobEvent).filter_by(job_id=job.id).all()
        assert session.query(Output).filter_by(upload_id=job.upload_id).count() == 0
    assert [e.message for e in events if e.level != "info"] == [reason]


def five_seconds(tmp_path: Path, declared_samples: int | None = None) -> Path:
    path = signals.write_audio(tmp_path / "five.flac", signals.tone(seconds=5.0), 44100, "flac")
    if declared_samples is not None:
        signals.declare_flac_samples(path, declared_samples)
    return path


def test_a_file_declaring_more_than_max_duration_fails_before_decoding(pipeline, tmp_path):
    module, ctx = pipeline
    bound(ctx, max_duration_s=2)
    job = run_job(module, ctx, five_seconds(tmp_path), ["mp3"])
    reason = (
        "the audio is longer than the 2-second limit (MAX_DURATION_S = 2 s): "
        "the file declares 5.0 s"
    )
    assert_failed_for_good(module, ctx, job, reason)


def test_audio_decoding_past_max_duration_fails_as_it_streams(pipeline, tmp_path):
    """The header declares nothing (a FLAC may): decoding stops at the block that passes."""
    module, ctx = pipeline
    bound(ctx, max_duration_s=2)
    job = run_job(module, ctx, five_seconds(tmp_path, declared_samples=0), ["mp3"])
    reason = (
        "the audio is longer than the 2-second limit (MAX_DURATION_S = 2 s): "
        "decoding was stopped after 3.0 s"  # two blocks of 65536 frames at 44.1 kHz
    )
    assert_failed_for_good(module, ctx, job, reason)


def test_a_decode_out_of_time_fails_for_good(pipeline, tmp_path):
    """The bound is DECODE_TIMEOUT_S, not a figure from the file (0 here: no time at all)."""
    module, ctx = pipeline
    bound(ctx, decode_timeout_s=0)
    job = run_job(module, ctx, five_seconds(tmp_path), ["mp3"])
    reason = (
        "decoding took longer than DECODE_TIMEOUT_S (0 s) and was stopped after 0.0 s of "
        "audio: the file is damaged or too slow to decode"
    )
    assert_failed_for_good(module, ctx, job, reason)


def test_outputs_past_max_output_mb_fail_the_job(pipeline, tmp_path):
    """The issue's case: a few kB of FLAC silence asked for as WAV and FLAC."""
    module, ctx = pipeline
    bound(ctx, max_output_mb=1)
    source = signals.write_audio(
        tmp_path / "quiet.flac", signals.silence(30.0, channels=2), 44100, "flac"
    )
    job = run_job(module, ctx, source, ["wav", "flac"])
    reason = "the outputs would pass MAX_OUTPUT_MB (1 MB); ask for fewer or compressed formats"
    assert_failed_for_good(module, ctx, job, reason)


@pytest.fixture
def time_limits(pipeline) -> Iterator[None]:
    """dramatiq's TimeLimit middleware at work, as in a ``dramatiq`` worker process (which
    starts it at process boot), checking every 10 ms rather than every second."""
    module, _ = pipeline
    (middleware,) = [m for m in module.broker.middleware if isinstance(m, TimeLimit)]
    manager, interval = middleware.manager, middleware.manager.interval
    manager.interval = 0.01
    if not manager.is_alive():
        manager.start()
    yield
    manager.interval = interval


def test_a_stage_stopped_by_its_time_limit_fails_for_good(pipeline, time_limits, tmp_path):
    """An hour of audio to transcode (a minute's work here) under a 0.2 s limit: stopped."""
    module, ctx = pipeline
    source = signals.write_audio(tmp_path / "hour.flac", signals.silence(3600, 8000), 8000)
    job = run_job(module, ctx, source, ["mp3"], time_limit=200)
    reason = "the transcode stage ran longer than STAGE_TIME_LIMIT_S (0.2 s) and was stopped"
    assert_failed_for_good(module, ctx, job, reason)


def test_the_stage_time_limit_is_stage_time_limit_s():
    """Read once, when the worker imports the pipeline (a process of its own here)."""
    env = {
        **os.environ,
        "STAGE_TIME_LIMIT_S": "42",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",  # not reached at import
    }
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "from tasks.pipeline import run_stage as r; print(r.options['time_limit'])",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.stdout.strip() == "42000", shown.stderr


@pytest.mark.parametrize(
    ("declared_samples", "reason"),
    [
        pytest.param(
            (1 << 36) - 1,
            "the audio is longer than the 4-hour limit (MAX_DURATION_S = 14400 s): "
            "the file declares 2386 h 5 min",
            id="claims-2^36-samples",
        ),
        pytest.param(
            60 * 8000,
            "file is truncated after 0.0 s of audio of the 60.0 s its header declares",
            id="claims-a-minute",
        ),
    ],
)
def test_a_55_byte_flac_fails_at_once_with_a_reason(pipeline, tmp_path, declared_samples, reason):
    """The issue's file ended "gave up after 4 attempts: RuntimeError: Not currently encoding":
    the MP3 encoder, closed without audio, hid the decoder's reason behind an internal error."""
    module, ctx = pipeline
    source = signals.bare_flac(tmp_path / "tiny.flac", declared_samples, rate=8000)
    job = run_job(module, ctx, source, ["mp3", "wav", "flac"])
    assert_failed_for_good(module, ctx, job, reason)


def test_silence_goes_through_every_stage(pipeline, tmp_path):
    module, ctx = pipeline
    source = signals.write_audio(tmp_path / "quiet.flac", signals.silence(3.0), 44100, "flac")
    job = run_job(module, ctx, source, ["wav", "flac", "mp3"])
    assert job.status == "done", job.error


def test_an_internal_error_reaches_the_person_as_a_sentence(pipeline, tmp_path):
    """Its type, message and traceback go to the dead letter (and the logs), not to the job."""
    module, ctx = pipeline
    source = five_seconds(tmp_path)
    job_id = add_upload(ctx, source, ["mp3"])
    ctx.storage.delete(f"uploads/{source.name}")  # storage lost the file: not the audio's fault
    module.run_stage.send_with_options(args=(job_id, FIRST_STAGE), max_retries=0)
    job = wait_finished(ctx, job_id, timeout=60)
    assert (job.status, job.error) == (
        "failed",
        "the transcode stage failed after 1 attempt because of an internal error; the "
        "operators' logs and the dead letter have the details",
    )
    with ctx.sessions() as session:
        events = [e.message for e in session.query(JobEvent).filter_by(job_id=job_id)]
    assert not [e for e in events if "Error" in e or "Traceback" in e]
    letters = []
    deadline = time.monotonic() + 10
    while not letters and time.monotonic() < deadline:
        letters = module.broker.dead_letters.list()
        time.sleep(0.05)
    (letter,) = letters
    assert letter.reason.startswith("StorageError: ")
    assert "Traceback" in letter.traceback and "StorageError" in letter.traceback
