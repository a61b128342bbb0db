"""What every storage shares: the :class:`Storage` protocol, its errors and records, keys, and
the hashing of chunks on their way in."""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

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


class StorageUnavailable(ConnectionError):
    """The storage could not be reached or did not answer: an S3 endpoint or a NATS bucket
    away, a disk that fails. Every backend raises this one error for it, and
    :mod:`app.outages` counts it as a server away (a 503 for a request)."""


@dataclass(frozen=True)
class Stored:
    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ObjectInfo:
    """What a download needs before it reads an object: its size, and a tag that changes
    whenever its bytes may have (a strong validator: an HTTP ``ETag``, ``If-Range``)."""

    size: int
    etag: str


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
    def stat(self, key: str) -> ObjectInfo:
        """The object's size and tag; :class:`StorageError` when there is no such object."""
        ...

    def read_range(self, key: str, start: int, length: int) -> Iterator[bytes]:
        """``length`` bytes from offset ``start`` (within the object: see :meth:`stat`), in
        chunks of at most :data:`CHUNK`, without reading what comes before ``start`` (nor
        holding the range in memory). Asked for at the first ``next()``, which raises
        :class:`StorageError` for a missing object, as :meth:`read_chunks` does."""
        ...

    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def list_objects(self, prefix: str = "") -> Iterator[StoredObject]: ...
    def presigned_url(
        self, key: str, filename: str | None = None, content_type: str | None = None
    ) -> str | None:
        """A short-lived URL that downloads ``key`` straight from the storage, or ``None``
        when this storage has no such URLs (the API then streams the file itself)."""
        ...


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
