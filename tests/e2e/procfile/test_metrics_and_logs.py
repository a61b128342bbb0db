"""``/metrics`` of the API (on its own port, ``METRICS_PORT``) and of the workers move with an
upload; logs are JSON with ids."""

from __future__ import annotations

import http.client
import json
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.http_calls import get, get_json, upload, wait_job
from tests.support.songs import song_flac
from tests.support.waiting import wait_for


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("ops")
    return song_flac(folder, 120.0, "A", "minor", seconds=8, rate=44100, seed=3)


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    status, body = get(port, "/metrics")
    assert status == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.slow
def test_metrics_move_with_an_upload_and_logs_are_json(deployment, song):
    api = deployment.api()
    workers = deployment.workers()
    api_before, workers_before = scrape(api.metrics_port), scrape(workers.port)

    status, body = upload(api.port, song)
    assert status == 202, body
    job = wait_job(api.port, body["job_id"])
    assert job["status"] == "done", job
    api_after, workers_after = scrape(api.metrics_port), scrape(workers.port)

    def moved(before, after, name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    route = {"method": "POST", "route": "/api/uploads", "status": "202"}
    assert moved(api_before, api_after, "phantomchain_http_requests_total", **route) == 1
    assert moved(api_before, api_after, "phantomchain_uploads_total") == 1
    assert moved(api_before, api_after, "phantomchain_upload_bytes_total") == len(song)
    duration = {"method": "POST", "route": "/api/uploads"}
    assert (
        moved(api_before, api_after, "phantomchain_http_request_duration_seconds_count", **duration)
        == 1
    )
    # Queue figures come from JetStream at scrape time; nothing waits once the job is done.
    assert value(api_after, "phantomchain_nats_up") == 1
    assert ("phantomchain_queue_waiting_messages", frozenset({("queue", "pipeline")})) in api_after
    assert value(api_after, "phantomchain_queue_waiting_messages", queue="pipeline") == 0

    assert (
        moved(workers_before, workers_after, "phantomchain_jobs_finished_total", status="done") == 1
    )
    for stage in ("transcode", "loudness", "normalize", "tempo_key", "finalize"):
        count = "phantomchain_stage_duration_seconds_count"
        assert moved(workers_before, workers_after, count, stage=stage, outcome="ok") == 1
    processed = moved(workers_before, workers_after, "phantomchain_audio_processed_seconds_total")
    assert processed == pytest.approx(8.0, abs=0.05)
    # In flight is sampled once a second: it reads 0 again once the last stage is over.
    assert wait_for(
        lambda: (
            scrape(workers.port).get(
                ("phantomchain_messages_in_flight", frozenset({("actor", "run_stage")}))
            )
            == 0
        )
    )
    # No job, upload or message id ever becomes a label.
    for name, labels in [*api_after, *workers_after]:
        assert body["job_id"] not in dict(labels).values(), name

    # Logs: every line of every process is one JSON object; the job can be followed by its id.
    api_log = [json.loads(line) for line in api.log_lines()]
    worker_log = [json.loads(line) for line in workers.log_lines()]
    upload_lines = [e for e in api_log if e.get("upload_id") == body["upload_id"]]
    assert upload_lines and all(e.get("request_id") for e in upload_lines)
    assert any(e.get("job_id") == body["job_id"] for e in upload_lines)
    job_lines = [e for e in worker_log if e.get("job_id") == body["job_id"]]
    assert {e["stage"] for e in job_lines} == {
        "transcode",
        "loudness",
        "normalize",
        "tempo_key",
        "finalize",
    }
    assert all(e["upload_id"] == body["upload_id"] for e in job_lines)
    assert any(e["message"] == "job done" for e in job_lines)


def test_request_id_is_echoed_and_logged(deployment):
    api = deployment.api()
    request = urllib.request.Request(
        f"http://127.0.0.1:{api.port}/api/jobs", headers={"X-Request-ID": "trace-42"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["X-Request-ID"] == "trace-42"
    lines = [json.loads(line) for line in api.log_lines()]
    logged = [e for e in lines if e.get("request_id") == "trace-42"]
    assert logged and logged[0]["route"] == "/api/jobs" and logged[0]["status"] == 200
    assert get_json(api.port, "/healthz")["status"] == "ok"


@pytest.mark.slow
def test_queue_depth_retries_and_dead_letters_are_counted(deployment, song):
    import psycopg

    api = deployment.api()
    before_upload = time.time()
    status, body = upload(api.port, song)
    after_upload = time.time()
    assert status == 202, body
    # No worker yet: the first stage waits in the queue, and the API reads that from JetStream
    # (and how long it has waited: stored during the upload, read during the scrape) and from
    # PostgreSQL (the job waits to start).
    before_scrape = time.time()
    samples = scrape(api.metrics_port)
    after_scrape = time.time()
    assert value(samples, "phantomchain_queue_waiting_messages", queue="pipeline") == 1
    age = value(samples, "phantomchain_queue_oldest_waiting_seconds", queue="pipeline")
    assert before_scrape - after_upload <= age <= after_scrape - before_upload
    waiting = {
        dict(labels)["tenant"]: n
        for (name, labels), n in samples.items()
        if name == "phantomchain_waiting_jobs"
    }
    assert sum(waiting.values()) == 1 and "@other" in waiting, waiting
    with psycopg.connect(deployment.env["DATABASE_URL"]) as connection:
        key = connection.execute(
            "SELECT storage_key FROM uploads WHERE id = %s", (body["upload_id"],)
        ).fetchone()[0]
    (deployment.tmp / "store" / key).unlink()  # the transcode will not find its input

    workers = deployment.workers()  # a new master counts from zero (a fresh metrics folder)
    job = wait_job(api.port, body["job_id"])
    assert job["status"] == "failed", job
    assert wait_for(
        lambda: value(scrape(api.metrics_port), "phantomchain_dead_letters", queue="pipeline") == 1
    )
    after = scrape(workers.port)

    def counted(name, **labels):
        return value(after, name, **labels)

    assert counted("phantomchain_message_retries_total", actor="run_stage") == 3
    assert counted("phantomchain_dead_lettered_messages_total", actor="run_stage") == 1
    assert counted("phantomchain_jobs_finished_total", status="failed") == 1
    count = "phantomchain_stage_duration_seconds_count"
    assert counted(count, stage="transcode", outcome="error") == 4
    assert counted(count, stage="transcode", outcome="ok") == 0
    failed = [json.loads(line) for line in workers.log_lines()]
    attempts = [e for e in failed if e.get("job_id") == body["job_id"] and e["level"] == "warning"]
    assert len(attempts) == 4 and all("exception" in e for e in attempts)


def test_metrics_are_on_metrics_port_only_and_made_up_methods_count_as_other(deployment):
    api = deployment.api()
    status, body = get(api.port, "/metrics")
    assert status == 404 and b"phantomchain_" not in body, body
    made_up = [f"FROB{i}" for i in range(40)]
    for method in [*made_up, "GET", "DELETE"]:
        connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
        try:
            connection.request(method, "/healthz")
            answer = connection.getresponse()
            answer.read()
        finally:
            connection.close()
        assert answer.status in (200, 405), (method, answer.status)
    samples = scrape(api.metrics_port)
    methods = {
        dict(labels)["method"]
        for name, labels in samples
        if name == "phantomchain_http_requests_total"
    }
    assert methods == {"GET", "DELETE", "other"}, methods
    other = {"method": "other", "route": "unmatched", "status": "405"}
    assert value(samples, "phantomchain_http_requests_total", **other) == len(made_up)
