"""What ``phantomchain send`` shows a person while it works, on stderr: a bar per file as it is
sent, then the stages its job goes through. On a terminal each file has one line, redrawn in
place; anywhere else (a log, a CI job) a plain line per step, and no bar redrawn a hundred times.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from app.client import JobEvent

#: Characters of a bar.
BAR = 24


def printable(text: str) -> str:
    """``text`` with its control characters as ``?``: what a server says (an event, an error,
    a job's fields) is shown on the sender's terminal, where an escape sequence would act."""
    return "".join("?" if ord(c) < 32 or 127 <= ord(c) < 160 else c for c in text)


def bar(done: int, total: int) -> str:
    """``[######------------------]  25%``."""
    fraction = 1.0 if total <= 0 else min(1.0, max(0.0, done / total))
    filled = round(fraction * BAR)
    return f"[{'#' * filled}{'-' * (BAR - filled)}] {fraction:4.0%}"


def size(count: int) -> str:
    """Bytes for a person: ``812 B``, ``3.4 MB``."""
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class Renderer:
    """Lines about each file, on ``stream``; redrawn in place when ``tty``."""

    def __init__(self, stream: TextIO, tty: bool) -> None:
        self.stream = stream
        self.tty = tty
        self._open = False  # a line is being redrawn (no newline after it yet)
        self._told: dict[str, str] = {}  # the last plain line per file, not to repeat it

    def _show(self, name: str, text: str, final: bool = False) -> None:
        line = printable(f"{name}: {text}")
        if self.tty:
            self.stream.write(f"\r\x1b[2K{line}" + ("\n" if final else ""))
            self._open = not final
        elif self._told.get(name) != text:
            self.stream.write(line + "\n")
        self._told[name] = text
        self.stream.flush()

    def sending(
        self, name: str, sent: int, total: int, verbs: tuple[str, str] = ("sending", "sent")
    ) -> None:
        """Bytes of ``name`` sent so far: a bar on a terminal; elsewhere a line to start with
        and one at the end (``verbs``: while, and once done)."""
        if self.tty:
            self._show(name, f"{verbs[0]} {bar(sent, total)} {size(sent)} of {size(total)}")
        elif sent >= total:
            self._show(name, f"{verbs[1]} {size(total)}")
        elif sent == 0:
            self._show(name, f"{verbs[0]} {size(total)}")

    def step(self, name: str, text: str, progress: int | None = None) -> None:
        """A stage of ``name``'s job (its log's latest line); on a terminal after a bar of the
        job's ``progress`` percent, when known."""
        if self.tty and progress is not None:
            text = f"{bar(progress, 100)} {text}"
        self._show(name, text)

    def end(self, name: str, text: str) -> None:
        """The last line about ``name``."""
        self._show(name, text, final=True)

    def sender(self, name: str) -> Callable[[int, int], None]:
        """A client's upload progress callback for ``name``."""
        return lambda sent, total: self.sending(name, sent, total)

    def receiving(self, name: str) -> Callable[[int, int | None], None]:
        """A client's download progress callback for ``name``."""
        return lambda got, total: self.sending(
            name, got, total or got, ("downloading", "downloaded")
        )

    def stepper(self, name: str) -> Callable[[JobEvent], None]:
        """A client's job event callback for ``name``."""
        return lambda event: self.step(name, event_text(event.stage, event.message), event.progress)

    def close(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


def event_text(stage: str | None, message: str) -> str:
    """``loudness: will retry: …`` — the stage named unless the message starts with it."""
    return f"{stage}: {message}" if stage and not message.startswith(stage) else message
