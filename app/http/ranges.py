"""Byte ranges of stored files (RFC 9110 §14): what lets a player seek a long output at once,
and a broken download resume, without the file being sent from its start.

* One range — ``bytes=a-b``, ``bytes=a-`` or ``bytes=-n`` — is a 206 with ``Content-Range``,
  read from storage from its first byte (:meth:`app.storage.Storage.read_range`).
* A range that starts past the end (or ``bytes=-0``, or any range of an empty file) is a 416
  with ``Content-Range: bytes */<size>`` and the usual JSON error.
* Several ranges in one request are answered with the whole file (200), as RFC 9110 allows: no
  ``multipart/byteranges`` (no player asks for them, and they cost a pass per range).
* A ``Range`` that does not parse, or in another unit, is ignored (200, RFC 9110 §14.2).
* ``If-Range`` with the file's ``ETag`` keeps the range; any other value (an old tag, a date:
  files carry no ``Last-Modified``) gets the whole file, so a resumed download never splices
  two versions of a file.

Every answer says ``Accept-Ranges: bytes`` and carries the file's ``ETag``
(:class:`app.storage.ObjectInfo`); ``If-None-Match`` with it is a 304.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import Request

#: One byte range; anything else in a ``Range`` header is not (see :func:`requested`).
_ONE = re.compile(r"^bytes[ \t]*=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*$", re.IGNORECASE)


@dataclass(frozen=True)
class Span:
    """Bytes ``start`` … ``start + length - 1`` of a file of ``size`` bytes."""

    start: int
    length: int
    size: int

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.start + self.length - 1}/{self.size}"


#: Larger positions are past the end of any file (and a number of thousands of digits is one
#: Python refuses to read: a 500, were it read).
_FAR = 10**18


def _position(digits: str) -> int:
    return int(digits) if len(digits) <= 18 else _FAR


class Unsatisfiable(Exception):
    """The range asked for lies outside the file: a 416."""


def etag_header(tag: str) -> str:
    """``tag`` as an ``ETag`` value (quoted; a tag with a quote in it has it dropped)."""
    return '"' + tag.replace('"', "") + '"'


def requested(request: Request, etag: str, size: int) -> Span | None:
    """The one range to answer, or ``None`` for the whole file.

    :param etag: the file's ``ETag`` value, quoted (:func:`etag_header`).
    :raises Unsatisfiable: a single range that starts past the end of the file.
    """
    header = request.headers.get("Range")
    if header is None or request.method not in ("GET", "HEAD"):
        return None
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range.strip() != etag:  # a weak tag never matches either
        return None
    one = _ONE.match(header.strip())
    if one is None:
        return None  # malformed, another unit, or several ranges: the whole file
    first, last = one.groups()
    if not first and not last:
        return None  # "bytes=-": not a range
    if not first:  # the last n bytes
        wanted = _position(last)
        if wanted == 0 or size == 0:
            raise Unsatisfiable
        start = max(0, size - wanted)
        return Span(start, size - start, size)
    start = _position(first)
    end = size - 1 if not last else _position(last)
    if last and end < start:
        return None  # "bytes=5-2" is malformed (RFC 9110 §14.1.1): ignored
    if start >= size:
        raise Unsatisfiable
    return Span(start, min(end, size - 1) - start + 1, size)


def not_modified(request: Request, etag: str) -> bool:
    """``If-None-Match`` names the file's tag (or ``*``): a 304 will do."""
    header = request.headers.get("If-None-Match")
    if header is None:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags
