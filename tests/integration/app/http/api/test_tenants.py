"""Tenants: each sees only its own uploads and jobs, admins see all; idempotency keys per
tenant; tokens made with the CLI; per-tenant quotas. Real Postgres, NATS, storage, workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.http import auth
from tests.support.app_client import upload, wait_done
from tests.support.paths import ROOT

ALPHA = {"Authorization": "Bearer alpha-token"}
BETA = {"Authorization": "Bearer beta-token"}
ADMIN = {"Authorization": "Bearer admin-token"}
TOKENS = {"API_TOKENS": "alpha:alpha-token,beta:beta-token", "ADMIN_TOKEN": "admin-token"}


def originals(tmp_path) -> list:
    return sorted((tmp_path / "store").rglob("original.*"))


def test_another_tenants_ids_are_not_found_and_lists_hold_only_ones_own(make_client, song):
    client = make_client(**TOKENS)
    mine = upload(client, song, headers=ALPHA).json
    done = wait_done(client, mine["upload_id"], headers=ALPHA)
    assert done.status_code == 200, done.json
    result = done.json
    upload_id, job_id = mine["upload_id"], mine["job_id"]
    theirs = [
        f"/api/uploads/{upload_id}",
        f"/api/uploads/{upload_id}/analysis",
        result["outputs"]["mp3"]["url"],
        result["waveform"]["png"],
        result["waveform"]["json"],
        f"/api/jobs/{job_id}",
        f"/api/jobs/{job_id}/events",
        f"/uploads/{upload_id}",  # the Go service's aliases too
        f"/uploads/{upload_id}/analysis",
    ]
    for path in theirs:
        assert client.get(path, headers=ALPHA).status_code == 200, path
        refused = client.get(path, headers=BETA)
        assert refused.status_code == 404, path
        # the same answer as for an id that never existed: nothing is revealed
        new_upload, new_job = str(uuid.uuid4()), str(uuid.uuid4())
        unknown = path.replace(upload_id, new_upload).replace(job_id, new_job)
        never = json.dumps(client.get(unknown, headers=BETA).json)
        assert json.dumps(refused.json) == never.replace(new_upload, upload_id).replace(
            new_job, job_id
        ), path
    assert client.get("/api/jobs", headers=BETA).json["total"] == 0
    assert [j["id"] for j in client.get("/api/jobs", headers=ALPHA).json["jobs"]] == [job_id]
    assert client.get(f"/api/jobs/{job_id}", headers=ADMIN).status_code == 200
    assert client.get(result["outputs"]["mp3"]["url"], headers=ADMIN).status_code == 200
    theirs_too = upload(client, song, headers=BETA).json
    seen_by_admin = {j["id"] for j in client.get("/api/jobs", headers=ADMIN).json["jobs"]}
    assert seen_by_admin == {job_id, theirs_too["job_id"]}
    # a tenant cannot act as an admin, on its own job or another's
    retry = client.post(f"/api/jobs/{job_id}/retry", headers=ALPHA)
    assert retry.status_code == 403 and retry.json["error"]["code"] == "forbidden"
    assert client.get("/api/dead-letters", headers=BETA).status_code == 403
    assert (
        client.get(result["outputs"]["mp3"]["url"][:-3] + "%00", headers=ALPHA).status_code == 404
    )


def test_idempotency_keys_are_per_tenant_and_bound_to_their_request(make_client, song, tmp_path):
    client = make_client(workers=False, **TOKENS)
    key = {"Idempotency-Key": "order-42"}
    first = upload(client, song, headers={**ALPHA, **key})
    assert first.status_code == 202
    again = upload(client, song, headers={**ALPHA, **key})
    assert again.status_code == 202 and again.json["upload_id"] == first.json["upload_id"]
    # another tenant's same key is its own upload, never alpha's
    other = upload(client, song, headers={**BETA, **key})
    assert other.status_code == 202 and other.json["upload_id"] != first.json["upload_id"]
    assert len(originals(tmp_path)) == 2
    # the same key with another file, or other formats: 422, nothing stored
    changed = upload(client, song + b"\0", headers={**ALPHA, **key})
    assert changed.status_code == 422, changed.json
    assert changed.json["error"]["code"] == "idempotency_key_reused"
    formats = upload(client, song, headers={**ALPHA, **key}, formats="wav")
    assert formats.status_code == 422
    tempo_range = upload(client, song, headers={**ALPHA, **key}, bpm_range="120-200")
    assert tempo_range.status_code == 422
    # a key over 200 characters: 400, before anything is stored
    long = upload(client, song, headers={**ALPHA, "Idempotency-Key": "k" * 201})
    assert long.status_code == 400 and "200" in long.json["error"]["message"]
    assert len(originals(tmp_path)) == 2
    assert client.get("/api/jobs", headers=ALPHA).json["total"] == 1


def phantomchain(database_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "tokens", *args],
        env={**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow  # six CLI runs
def test_tokens_made_with_the_cli_work_until_revoked_and_close_an_open_api(
    make_client, song, migrated_database_url, monkeypatch
):
    monkeypatch.setattr(auth, "OPEN_CHECK_TTL_S", 0.0)
    client = make_client(workers=False)  # no token in the settings: open
    assert client.get("/api/jobs").status_code == 200
    made = phantomchain(migrated_database_url, "create", "gamma")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("pc_") and "shown only now" in made.stderr
    gamma = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/jobs").status_code == 401  # a token exists: the API is closed
    accepted = upload(client, song, headers=gamma)
    assert accepted.status_code == 202
    admin = phantomchain(migrated_database_url, "create", "ops", "--admin").stdout.strip()
    listed = phantomchain(migrated_database_url, "list").stdout
    assert "gamma" in listed and "ops" in listed and token not in listed and admin not in listed
    assert client.get("/api/jobs", headers={"Authorization": f"Bearer {admin}"}).json["total"] == 1
    assert phantomchain(migrated_database_url, "revoke", "gamma").returncode == 0
    assert client.get("/api/jobs", headers=gamma).status_code == 401
    assert phantomchain(migrated_database_url, "revoke", "ops").returncode == 0
    assert client.get("/api/jobs").status_code == 401  # every token revoked: still closed
    mixed = phantomchain(migrated_database_url, "create", "ops")  # ops has admin tokens
    assert mixed.returncode == 2 and "tenant name of its own" in mixed.stderr
    bad = phantomchain(migrated_database_url, "create", "no spaces")
    assert bad.returncode == 2 and "tenant name" in bad.stderr
    unknown = phantomchain(migrated_database_url, "revoke", "nobody")
    assert unknown.returncode == 1 and "no token nobody" in unknown.stderr


def test_uploads_per_hour_are_limited_per_tenant_with_retry_after(make_client, song, tmp_path):
    client = make_client(workers=False, **TOKENS, UPLOADS_PER_HOUR="2")
    assert [upload(client, song, headers=ALPHA).status_code for _ in range(2)] == [202, 202]
    over = upload(client, song, headers=ALPHA)
    assert over.status_code == 429 and over.json["error"]["code"] == "quota_exceeded"
    assert 3000 < int(over.headers["Retry-After"]) <= 3600
    assert "UPLOADS_PER_HOUR" in over.json["error"]["message"]
    assert upload(client, song, headers=BETA).status_code == 202  # another tenant's own count
    assert upload(client, song, headers=ADMIN).status_code == 202  # admins have no quota
    assert len(originals(tmp_path)) == 4
    # a retry of an accepted upload is answered as the first time, quota or not
    key = {"Idempotency-Key": "first"}
    first = upload(client, song, headers={**BETA, **key})
    assert first.status_code == 202
    assert upload(client, song, headers=BETA).status_code == 429
    again = upload(client, song, headers={**BETA, **key})
    assert again.status_code == 202 and again.json["upload_id"] == first.json["upload_id"]


def test_removing_uploads_gives_no_uploads_back_within_the_hour(make_client, tmp_path):
    client = make_client(**TOKENS, UPLOADS_PER_HOUR="1")
    broken = upload(client, b"fLaC" + b"\0" * 200, name="broken.flac", headers=ALPHA)
    assert broken.status_code == 202
    assert wait_done(client, broken.json["upload_id"], headers=ALPHA).status_code == 409
    removed = client.delete(f"/api/uploads/{broken.json['upload_id']}", headers=ALPHA)
    assert removed.status_code == 204
    assert upload(client, b"fLaC" + b"\0" * 200, headers=ALPHA).status_code == 429


def test_racing_uploads_cannot_pass_the_limit_together(make_client, song, tmp_path):
    client = make_client(workers=False, **TOKENS, UPLOADS_PER_HOUR="1")

    def send(_):
        return upload(client, song, headers=ALPHA).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = sorted(pool.map(send, range(6)))
    assert codes == [202] + [429] * 5
    assert len(originals(tmp_path)) == 1  # the refused ones' files are gone


def test_bytes_stored_are_limited_per_tenant(make_client, song, tmp_path):
    client = make_client(**TOKENS, STORAGE_QUOTA_MB="1")
    big = song + b"\0" * ((1 << 20) - len(song) + 1)  # just over 1 MB
    over = upload(client, big, headers=ALPHA)
    assert over.status_code == 429 and "STORAGE_QUOTA_MB" in over.json["error"]["message"]
    assert "Retry-After" in over.headers
    assert originals(tmp_path) == []
    first = upload(client, song, headers=ALPHA)  # well under: accepted, and its outputs count
    assert first.status_code == 202
    assert wait_done(client, first.json["upload_id"], headers=ALPHA).status_code == 200
    used = client.get(f"/api/uploads/{first.json['upload_id']}", headers=ALPHA).json["size_bytes"]
    assert used < 1 << 20
    again = upload(client, song, headers=ALPHA)  # original + outputs + this one pass 1 MB
    assert again.status_code == 429
    assert upload(client, song, headers=BETA).status_code == 202


#: (path, headers, status): ids, tokens and numbers as an attacker sends them.
HOSTILE = [
    ("/api/jobs", {"Authorization": "Bearer caf\u00e9"}, 401),  # a non-ASCII token
    ("/api/jobs", {"Authorization": "Bearer " + "x" * 5000}, 401),
    ("/api/jobs/abc%00def", ALPHA, 404),  # a NUL in an id
    (f"/api/jobs/{'a' * 300}", ALPHA, 404),
    ("/api/uploads/..%2F..%2Fetc", ALPHA, 404),
    ("/api/jobs?limit=\u00b2", ALPHA, 400),  # a superscript two is a digit to Python
    ("/api/jobs?offset=\u0661", ALPHA, 400),  # an Arabic-Indic one
]


def test_hostile_ids_tokens_and_numbers_are_4xx_with_a_message(make_client):
    client = make_client(workers=False, **TOKENS)
    for path, headers, status in HOSTILE:
        response = client.get(path, headers=headers)
        assert response.status_code == status, (path, response.get_data(as_text=True))
        assert response.json["error"]["message"], path


def test_a_tenant_named_like_an_internal_one_sees_only_its_own(make_client, song):
    tokens = {"API_TOKENS": "admin:fake-admin,open:fake-open", "ADMIN_TOKEN": "admin-token"}
    client = make_client(workers=False, **tokens)
    assert upload(client, song, headers=ADMIN).status_code == 202
    for token in ("fake-admin", "fake-open"):
        listed = client.get("/api/jobs", headers={"Authorization": f"Bearer {token}"})
        assert listed.status_code == 200 and listed.json["total"] == 0


def test_admin_bodies_and_ids_out_of_range_are_4xx(make_client):
    client = make_client(workers=False, **TOKENS)
    nobody = f"/api/jobs/{uuid.uuid4()}"
    for body in (
        ["failed"],
        {"status": "failed", "error": {"a": 1}},
        {"status": "failed", "error": "a\u0000b"},
    ):
        response = client.patch(nobody, json=body, headers=ADMIN)
        assert response.status_code == 400 and response.json["error"]["code"] == "bad_body"
    huge = "/api/dead-letters/99999999999999999999999"
    assert client.get(huge, headers=ADMIN).status_code == 404
    assert client.post(f"{huge}/retry", headers=ADMIN).status_code == 404


def test_every_answer_says_nosniff_and_json_and_downloads_allow_nothing(make_client, song):
    client = make_client(**TOKENS)
    accepted = upload(client, song, headers=ALPHA).json
    result = wait_done(client, accepted["upload_id"], headers=ALPHA).json
    for path, headers in [
        ("/healthz", {}),
        ("/api/jobs", {}),  # a 401
        (f"/api/jobs/{accepted['job_id']}", ALPHA),
        (result["outputs"]["mp3"]["url"], ALPHA),
        (result["waveform"]["png"], ALPHA),
        ("/no/such/route", {}),
    ]:
        response = client.get(path, headers=headers)
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "sandbox" in policy, path


def test_readyz_probes_once_per_period_however_often_it_is_called(make_client, monkeypatch):
    from app.http.api import health

    client = make_client(workers=False)
    probes = []
    real = health.nats_checks
    monkeypatch.setattr(health, "nats_checks", lambda b: probes.append(1) or real(b))
    monkeypatch.setattr(health, "READY_CACHE_S", 3600.0)  # one period for the whole test
    answers = [client.get("/readyz").status_code for _ in range(20)]
    assert answers == [200] * 20 and len(probes) == 1


def test_a_tenant_removes_its_ended_upload_and_its_files_and_frees_its_quota(
    make_client, song, tmp_path
):
    client = make_client(**TOKENS, STORAGE_QUOTA_MB="1")
    first = upload(client, song, headers=ALPHA).json
    upload_id = first["upload_id"]
    # another tenant's upload in flight is not found, and its job not canceled either (one's
    # own in flight is canceled first: tests/integration/app/http/api/test_batches.py)
    assert client.delete(f"/api/uploads/{upload_id}", headers=BETA).status_code == 404
    assert wait_done(client, upload_id, headers=ALPHA).status_code == 200
    assert upload(client, song, headers=ALPHA).status_code == 429  # the quota is full
    assert client.delete(f"/api/uploads/{upload_id}", headers=BETA).status_code == 404
    files = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert any(upload_id in str(p) for p in files)
    assert client.delete(f"/api/uploads/{upload_id}", headers=ALPHA).status_code == 204
    left = [p for p in (tmp_path / "store").rglob("*") if p.is_file() and upload_id in str(p)]
    assert left == []  # original, outputs and waveforms
    assert client.get(f"/api/uploads/{upload_id}", headers=ALPHA).status_code == 404
    assert client.get(f"/api/jobs/{first['job_id']}", headers=ALPHA).status_code == 404
    assert upload(client, song, headers=ALPHA).status_code == 202  # room again
