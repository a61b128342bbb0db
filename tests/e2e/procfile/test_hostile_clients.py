"""The API on a socket, tried as a hostile client would: another tenant's ids, replayed and
oversized idempotency keys, bytes no token or id may hold, made-up methods, too many uploads.
Every answer is a 4xx with a message — never a 500, never another tenant's data."""

from __future__ import annotations

import http.client
import json
import socket

import pytest

from tests.support.audio import signals
from tests.support.http_calls import multipart
from tests.support.waiting import wait_for

ALPHA, BETA, ADMIN = "alpha-token", "beta-token", "admin-token"
#: The tenant whose hourly quota a test uses up (no other test uploads as it).
GAMMA = "gamma-token"
PER_HOUR = 4


@pytest.fixture(scope="module")
def api(module_deployment):
    return module_deployment.api(
        API_TOKENS=f"alpha:{ALPHA},beta:{BETA},gamma:{GAMMA}",
        ADMIN_TOKEN=ADMIN,
        UPLOADS_PER_HOUR=str(PER_HOUR),
    )


@pytest.fixture(scope="module")
def worker(module_deployment):
    return module_deployment.workers_without_metrics()


def request(
    port: int,
    method: str,
    path: str,
    token: str | None = None,
    body: bytes = b"",
    headers: dict | None = None,
) -> tuple[int, dict, dict]:
    """(status, headers, JSON body) of one request on a new connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        sent = {**(headers or {})}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        connection.request(method, path, body or None, sent)
        response = connection.getresponse()
        raw = response.read()
        answer = json.loads(raw) if raw.startswith(b"{") else {"raw": raw.decode("latin-1")}
        return response.status, dict(response.getheaders()), answer
    finally:
        connection.close()


def post_upload(port: int, token: str, data: bytes, key: str | None = None):
    content_type, head, tail = multipart("song.flac")
    headers = {"Content-Type": content_type, **({"Idempotency-Key": key} if key else {})}
    return request(port, "POST", "/api/uploads", token, head + data + tail, headers)


def raw_request(port: int, head: bytes) -> bytes:
    """Send bytes ``http.client`` refuses to send (a non-ASCII header); the status line."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        return sock.recv(4096).split(b"\r\n", 1)[0]


def test_a_tenant_meets_only_404s_for_another_tenants_work(api, worker, song):
    status, _, accepted = post_upload(api.port, ALPHA, song)
    assert status == 202, accepted
    upload_id, job_id = accepted["upload_id"], accepted["job_id"]

    def done() -> bool:
        return request(api.port, "GET", f"/api/jobs/{job_id}", ALPHA)[2]["status"] == "done"

    assert wait_for(done, 180, interval=0.3)
    analysis = request(api.port, "GET", f"/api/uploads/{upload_id}/analysis", ALPHA)[2]
    paths = [
        f"/api/uploads/{upload_id}",
        f"/api/uploads/{upload_id}/analysis",
        f"/api/jobs/{job_id}",
        f"/api/jobs/{job_id}/events",
        analysis["outputs"]["mp3"]["url"],
        analysis["waveform"]["json"],
    ]
    for path in paths:
        assert request(api.port, "GET", path, BETA)[0] == 404, path
        assert request(api.port, "GET", path, ADMIN)[0] == 200, path
    # the lists hold only one's own (the module's other tests may have given BETA jobs)
    listed = {j["id"] for j in request(api.port, "GET", "/api/jobs?limit=200", BETA)[2]["jobs"]}
    assert job_id not in listed
    assert job_id in {j["id"] for j in request(api.port, "GET", "/api/jobs", ALPHA)[2]["jobs"]}
    assert request(api.port, "DELETE", f"/api/uploads/{upload_id}", BETA)[0] == 404
    # a key replayed by another tenant is that tenant's own: never alpha's upload
    mine = post_upload(api.port, ALPHA, song, key="same-key")[2]
    theirs = post_upload(api.port, BETA, song, key="same-key")[2]
    assert theirs["upload_id"] != mine["upload_id"]
    assert post_upload(api.port, ALPHA, song + b"x", key="same-key")[0] == 422


def test_bytes_no_token_id_or_number_may_hold_are_4xx(api):
    assert (
        raw_request(
            api.port, b"GET /api/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer caf\xe9\r\n\r\n"
        ).split()[1]
        == b"401"
    )
    for path, status in [
        ("/api/jobs/abc%00def", 404),
        (f"/api/uploads/{'9' * 300}", 404),
        ("/api/jobs?limit=%C2%B2", 400),
        ("/api/jobs?offset=-1", 400),
    ]:
        answer = request(api.port, "GET", path, ALPHA)
        assert answer[0] == status and answer[2]["error"]["message"], (path, answer)
    status, _, body = post_upload(api.port, ALPHA, b"RIFF", key="k" * 300)
    assert status == 400 and "200" in body["error"]["message"]
    made_up = request(api.port, "BREW", "/api/jobs", ALPHA)
    assert made_up[0] in (405, 501), made_up  # refused, not a 500
    for answer in (request(api.port, "GET", "/healthz"), request(api.port, "GET", "/api/jobs")):
        assert answer[1]["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'none'" in answer[1]["Content-Security-Policy"]


def test_a_tenant_over_its_hourly_uploads_gets_429_with_retry_after(api, song):
    used = request(api.port, "GET", "/api/jobs?limit=200", GAMMA)[2]["total"]
    codes = [post_upload(api.port, GAMMA, song)[0] for _ in range(PER_HOUR - used)]
    assert codes == [202] * (PER_HOUR - used)
    status, headers, body = post_upload(api.port, GAMMA, song)
    assert status == 429 and body["error"]["code"] == "quota_exceeded"
    assert 0 < int(headers["Retry-After"]) <= 3600
    assert post_upload(api.port, ADMIN, song)[0] == 202  # admins have no quota


def test_a_tiny_file_claiming_days_of_audio_fails_once_with_a_sentence(api, worker, tmp_path):
    """The issue's 55-byte FLAC whose header claims 2^36 samples: it got a decode timeout of
    2,147,483 s and ended "gave up after 4 attempts: RuntimeError: Not currently encoding"."""
    liar = signals.bare_flac(tmp_path / "liar.flac", (1 << 36) - 1).read_bytes()
    status, _, accepted = post_upload(api.port, ALPHA, liar)
    assert status == 202, accepted

    job: dict = {}

    def ended() -> bool:
        job.update(request(api.port, "GET", f"/api/jobs/{accepted['job_id']}", ALPHA)[2])
        return job["status"] in ("done", "failed")

    assert wait_for(ended, 120, interval=0.3), job
    assert job["status"] == "failed" and job["attempts"] == 1, job
    assert job["error"].startswith("the audio is longer than the 4-hour limit (MAX_DURATION_S")
    for internal in ("Error", "Traceback", "RuntimeError", "attempts"):
        assert internal not in job["error"]


def test_the_cookie_is_secure_behind_a_trusted_proxy_and_its_headers_ignored_otherwise(
    module_deployment, api
):
    behind = module_deployment.api(ADMIN_TOKEN=ADMIN, TRUSTED_PROXY="127.0.0.1")
    https = {"X-Forwarded-Proto": "https"}
    assert "Secure" in request(behind.port, "GET", "/signin", headers=https)[1]["Set-Cookie"]
    assert "Secure" not in request(behind.port, "GET", "/signin")[1]["Set-Cookie"]
    # without TRUSTED_PROXY, anyone could claim HTTPS: the header is not believed
    assert "Secure" not in request(api.port, "GET", "/signin", headers=https)[1]["Set-Cookie"]
