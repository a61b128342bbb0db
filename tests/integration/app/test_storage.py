"""Both storage backends pass the same tests: streaming saves, hashes, paths, deletes, keys."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from app.storage import LocalStorage, NatsObjectStorage, StorageError, open_storage


@pytest.fixture(params=["file", "nats"])
def storage(request, tmp_path, wheel_nats_url):
    if request.param == "file":
        yield open_storage(f"file://{tmp_path}/store")
    else:
        store = open_storage(f"{wheel_nats_url}/test-{uuid.uuid4().hex[:8]}")
        yield store
        store.close()


def chunks(total: int, size: int = 100_000):
    data = os.urandom(total)
    return data, (data[i : i + size] for i in range(0, total, size))


def test_save_streams_and_hashes(storage):
    data, parts = chunks(2_500_000)
    stored = storage.save("uploads/a1/original.mp3", parts)
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert storage.exists("uploads/a1/original.mp3")
    with storage.local_path("uploads/a1/original.mp3") as path:
        assert path.read_bytes() == data
        assert path.suffix == ".mp3"
    assert b"".join(storage.read_chunks("uploads/a1/original.mp3")) == data


def test_overwrite_and_delete(storage):
    storage.save("outputs/x.opus", [b"first"])
    storage.save("outputs/x.opus", [b"second", b" version"])
    assert b"".join(storage.read_chunks("outputs/x.opus")) == b"second version"
    storage.delete("outputs/x.opus")
    assert not storage.exists("outputs/x.opus")
    storage.delete("outputs/x.opus")  # deleting twice is fine
    with pytest.raises(StorageError), storage.local_path("outputs/x.opus"):
        pass


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs/path", "a/../../b", "", "a//b", ".hidden"])
def test_keys_cannot_escape(storage, key):
    with pytest.raises(StorageError, match="invalid storage key"):
        storage.save(key, [b"x"])


def test_a_failed_save_leaves_nothing(storage):
    def broken():
        yield b"start"
        raise OSError("client went away")

    with pytest.raises(OSError):
        storage.save("uploads/broken.wav", broken())
    assert not storage.exists("uploads/broken.wav")


def test_open_storage_picks_the_backend(tmp_path, wheel_nats_url):
    assert isinstance(open_storage(f"file://{tmp_path}"), LocalStorage)
    nats_store = open_storage(f"{wheel_nats_url}/bucket")
    assert isinstance(nats_store, NatsObjectStorage) and nats_store.bucket == "bucket"
    nats_store.close()
    with pytest.raises(StorageError):
        open_storage("s3://bucket")
