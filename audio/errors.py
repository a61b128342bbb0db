"""Typed errors for audio that cannot be decoded or analysed.

Every message is written for a person ("not an audio file", "file is truncated after
1.2 s of audio"). ``permanent`` says whether retrying can help: a broken file stays
broken, and so does one that needs more than the work bounds allow (too long, outputs too
big, a decode that runs out of time — the same file would run out of time again).

The bound errors carry the figures they were raised with, so a service can word its own
sentence around them (naming its settings); their messages stand on their own.
"""

from __future__ import annotations

from collections.abc import Callable


class AudioError(Exception):
    """Base of every error raised by ``audio/`` for a file it cannot handle."""

    permanent: bool = True


class NotAudioError(AudioError):
    """The file is not audio at all (text, an image, random bytes)."""


class EmptyFileError(NotAudioError):
    """The file has zero bytes."""


class TruncatedAudioError(AudioError):
    """The file ends well before the duration its header declares."""

    def __init__(self, message: str, *, decoded_s: float, declared_s: float | None = None):
        super().__init__(message)
        self.decoded_s = decoded_s
        self.declared_s = declared_s


class CorruptAudioError(AudioError):
    """The file is audio but its content is unusable (NaN/inf samples, no decodable frames)."""


class UnsupportedAudioError(AudioError):
    """Audio outside what we support: sample rate not in 8–384 kHz, not 1–8 channels."""


class DecodeTimeoutError(AudioError):
    """Decoding took longer than its time bound.

    Permanent: the bound is far beyond what a healthy file needs, so a file that reaches it
    would reach it again (and hold a worker that long each time).
    """

    def __init__(self, message: str, *, timeout_s: float, decoded_s: float):
        super().__init__(message)
        self.timeout_s = timeout_s
        self.decoded_s = decoded_s


class TooLongError(AudioError):
    """The audio is longer than the caller's limit.

    ``declared`` tells how it was found: from the length the file declares, before any
    decoding, or while decoding a file that declared less or nothing (``length_s`` is then
    where decoding stopped, just past the limit).
    """

    def __init__(self, *, limit_s: float, length_s: float, declared: bool):
        self.limit_s = limit_s
        self.length_s = length_s
        self.declared = declared
        super().__init__(
            f"the audio is longer than the {limit_words(limit_s)} limit ({self.found})"
        )

    @property
    def found(self) -> str:
        """How the length was found, for a person: ``"the file declares 5 h 10 min"``."""
        if self.declared:
            return f"the file declares {length_words(self.length_s)}"
        return f"decoding was stopped after {length_words(self.length_s)}"


class OutputTooLargeError(AudioError):
    """The encoded outputs passed the caller's size limit (counted as they were written)."""

    def __init__(self, *, limit_bytes: int, written_bytes: int, decoded_s: float):
        self.limit_bytes = limit_bytes
        self.written_bytes = written_bytes
        self.decoded_s = decoded_s
        super().__init__(
            f"the outputs would pass the {limit_bytes / 2**20:g} MB limit "
            f"({written_bytes / 2**20:.1f} MB written after {decoded_s:.1f} s of audio)"
        )


class Canceled(Exception):
    """The caller's ``should_stop`` check said stop, so the pass stopped between two blocks.

    Not an :class:`AudioError`: nothing is wrong with the file, and nothing about it should be
    reported or retried — the caller asked for the work to end (a service's job was canceled).
    """

    def __init__(self, decoded_s: float) -> None:
        super().__init__(f"stopped on request after {decoded_s:.1f} s of audio")
        self.decoded_s = decoded_s


#: A check the block loops call between blocks: true means "stop now" (:class:`Canceled`).
#: It must be cheap (called every block) and must not raise.
StopCheck = Callable[[], bool]


def limit_words(seconds: float) -> str:
    """A limit as an adjective: ``"4-hour"``, ``"90-minute"``, ``"2-second"``."""
    for unit, name in ((3600, "hour"), (60, "minute")):
        if seconds >= unit and seconds % unit == 0:
            return f"{seconds // unit:g}-{name}"
    return f"{seconds:g}-second"


def length_words(seconds: float) -> str:
    """A length for a person: ``"5 h 10 min"``, ``"12 min 5 s"``, ``"2.1 s"``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


class BadTargetError(ValueError):
    """A loudness target that cannot be used (an unknown platform, a level out of range); the
    message says what is accepted. Not an :class:`AudioError`: the request is wrong, not the
    file."""
