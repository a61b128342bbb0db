"""Retries against a small HTTP server on a socket that answers what each test scripts: a 429
or 503 waited out after its ``Retry-After``, a wait too long raised at once, a connection
failure retried only for a call that is safe to repeat, errors typed with the API's code."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from app.client import Client, RetryPolicy
from app.client.errors import (
    ConnectionFailed,
    NotFound,
    PhantomChainError,
    RateLimited,
    ServerError,
    ServiceUnavailable,
)


def error(status: int, code: str, retry_after: str | None = None):
    headers = {"Content-Type": "application/json"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    body = json.dumps({"error": {"code": code, "message": f"the {code} sentence"}})
    return status, headers, body.encode()


JOB = {
    "id": "j1",
    "upload_id": "u1",
    "status": "done",
    "stage": "finalize",
    "progress": 100,
    "error": None,
    "formats": ["mp3"],
    "created_at": "2026-12-07T06:00:00+00:00",
    "finished_at": None,
    "events": [],
}


def client_of(url: str, slept: list[float], **policy) -> Client:
    return Client(url, "tok", retry=RetryPolicy(**policy), sleep=slept.append, timeout=5)


def test_a_429_and_a_503_are_waited_out_after_their_retry_after(server):
    server.answers = [
        error(429, "too_many_streams", "2"),
        error(503, "database_unavailable", "Mon, 01 Jan 2001 00:00:00 GMT"),  # past: at once
        (200, {"Content-Type": "application/json"}, json.dumps(JOB).encode()),
    ]
    slept: list[float] = []
    job = client_of(server.url, slept).job("j1")
    assert job.status == "done" and job.upload_id == "u1"
    assert slept == [2.0, 0.0]
    assert [path for _, path, _ in server.seen] == ["/api/jobs/j1"] * 3
    assert server.seen[0][2]["Authorization"] == "Bearer tok"


def test_a_wait_past_the_budget_is_raised_at_once(server):
    server.answers = [error(429, "quota_exceeded", "3600")]
    slept: list[float] = []
    with pytest.raises(RateLimited) as raised:
        client_of(server.url, slept, max_wait_s=60).job("j1")
    assert (raised.value.code, raised.value.retry_after) == ("quota_exceeded", 3600.0)
    assert slept == []


def test_retries_stop_at_max_retries(server):
    server.answers = [error(503, "queue_unavailable", "1")] * 3
    slept: list[float] = []
    with pytest.raises(ServiceUnavailable):
        client_of(server.url, slept, max_retries=2).job("j1")
    assert slept == [1.0, 1.0] and len(server.seen) == 3


def test_other_errors_are_typed_and_not_retried(server):
    server.answers = [error(404, "not_found"), (500, {}, b"<html>oops</html>")]
    slept: list[float] = []
    client = client_of(server.url, slept)
    with pytest.raises(NotFound) as raised:
        client.job("j1")
    assert raised.value.message == "the not_found sentence"
    with pytest.raises(ServerError) as failed:
        client.job("j1")
    assert failed.value.code == "http_500" and "oops" in failed.value.message
    assert slept == []


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port that refuses connections: bound for the test, never listening (so no other
    process of the suite can take it meanwhile and leave a connection hanging)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        yield probe.getsockname()[1]


def test_a_refused_connection_is_retried_for_a_get_with_backoff_then_raised(closed_port):
    slept: list[float] = []
    client = client_of(f"http://127.0.0.1:{closed_port}", slept, max_retries=3, backoff_s=0.5)
    with pytest.raises(ConnectionFailed, match="refused"):
        client.job("j1")
    assert slept == [0.5, 1.0, 2.0]


def test_a_batch_is_not_sent_again_after_a_connection_failure(tmp_path, closed_port):
    song = tmp_path / "a.flac"
    song.write_bytes(b"fLaC" + b"\0" * 100)
    slept: list[float] = []
    client = client_of(f"http://127.0.0.1:{closed_port}", slept)
    with pytest.raises(ConnectionFailed):
        client.upload_batch([song])
    assert slept == []


def test_an_upload_carries_an_idempotency_key_and_a_retry_sends_the_same(server, tmp_path):
    song = tmp_path / "a.flac"
    song.write_bytes(b"fLaC" + b"\0" * 100)
    accepted = {"upload_id": "u1", "job_id": "j1", "status": "queued", "links": {}}
    server.answers = [
        error(503, "storage_unavailable", "1"),
        (202, {"Content-Type": "application/json"}, json.dumps(accepted).encode()),
    ]
    slept: list[float] = []
    done = client_of(server.url, slept).upload(song, formats=["mp3", "opus"], normalize="spotify")
    assert (done.upload_id, done.job_id) == ("u1", "j1")
    keys = {headers["Idempotency-Key"] for _, _, headers in server.seen}
    assert len(server.seen) == 2 and len(keys) == 1 and len(keys.pop()) >= 16
    assert all(int(h["Content-Length"]) > 100 for _, _, h in server.seen)


def test_an_answer_that_is_not_the_apis_is_a_phantomchain_error(server):
    server.answers = [
        (200, {"Content-Type": "text/html"}, b"<html>a captive portal</html>"),
        (200, {"Content-Type": "application/json"}, b'{"hello": "world"}'),
    ]
    client = client_of(server.url, [])
    with pytest.raises(ConnectionFailed, match="not JSON"):
        client.job("j1")
    with pytest.raises(PhantomChainError, match="not what the API sends"):
        client.job("j1")
