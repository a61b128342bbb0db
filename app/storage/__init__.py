"""File storage behind one interface, chosen by ``STORAGE_URL``.

* ``file:///srv/phantomchain`` — a local (or shared) directory;
* ``nats://host:4222/bucket`` — a NATS JetStream Object Store bucket, so web and worker
  processes on different machines share files with no server beyond NATS; several servers
  as ``nats://h1:4222,h2:4222/bucket``, or ``nats:///bucket`` for ``NATS_URL``'s servers;
* ``s3://bucket/prefix?endpoint_url=…`` — an S3 (or S3-compatible) bucket:
  :mod:`app.storage.s3`.

Writes stream: :meth:`Storage.save` takes an iterable of chunks and computes the SHA-256 on the
way, so an upload is never held in memory whole. Readers get a local file path for the time
they need it (the audio code reads paths), or a stream of chunks to send over HTTP — the whole
object, or a byte range of it (:meth:`Storage.read_range`, for seeking players).
:meth:`Storage.list_objects` says what is stored and when it was written, for the sweep of
originals no upload row refers to (:mod:`app.storage.orphans`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from app.storage.base import (
    CALL_TIMEOUT_S,
    CHUNK,
    LIST_TIMEOUT_S,
    MIN_TRANSFER_RATE,
    ObjectInfo,
    Storage,
    StorageError,
    StorageUnavailable,
    Stored,
    StoredObject,
    check_key,
    sha256_of,
    transfer_timeout,
)
from app.storage.local import LocalStorage
from app.storage.nats_bucket import NatsObjectStorage

if TYPE_CHECKING:
    from app.config import Config
    from broker.sign_in import NatsSignIn

__all__ = [
    "CALL_TIMEOUT_S",
    "CHUNK",
    "LIST_TIMEOUT_S",
    "MIN_TRANSFER_RATE",
    "LocalStorage",
    "NatsObjectStorage",
    "ObjectInfo",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "Stored",
    "StoredObject",
    "check_key",
    "open_storage",
    "sha256_of",
    "storage_of",
    "transfer_timeout",
]


def storage_of(config: Config) -> Storage:
    """The storage of these settings (``STORAGE_URL``); a NATS bucket signs in as the broker
    does (``NATS_CREDS``, ``NATS_NKEY_SEED``, ``NATS_TLS_*``)."""
    nats = urlparse(config.storage_url).scheme == "nats"
    return open_storage(
        config.storage_url,
        config.nats_replicas,
        nats_servers=config.nats_servers,
        sign_in=config.nats_sign_in.for_broker() if nats else None,
    )


def open_storage(
    storage_url: str,
    replicas: int = 1,
    *,
    nats_servers: list[str] | None = None,
    sign_in: NatsSignIn | None = None,
) -> Storage:
    """The storage ``STORAGE_URL`` names; a NATS bucket kept on ``replicas`` servers.

    A NATS bucket is reached at the URL's servers (``nats://h1:4222,h2:4222/bucket``), or at
    ``nats_servers`` (``NATS_URL``'s) when it names none (``nats:///bucket``), signing in with
    ``sign_in`` (the broker's: one NATS, one identity).

    :raises StorageError: an unknown scheme, or an ``s3://`` URL's bad query.
    """
    parsed = urlparse(storage_url)
    if parsed.scheme == "file":
        root = Path(parsed.netloc + parsed.path) if parsed.netloc else Path(parsed.path)
        return LocalStorage(root)
    if parsed.scheme == "nats":
        bucket = parsed.path.strip("/") or "phantomchain"
        servers = [f"nats://{part}" for part in parsed.netloc.split(",") if part]
        if not servers:
            if not nats_servers:
                raise StorageError("STORAGE_URL nats:///bucket names no server, nor does NATS_URL")
            servers = nats_servers
        return NatsObjectStorage(servers, bucket, replicas, sign_in=sign_in)
    if parsed.scheme == "s3":
        from app.storage.s3 import S3Storage  # boto3: only for this backend

        return S3Storage.from_url(storage_url)
    raise StorageError(f"unsupported STORAGE_URL {parsed.scheme}://… (file://, nats:// or s3://)")
