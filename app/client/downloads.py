"""Downloading a file to disk, resumable.

The bytes go to ``<name>.part`` next to the file, renamed to the file's name once all have
come, so a file under its final name is always whole. A ``.part`` left by a broken download is
resumed: the request asks for the rest (``Range: bytes=<have>-``, with ``If-Range`` and the
ETag the first answer carried, kept in ``<name>.part.etag``), and the rest is appended only if
the server answered exactly that (206 with ``Content-Range: bytes <have>-…``); any other answer
— the whole file (200), another range, a 416 — starts the file again from its first byte. A
download broken midway is resumed at once the same way, up to the client's ``max_retries``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

import urllib3

from app.client.errors import ConnectionFailed
from app.client.http import Transport, read_chunks
from app.client.models import Downloaded

logger = logging.getLogger("app.client")

#: ``(received_bytes, total_bytes)``; total is None when the server did not say.
DownloadProgress = Callable[[int, int | None], None]

_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_FILENAME = re.compile(r'filename="([^"]+)"')
_REDIRECTS = (301, 302, 303, 307, 308)


def filename_of(response: urllib3.BaseHTTPResponse) -> str | None:
    """The file name the server suggests (``Content-Disposition``), reduced to a plain name;
    None for one holding a control character (a NUL no path can hold; an escape sequence that
    would be shown to the terminal that lists the folder, or prints the path)."""
    found = _FILENAME.search(response.headers.get("Content-Disposition") or "")
    name = os.path.basename(found.group(1)) if found else ""
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        return None
    return name if name and name not in (".", "..") else None


class Download:
    """One file from ``path`` (on the server, or a URL it redirected to) to ``part``."""

    def __init__(
        self,
        transport: Transport,
        path: str,
        part: Path,
        on_progress: DownloadProgress | None = None,
    ) -> None:
        self.transport = transport
        self.path = path
        self.part = part
        self.etag_file = part.with_name(part.name + ".etag")
        self.on_progress = on_progress

    def run(self, final: Callable[[urllib3.BaseHTTPResponse], Path]) -> Downloaded:
        """Fetch (resuming, retrying) until whole, then rename to ``final(first response)``
        (which may refuse the name by raising: the part is then removed, unless it held bytes
        of an earlier try)."""
        retries = 0
        resumed_from: int | None = None
        while True:
            try:
                response, have = self._open()
                if resumed_from is None:
                    resumed_from = have
                try:
                    target = final(response)
                except BaseException:  # not to be written after all: nothing is left behind
                    response.close()
                    response.release_conn()
                    if not have:
                        self._restart()
                    raise
                size = self._receive(response, have)
            except ConnectionFailed:
                if retries >= self.transport.retry.max_retries:
                    raise
                wait = self.transport.retry.backoff(retries)
                logger.info("download of %s broke; resuming in %.1f s", self.path, wait)
                self.transport.sleep(wait)
                retries += 1
                continue
            os.replace(self.part, target)
            with contextlib.suppress(FileNotFoundError):
                self.etag_file.unlink()
            return Downloaded(str(target), size, resumed_from)

    def _open(self) -> tuple[urllib3.BaseHTTPResponse, int]:
        """The answer to read, and how many bytes of the file are already in ``part``."""
        if self.part.is_symlink() or self.etag_file.is_symlink():
            # not left by us (another user's, in a shared folder): never written through
            self._restart()
        have = self.part.stat().st_size if self.part.exists() else 0
        response = self._get(have)
        if have and response.status == 206 and self._continues(response, have):
            return response, have
        if have:  # not the rest of what we have: start again
            logger.info("%s: the server did not resume at byte %d; starting again", self.path, have)
            self._restart()
            if response.status != 200:  # a 416, or another range: ask for the whole file
                response.close()
                response.release_conn()
                response = self._get(0)
        self.part.write_bytes(b"")
        etag = response.headers.get("ETag")
        if etag:
            self.etag_file.write_text(etag)
        return response, 0

    def _get(self, have: int) -> urllib3.BaseHTTPResponse:
        headers = {"Accept": "*/*"}
        if have:
            headers["Range"] = f"bytes={have}-"
            with contextlib.suppress(FileNotFoundError):
                headers["If-Range"] = self.etag_file.read_text().strip()
        path = self.path
        for _ in range(5):
            response = self.transport.request(
                "GET", path, headers=headers, stream=True, accept=(*_REDIRECTS, 416)
            )
            location = response.headers.get("Location")
            if response.status not in _REDIRECTS or not location:
                return response
            response.close()
            response.release_conn()
            path = self.transport.url(location) if location.startswith("/") else location
        raise ConnectionFailed(f"{self.path}: too many redirects")

    def _continues(self, response: urllib3.BaseHTTPResponse, have: int) -> bool:
        """Whether the answer is the rest asked for: from ``have`` to the file's end."""
        match = _CONTENT_RANGE.match((response.headers.get("Content-Range") or "").strip())
        if match is None or int(match.group(1)) != have or int(match.group(2)) < have:
            return False
        return match.group(3) == "*" or int(match.group(2)) + 1 == int(match.group(3))

    def _restart(self) -> None:
        for stale in (self.part, self.etag_file):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()

    def _receive(self, response: urllib3.BaseHTTPResponse, have: int) -> int:
        """Append the answer's body to ``part``; the file's whole size.

        :raises ConnectionFailed: the body came short (``part`` keeps what came).
        """
        total = _total(response, have)
        received = have
        if self.on_progress:
            self.on_progress(received, total)
        with open(self.part, "ab") as out:
            for chunk in read_chunks(response):
                out.write(chunk)
                received += len(chunk)
                if self.on_progress:
                    self.on_progress(received, total)
        if total is not None and received > total:  # not the file: nothing of it is kept
            self._restart()
            raise ConnectionFailed(f"{self.path}: {received} bytes came of a {total}-byte file")
        if total is not None and received != total:
            raise ConnectionFailed(f"{self.path}: {received} of {total} bytes came")
        return received


def _total(response: urllib3.BaseHTTPResponse, have: int) -> int | None:
    match = _CONTENT_RANGE.match((response.headers.get("Content-Range") or "").strip())
    if response.status == 206 and match and match.group(3) != "*":
        return int(match.group(3))
    length = response.headers.get("Content-Length")
    return have + int(length) if length and length.isdigit() else None
