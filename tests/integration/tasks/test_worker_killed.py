"""A worker process killed with SIGKILL in the middle of any stage: another worker finishes the
job, the stage's results are written once, and the other stages run once. (The jobs ask for
normalised outputs, so the normalize stage has work to be killed in.)"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from app.api import create_app
from app.config import Config
from app.models import Analysis, JobEvent, Output
from app.queue import make_broker
from tests.support.namespace import service_settings
from tests.support.paths import ROOT
from tests.support.songs import song_flac
from tests.support.waiting import stop_all, wait_for

STAGE_NAMES = ["transcode", "loudness", "normalize", "tempo_key", "finalize"]


@pytest.mark.slow
@pytest.mark.faults
def test_a_worker_killed_in_each_stage_loses_nothing_and_repeats_nothing(
    migrated_database_url, service_nats_url, tmp_path
):
    namespace = f"test-kill-{uuid.uuid4().hex[:8]}"  # its consumer gets a 2 s ack wait
    settings = service_settings(
        migrated_database_url, service_nats_url, tmp_path, NATS_NAMESPACE=namespace
    )
    song = song_flac(tmp_path, 118.0, "E", "minor", seconds=8, rate=22050, seed=21)
    app = create_app(Config.from_env(settings))
    client = app.test_client()
    jobs = []
    for stage in STAGE_NAMES:
        response = client.post(
            "/api/uploads", content_type="multipart/form-data",
            data={"file": (io.BytesIO(song), f"{stage}.flac"), "formats": "mp3,wav",
                  "normalize": "podcast"},  # so the normalize stage has work to be killed in
        )  # fmt: skip
        assert response.status_code == 202, response.json
        jobs.append(response.json["job_id"])
    held = dict(zip(jobs, STAGE_NAMES, strict=True))
    env = {
        **os.environ, **settings, "PYTHONPATH": str(ROOT), "TEST_ACK_WAIT": "2",
        "TEST_HOLD_DIR": str(tmp_path), "TEST_HOLD": ",".join(f"{j}:{s}" for j, s in held.items()),
    }  # fmt: skip
    workers: list[subprocess.Popen] = []

    def start_worker() -> None:
        with (tmp_path / f"worker{len(workers)}.log").open("wb") as log:
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "dramatiq", "tests.integration.tasks.killable_worker",
                     "--processes", "1", "--threads", "1"],
                    env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                )
            )  # fmt: skip

    def status(job_id: str) -> str:
        return client.get(f"/api/jobs/{job_id}").json["status"]

    try:
        start_worker()
        killed: set[Path] = set()
        for _ in held:  # each worker is killed once, holding one job's stage; a new one starts
            assert wait_for(lambda: set(tmp_path.glob("held-*")) - killed, 120), _logs(tmp_path)
            (marker,) = set(tmp_path.glob("held-*")) - killed
            os.kill(int(marker.read_text()), signal.SIGKILL)
            killed.add(marker)
            start_worker()
        assert wait_for(lambda: all(status(j) in ("done", "failed") for j in jobs), 120), _logs(
            tmp_path
        )
        assert {p.name for p in killed} == {f"held-{j}-{s}" for j, s in held.items()}
        engine = create_engine(Config.from_env(settings).database_url)
        with Session(engine) as session:
            for job_id, stage in held.items():
                job = client.get(f"/api/jobs/{job_id}").json
                assert job["status"] == "done", (stage, job["error"])
                started = session.scalars(
                    select(JobEvent.stage)
                    .where(JobEvent.job_id == job_id, JobEvent.message.like("% started"))
                    .order_by(JobEvent.id)
                ).all()
                expected = list(STAGE_NAMES)
                expected.insert(STAGE_NAMES.index(stage), stage)  # run twice, all others once
                assert started == expected, stage
                upload_id = job["upload_id"]
                outputs = session.scalars(select(Output).where(Output.upload_id == upload_id))
                outputs = sorted(outputs, key=lambda output: output.format)
                assert [output.format for output in outputs] == ["mp3", "wav"], stage
                for output in outputs:
                    assert output.normalization["target_lufs"] == -16, stage
                count = select(func.count()).select_from(Analysis)
                assert session.scalar(count.where(Analysis.upload_id == upload_id)) == 1
                analysis = client.get(f"/api/uploads/{upload_id}/analysis").json
                assert abs(analysis["bpm"] / 118.0 - 1) < 0.04 and analysis["key"] == "E minor"
        engine.dispose()
    finally:
        stop_all(workers)
        app.extensions["broker"].close()
        cleanup = make_broker(service_nats_url, namespace)
        cleanup.delete_streams()
        cleanup.close()


def _logs(folder: Path) -> str:
    return "\n".join(
        p.read_text(errors="replace")[-3000:] for p in sorted(folder.glob("worker*.log"))
    )
