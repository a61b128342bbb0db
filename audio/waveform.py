"""Waveform overview: min/max peaks per pixel column, as a PNG and as audiowaveform JSON.

:class:`WaveformBuilder` keeps peaks for small fixed buckets of samples while the audio streams
by (bounded memory whatever the length) and folds them into ``width`` columns at the end, so a
length that the header got wrong still fills the picture exactly. The JSON has BBC
audiowaveform's layout (``version 2``, 8-bit, ``data = [min0, max0, min1, max1, …]``), which
peaks.js and wavesurfer.js draw directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageDraw

DEFAULT_WIDTH = 800
DEFAULT_HEIGHT = 160
BACKGROUND = (250, 250, 252)
FOREGROUND = (52, 101, 164)
AXIS = (200, 204, 212)
#: Buckets kept per output column when the length is known (more when it is not).
_BUCKETS_PER_COLUMN = 8
_UNKNOWN_LENGTH_BUCKET = 512


@dataclass(frozen=True)
class Waveform:
    sample_rate: int
    samples_per_pixel: int
    minimum: np.ndarray  # per column, −1 … 1
    maximum: np.ndarray

    @property
    def width(self) -> int:
        return len(self.minimum)

    def to_audiowaveform_json(self) -> dict:
        """BBC audiowaveform's JSON (version 2, one channel, 8 bits)."""
        lows = np.clip(np.rint(self.minimum * 127), -128, 127).astype(int)
        highs = np.clip(np.rint(self.maximum * 127), -128, 127).astype(int)
        data = np.empty(2 * self.width, dtype=int)
        data[0::2], data[1::2] = lows, highs
        return {
            "version": 2,
            "channels": 1,
            "sample_rate": self.sample_rate,
            "samples_per_pixel": self.samples_per_pixel,
            "bits": 8,
            "length": self.width,
            "data": data.tolist(),
        }

    def render_png(
        self,
        destination: str | Path | BinaryIO,
        width: int = DEFAULT_WIDTH,
        height: int = DEFAULT_HEIGHT,
    ) -> None:
        """Draw the waveform centred on a plain background (as the Go service did)."""
        lows, highs = _fold(self.minimum, self.maximum, width)
        image = Image.new("RGB", (width, height), BACKGROUND)
        draw = ImageDraw.Draw(image)
        middle = (height - 1) / 2
        draw.line([(0, round(middle)), (width - 1, round(middle))], fill=AXIS)
        for x, (low, high) in enumerate(zip(lows, highs, strict=True)):
            if high <= low:
                continue
            top = round(middle - float(np.clip(high, -1, 1)) * middle)
            bottom = round(middle - float(np.clip(low, -1, 1)) * middle)
            draw.line([(x, top), (x, bottom)], fill=FOREGROUND)
        image.save(destination, format="PNG")


class WaveformBuilder:
    """Collects peaks from ``(channels, n)`` blocks.

    :param total_frames: the expected length in samples (``None`` if unknown).
    :param sample_rate: Hz, recorded in the JSON.
    :param width: columns of the result.
    """

    def __init__(self, total_frames: int | None, sample_rate: int, width: int = DEFAULT_WIDTH):
        self.sample_rate = sample_rate
        self.width = width
        if total_frames:
            self.bucket = max(1, total_frames // (width * _BUCKETS_PER_COLUMN))
        else:
            self.bucket = _UNKNOWN_LENGTH_BUCKET
        self._low: list[np.ndarray] = []
        self._high: list[np.ndarray] = []
        self._rest_low = np.zeros(0, dtype=np.float32)
        self._rest_high = np.zeros(0, dtype=np.float32)
        self.frames = 0

    def add(self, block: np.ndarray) -> None:
        block = np.asarray(block, dtype=np.float32)
        if block.ndim == 1:
            block = block[None, :]
        if block.shape[1] == 0:
            return
        self.frames += block.shape[1]
        # Extremes over channels per sample, then per bucket.
        low = np.concatenate([self._rest_low, block.min(axis=0)])
        high = np.concatenate([self._rest_high, block.max(axis=0)])
        full = len(low) - len(low) % self.bucket
        if full:
            self._low.append(low[:full].reshape(-1, self.bucket).min(axis=1))
            self._high.append(high[:full].reshape(-1, self.bucket).max(axis=1))
        self._rest_low, self._rest_high = low[full:], high[full:]
        if len(self._low) > 256:
            self._low, self._high = [np.concatenate(self._low)], [np.concatenate(self._high)]

    def state(self) -> dict[str, np.ndarray]:
        """The peak buckets so far (bounded by the bucket size), for :meth:`restore`."""
        lows = self._low + ([np.array([self._rest_low.min()])] if len(self._rest_low) else [])
        highs = self._high + ([np.array([self._rest_high.max()])] if len(self._rest_high) else [])
        return {
            "waveform_low": np.concatenate(lows) if lows else np.zeros(0),
            "waveform_high": np.concatenate(highs) if highs else np.zeros(0),
            "waveform_meta": np.array([self.sample_rate, self.width, self.frames]),
        }

    @classmethod
    def restore(cls, state: dict[str, np.ndarray]) -> WaveformBuilder:
        rate, width, frames = (int(v) for v in state["waveform_meta"])
        builder = cls(None, rate, width)
        low, high = state["waveform_low"], state["waveform_high"]
        builder._low, builder._high = ([low], [high]) if len(low) else ([], [])
        builder.frames = frames
        return builder

    def result(self) -> Waveform:
        lows = self._low + ([np.array([self._rest_low.min()])] if len(self._rest_low) else [])
        highs = self._high + ([np.array([self._rest_high.max()])] if len(self._rest_high) else [])
        if not lows:
            zeros = np.zeros(self.width)
            return Waveform(self.sample_rate, 1, zeros, zeros.copy())
        low, high = _fold(np.concatenate(lows), np.concatenate(highs), self.width)
        samples_per_pixel = max(1, round(self.frames / self.width))
        return Waveform(self.sample_rate, samples_per_pixel, low, high)


def _fold(low: np.ndarray, high: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Combine consecutive buckets into ``width`` columns (repeat them if there are fewer)."""
    count = len(low)
    starts = (np.arange(width) * count) // width
    ends = np.maximum(((np.arange(width) + 1) * count) // width, starts + 1)
    ends = np.minimum(ends, count)
    starts = np.minimum(starts, count - 1)
    folded_low = np.array([low[s:e].min() for s, e in zip(starts, ends, strict=True)])
    folded_high = np.array([high[s:e].max() for s, e in zip(starts, ends, strict=True)])
    return folded_low.astype(np.float64), folded_high.astype(np.float64)
