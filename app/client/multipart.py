"""A ``multipart/form-data`` body streamed from files on disk: its length is known before it
is sent (``Content-Length``: the server reads whole requests and limits their size), and it
is read in :data:`CHUNK`-byte pieces, so a file of any size costs that much memory.

A body can be sent again (:meth:`MultipartBody.chunks` reopens the files): what a retry of an
upload needs.

A file that cannot be read, or whose size changed since it was measured (still being
written, cut, removed), raises :class:`FileUnreadable` — not an :class:`OSError`, which the
transport would take for a broken connection and retry — and never sends more or fewer bytes
than the ``Content-Length`` announced (more would be read as a next request; fewer would leave
the server waiting).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.client.errors import PhantomChainError

CHUNK = 64 * 1024

#: ``(sent_bytes, total_bytes)`` of one file, called as its bytes are handed to the socket.
Progress = Callable[[int, int], None]


class FileUnreadable(PhantomChainError):
    """A file to send cannot be read, or changed while it was being sent."""


@dataclass(frozen=True)
class FilePart:
    """A ``file`` field: the file at ``path``, told of as ``filename``."""

    path: Path
    filename: str
    on_progress: Progress | None = None


def _quoted(text: str) -> str:
    """A form-data parameter value: quotes, backslashes and line ends cannot break out."""
    return text.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class MultipartBody:
    """Text fields, then ``file`` fields, as one body."""

    def __init__(self, fields: Sequence[tuple[str, str]], files: Sequence[FilePart]) -> None:
        self.boundary = uuid.uuid4().hex
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        self._fields = list(fields)
        self._files = list(files)
        self._sizes = [_size_of(part.path) for part in self._files]

    def _field_head(self, name: str) -> bytes:
        return (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"\r\n\r\n'
        ).encode()

    def _file_head(self, part: FilePart) -> bytes:
        return (  # a name not UTF-8 on disk (surrogates): "?" in their place
            f"--{self.boundary}\r\nContent-Disposition: form-data; "
            f'name="file"; filename="{_quoted(part.filename)}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode("utf-8", "replace")

    def _tail(self) -> bytes:
        return f"--{self.boundary}--\r\n".encode()

    def _field_bytes(self) -> bytes:
        return b"".join(
            self._field_head(name) + value.encode() + b"\r\n" for name, value in self._fields
        )

    @property
    def length(self) -> int:
        """The body's size in bytes: its ``Content-Length``."""
        files = sum(
            len(self._file_head(part)) + size + 2
            for part, size in zip(self._files, self._sizes, strict=True)
        )
        return len(self._field_bytes()) + files + len(self._tail())

    def chunks(self) -> Iterator[bytes]:
        """The body, from its start, in pieces (a new iterator each time: one per attempt)."""
        yield self._field_bytes()
        for part, size in zip(self._files, self._sizes, strict=True):
            yield self._file_head(part)
            if part.on_progress:
                part.on_progress(0, size)
            yield from _read_exactly(part, size)
            yield b"\r\n"
        yield self._tail()


def _size_of(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError as exc:
        raise FileUnreadable(f"{path}: {exc.strerror or exc}") from None


def _read_exactly(part: FilePart, size: int) -> Iterator[bytes]:
    """The ``size`` bytes of ``part``'s file, telling its progress.

    :raises FileUnreadable: it cannot be read, or it holds fewer or more bytes now.
    """
    sent = 0
    try:
        with open(part.path, "rb") as file:
            while sent < size and (piece := file.read(min(CHUNK, size - sent))):
                yield piece
                sent += len(piece)
                if part.on_progress:
                    part.on_progress(sent, size)
            grew = bool(file.read(1))
    except OSError as exc:
        raise FileUnreadable(f"{part.path}: {exc.strerror or exc}") from None
    if sent != size or grew:
        raise FileUnreadable(
            f"{part.path} changed while it was being sent (it held {size} bytes when the upload "
            "began): nothing was kept; send it again once it is complete"
        )
