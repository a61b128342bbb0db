"""Objects in a NATS JetStream Object Store bucket: web and worker processes on different
machines share files with no server beyond NATS (for small files and one machine's worth: see
docs/deploy.md, "Scaling past one machine")."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from app.storage.base import (
    CALL_TIMEOUT_S,
    CHUNK,
    LIST_TIMEOUT_S,
    ObjectInfo,
    StorageError,
    StorageUnavailable,
    Stored,
    StoredObject,
    _Hashing,
    check_key,
    transfer_timeout,
)

if TYPE_CHECKING:
    from nats.js.client import JetStreamContext
    from nats.js.object_store import ObjectStore

    from broker.sign_in import NatsSignIn

#: Chunks a ranged read asks the bucket for at once (nats-py writes 128 KB chunks: 512 KB).
RANGE_BATCH = 4
#: Chunk headers a ranged read looks through at once to find where its range starts.
HEADER_BATCH = 256


class NatsObjectStorage:
    """Objects in a JetStream Object Store bucket (created on first use).

    :param servers: NATS URLs.
    :param bucket: the bucket's name.
    :param replicas: servers of a JetStream cluster keeping a copy of the bucket when it is
        created (``NATS_REPLICAS``).
    :param sign_in: credentials and TLS files beyond what the URLs hold (the broker's).
    """

    def __init__(
        self,
        servers: list[str],
        bucket: str,
        replicas: int = 1,
        *,
        sign_in: NatsSignIn | None = None,
    ) -> None:
        from broker.connection import LoopConnection  # nats-py: only for this backend

        self.bucket = bucket
        self.replicas = replicas
        self._conn = LoopConnection(servers, name=f"phantomchain-storage-{bucket}", sign_in=sign_in)
        self._store: ObjectStore | None = None

    async def _bucket(self) -> ObjectStore:
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
        JetStream leader) is :class:`StorageUnavailable` here — a 503 for a request waiting on it —
        not a thread held for minutes."""
        from dramatiq.errors import BrokerConnectionError

        from broker.connection import TRANSIENT_ERRORS

        away: tuple[type[BaseException], ...] = (BrokerConnectionError, *TRANSIENT_ERRORS)
        try:
            return self._conn.run(make_coroutine, timeout=timeout or CALL_TIMEOUT_S)
        except away as exc:
            raise StorageUnavailable(f"NATS bucket {self.bucket!r}: {exc!r}") from exc

    def presigned_url(
        self, key: str, filename: str | None = None, content_type: str | None = None
    ) -> None:
        """A bucket has no URLs of its own: the API streams its objects."""
        return None

    def save(self, key: str, chunks: Iterable[bytes]) -> Stored:
        check_key(key)
        hashing = _Hashing(chunks)
        # Spooled: kept in memory up to 8 MB, then on disk — the object store reads a stream.
        with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
            try:
                for chunk in hashing:
                    spool.write(chunk)
                spool.seek(0)
            except OSError as exc:  # the temporary directory is full
                raise StorageUnavailable(f"could not spool {key!r} for the bucket: {exc}") from exc

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
            try:
                with path.open("wb") as out:
                    self._get_into(key, out)
            except StorageUnavailable:
                raise
            except OSError as exc:  # the temporary directory is full
                raise StorageUnavailable(f"could not fetch {key!r} from the bucket: {exc}") from exc
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

    def stat(self, key: str) -> ObjectInfo:
        """Size, and the object's SHA-256 digest as its tag."""
        found = self._run(lambda: self._info(key))
        return ObjectInfo(found.size or 0, found.digest or found.nuid)

    async def _info(self, key: str):
        from nats.js.errors import ObjectNotFoundError

        check_key(key)
        store = await self._bucket()
        try:
            found = await store.get_info(key)
        except ObjectNotFoundError as exc:
            raise StorageError(f"no object {key!r}") from exc
        if not found.nuid or found.is_link():
            raise StorageError(f"{key!r} is not an object of ours (a link, or without chunks)")
        return found

    def read_range(self, key: str, start: int, length: int) -> Iterator[bytes]:
        """The object's chunks from the one holding ``start``, through a consumer of their
        own that starts there: the chunks before it are skipped unread (a first consumer
        reads only their headers, to learn their sizes and where that chunk is in the
        stream). :data:`RANGE_BATCH` chunks are in memory at most."""
        if length <= 0:
            return
        found = self._run(lambda: self._info(key))
        stream, subject = f"OBJ_{self.bucket}", f"$O.{self.bucket}.C.{found.nuid}"
        sequence, skip = self._run(lambda: self._chunk_at(stream, subject, start), LIST_TIMEOUT_S)
        sub = self._run(lambda: self._consumer(stream, subject, sequence))
        try:
            while length > 0:
                batch = self._run(lambda: sub.fetch(RANGE_BATCH, timeout=CALL_TIMEOUT_S))
                for message in batch:
                    data = message.data[skip : skip + length] if skip else message.data[:length]
                    skip = 0
                    length -= len(data)
                    yield data
                    if length <= 0:
                        break
        finally:
            with contextlib.suppress(StorageUnavailable):  # left to its inactive_threshold
                self._run(lambda: self._drop(sub, stream))

    async def _consumer(
        self, stream: str, subject: str, sequence: int | None, headers_only: bool = False
    ) -> JetStreamContext.PullSubscription:
        """A pull consumer of ``subject``'s chunks, from stream ``sequence`` (``None``: the
        first), acknowledging nothing, gone by itself if this process dies before dropping it."""
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        js = await self._conn.jetstream()
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE if sequence else DeliverPolicy.ALL,
            opt_start_seq=sequence,
            ack_policy=AckPolicy.NONE,
            headers_only=headers_only or None,
            inactive_threshold=60.0,
            mem_storage=True,
            num_replicas=1,
        )
        return await js.pull_subscribe(subject, stream=stream, config=config)

    async def _drop(self, sub: JetStreamContext.PullSubscription, stream: str) -> None:
        js = await self._conn.jetstream()
        with contextlib.suppress(Exception):  # gone already, or left to its inactive_threshold
            await sub.unsubscribe()
            await js.delete_consumer(stream, sub._consumer)

    async def _chunk_at(self, stream: str, subject: str, start: int) -> tuple[int | None, int]:
        """The stream sequence of the chunk holding byte ``start``, and ``start``'s offset in
        it; read from the chunks' headers only (``Nats-Msg-Size``), never their bytes."""
        if start == 0:
            return None, 0
        sub = await self._consumer(stream, subject, None, headers_only=True)
        try:
            offset = 0
            while True:
                for message in await sub.fetch(HEADER_BATCH, timeout=CALL_TIMEOUT_S):
                    size = int((message.headers or {}).get("Nats-Msg-Size", "0"))
                    if offset + size > start:
                        return message.metadata.sequence.stream, start - offset
                    offset += size
        finally:
            await self._drop(sub, stream)

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
