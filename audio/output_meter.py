"""An MP3 output measured as a player will decode it, from LAME's frames as they come.

A lossy output's loudness and peaks are not its source's (an encoder drops bands and shifts
phases), so each one is decoded and measured: for its ReplayGain tags, and for a normalised
output, to know that it landed on the target under the ceiling. Decoding the finished file
afterwards costs a pass of its own; :class:`Mp3OutputMeter` instead decodes the encoder's bytes
while the encode goes on (on the caller's thread, beside the encoder's), and gives the very
samples a decode of the finished file gives: FFmpeg's decoder delay (529) and LAME's (576)
dropped in front, the end padding dropped after the input's length — the trimming the file's
Info frame asks a player for. (Tested sample for sample against the file decoded.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import av
import numpy as np

from audio.limiter import StrictPeak
from audio.loudness import Loudness, LoudnessMeter
from audio.mp3 import ENCODER_DELAY

if TYPE_CHECKING:
    from av.audio.codeccontext import AudioCodecContext

#: Samples FFmpeg's MP3 decoder puts in front of the audio (MDCT overlap, LAME's "decoder delay").
DECODER_DELAY = 529
#: Decoded frames held back until the input's length is known: more than LAME's end padding
#: (under two MP3 frames of 1152).
_HOLD = 4096


@dataclass(frozen=True)
class OutputLoudness:
    """An output's figures as decoded: the meter's, and the limiter's strict reading of its
    true peak, dBTP (see :class:`audio.limiter.StrictPeak`; None when not asked for)."""

    loudness: Loudness
    strict_peak_dbtp: float | None = None


class Mp3OutputMeter:
    """Measure an MP3 being written from its frames: feed :meth:`add` every byte LAME
    returns, in order, then :meth:`finish` with the number of frames encoded.

    :param strict_floor_dbtp: also read the strict true peak (exact over this level).
    """

    def __init__(
        self,
        sample_rate: int,
        channels: int,
        channel_names: tuple[str, ...] = (),
        *,
        strict_floor_dbtp: float | None = None,
    ) -> None:
        self._codec = cast("AudioCodecContext", av.CodecContext.create("mp3float", "r"))
        self._meter = LoudnessMeter(sample_rate, channels, channel_names)
        self._strict = (
            None
            if strict_floor_dbtp is None
            else StrictPeak(sample_rate, channels, 10 ** (strict_floor_dbtp / 20))
        )
        self._channels = channels
        self._skip = ENCODER_DELAY + DECODER_DELAY
        self._held = np.zeros((channels, 0), dtype=np.float32)
        self._measured = 0  # frames given to the meters

    def add(self, data: bytes) -> None:
        """Decode ``data`` (the next bytes of the stream) and measure what it holds, bar
        the last few frames until the length is known."""
        decoded = self._decode(data)
        if decoded:
            self._held = np.concatenate([self._held, *decoded], axis=1)
        if self._held.shape[1] > 2 * _HOLD:
            self._measure(self._held[:, :-_HOLD])
            self._held = self._held[:, -_HOLD:]

    def finish(self, frames: int) -> OutputLoudness:
        """The figures of the first ``frames`` frames of audio (the input's length)."""
        decoded = self._decode(None)
        held = np.concatenate([self._held, *decoded], axis=1)
        self._held = held[:, :0]
        self._measure(held[:, : max(0, frames - self._measured)])
        strict = None
        if self._strict is not None:
            value = self._strict.result()
            strict = 20 * math.log10(value) if value > 0 else -math.inf
        return OutputLoudness(self._meter.result(), strict)

    def _decode(self, data: bytes | None) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        packets = self._codec.parse(data) if data is not None else self._codec.parse(b"")
        for packet in [*packets, None] if data is None else packets:
            try:
                frames = self._codec.decode(packet)
            except av.error.FFmpegError:  # never from LAME's own frames; skipped as on decode
                continue
            for frame in frames:
                samples = frame.to_ndarray().astype(np.float32, copy=False)
                if self._skip:
                    dropped = min(self._skip, samples.shape[1])
                    samples = samples[:, dropped:]
                    self._skip -= dropped
                if samples.shape[1]:
                    out.append(samples.reshape(self._channels, -1))
        return out

    def _measure(self, block: np.ndarray) -> None:
        if not block.shape[1]:
            return
        block = np.ascontiguousarray(block)
        self._meter.add(block)
        if self._strict is not None:
            self._strict.add(block)
        self._measured += block.shape[1]
