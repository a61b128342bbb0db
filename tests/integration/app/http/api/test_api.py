"""The HTTP API over real Postgres, NATS and storage, with an in-process worker."""

from __future__ import annotations

import io
import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.config import Config
from app.http import create_app
from audio.decode import decode
from audio.verdicts import CHECK_NAMES
from tests.support.app_client import check_byte_ranges, upload, wait_done
from tests.support.audio.music import synthesize_track
from tests.support.audio.signals import write_audio
from tests.support.checked_files import FAILS, checked_flac
from tests.support.songs import reference_lufs


@pytest.fixture(scope="module")
def song_lufs() -> float:
    """The song's loudness by an independent meter on the synthesized samples themselves."""
    track = synthesize_track(132.0, "F", "minor", seconds=10, sample_rate=44100, seed=12)
    return reference_lufs(track.samples, 44100)


@pytest.mark.parametrize("backend", ["file", "nats"])
def test_upload_poll_analysis_download(make_client, song, song_lufs, backend, wheel_nats_url):
    if backend == "nats":
        client = make_client(STORAGE_URL=f"{wheel_nats_url}/api-{uuid.uuid4().hex[:8]}")
    else:
        client = make_client()
    response = upload(client, song, formats="mp3,opus")
    assert response.status_code == 202, response.json
    body = response.json
    assert body["status"] == "queued" and set(body["links"]) >= {"analysis", "job", "events"}
    assert all(link.startswith("/api/") for link in body["links"].values())
    analysis = wait_done(client, body["upload_id"])
    assert analysis.status_code == 200, analysis.json
    result = analysis.json
    assert abs(result["bpm"] / 132.0 - 1) < 0.04
    assert result["key"] == "F minor" and result["camelot"] == "4A"
    assert result["integrated_lufs"] == pytest.approx(song_lufs, abs=0.1)
    # The checks ride along: a synthesized master peaking at −1 dBFS has no flat tops, a
    # correlated stereo image and no offset; every reason is a sentence or null.
    assert result["clipping"] == {"runs": 0, "clipped_s": 0.0, "first_s": None}
    assert 0 < result["stereo_correlation"] <= 1 and result["mono_loss_lu"] < 3
    assert len(result["dc_offset_dbfs"]) == len(result["channel_loudness_lufs"]) == 2
    assert result["max_momentary_lufs"] >= result["max_short_term_lufs"] >= song_lufs - 1
    assert result["plr_db"] == pytest.approx(
        result["true_peak_dbtp"] - result["integrated_lufs"], abs=0.02
    )
    assert "clipping" not in result["failed_checks"] and result["clipping_reason"] is None
    for fmt in ("mp3", "opus"):
        whole = check_byte_ranges(client, result["outputs"][fmt]["url"])  # and seekable
        out = Path(os.environ.get("TMPDIR", "/tmp")) / f"api-test-{body['upload_id']}.{fmt}"
        out.write_bytes(whole)
        samples, rate = decode(out)
        out.unlink()
        assert abs(samples.shape[1] / rate - 10.0) < 0.05
    png = client.get(result["waveform"]["png"])
    assert png.status_code == 200 and png.data.startswith(b"\x89PNG")
    peaks = client.get(result["waveform"]["json"]).json
    assert peaks["version"] == 2 and peaks["length"] == 800
    job = client.get(body["links"]["job"]).json
    started = [e["stage"] for e in job["events"] if e["message"].endswith("started")]
    assert started == ["transcode", "loudness", "normalize", "tempo_key", "finalize"]
    meta = client.get(f"/api/uploads/{body['upload_id']}").json
    assert meta["filename"] == "My_Song.flac" and meta["duration_s"] == pytest.approx(10, abs=0.01)
    events = client.get(body["links"]["events"])
    text = events.get_data(as_text=True)
    assert "event: done" in text and text.count("event: progress") >= 8
    # A stream opened again after an event it saw carries on after it, and only after it.
    ids = progress_ids(text)
    resumed = client.get(body["links"]["events"], headers={"Last-Event-ID": str(ids[2])})
    assert progress_ids(resumed.get_data(as_text=True)) == ids[3:]


def progress_ids(stream: str) -> list[int]:
    """The ids of an event stream's progress events, in order."""
    blocks = [block.splitlines() for block in stream.split("\n\n")]
    return [
        int(line.removeprefix("id: "))
        for block in blocks
        if "event: progress" in block
        for line in block
        if line.startswith("id: ")
    ]


