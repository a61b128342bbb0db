"""The output formats: what each is called, how it is written, how it is served.

Importing this module loads no codec library (no PyAV, no numpy): the web process checks a
client's ``formats`` and names downloads with it, and never encodes anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class UnknownFormat(ValueError):
    """A format name that is not a key of :data:`FORMATS`; the message lists the choices."""

    def __init__(self, unknown: Iterable[str]) -> None:
        self.unknown = list(unknown)
        super().__init__(
            f"unknown format {', '.join(self.unknown)}; choose from {', '.join(FORMATS)}"
        )


@dataclass(frozen=True)
class Format:
    """How one output format is written and served."""

    name: str
    extension: str
    mime_type: str
    container: str
    codec: str
    sample_format: str
    default_bitrate: int | None  # None: lossless
    sample_rate: int | None = None  # None: keep the input's (within ``rates``)
    channels: int | None = None  # None: keep the input's
    rates: tuple[int, ...] = ()  # rates the codec accepts; () = any


FORMATS: dict[str, Format] = {
    "mp3": Format("mp3", "mp3", "audio/mpeg", "mp3", "libmp3lame", "fltp", 192_000, 44100, 2),
    "opus": Format("opus", "opus", "audio/ogg", "ogg", "libopus", "flt", 128_000, 48000),
    "aac": Format(
        "aac",
        "m4a",
        "audio/mp4",
        "ipod",
        "aac",
        "fltp",
        192_000,
        rates=(8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000),
    ),
    "flac": Format("flac", "flac", "audio/flac", "flac", "flac", "s32", None),
    "wav": Format("wav", "wav", "audio/wav", "wav", "pcm_s16le", "s16", None),
}

#: What an upload is transcoded to when it names no formats.
DEFAULT_FORMATS: tuple[str, ...] = ("mp3",)


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """``formats`` as given, once each, in order.

    :raises UnknownFormat: one or more names are not in :data:`FORMATS`.
    """
    names = tuple(dict.fromkeys(formats))
    unknown = [name for name in names if name not in FORMATS]
    if unknown:
        raise UnknownFormat(unknown)
    return names


def parse_formats(raw: str | None, default: tuple[str, ...] = DEFAULT_FORMATS) -> tuple[str, ...]:
    """``"mp3, Opus"`` → ``("mp3", "opus")``; empty or ``None`` → ``default``.

    :raises UnknownFormat: one or more names are not in :data:`FORMATS`.
    """
    names = [part.strip().lower() for part in (raw or "").split(",") if part.strip()]
    return check_formats(names) if names else default
