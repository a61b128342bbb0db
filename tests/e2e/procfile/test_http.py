"""The API over real HTTP, against the server of the Procfile's web line: what Flask's test
client cannot show — bodies streamed or chunked on a socket, an event stream read while the job
runs, a server told to stop, settings read by real processes."""

from __future__ import annotations

import hashlib
import http.client
import io
import itertools
import json
import os
import select
import signal
import socket
import subprocess
import time
import wave
from pathlib import Path

import psutil
import pytest

from app.embedded.nats_server import port_answers
from tests.support.deployment import paused
from tests.support.http_calls import multipart, sse_blocks
from tests.support.songs import song_flac
from tests.support.waiting import wait_for

USER, ADMIN = "user-token", "admin-token"
LIMIT_MB = 1
STAGES = ["transcode", "loudness", "normalize", "tempo_key", "finalize"]


@pytest.fixture(scope="module")
def api(module_deployment):
    """The module's API: tokens on, uploads limited to ``LIMIT_MB``."""
    return module_deployment.api(API_TOKENS=USER, ADMIN_TOKEN=ADMIN, MAX_UPLOAD_MB=str(LIMIT_MB))


@pytest.fixture(scope="module")
def worker(module_deployment):
    """The module's only worker, started with ``WORKER_METRICS_PORT=0``: every job runs on it."""
    return module_deployment.workers_without_metrics()


# -- HTTP on a socket -----------------------------------------------------------------------


def call(port: int, method: str, path: str, token: str | None = USER) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def form(data: bytes, name: str) -> tuple[str, list[bytes]]:
    """A multipart body with ``data`` as its ``file`` field: content type, pieces of 64 KiB."""
    content_type, head, tail = multipart(name)
    pieces = [data[start : start + (64 << 10)] for start in range(0, len(data), 64 << 10)]
    return content_type, [head, *pieces, tail]


def post_upload(
    connection: http.client.HTTPConnection, data: bytes, name: str, *, chunked: bool
) -> http.client.HTTPResponse:
    """POST ``data`` as an upload, piece by piece: with a ``Content-Length``, or chunked."""
    content_type, pieces = form(data, name)
    connection.putrequest("POST", "/api/uploads")
    connection.putheader("Authorization", f"Bearer {USER}")
    connection.putheader("Content-Type", content_type)
    if chunked:
        connection.putheader("Transfer-Encoding", "chunked")
    else:
        connection.putheader("Content-Length", str(sum(map(len, pieces))))
    connection.endheaders()
    for piece in pieces:
        connection.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
    if chunked:
        connection.send(b"0\r\n\r\n")
    return connection.getresponse()


def upload(port: int, data: bytes, name: str = "song.flac", *, chunked: bool = False) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        response = post_upload(connection, data, name, chunked=chunked)
        body = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 202, body
    return body


def wait_job(port: int, job_id: str, until=lambda job: job["status"] in ("done", "failed")):
    job: dict = {}

    def reached() -> bool:
        nonlocal job
        status, job = call(port, "GET", f"/api/jobs/{job_id}")
        assert status == 200, job
        return until(job)

    assert wait_for(reached, 120, interval=0.1), job
    return job


def wav(seconds: float) -> bytes:
    """Silence as 16-bit stereo WAV: audio by its first bytes, ~176 KB a second."""
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(2)
        writer.setsampwidth(2)
        writer.setframerate(44100)
        writer.writeframes(b"\0" * int(seconds * 44100) * 4)
    return out.getvalue()


def stored_files(deployment) -> set[Path]:
    return {p for p in (deployment.tmp / "store").rglob("*") if p.is_file()}


def tree(process) -> list[psutil.Process]:
    master = psutil.Process(process.popen.pid)
    return [master, *master.children(recursive=True)]