def test_text_is_refused_and_nothing_is_kept(api_only, tmp_path):
    response = upload(api_only, b"just some notes\n" * 100, name="notes.mp3")
    assert response.status_code == 400
    assert response.json["error"]["code"] == "not_audio"
    assert api_only.get("/api/jobs").json["total"] == 0
    assert not list((tmp_path / "store").rglob("original.*"))


def test_missing_file_unknown_format_and_unknown_ids(api_only, song):
    assert api_only.post("/api/uploads", data={}).status_code == 400
    bad = upload(api_only, song, formats="mp4")
    assert bad.status_code == 400 and "unknown format mp4" in bad.json["error"]["message"]
    assert api_only.get("/api/uploads/nope").status_code == 404
    assert api_only.get("/api/uploads/nope/analysis").json["error"]["code"] == "not_found"
    assert api_only.get("/api/jobs/nope").status_code == 404
    assert api_only.get("/api/no/such/route").json["error"]["code"] == "not_found"
    # a sentence for an API's user, not the framework's "If you entered the URL manually…"
    assert api_only.get("/api/jobs/nope").json["error"]["message"] == (
        "no such route, or an id that is not one (ids are UUIDs)"
    )


def test_oversized_upload_is_413(make_client, song):
    client = make_client(workers=False, MAX_UPLOAD_MB="1")
    response = upload(client, song + b"\0" * (2 << 20))
    assert response.status_code == 413
    assert "MAX_UPLOAD_MB" in response.json["error"]["message"]


def test_corrupt_audio_fails_once_with_a_reason(client):
    response = upload(client, b"fLaC" + os.urandom(20000), name="broken.flac")
    assert response.status_code == 202
    analysis = wait_done(client, response.json["upload_id"])
    assert analysis.status_code == 409
    assert "damaged or truncated" in analysis.json["error"]["message"]
    job = client.get(f"/api/jobs/{response.json['job_id']}").json
    assert job["status"] == "failed" and job["attempts"] == 1


def test_idempotency_key_returns_the_first_answer(api_only, song):
    first = api_only.post(
        "/api/uploads",
        data={"file": (io.BytesIO(song), "a.flac")},
        headers={"Idempotency-Key": "k-123"},
        content_type="multipart/form-data",
    )
    again = api_only.post(
        "/api/uploads",
        data={"file": (io.BytesIO(song), "a.flac")},
        headers={"Idempotency-Key": "k-123"},
        content_type="multipart/form-data",
    )
    assert again.json["upload_id"] == first.json["upload_id"]
    assert again.json["job_id"] == first.json["job_id"]
    assert api_only.get("/api/jobs").json["total"] == 1


