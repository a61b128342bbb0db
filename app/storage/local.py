"""Objects as files in a local (or shared) directory."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from app.storage.base import (
    _KEY,
    CHUNK,
    ObjectInfo,
    StorageError,
    StorageUnavailable,
    Stored,
    StoredObject,
    _Hashing,
    check_key,
)

logger = logging.getLogger(__name__)


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
        with _disk("written"):
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
        with _disk("read"), self.local_path(key) as path:
            try:
                stream = path.open("rb")
            except FileNotFoundError as exc:  # deleted since it was looked up
                raise StorageError(f"no object {key!r}") from exc
            with stream:
                while chunk := stream.read(CHUNK):
                    yield chunk

    def stat(self, key: str) -> ObjectInfo:
        """Size, and a tag of size, modification time and inode: a save replaces the file (a
        new inode), so the tag changes with its bytes (as nginx's ``ETag`` does)."""
        path = self._path(key)
        with _disk("read"):
            try:
                found = path.stat()
            except (FileNotFoundError, NotADirectoryError) as exc:  # as local_path says
                raise StorageError(f"no object {key!r}") from exc
        if not stat.S_ISREG(found.st_mode):  # a folder of keys below it, not an object
            raise StorageError(f"no object {key!r}")
        return ObjectInfo(
            found.st_size, f"{found.st_size:x}-{found.st_mtime_ns:x}-{found.st_ino:x}"
        )

    def read_range(self, key: str, start: int, length: int) -> Iterator[bytes]:
        with _disk("read"):
            try:
                stream = self._path(key).open("rb")
            except (FileNotFoundError, NotADirectoryError) as exc:  # as local_path says
                raise StorageError(f"no object {key!r}") from exc
            with stream:
                stream.seek(start)
                while length > 0 and (chunk := stream.read(min(CHUNK, length))):
                    length -= len(chunk)
                    yield chunk

    def exists(self, key: str) -> bool:
        with _disk("read"):
            return self._path(key).is_file()

    def delete(self, key: str) -> None:
        """Remove the object, and the folders it leaves empty (``uploads/<id>/``)."""
        path = self._path(key)
        with _disk("changed"):
            path.unlink(missing_ok=True)
        for folder in path.parents:
            if folder == self.root:
                break
            try:
                folder.rmdir()
            except OSError:  # not empty (or already gone): the folders above are not either
                break

    def presigned_url(
        self, key: str, filename: str | None = None, content_type: str | None = None
    ) -> None:
        """Files on a disk have no URL of their own: the API streams them."""
        return None

    def list_objects(self, prefix: str = "") -> Iterator[StoredObject]:
        """The objects whose key starts with ``prefix``; files being written are not objects."""
        start = self.root / prefix.rpartition("/")[0]
        for folder, _, names in os.walk(start, onerror=_skip_unreadable):
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


@contextlib.contextmanager
def _disk(done: str) -> Iterator[None]:
    """A disk that fails (full, read-only, unmounted) is storage that is away."""
    try:
        yield
    except OSError as exc:
        raise StorageUnavailable(f"the storage directory could not be {done}: {exc}") from exc


def _skip_unreadable(exc: OSError) -> None:
    """A folder that is not there holds nothing; one that cannot be read is left out of the
    listing, with a word in the logs (a listing only ever leads to removing what it lists)."""
    if not isinstance(exc, FileNotFoundError):
        logger.warning("storage folder left out of the listing: %s", exc)