# -- 1. too large -------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_streamed_upload_over_max_upload_mb_gets_413_and_stores_nothing(
    module_deployment, api, chunked
):
    before = stored_files(module_deployment)
    jobs_before = call(api.port, "GET", "/api/jobs")[1]["total"]
    # Audio, half as large again as the limit: within the server's slack (front_door.body_limit),
    # so the server reads it all and the app answers.
    big = wav(LIMIT_MB * 1.5 * 1024 * 1024 / 176400)

    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=60)
    try:
        response = post_upload(connection, big, "big.wav", chunked=chunked)
        body = json.loads(response.read())
        assert response.status == 413, body
        assert body["error"]["code"] == "request_entity_too_large"
        assert f"MAX_UPLOAD_MB ({LIMIT_MB} MB)" in body["error"]["message"]
        # The connection is left usable: the server read past the rest of the body and answers
        # the next request on the same socket, or it closed the socket (and said so).
        if response.will_close:
            assert connection.sock is None or connection.sock.recv(1) == b""
        else:
            sock = connection.sock
            connection.request("GET", "/healthz")
            assert connection.getresponse().read() == b'{"status":"ok"}\n'
            assert connection.sock is sock  # no reconnection
    finally:
        connection.close()
    assert stored_files(module_deployment) == before
    assert call(api.port, "GET", "/api/jobs")[1]["total"] == jobs_before


def test_a_body_declared_far_over_the_limit_is_refused_before_it_is_sent(api):
    """The server answers from the headers alone, in the API's JSON, and reads nothing more."""
    sock = socket.create_connection(("127.0.0.1", api.port), timeout=10)
    try:
        sock.sendall(
            b"POST /api/uploads HTTP/1.1\r\nHost: test\r\nContent-Type: audio/wav\r\n"
            + f"Content-Length: {100 * LIMIT_MB * 1024 * 1024}\r\n\r\n".encode()
        )
        answer = b""
        while data := sock.recv(65536):
            answer += data
    finally:
        sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), answer
    assert b"\r\nX-Content-Type-Options: nosniff" in head, head
    error = json.loads(body)["error"]
    assert error["code"] == "request_entity_too_large", error
    assert f"MAX_UPLOAD_MB ({LIMIT_MB} MB)" in error["message"]


# -- 2. chunked -------------------------------------------------------------------------


def test_a_chunked_upload_is_accepted_whole_and_its_job_is_done(api, worker, song):
    body = upload(api.port, song, chunked=True)
    status, stored = call(api.port, "GET", f"/api/uploads/{body['upload_id']}")
    assert status == 200, stored
    assert stored["size_bytes"] == len(song)
    assert stored["sha256"] == hashlib.sha256(song).hexdigest()
    job = wait_job(api.port, body["job_id"])
    assert job["status"] == "done", job
    status, analysis = call(api.port, "GET", f"/api/uploads/{body['upload_id']}/analysis")
    assert status == 200 and "integrated_lufs" in analysis, analysis


# -- 3. the event stream ---------------------------------------------------------------------


def sse_event(block: list[str]) -> tuple[str | None, dict | None]:
    fields = dict(line.split(": ", 1) for line in block if not line.startswith(":"))
    return fields.get("event"), json.loads(fields["data"]) if "data" in fields else None


def test_the_event_stream_is_live_while_the_job_runs(api, worker, song):
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=60)
    try:
        with paused(worker):  # the job stays queued until the stream is open and read
            body = upload(api.port, song)
            connection.request(
                "GET", body["links"]["events"], headers={"Authorization": f"Bearer {USER}"}
            )
            response = connection.getresponse()
            assert response.status == 200
            assert response.getheader("Content-Type").startswith("text/event-stream")
            blocks = sse_blocks(response)
            # Said only while the job is neither done nor failed: the stream is open before the
            # job has even started.
            assert next(blocks) == [": waiting"]
        progress: list[dict] = []
        for block in blocks:
            event, data = sse_event(block)
            if event == "progress":
                progress.append(data)
            elif event is not None:
                break
        assert event == "done" and data["status"] == "done", block
    finally:
        connection.close()
    # Each stage's progress came in order, before the done event, and all of the job's events
    # came exactly once.
    assert [e["stage"] for e in progress if e["message"].endswith(" started")] == STAGES
    assert any(e["stage"] != STAGES[-1] for e in progress)
    _, job = call(api.port, "GET", f"/api/jobs/{body['job_id']}")
    # each streamed event is the logged one, with the job's percent when it was sent
    assert [{k: v for k, v in e.items() if k != "progress"} for e in progress] == job["events"]
    percents = [e["progress"] for e in progress]
    assert percents == sorted(percents) and percents[-1] == 100


