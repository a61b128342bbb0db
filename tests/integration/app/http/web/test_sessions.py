"""A web page's session on the JSON API: it identifies the caller as its token did, its unsafe
calls need the CSRF token, a revoked token ends it, and the cookie never holds the token."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from app.http import auth
from tests.support.app_client import upload
from tests.support.paths import ROOT

TOKENS = {"API_TOKENS": "alpha:alpha-token", "ADMIN_TOKEN": "admin-token"}


def csrf_of(client) -> str:
    """The session's CSRF token, as every page carries it."""
    page = client.get("/signin").get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def sign_in(client, token: str, target: str = "/jobs"):
    """(the answer, the CSRF token of the session it began: sign-in makes a new one)."""
    csrf = csrf_of(client)
    answer = client.post("/signin", data={"token": token, "csrf_token": csrf, "next": target})
    return answer, csrf_of(client)


def test_a_session_acts_as_its_token_and_its_unsafe_calls_need_the_csrf_token(make_client, song):
    client = make_client(workers=False, **TOKENS)
    signed, csrf = sign_in(client, "alpha-token")
    assert signed.status_code == 302 and signed.headers["Location"] == "/jobs"
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "alpha-token" not in cookie
    assert client.get("/api/jobs").status_code == 200  # the cookie, no Authorization header
    refused = upload(client, song)  # no X-CSRF-Token: a form posted from another site
    assert refused.status_code == 403 and refused.json["error"]["code"] == "csrf"
    wrong = upload(client, song, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status_code == 403
    accepted = upload(client, song, headers={"X-CSRF-Token": csrf})
    assert accepted.status_code == 202, accepted.json
    job = client.get(f"/api/jobs/{accepted.json['job_id']}")
    assert job.status_code == 200  # alpha's own
    assert client.get("/api/dead-letters").status_code == 403  # a tenant, not an admin


def test_a_bad_token_or_a_missing_csrf_token_does_not_sign_in(make_client):
    client = make_client(workers=False, **TOKENS)
    bad, _ = sign_in(client, "nope")
    assert bad.status_code == 401 and "not valid" in bad.get_data(as_text=True)
    no_csrf = client.post("/signin", data={"token": "alpha-token"})
    assert no_csrf.status_code == 403
    assert client.get("/api/jobs").status_code == 401


def test_revoking_a_cli_token_ends_its_sessions(make_client, migrated_database_url, monkeypatch):
    monkeypatch.setattr(auth, "OPEN_CHECK_TTL_S", 0.0)
    client = make_client(workers=False, **TOKENS)
    env = {**os.environ, "DATABASE_URL": migrated_database_url, "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "app.cli", "tokens"]
    made = subprocess.run(
        [*cli, "create", "gamma"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    token = made.stdout.strip()
    signed, _ = sign_in(client, token)
    assert signed.status_code == 302
    assert client.get("/api/jobs").status_code == 200
    subprocess.run(
        [*cli, "revoke", "gamma"], env=env, cwd=ROOT, check=True, capture_output=True, timeout=60
    )
    assert client.get("/api/jobs").status_code == 401


def test_a_next_page_on_another_site_is_never_followed(make_client):
    client = make_client(workers=False, **TOKENS)
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "jobs"):
        answer, _ = sign_in(client, "alpha-token", target)
        assert answer.headers["Location"] == "/", target
    assert sign_in(client, "alpha-token", "/jobs?status=failed")[0].headers["Location"] == (
        "/jobs?status=failed"
    )


def test_unsafe_calls_from_another_sites_page_are_refused_even_when_open(make_client, song):
    """Open mode has no token to steal and no session to check: what stops another site's page
    from posting to a developer's `make run` is where the browser says the request came from."""
    client = make_client(workers=False)  # open
    for headers in (
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
    ):
        refused = upload(client, song, headers=headers)
        assert refused.status_code == 403 and refused.json["error"]["code"] == "cross_site"
    assert upload(client, song, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 202
    assert upload(client, song, headers={"Origin": "http://localhost"}).status_code == 202
    assert upload(client, song).status_code == 202  # curl says neither


def test_an_answer_to_another_sites_request_never_replaces_the_cookie(make_client):
    client = make_client(workers=False, **TOKENS)
    arrival = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    bounced = client.get("/jobs", headers=arrival)  # a link followed from elsewhere
    assert bounced.status_code == 200 and 'http-equiv="refresh"' in bounced.get_data(as_text=True)
    assert "Set-Cookie" not in bounced.headers
    assert "Set-Cookie" not in client.get("/signin", headers=arrival).headers