def test_tokens(make_client, song):
    client = make_client(workers=False, API_TOKENS="user-token", ADMIN_TOKEN="admin-token")
    assert client.get("/api/jobs").status_code == 401
    wrong = client.get("/api/jobs", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json["error"]["code"] == "unauthorized"
    user = {"Authorization": "Bearer user-token"}
    assert client.get("/api/jobs", headers=user).status_code == 200
    nobody = f"/api/jobs/{uuid.uuid4()}"
    patch = client.patch(nobody, json={"status": "done"}, headers=user)
    assert patch.status_code == 403  # the Go service's PATCH now needs an admin token
    admin = {"Authorization": "Bearer admin-token"}
    assert client.patch(nobody, json={"status": "done"}, headers=admin).status_code == 404
    assert client.get("/healthz").status_code == 200  # health needs no token


def test_go_routes_are_aliases(client, song):
    response = client.post(
        "/upload", data={"file": (io.BytesIO(song), "go.flac")}, content_type="multipart/form-data"
    )
    assert response.status_code == 202
    upload_id = response.json["upload_id"]
    assert client.get(f"/uploads/{upload_id}").json["id"] == upload_id
    finished = wait_done(client, upload_id)
    assert finished.status_code == 200
    alias = client.get(f"/uploads/{upload_id}/analysis")
    assert alias.status_code == 200 and alias.json == finished.json


def test_jobs_list_filters_and_pages(api_only, song):
    ids = [upload(api_only, song).json["job_id"] for _ in range(3)]
    page = api_only.get("/api/jobs?limit=2").json
    assert page["total"] == 3 and len(page["jobs"]) == 2
    rest = api_only.get("/api/jobs?limit=2&offset=2").json
    assert {j["id"] for j in page["jobs"] + rest["jobs"]} == set(ids)
    assert api_only.get("/api/jobs?status=nonsense").status_code == 400
    assert api_only.get("/api/jobs?limit=0").status_code == 400


def test_readyz_checks_database_nats_and_migrations(api_only):
    response = api_only.get("/readyz")
    assert response.status_code == 200, response.json
    assert response.json["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "nats": "ok",
        "jetstream": "ok",
    }
    assert json.loads(api_only.get("/healthz").data) == {"status": "ok"}


def test_openapi_lists_every_api_route(api_only):
    import re

    document = api_only.get("/api/openapi.json").json
    assert document["openapi"].startswith("3.")
    app = api_only.application
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        if not (path.startswith("/api/") or path in ("/healthz", "/readyz")):
            continue  # the Go aliases and static files
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in document["paths"].get(path, {}), (method, path)


@pytest.mark.slow
def test_fifty_uploads_at_once_all_finish_each_stage_once(client, tmp_path):
    track = synthesize_track(110.0, "D", "major", seconds=2, sample_rate=22050, seed=8)
    path = tmp_path / "short.flac"
    write_audio(path, track.samples, 22050, "flac")
    data = path.read_bytes()
    app = client.application

    def send(i: int) -> dict:
        with app.test_client() as own:
            response = upload(own, data, name=f"take{i}.flac")
            assert response.status_code == 202, response.json
            return response.json

    with ThreadPoolExecutor(8) as pool:
        accepted = list(pool.map(send, range(50)))
    for item in accepted:
        assert wait_done(client, item["upload_id"], timeout=300).status_code == 200
    for item in accepted:
        job = client.get(f"/api/jobs/{item['job_id']}").json
        assert job["status"] == "done" and job["attempts"] == 5  # one per stage
        started = [e["stage"] for e in job["events"] if e["message"].endswith("started")]
        assert started == ["transcode", "loudness", "normalize", "tempo_key", "finalize"]
    assert client.get("/api/jobs?status=done&limit=200").json["total"] == 50


def test_the_app_uses_the_nats_its_config_names(migrated_database_url, tmp_path):
    """``create_app(config)`` owns its broker: a config naming a NATS nobody runs makes the
    app not ready, and ``/readyz`` says which check failed."""
    from app.embedded.nats_server import free_port

    settings = {
        "DATABASE_URL": migrated_database_url,
        "NATS_URL": f"nats://127.0.0.1:{free_port()}",
        "STORAGE_URL": f"file://{tmp_path}/store",
    }
    app = create_app(Config.from_env(settings))
    try:
        ready = app.test_client().get("/readyz")
        assert ready.status_code == 503
        assert ready.json["status"] == "not ready"
        assert ready.json["checks"]["database"] == "ok"
        assert ready.json["checks"]["nats"].startswith("unreachable")
    finally:
        app.extensions["broker"].close()


@pytest.mark.slow
def test_the_jobs_list_filters_the_uploads_that_fail_a_check(client, tmp_path):
    """Three uploads whose checks are known by construction, through the real worker: each
    filter lists exactly the jobs whose analysis fails that check."""
    accepted = {
        kind: upload(client, checked_flac(tmp_path, kind), name=f"{kind}.flac").json
        for kind in FAILS
    }
    job_of = {kind: answer["job_id"] for kind, answer in accepted.items()}
    for kind, answer in accepted.items():
        analysis = wait_done(client, answer["upload_id"])
        assert analysis.status_code == 200, analysis.json
        assert analysis.json["failed_checks"] == FAILS[kind], kind

    def listed(query: str) -> set[str]:
        response = client.get(f"/api/jobs?{query}")
        assert response.status_code == 200, response.json
        assert response.json["total"] == len(response.json["jobs"])
        return {job["id"] for job in response.json["jobs"]}

    assert listed("failing=clipping") == {job_of["clipped"]}
    assert listed("failing=true_peak") == {job_of["clipped"]}
    assert listed("failing=mono") == {job_of["inverted"]}
    assert listed("failing=dc_offset") == set()
    assert listed("failing=any") == {job_of["clipped"], job_of["inverted"]}
    assert listed("failing=") == set(job_of.values())  # empty: no filter
    # With the other filters and pages.
    assert listed("failing=any&status=done") == {job_of["clipped"], job_of["inverted"]}
    assert listed("failing=any&status=failed") == set()
    first, second = (
        client.get(f"/api/jobs?failing=any&limit=1&offset={offset}").json for offset in (0, 1)
    )
    assert first["total"] == second["total"] == 2
    assert {first["jobs"][0]["id"], second["jobs"][0]["id"]} == listed("failing=any")
    # Not a check: a 400 that names every choice (a prefix of a name is not the name).
    for bad in ("clip", "mon", "CLIPPING", "clipping,mono"):
        refused = client.get(f"/api/jobs?failing={bad}")
        assert refused.status_code == 400, bad
        assert refused.json["error"]["code"] == "bad_failing"
        message = refused.json["error"]["message"]
        assert all(name in message for name in ("any", *CHECK_NAMES)), message