def ended_by_its_events(port: int, events_path: str) -> dict:
    """The job's ``done`` or ``failed`` event, read off its event stream (no polling)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", events_path, headers={"Authorization": f"Bearer {USER}"})
        response = connection.getresponse()
        assert response.status == 200
        for block in sse_blocks(response):
            event, data = sse_event(block)
            if event in ("done", "failed"):
                assert data is not None
                return data
    finally:
        connection.close()
    raise AssertionError("the event stream ended without the job's end")


def test_an_upload_with_a_bpm_range_gets_its_tempo_folded_into_it(api, worker, tmp_path):
    """Six seconds at 120 BPM (the shortest the tempo reads), uploaded with ``bpm_range``
    50-70: the job keeps the range, the tempo stage folds the tempo to 60 and says so, the
    grid is every other beat."""
    data = song_flac(tmp_path, 120.0, "A", "minor", seconds=6, rate=22050, seed=3)
    content_type, head, tail = multipart("song.flac")
    boundary = content_type.split("boundary=")[1]
    field = f'--{boundary}\r\nContent-Disposition: form-data; name="bpm_range"\r\n\r\n50-70\r\n'
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=60)
    try:
        connection.request(
            "POST",
            "/api/uploads",
            field.encode() + head + data + tail,
            {"Content-Type": content_type, "Authorization": f"Bearer {USER}"},
        )
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 202, body
    ended = ended_by_its_events(api.port, body["links"]["events"])
    assert ended["status"] == "done", ended
    _, job = call(api.port, "GET", f"/api/jobs/{body['job_id']}")
    assert job["bpm_range"] == [50, 70]
    assert any("(range 50-70)" in e["message"] for e in job["events"]), job["events"]
    status, analysis = call(api.port, "GET", f"/api/uploads/{body['upload_id']}/analysis")
    assert status == 200, analysis
    assert abs(analysis["bpm"] - 60.0) < 0.5, analysis
    assert 0 < analysis["bpm_confidence"] <= 0.5
    assert analysis["bpm_estimate"] == analysis["bpm"]  # a steady beat: the same
    beats = analysis["beats"]
    gaps = sorted(b - a for a, b in itertools.pairwise(beats))
    assert len(beats) >= 3 and abs(gaps[len(gaps) // 2] - 1.0) < 0.05, beats  # a beat a second


# -- 4. retry ---------------------------------------------------------------------------------


def test_retry_reopens_a_failed_job_for_the_admin_only(module_deployment, api, worker, song):
    body = upload(api.port, b"fLaC" + os.urandom(20000), "broken.flac")
    job_id, retry = body["job_id"], f"/api/jobs/{body['job_id']}/retry"
    failed = wait_job(api.port, job_id)
    assert failed["status"] == "failed" and "damaged or truncated" in failed["error"], failed

    for token, answer in ((None, (401, "unauthorized")), (USER, (403, "forbidden"))):
        status, refused = call(api.port, "POST", retry, token=token)
        assert (status, refused["error"]["code"]) == answer, refused
    assert call(api.port, "GET", f"/api/jobs/{job_id}")[1]["status"] == "failed"

    # An operator repairs the file in storage, then retries the job: it runs again from the start.
    (original,) = (module_deployment.tmp / "store" / "uploads" / body["upload_id"]).iterdir()
    original.write_bytes(song)
    status, retried = call(api.port, "POST", retry, token=ADMIN)
    assert (status, retried) == (202, {"id": job_id, "status": "queued"})
    _, document = call(api.port, "GET", "/api/openapi.json")
    assert "202" in document["paths"]["/api/jobs/{job_id}/retry"]["post"]["responses"]
    job = wait_job(api.port, job_id)
    assert job["status"] == "done" and job["error"] is None, job
    messages = [e["message"] for e in job["events"]]
    assert messages.count("transcode started") == 2
    assert messages[messages.index("retried by an admin") :].count("transcode started") == 1

    status, refused = call(api.port, "POST", retry, token=ADMIN)
    assert status == 409 and refused["error"]["code"] == "not_failed", refused
    status, refused = call(api.port, "POST", "/api/jobs/no-such-job/retry", token=ADMIN)
    assert status == 404 and refused["error"]["code"] == "not_found", refused


# -- 5. readiness -------------------------------------------------------------------------------


def test_readyz_is_503_naming_the_database_when_it_is_unreachable(module_deployment, api):
    status, ready = call(api.port, "GET", "/readyz", token=None)
    assert status == 200 and ready["status"] == "ready", ready

    assert not port_answers("127.0.0.1", 9)  # nobody listens on the discard port
    lost = module_deployment.api(DATABASE_URL="postgresql://nobody@127.0.0.1:9/none")
    try:
        status, ready = call(lost.port, "GET", "/readyz", token=None)
        assert status == 503, ready
        assert ready["status"] == "not ready"
        assert ready["checks"]["database"].startswith("unreachable"), ready
        assert ready["checks"]["nats"] == "ok", ready
        assert call(lost.port, "GET", "/healthz", token=None) == (200, {"status": "ok"})
    finally:
        lost.stop()


# -- 6. GRACEFUL_TIMEOUT ------------------------------------------------------------------------


def test_a_request_that_arrives_with_the_sigterm_is_answered(module_deployment):
    """A connection made a moment before the signal — still in the kernel's backlog, its request
    not read yet — is a request on its way: it is answered, not reset. (Before: reset every
    time; seen as a failed upload in the SIGTERM test of test_shutdown.py.)"""
    for _ in range(3):
        server = module_deployment.api()
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as client:
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            server.popen.send_signal(signal.SIGTERM)
            # the server has begun to stop: the rest of the request comes now
            assert wait_for(lambda log=server.log: "stopping: no new" in log.read_text())
            client.sendall(b"\r\n")
            assert client.recv(100).startswith(b"HTTP/1.1 200 "), server.log.read_text()
        assert server.popen.wait(30) == 0


def test_sigterm_cuts_a_request_that_outlasts_graceful_timeout(module_deployment, song):
    grace = 2
    before = stored_files(module_deployment)
    server = module_deployment.api(GRACEFUL_TIMEOUT=str(grace))
    content_type, pieces = form(song, "song.flac")
    body = b"".join(pieces)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    try:
        sock.sendall(
            b"POST /api/uploads HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\n"
            + f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        )
        # The server says "100 Continue" once it has the headers: the request is in flight.
        assert read_head(sock).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body[:1000])

        server.popen.send_signal(signal.SIGTERM)
        told = time.monotonic()
        answer, closed = b"", False
        for byte in body[1000:-1]:  # a byte every 0.2 s, never the last one
            if time.monotonic() > told + grace + 20:
                break
            if not select.select([sock], [], [], 0.2)[0]:
                try:
                    sock.sendall(bytes([byte]))
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            closed = not data
            if closed:
                break
            answer += data
        assert closed and answer == b"", answer
        try:
            code = server.popen.wait(max(0.0, told + grace + 20 - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"the API was still running {grace} + 20 s after SIGTERM")
        assert code == 0, server.log.read_text()
    finally:
        sock.close()
    assert stored_files(module_deployment) == before


def read_head(sock: socket.socket) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(4096)
        assert data, head
        head += data
    return head


# -- 7. WORKER_METRICS_PORT=0 -----------------------------------------------------------------


def test_a_worker_with_metrics_port_0_listens_on_no_port_and_runs_jobs(api, worker, song):
    body = upload(api.port, song)
    job = wait_job(api.port, body["job_id"])
    assert job["status"] == "done", job
    assert any(body["job_id"] in line for line in worker.log_lines())  # it ran here
    listening = [
        (process.pid, connection.laddr)
        for process in tree(worker)
        for connection in process.net_connections(kind="inet")
        if connection.status == psutil.CONN_LISTEN
    ]
    assert listening == []
    assert worker.popen.poll() is None


# -- 8. methods ---------------------------------------------------------------------------------


def test_a_method_the_route_does_not_take_is_a_405_with_allow(api):
    """Through the server itself (waitress hands TRACE to the app like any method): the JSON
    error, and ``Allow`` naming what the route takes (RFC 9110 §15.5.6)."""
    for method, path, takes in (
        ("TRACE", "/healthz", {"GET", "HEAD", "OPTIONS"}),
        ("PUT", "/api/uploads", {"POST", "OPTIONS"}),
    ):
        connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=30)
        try:
            connection.request(method, path)
            response = connection.getresponse()
            body = json.loads(response.read())
        finally:
            connection.close()
        assert response.status == 405, (method, path, body)
        assert body["error"]["code"] == "method_not_allowed"
        allow = response.headers.get_all("Allow") or []
        assert len(allow) == 1, (method, path, allow)
        assert {m.strip() for m in allow[0].split(",")} == takes, (method, path, allow)
