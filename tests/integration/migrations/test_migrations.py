"""Alembic builds the whole schema from an empty database, with no drift from the models."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import create_engine, inspect, text

from app.config import normalise_database_url
from tests.support.paths import ROOT


def alembic(database_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
    )


def test_upgrade_head_builds_everything_and_check_finds_no_drift(database_url):
    upgraded = alembic(database_url, "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr
    engine = create_engine(normalise_database_url(database_url, []))
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"uploads", "jobs", "job_events", "analyses", "outputs", "alembic_version"} <= tables
    checked = alembic(database_url, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "No new upgrade operations detected" in checked.stdout + checked.stderr


def test_downgrade_to_base_and_up_again(database_url):
    assert alembic(database_url, "upgrade", "head").returncode == 0
    down = alembic(database_url, "downgrade", "base")
    assert down.returncode == 0, down.stderr
    engine = create_engine(normalise_database_url(database_url, []))
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    assert alembic(database_url, "upgrade", "head").returncode == 0


def test_a_missing_database_url_is_a_clear_message():
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    out = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    assert "DATABASE_URL is not set" in out.stderr


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_heroku_style_urls_are_accepted(database_url, scheme):
    url = database_url.replace("postgresql://", f"{scheme}://", 1)
    assert alembic(url, "upgrade", "head").returncode == 0


def test_downgrade_below_tenants_keeps_one_upload_per_idempotency_key(database_url):
    """Two tenants may use one key; below 0003 a key is unique again: the oldest keeps it."""
    assert alembic(database_url, "upgrade", "head").returncode == 0
    engine = create_engine(normalise_database_url(database_url, []))
    with engine.begin() as connection:
        for n, tenant in enumerate(("alpha", "beta")):
            connection.execute(
                text(
                    "INSERT INTO uploads (id, tenant, filename, content_type, size_bytes, sha256,"
                    " storage_key, created_at, idempotency_key) VALUES (:id, :tenant, 'a.flac',"
                    " 'audio/flac', 1, '0', 'k', now() + :n * interval '1 second', 'same')"
                ),
                {"id": str(uuid.uuid4()), "tenant": tenant, "n": n},
            )
    down = alembic(database_url, "downgrade", "0002")
    assert down.returncode == 0, down.stderr
    with engine.connect() as connection:
        keys = connection.execute(text("SELECT idempotency_key FROM uploads ORDER BY created_at"))
        assert [row[0] for row in keys] == ["same", None]
    engine.dispose()
