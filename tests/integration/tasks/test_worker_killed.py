"""A worker process killed with SIGKILL at the worst moments of any stage: in the middle of it,
and after its completion is recorded but before its message is acknowledged. Another worker
finishes every job; each stage's results are written once; each stage runs exactly as often as
it must. (The jobs ask for normalised outputs, so the normalize stage has work to be killed
in.)

One worker with a thread per job holds each job at its moment in a different stage; one SIGKILL
takes them all; a fresh worker finishes them.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from app.config import Config
from app.http import create_app
from app.models import Analysis, JobEvent, Output, Upload
from app.queue import make_broker
from tests.support.namespace import service_settings
from tests.support.paths import ROOT
from tests.support.songs import song_flac
from tests.support.waiting import kill_groups, wait_for

STAGE_NAMES = ["transcode", "loudness", "normalize", "tempo_key", "finalize"]
pytestmark = [pytest.mark.slow, pytest.mark.faults]


@dataclass
class KillStack:
    """An API (test client) and killable workers on a namespace of the test's own, whose
    consumer gets a 2 s ack wait."""

    settings: dict[str, str]
    client: FlaskClient
    folder: Path
    workers: list[subprocess.Popen] = field(default_factory=list)

    def upload_one_per_stage(self, song: bytes) -> dict[str, str]:
        """A job for each stage: ``{job_id: stage}``."""
        held = {}
        for stage in STAGE_NAMES:
            response = self.client.post(
                "/api/uploads",
                content_type="multipart/form-data",
                data={
                    "file": (io.BytesIO(song), f"{stage}.flac"),
                    "formats": "mp3,wav",
                    "normalize": "podcast",  # so the normalize stage has work to be killed in
                },
            )
            assert response.status_code == 202, response.json
            held[response.json["job_id"]] = stage
        return held

    def start_worker(self, threads: int, **hold: str) -> subprocess.Popen:
        env = {
            **os.environ,
            **self.settings,
            "PYTHONPATH": str(ROOT),
            "TEST_ACK_WAIT": "2",
            "TEST_HOLD_DIR": str(self.folder),
            "WORKER_THREADS": str(threads),  # as the Procfile passes --threads
            **hold,
        }
        with (self.folder / f"worker{len(self.workers)}.log").open("wb") as log:
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dramatiq",
                    "tests.integration.tasks.killable_worker",
                    "--processes",
                    "1",
                    "--threads",
                    str(threads),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )
        self.workers.append(worker)
        return worker

    def kill_once_all_are_held(self, held: dict[str, str]) -> None:
        """Wait until the worker holds every pair (each in a thread of its own), then SIGKILL
        it — one process for all, each marker names its pid."""
        expected = {self.folder / f"held-{job}-{stage}" for job, stage in held.items()}
        assert wait_for(lambda: all(p.exists() for p in expected), 120), self.logs()
        (pid,) = {int(p.read_text()) for p in expected}
        os.kill(pid, signal.SIGKILL)

    def status(self, job_id: str) -> str:
        return self.client.get(f"/api/jobs/{job_id}").json["status"]

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:] for p in sorted(self.folder.glob("worker*.log"))
        )


@pytest.fixture
def stack(migrated_database_url, service_nats_url, tmp_path) -> Iterator[KillStack]:
    namespace = f"test-kill-{uuid.uuid4().hex[:8]}"
    settings = service_settings(
        migrated_database_url, service_nats_url, tmp_path, NATS_NAMESPACE=namespace
    )
    app = create_app(Config.from_env(settings))
    stack = KillStack(settings, app.test_client(), tmp_path)
    yield stack
    kill_groups(stack.workers)
    app.extensions["broker"].close()
    cleanup = make_broker(service_nats_url, namespace)
    cleanup.delete_streams()
    cleanup.close()


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> bytes:
    return song_flac(
        tmp_path_factory.mktemp("kill"), 118.0, "E", "minor", seconds=8, rate=22050, seed=21
    )


def run_killed(stack: KillStack, song: bytes, hold_variable: str) -> dict[str, list[str]]:
    """Hold a job in each stage (``hold_variable`` says at which moment), kill the worker, let
    a new one finish; every job must end ``done`` with one set of results. Returns each job's
    started stages, in order, by the stage it was held in."""
    held = stack.upload_one_per_stage(song)
    hold = ",".join(f"{job}:{stage}" for job, stage in held.items())
    stack.start_worker(threads=len(held), **{hold_variable: hold})
    stack.kill_once_all_are_held(held)
    # One thread: a stage's second message (sent again by the redelivered one's hand-on) comes
    # after its first has finished, so the count of runs is exact. (Two workers taking both at
    # the same moment may both run it, with the same result: see ``tasks.pipeline._hand_on``.)
    stack.start_worker(threads=1)
    assert wait_for(lambda: all(stack.status(j) in ("done", "failed") for j in held), 120), (
        stack.logs()
    )
    started_by_stage = {}
    engine = create_engine(Config.from_env(stack.settings).database_url)
    with Session(engine) as session:
        for job_id, stage in held.items():
            job = stack.client.get(f"/api/jobs/{job_id}").json
            assert job["status"] == "done", (stage, job["error"])
            started_by_stage[stage] = list(
                session.scalars(
                    select(JobEvent.stage)
                    .where(JobEvent.job_id == job_id, JobEvent.message.like("% started"))
                    .order_by(JobEvent.id)
                )
            )
            upload_id = job["upload_id"]
            outputs = session.scalars(select(Output).where(Output.upload_id == upload_id))
            outputs = sorted(outputs, key=lambda output: output.format)
            assert [output.format for output in outputs] == ["mp3", "wav"], stage
            for output in outputs:
                assert output.normalization["target_lufs"] == -16, stage
            count = select(func.count()).select_from(Analysis)
            assert session.scalar(count.where(Analysis.upload_id == upload_id)) == 1
            analysis = stack.client.get(f"/api/uploads/{upload_id}/analysis").json
            assert abs(analysis["bpm"] / 118.0 - 1) < 0.04 and analysis["key"] == "E minor"
    engine.dispose()
    return started_by_stage


def test_a_worker_killed_in_each_stage_loses_nothing_and_repeats_only_that_stage(stack, song):
    started = run_killed(stack, song, "TEST_HOLD")
    for stage in STAGE_NAMES:
        expected = list(STAGE_NAMES)
        expected.insert(STAGE_NAMES.index(stage), stage)  # run twice, all others once
        assert started[stage] == expected, stage


def test_a_worker_killed_after_a_stage_is_recorded_and_before_its_ack_runs_nothing_twice(
    stack, song
):
    """The message comes again though the stage's completion is recorded: its delivery only
    hands on to the next stage (:func:`app.jobs.begin_stage`), which runs once as well."""
    started = run_killed(stack, song, "TEST_HOLD_BEFORE_ACK")
    for stage in STAGE_NAMES:
        assert started[stage] == STAGE_NAMES, stage


def test_a_cancel_racing_a_stages_last_step_and_a_kill_ends_canceled_with_nothing_left(stack, song):
    """Two jobs, each held after its stage's work and before its completion is recorded — the
    transcode's outputs stored, the finalize's waveform drawn — are canceled there; then their
    worker is killed. The cancel committed first, so it wins: the messages delivered again
    find the jobs canceled, run nothing, and remove every row and file the jobs made (the
    originals stay); no stage is recorded, no job turns ``done``."""
    engine = create_engine(Config.from_env(stack.settings).database_url)
    held = {}
    for stage in ("transcode", "finalize"):
        response = stack.client.post(
            "/api/uploads",
            content_type="multipart/form-data",
            data={"file": (io.BytesIO(song), f"{stage}.flac"), "formats": "mp3,wav"},
        )
        assert response.status_code == 202, response.json
        held[response.json["job_id"]] = (stage, response.json["upload_id"])
    hold = ",".join(f"{job}:{stage}" for job, (stage, _) in held.items())
    stack.start_worker(threads=2, TEST_HOLD=hold)
    markers = {stack.folder / f"held-{job}-{stage}" for job, (stage, _) in held.items()}
    assert wait_for(lambda: all(p.exists() for p in markers), 120), stack.logs()
    made = made_by(engine, stack.folder, held)
    assert made["transcode"] and made["finalize"], made  # each wrote before it was held
    for job_id in held:
        answer = stack.client.post(f"/api/jobs/{job_id}/cancel")
        assert answer.status_code == 202, answer.json
    (pid,) = {int(p.read_text()) for p in markers}
    os.kill(pid, signal.SIGKILL)
    stack.start_worker(threads=1)

    def cleaned() -> bool:
        lines = (stack.folder / "worker1.log").read_text(errors="replace").splitlines()
        done = [line for line in lines if "removed what the canceled job made" in line]
        return all(any(job_id in line for line in done) for job_id in held)

    assert wait_for(cleaned, 60), stack.logs()
    assert made_by(engine, stack.folder, held) == {"transcode": [], "finalize": []}
    with Session(engine) as session:
        for job_id, (stage, upload_id) in held.items():
            job = stack.client.get(f"/api/jobs/{job_id}").json
            assert job["status"] == "canceled", job
            messages = [e["message"] for e in job["events"]]
            assert messages[-1] == "canceled by an admin", messages  # nothing recorded after
            assert f"{stage} started" in messages and "done" not in messages
            original = session.scalar(select(Upload.storage_key).where(Upload.id == upload_id))
            assert (stack.folder / "store" / original).is_file()  # the upload is kept
    engine.dispose()


def made_by(engine, folder: Path, held: dict[str, tuple[str, str]]) -> dict[str, list[str]]:
    """What each held job's pipeline left: rows (outputs, analysis) and files, by stage."""
    found: dict[str, list[str]] = {}
    with Session(engine) as session:
        for stage, upload_id in held.values():
            rows = [
                f"output {fmt}"
                for fmt in session.scalars(
                    select(Output.format).where(Output.upload_id == upload_id)
                )
            ]
            if session.get(Analysis, upload_id) is not None:
                rows.append("analysis")
            files = [
                str(p.relative_to(folder / "store"))
                for p in (folder / "store").rglob(f"*{upload_id}*")
                if p.is_file() and not p.name.startswith("original.")
            ]
            files += [
                str(p.relative_to(folder / "store"))
                for p in (folder / "store" / "outputs" / upload_id).glob("*")
            ]
            found[stage] = sorted(set(rows + files))
    return found
