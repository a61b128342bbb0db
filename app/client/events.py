"""Server-Sent Events, read as they arrive (the WHATWG ``text/event-stream`` format).

A :class:`SseParser` is fed the bytes of a stream in whatever pieces the socket gives and hands
back each event once its blank line has come: lines end with LF, CRLF or CR; ``:`` lines are
comments (the server's keep-alive); ``data:`` lines join with a newline; an ``id:`` holding NUL
is ignored; ``retry:`` sets the reconnection delay. A line, or an event's data, longer than
:data:`MAX_EVENT_CHARS` is a stream gone wrong (or hostile): it raises, rather than take the
reader's memory.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from app.client.errors import ConnectionFailed

#: The longest line, and the most data in one event (the API's are a few kilobytes).
MAX_EVENT_CHARS = 1024 * 1024


@dataclass(frozen=True)
class SseEvent:
    """One event: its ``event`` name (``message`` by default), ``data`` and the last ``id``
    seen so far in the stream (None before any)."""

    event: str
    data: str
    id: str | None


class SseParser:
    """Bytes in, complete events out."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._event = ""
        self._data: list[str] = []
        self._data_chars = 0
        self._has_data = False
        #: The stream's last event id so far (kept across events, as the spec says).
        self.last_id: str | None = None
        #: Milliseconds the server asked a client to wait before reconnecting, if it did.
        self.retry_ms: int | None = None

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """The events that ``chunk`` completes.

        :raises ConnectionFailed: a line or an event's data longer than :data:`MAX_EVENT_CHARS`.
        """
        self._buffer += self._decoder.decode(chunk)
        events: list[SseEvent] = []
        while True:
            line, found = self._take_line()
            if not found:
                if len(self._buffer) > MAX_EVENT_CHARS:
                    raise ConnectionFailed(
                        f"the event stream sent a line longer than {MAX_EVENT_CHARS} characters"
                    )
                return events
            event = self._line(line)
            if event is not None:
                events.append(event)

    def _take_line(self) -> tuple[str, bool]:
        ends = [at for at in (self._buffer.find("\n"), self._buffer.find("\r")) if at >= 0]
        if not ends:
            return "", False
        index = min(ends)
        if self._buffer[index] == "\r":
            if index + 1 == len(self._buffer):  # a CR last: wait to see whether LF follows
                return "", False
            skip = 2 if self._buffer[index + 1] == "\n" else 1
        else:
            skip = 1
        line, self._buffer = self._buffer[:index], self._buffer[index + skip :]
        return line, True

    def _line(self, line: str) -> SseEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data_chars += len(value) + 1
            if self._data_chars > MAX_EVENT_CHARS:
                raise ConnectionFailed(
                    f"the event stream sent an event longer than {MAX_EVENT_CHARS} characters"
                )
            self._data.append(value)
            self._has_data = True
        elif name == "id":
            if "\0" not in value:
                self.last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> SseEvent | None:
        event = SseEvent(self._event or "message", "\n".join(self._data), self.last_id)
        had_data = self._has_data
        self._event, self._data, self._data_chars, self._has_data = "", [], 0, False
        return event if had_data else None
