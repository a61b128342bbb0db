"""The sweep of stored originals no upload row refers to, on both storage backends, and its
command ``phantomchain storage sweep``. Real Postgres, NATS and storage."""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import timedelta

import pytest
from click.testing import CliRunner

from app.cli import main
from app.db import make_sessions
from app.models import Upload, new_id, utcnow
from app.storage import open_storage
from app.storage.orphans import remove_orphans
from tests.support.waiting import wait_for

HOUR = 3600


@pytest.fixture(params=["file", "nats"])
def storage(request, tmp_path):
    if request.param == "file":
        yield open_storage(f"file://{tmp_path}/store")
        return
    url = request.getfixturevalue("wheel_nats_url")
    store = open_storage(f"{url}/orphans-{uuid.uuid4().hex[:8]}")
    yield store
    store.close()


@pytest.fixture
def sessions(migrated_database_url):
    factory = make_sessions(migrated_database_url)
    yield factory
    factory.kw["bind"].dispose()


def add_upload(sessions, upload_id: str, key: str) -> None:
    with sessions.begin() as session:
        session.add(
            Upload(
                id=upload_id,
                tenant="test",
                filename="a.flac",
                content_type="audio/flac",
                size_bytes=1,
                sha256="0" * 64,
                storage_key=key,
            )
        )


def original(extension: str = "mp3") -> str:
    return f"uploads/{new_id()}/original.{extension}"


def test_only_old_originals_without_a_row_are_removed(storage, sessions):
    old, owned, recent = original("mp3"), original("flac"), original("wav")
    output = f"outputs/{new_id()}/mp3.mp3"  # not an original: never the sweep's business
    for key in (old, owned, output):
        storage.save(key, [b"audio"])
    add_upload(sessions, owned.split("/")[1], owned)
    first = max(found.modified for found in storage.list_objects())
    # The recent one is written after the others by the storage's own clock (file times
    # advance by the kernel's tick): the cutoff can then fall between them.
    assert wait_for(lambda: utcnow() > first + timedelta(milliseconds=50), timeout=5)
    storage.save(recent, [b"audio"])
    listed = {found.key: found.modified for found in storage.list_objects()}
    assert set(listed) == {old, owned, output, recent}
    assert set(found.key for found in storage.list_objects("uploads/")) == {old, owned, recent}
    assert listed[recent] > first

    # An hour after the recent one was written: the others are older than an hour, it is not.
    now = listed[recent] + timedelta(seconds=HOUR)
    assert remove_orphans(sessions, storage, HOUR, dry_run=True, now=now) == [old]
    assert storage.exists(old)
    assert remove_orphans(sessions, storage, HOUR, now=now) == [old]
    assert not storage.exists(old)
    assert all(storage.exists(key) for key in (owned, recent, output))
    assert old not in {found.key for found in storage.list_objects()}
    # At the real time nothing here is an hour old.
    assert remove_orphans(sessions, storage, HOUR) == []


def test_files_being_written_are_not_listed_and_deletes_leave_no_empty_folder(tmp_path):
    store = open_storage(f"file://{tmp_path}/store")
    key, other = original(), original()
    store.save(key, [b"audio"])
    store.save(other, [b"audio"])
    (store.root / key).with_name(".partial-x1y2").write_bytes(b"half")
    assert sorted(found.key for found in store.list_objects()) == sorted([key, other])
    store.delete(other)
    assert not (store.root / other).parent.exists()
    assert (store.root / key).exists()


def test_nothing_is_removed_when_the_database_does_not_answer(tmp_path):
    store = open_storage(f"file://{tmp_path}/store")
    key = _aged(store, original())
    result = _sweep(tmp_path, "postgresql://nobody@127.0.0.1:9/none")
    assert result.exit_code == 1
    assert "cannot reach the database" in result.output
    assert store.exists(key)


def test_the_command_lists_on_a_dry_run_and_removes_otherwise(migrated_database_url, tmp_path):
    store = open_storage(f"file://{tmp_path}/store")
    old, recent = _aged(store, original("wav")), original("mp3")
    store.save(recent, [b"audio"])

    dry = _sweep(tmp_path, migrated_database_url, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.splitlines() == [f"would remove {old}", "would remove 1 orphaned original"]
    assert store.exists(old)

    done = _sweep(tmp_path, migrated_database_url, "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == {"removed": [old], "dry_run": False}
    assert not store.exists(old) and store.exists(recent)


def _aged(store, key: str) -> str:
    """Store ``key`` and make it two hours old."""
    store.save(key, [b"audio"])
    two_hours_ago = time.time() - 2 * HOUR
    os.utime(store.root / key, (two_hours_ago, two_hours_ago))
    return key


def _sweep(tmp_path, database_url: str, *options: str):
    env = {"DATABASE_URL": database_url, "STORAGE_URL": f"file://{tmp_path}/store"}
    return CliRunner().invoke(main, ["storage", "sweep", *options], env=env)
