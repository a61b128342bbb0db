"""``kill -9`` of the dramatiq master: its worker processes and its metrics server end with it
(a running stage is finished first), and the master the supervisor starts next serves its
metrics on the same port and runs the jobs."""

from __future__ import annotations

import json
import signal

import numpy as np
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.embedded.nats_server import free_port, port_answers
from tests.support.audio.signals import write_audio
from tests.support.deployment import Deployment, Process
from tests.support.http_calls import get, get_json, upload, wait_job
from tests.support.songs import song_flac
from tests.support.waiting import wait_for

RATE = 44100
#: Generous bound for the orphaned processes to end: the running stage gets the first master's
#: shutdown timeout (below) to finish, then the worker hands back and closes its connections.
SHUTDOWN_TIMEOUT_S = 60
ENDED_WITHIN_S = SHUTDOWN_TIMEOUT_S + 60
IN_FLIGHT = ("phantomchain_messages_in_flight", frozenset({("actor", "run_stage")}))


@pytest.fixture(scope="module")
def long_song(tmp_path_factory) -> bytes:
    """Four minutes of chords: its transcode is still running when the master is killed."""
    t = np.arange(240 * RATE) / RATE
    tone = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) / 6
    rng = np.random.default_rng(7)
    samples = np.stack([tone, tone]) + 0.01 * rng.standard_normal((2, t.size))
    path = tmp_path_factory.mktemp("master-killed") / "long.flac"
    write_audio(path, samples.astype(np.float32), RATE, "flac")
    return path.read_bytes()


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> bytes:
    return song_flac(
        tmp_path_factory.mktemp("after"), 120.0, "A", "minor", seconds=8, rate=RATE, seed=3
    )


def scrape(port: int) -> dict:
    status, body = get(port, "/metrics")
    assert status == 200, body
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def workers_on(deployment: Deployment, port: int, **env: str) -> Process:
    """The Procfile's worker line (two worker processes, as its default) with its metrics on
    ``port``; returns once the metrics there carry the worker processes' in-flight gauge."""
    process = deployment._spawn(
        "worker", port, {"WORKER_METRICS_PORT": str(port), "WORKER_PROCESSES": "2", **env}
    )

    def serving() -> bool:
        if process.popen.poll() is not None:
            return True
        return port_answers("127.0.0.1", port) and IN_FLIGHT in scrape(port)

    assert wait_for(serving, 90, interval=0.1), process.log.read_text()
    assert process.popen.poll() is None, process.log.read_text()
    return process


def ended(process: psutil.Process) -> bool:
    """Gone, or a zombie that its new parent (pid 1, a subreaper) has not reaped yet."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def log_entries(process: Process) -> list[dict]:
    return [json.loads(line) for line in process.log_lines()]


@pytest.mark.slow
@pytest.mark.faults
def test_kill_9_of_the_master_ends_its_processes_and_the_next_master_takes_over(
    deployment, long_song, song
):
    api = deployment.api()
    port = free_port()
    first = workers_on(deployment, port, WORKER_SHUTDOWN_TIMEOUT_MS=str(SHUTDOWN_TIMEOUT_S * 1000))
    children = psutil.Process(first.popen.pid).children(recursive=True)
    assert len(children) >= 3  # two worker processes and the metrics server
    status, long_job = upload(api.port, long_song, "long.flac")
    assert status == 202, long_job

    def transcoding() -> bool:
        job = get_json(api.port, f"/api/jobs/{long_job['job_id']}")
        return job["status"] == "running" and job["stage"] == "transcode"

    assert wait_for(transcoding, 120, interval=0.02)
    first.popen.send_signal(signal.SIGKILL)
    first.popen.wait(30)
    try:
        assert wait_for(lambda: all(ended(child) for child in children), ENDED_WITHIN_S), [
            (child.pid, child.cmdline()) for child in children if not ended(child)
        ]
    finally:
        for child in children:  # a failed run leaves no orphan behind
            if not ended(child):
                child.kill()

    # The worker running the stage was stopped as by a deploy: it finished the stage, logging
    # to the same place as before, and handed the job on; no stage ran twice.
    lines = log_entries(first)
    gone = next(i for i, e in enumerate(lines) if "dramatiq master" in e["message"])
    done = next(
        i
        for i, e in enumerate(lines)
        if e.get("job_id") == long_job["job_id"] and e["message"].startswith("transcode done")
    )
    assert gone < done, lines[gone:]

    # The next master binds the same port at once and serves its own processes' metrics.
    second = workers_on(deployment, port)
    assert IN_FLIGHT in scrape(port)
    messages = [e["message"] for e in log_entries(second)]
    assert f"worker metrics on http://0.0.0.0:{port}/metrics" in messages
    assert not any("worker metrics not served" in m for m in messages)

    job = wait_job(api.port, long_job["job_id"], 300)
    assert job["status"] == "done", job
    for stage in ("transcode", "loudness", "normalize", "tempo_key", "finalize"):
        assert sum(e["message"] == f"{stage} started" for e in job["events"]) == 1, job["events"]
    status, body = upload(api.port, song)
    assert status == 202, body
    assert wait_job(api.port, body["job_id"])["status"] == "done"
