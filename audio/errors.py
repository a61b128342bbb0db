"""Typed errors for audio that cannot be decoded or analysed.

Every message is written for a person ("not an audio file", "file is truncated after
1.2 s of audio"). ``permanent`` says whether retrying can help: a broken file stays
broken, a decode that ran out of time on a busy machine might not.
"""

from __future__ import annotations


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
    """Decoding took longer than its time bound."""

    permanent = False
