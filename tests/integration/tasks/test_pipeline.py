"""The pipeline end to end on real NATS, Postgres and storage, with an in-process worker."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import dramatiq
import numpy as np
import pytest

from app.config import Config
from app.models import Analysis, Job, JobEvent, Output, Upload
from app.queue import PIPELINE_QUEUE, start_job
from audio.decode import decode
from audio.targets import PRESETS
from tasks.stages import profile_key
from tests.support.audio.music import synthesize_track
from tests.support.audio.signals import write_audio
from tests.support.namespace import SERVICE_NAMESPACE
from tests.support.songs import reference_lufs


@pytest.fixture
def pipeline(migrated_database_url, service_nats_url, tmp_path, monkeypatch):
    """(pipeline module, worker context) on a fresh database, storage and namespace."""
    database_url = migrated_database_url
    # The worker reads its settings once, at import (the first test here imports it).
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("NATS_URL", service_nats_url)
    monkeypatch.setenv("NATS_NAMESPACE", SERVICE_NAMESPACE)
    from tasks import pipeline as module
    from tasks.context import configure

    broker = module.broker
    ctx = configure(
        Config.from_env({"DATABASE_URL": database_url, "STORAGE_URL": f"file://{tmp_path}/store"})
    )
    broker.flush_all()
    broker.dead_letters.purge()  # the namespace is shared by the session's tests
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    yield module, ctx
    worker.stop()
    broker.flush_all()
    broker.dead_letters.purge()  # the namespace is shared by the session's tests
    ctx.sessions.kw["bind"].dispose()


def add_upload(ctx, path: Path, formats: list[str]) -> str:
    stored = ctx.storage.save(f"uploads/{path.name}", [path.read_bytes()])
    with ctx.sessions.begin() as session:
        upload = Upload(
            tenant="test",
            filename=path.name,
            content_type="audio/flac",
            size_bytes=stored.size,
            sha256=stored.sha256,
            storage_key=stored.key,
        )
        session.add(upload)
        session.flush()
        job = Job(upload_id=upload.id, tenant="test", formats=formats)
        session.add(job)
        session.flush()
        return job.id


def wait_finished(ctx, job_id: str, timeout: float = 120) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with ctx.sessions() as session:
            job = session.get(Job, job_id)
            if job.status in ("done", "failed", "canceled"):
                return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def test_a_track_goes_through_every_stage(pipeline, tmp_path):
    module, ctx = pipeline
    track = synthesize_track(104.0, "Bb", "major", seconds=12, sample_rate=44100, seed=4)
    source = tmp_path / "song.flac"
    write_audio(source, track.samples, 44100, "flac")
    job_id = add_upload(ctx, source, ["mp3", "opus"])
    start_job(module.broker, job_id, tenant="default", priority="normal")
    job = wait_finished(ctx, job_id)
    assert job.status == "done", job.error
    with ctx.sessions() as session:
        job = session.get(Job, job_id)
        analysis = session.get(Analysis, job.upload_id)
        outputs = session.query(Output).filter_by(upload_id=job.upload_id).all()
        events = session.query(JobEvent).filter_by(job_id=job_id).order_by(JobEvent.id).all()
        upload = session.get(Upload, job.upload_id)
    assert job.progress == 100 and job.attempts == 5  # one per stage
    assert abs(analysis.bpm / 104.0 - 1) < 0.04
    assert (analysis.key, analysis.key_scale, analysis.camelot) == ("Bb", "major", "6B")
    assert analysis.integrated_lufs == pytest.approx(reference_lufs(track.samples, 44100), abs=0.1)
    sample_peak_db = 20 * math.log10(float(abs(track.samples).max()))
    # The true peak lies at or above the highest sample and, in band-limited music, close to it.
    assert sample_peak_db - 0.01 <= analysis.true_peak_dbtp <= sample_peak_db + 1.0
    assert upload.duration_s == pytest.approx(12.0, abs=0.01) and upload.channels == 2
    assert sorted(o.format for o in outputs) == ["mp3", "opus"]
    for output in outputs:
        with ctx.storage.local_path(output.storage_key) as path:
            samples, rate = decode(path)
            assert abs(samples.shape[1] / rate - 12.0) < 0.05
    assert ctx.storage.exists(analysis.waveform_png_key)
    stages = [e.stage for e in events if e.message.endswith("started")]
    assert stages == ["transcode", "loudness", "normalize", "tempo_key", "finalize"]
    assert events[-1].message == "done"


def test_a_stage_run_twice_overwrites(pipeline, tmp_path):
    module, ctx = pipeline
    track = synthesize_track(120.0, "A", "minor", seconds=6, sample_rate=44100, seed=2)
    source = tmp_path / "again.flac"
    write_audio(source, track.samples, 44100, "flac")
    job_id = add_upload(ctx, source, ["mp3"])
    transcode, loudness = module.STAGES[0].run, module.STAGES[1].run
    for _ in range(2):  # as if the first run's acknowledgement was lost
        transcode(ctx, job_id, lambda: False)
        loudness(ctx, job_id, lambda: False)
    with ctx.sessions() as session:
        upload_id = session.get(Job, job_id).upload_id
        assert session.query(Output).filter_by(upload_id=upload_id).count() == 1
        assert session.query(Analysis).filter_by(upload_id=upload_id).count() == 1


def test_not_audio_fails_at_once_with_a_reason_and_no_retries(pipeline, tmp_path):
    module, ctx = pipeline
    source = tmp_path / "fake.flac"
    source.write_bytes(b"fLaC" + os.urandom(5000))
    job_id = add_upload(ctx, source, ["mp3"])
    start_job(module.broker, job_id, tenant="default", priority="normal")
    job = wait_finished(ctx, job_id)
    assert job.status == "failed"
    assert job.attempts == 1
    assert job.error == "damaged or truncated FLAC file: its container cannot be read"
    # Had the failure gone to the retries or the dead letters, its message would still wait (in
    # the delay queue) or a dead letter would be there once the queue is settled.
    module.broker.join(PIPELINE_QUEUE, timeout=60_000)
    assert module.broker.dead_letters.list() == []


@pytest.mark.slow
def test_a_transient_failure_is_retried_then_fails_and_is_dead_lettered(pipeline, tmp_path):
    module, ctx = pipeline
    track = synthesize_track(100.0, "C", "major", seconds=3, sample_rate=22050, seed=5)
    source = tmp_path / "gone.flac"
    write_audio(source, track.samples, 22050, "flac")
    job_id = add_upload(ctx, source, ["mp3"])
    ctx.storage.delete("uploads/gone.flac")  # storage lost the file: not the audio's fault
    start_job(module.broker, job_id, tenant="default", priority="normal")
    job = wait_finished(ctx, job_id, timeout=90)
    assert job.status == "failed"
    assert job.attempts == module.MAX_RETRIES + 1
    assert job.error == (  # a sentence: the StorageError is for the logs and the dead letter
        f"the transcode stage failed after {module.MAX_RETRIES + 1} attempts because of an "
        "internal error; the operators' logs and the dead letter have the details"
    )
    with ctx.sessions() as session:
        retries = session.query(JobEvent).filter_by(job_id=job_id, level="warning").count()
    assert retries == module.MAX_RETRIES
    wait_for_dead_letter = time.monotonic() + 10
    while not module.broker.dead_letters.list() and time.monotonic() < wait_for_dead_letter:
        time.sleep(0.1)
    (letter,) = module.broker.dead_letters.list()
    assert letter.actor_name == "run_stage" and "StorageError" in letter.reason


def test_a_stage_stopped_by_its_time_limit_fails_at_once_with_the_reason(
    pipeline, tmp_path, monkeypatch
):
    """dramatiq's time limit raises ``TimeLimitExceeded``, a ``BaseException``: it must end the
    job, never leave it ``running``, and not be retried (the same work would be stopped again).
    tests/integration/tasks/test_bounds.py has the middleware itself stop a stage."""
    from dramatiq.middleware import TimeLimitExceeded

    module, ctx = pipeline

    def too_long(ctx, job_id, stop):
        raise TimeLimitExceeded()

    stages = list(module.STAGES)
    stages[1] = module.Stage("loudness", too_long, 60)
    monkeypatch.setattr(module, "STAGES", stages)
    track = synthesize_track(100.0, "C", "major", seconds=3, sample_rate=22050, seed=5)
    source = tmp_path / "long.flac"
    write_audio(source, track.samples, 22050, "flac")
    job_id = add_upload(ctx, source, ["mp3"])
    start_job(module.broker, job_id, tenant="default", priority="normal")
    job = wait_finished(ctx, job_id, timeout=90)
    assert job.status == "failed"
    assert job.attempts == 2  # transcode, then loudness once
    limit_s = module.config.stage_time_limit_s
    assert job.error == (
        f"the loudness stage ran longer than STAGE_TIME_LIMIT_S ({limit_s} s) and was stopped"
    )
    module.broker.join(PIPELINE_QUEUE, timeout=60_000)
    assert module.broker.dead_letters.list() == []


def test_the_limiters_profile_goes_from_the_first_pass_to_the_normalize_stage(pipeline, tmp_path):
    # A quiet track brought up to −14 LUFS is limited: the normalize stage settles its gain on
    # the profile the transcode stage kept; made again where it went missing, it gives the same.
    module, ctx = pipeline
    track = synthesize_track(96.0, "E", "minor", seconds=6, sample_rate=44100, seed=21)
    quiet = track.samples * np.float32(10 ** ((-30.0 - reference_lufs(track.samples, 44100)) / 20))
    source = tmp_path / "quiet.flac"
    write_audio(source, quiet, 44100, "flac")
    job_id = add_upload(ctx, source, ["wav"])
    with ctx.sessions.begin() as session:
        job = session.get(Job, job_id)
        job.normalize = PRESETS["spotify"].to_dict()
        upload_id = job.upload_id
    run = {stage.name: stage.run for stage in module.STAGES}
    for name in ("transcode", "loudness"):
        run[name](ctx, job_id, lambda: False)
    assert ctx.storage.exists(profile_key(upload_id))

    def normalised() -> dict:
        run["normalize"](ctx, job_id, lambda: False)
        with ctx.sessions() as session:
            return session.query(Output).filter_by(upload_id=upload_id).one().normalization

    kept = normalised()
    ctx.storage.delete(profile_key(upload_id))
    made_again = normalised()
    assert kept["limited_db"] > 0 and kept["reason"] is None
    assert abs(kept["output_integrated_lufs"] - (-14.0)) <= 0.2
    assert kept["gain_db"] == pytest.approx(made_again["gain_db"], abs=0.02)
    run["tempo_key"](ctx, job_id, lambda: False)
    run["finalize"](ctx, job_id, lambda: False)
    assert not ctx.storage.exists(profile_key(upload_id))
