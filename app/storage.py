"""File storage behind one interface, chosen by ``STORAGE_URL``.

* ``file:///srv/phantomchain`` — a local (or shared) directory;
* ``nats://host:4222/bucket`` — a NATS JetStream Object Store bucket, so web and worker
  processes on different machines share files with no server beyond NATS.

Writes stream: :meth:`Storage.save` takes an iterable of chunks and computes the SHA-256 on the
way, so an upload is never held in memory whole. Readers get a local file path for the time
they need it (the audio code reads paths), or a stream of chunks to send over HTTP.
:meth:`Storage.list_objects` says what is stored and when it was written, for the sweep of
originals no upload row refers to (:mod:`app.orphans`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

CHUNK = 1 << 20
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


#: Seconds a NATS bucket call that moves no file may take (connecting included).
CALL_TIMEOUT_S = 10.0
#: Seconds listing a bucket may take (the orphan sweep, not a request).
LIST_TIMEOUT_S = 120.0
#: The slowest transfer a bucket call may make before it counts as stuck: bytes per second.
MIN_TRANSFER_RATE = 10 << 20


def transfer_timeout(size_bytes: int) -> float:
    """Seconds to move ``size_bytes`` through a bucket: :data:`CALL_TIMEOUT_S`, plus the time
    at :data:`MIN_TRANSFER_RATE` (a 500 MB upload: about a minute)."""
    return CALL_TIMEOUT_S + size_bytes / MIN_TRANSFER_RATE


class StorageError(Exception):
    """The key is invalid or the object does not exist."""


@dataclass(frozen=True)
class Stored:
    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class StoredObject:
    """An object in storage and when it was last written (UTC)."""

    key: str
    modified: datetime


def check_key(key: str) -> str:
    """Keys are relative paths of safe names (``uploads/<id>/original.mp3``): no ``..``."""
    if not _KEY.match(key) or len(key) > 512:
        raise StorageError(f"invalid storage key {key!r}")
    return key


class Storage(Protocol):
    def save(self, key: str, chunks: Iterable[bytes]) -> Stored: ...
    def local_path(self, key: str) -> contextlib.AbstractContextManager[Path]: ...
    def read_chunks(self, key: str) -> Iterator[bytes]: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def list_objects(self, prefix: str = "") -> Iterator[StoredObject]: ...


class _Hashing:
    """Counts and hashes the chunks passing through."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self._sha = hashlib.sha256()
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            if chunk:
                self._sha.update(chunk)
                self.size += len(chunk)
                yield chunk

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


def sha256_of(chunks: Iterable[bytes]) -> str:
    """The SHA-256 of ``chunks``, read through without keeping them (as a save hashes them)."""
    hashing = _Hashing(chunks)
    for _ in hashing:
        pass
    return hashing.sha256


class LocalStorage:
    """Objects as files below ``root``; each written to a temporary name, then renamed."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def save(self, key: str, chunks: Iterable[bytes]) -> Stored:
        target = self._path(key)
        hashing = _Hashing(chunks)
        fd, temporary = self._temporary(target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in hashing:
                    out.write(chunk)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return Stored(key, hashing.size, hashing.sha256)

    @staticmethod
    def _temporary(folder: Path) -> tuple[int, str]:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            return tempfile.mkstemp(dir=folder, prefix=".partial-")
        except FileNotFoundError:  # a delete of the folder's last object removed it meanwhile
            folder.mkdir(parents=True, exist_ok=True)
            return tempfile.mkstemp(dir=folder, prefix=".partial-")

    @contextlib.contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        if not path.is_file():
            raise StorageError(f"no object {key!r}")
        yield path

    def read_chunks(self, key: str) -> Iterator[bytes]:
        with self.local_path(key) as path, path.open("rb") as stream:
            while chunk := stream.read(CHUNK):
                yield chunk

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        """Remove the object, and the folders it leaves empty (``uploads/<id>/``)."""
        path = self._path(key)
        path.unlink(missing_ok=True)
        for folder in path.parents:
            if folder == self.root:
                break
            try:
                folder.rmdir()
            except OSError:  # not empty (or already gone): the folders above are not either
                break

    def list_objects(self, prefix: str = "") -> Iterator[StoredObject]:
        """The objects whose key starts with ``prefix``; files being written are not objects."""
        start = self.root / prefix.rpartition("/")[0]
        for folder, _, names in os.walk(start):
            for name in names:
                path = Path(folder) / name
                key = path.relative_to(self.root).as_posix()
                if not key.startswith(prefix) or not _KEY.match(key):
                    continue  # ``.partial-…``: a save in progress (or one a crash cut short)
                try:
                    modified = path.stat().st_mtime
                except FileNotFoundError:  # deleted meanwhile
                    continue
                yield StoredObject(key, datetime.fromtimestamp(modified, UTC))


class NatsObjectStorage:
    """Objects in a JetStream Object Store bucket (created on first use).

    :param servers: NATS URLs.
    :param bucket: the bucket's name.
    :param replicas: servers of a JetStream cluster keeping a copy of the bucket when it is
        created (``NATS_REPLICAS``).
    """

    def __init__(self, servers: list[str], bucket: str, replicas: int = 1) -> None:
        from broker.connection import LoopConnection  # nats-py: only for this backend

        self.bucket = bucket
        self.replicas = replicas
        self._conn = LoopConnection(servers, name=f"phantomchain-storage-{bucket}")
        self._store = None

    async def _bucket(self):
        if self._store is None:
            from nats.js.errors import BucketNotFoundError

            js = await self._conn.jetstream()
            try:
                self._store = await js.object_store(self.bucket)
            except BucketNotFoundError:
                self._store = await js.create_object_store(self.bucket, replicas=self.replicas)
        return self._store

    def _run(self, make_coroutine, timeout: float | None = None):
        """Run a bucket call, bounded: a NATS that accepts and never answers (frozen, no
        JetStream leader) is a ``TimeoutError`` here — a 503 for a request waiting on it —
        not a thread held for minutes."""
        return self._conn.run(make_coroutine, timeout=timeout or CALL_TIMEOUT_S)

    def save(self, key: str, chunks: Iterable[bytes]) -> Stored:
        check_key(key)
        hashing = _Hashing(chunks)
        # Spooled: kept in memory up to 8 MB, then on disk — the object store reads a stream.
        with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
            for chunk in hashing:
                spool.write(chunk)
            spool.seek(0)

            async def put() -> None:
                store = await self._bucket()
                await store.put(key, spool)  # type: ignore[arg-type]

            self._run(put, transfer_timeout(hashing.size))
        return Stored(key, hashing.size, hashing.sha256)

    @contextlib.contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        check_key(key)
        suffix = Path(key).suffix
        with tempfile.TemporaryDirectory(prefix="phantomchain-") as folder:
            path = Path(folder) / f"object{suffix}"
            with path.open("wb") as out:
                self._get_into(key, out)
            yield path

    def _get_into(self, key: str, out) -> None:
        from nats.js.errors import ObjectNotFoundError

        async def size() -> int:
            store = await self._bucket()
            try:
                return (await store.get_info(key)).size or 0
            except ObjectNotFoundError as exc:
                raise StorageError(f"no object {key!r}") from exc

        async def get() -> None:
            store = await self._bucket()
            try:
                await store.get(key, writeinto=out)
            except ObjectNotFoundError as exc:
                raise StorageError(f"no object {key!r}") from exc

        self._run(get, transfer_timeout(self._run(size)))

    def read_chunks(self, key: str) -> Iterator[bytes]:
        with self.local_path(key) as path, path.open("rb") as stream:
            while chunk := stream.read(CHUNK):
                yield chunk

    def exists(self, key: str) -> bool:
        from nats.js.errors import ObjectNotFoundError

        check_key(key)

        async def info() -> bool:
            store = await self._bucket()
            try:
                found = await store.get_info(key)
            except ObjectNotFoundError:
                return False
            return not getattr(found, "deleted", False)

        return self._run(info)

    def delete(self, key: str) -> None:
        from nats.js.errors import ObjectNotFoundError

        check_key(key)

        async def delete() -> None:
            store = await self._bucket()
            with contextlib.suppress(ObjectNotFoundError):
                await store.delete(key)

        self._run(delete)

    def list_objects(self, prefix: str = "") -> Iterator[StoredObject]:
        """The objects whose key starts with ``prefix``, with the time their writer recorded.

        An object whose time cannot be read (written by another client) is left out rather
        than guessed old: this listing decides what the orphan sweep deletes.
        """
        from nats.js.errors import NotFoundError

        async def names() -> list:
            store = await self._bucket()
            try:
                return await store.list(ignore_deletes=True)
            except NotFoundError:  # nats-py's word for an empty bucket
                return []

        found = []
        for info in self._run(names, timeout=LIST_TIMEOUT_S):
            modified = _parse_time(info.mtime)
            if info.name.startswith(prefix) and modified is not None and not info.deleted:
                found.append(StoredObject(info.name, modified))
        return iter(found)

    def close(self) -> None:
        self._conn.close()


def _parse_time(text: str | None) -> datetime | None:
    """An object's ``mtime`` as nats-py and the Go client write it (ISO 8601), if it is one."""
    try:
        parsed = datetime.fromisoformat(text or "")
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None and parsed.year > 1 else None


def open_storage(storage_url: str, replicas: int = 1) -> LocalStorage | NatsObjectStorage:
    """The storage ``STORAGE_URL`` names; a NATS bucket kept on ``replicas`` servers."""
    parsed = urlparse(storage_url)
    if parsed.scheme == "file":
        root = Path(parsed.netloc + parsed.path) if parsed.netloc else Path(parsed.path)
        return LocalStorage(root)
    if parsed.scheme == "nats":
        bucket = parsed.path.strip("/") or "phantomchain"
        server = parsed._replace(path="", query="", fragment="").geturl()
        return NatsObjectStorage([server], bucket, replicas)
    raise StorageError(f"unsupported STORAGE_URL {storage_url!r} (file:// or nats://)")
