"""Cutting a stream of samples into overlapping frames, and their spectra, block by block."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from audio.resample import StreamResampler


class FrameStream:
    """Frames of ``size`` samples every ``hop`` samples, from blocks of any length.

    Only the unfinished tail (< ``size`` samples) is kept between blocks.
    """

    def __init__(self, size: int, hop: int) -> None:
        self.size = size
        self.hop = hop
        self._tail = np.zeros(0, dtype=np.float32)

    def add(self, block: np.ndarray) -> np.ndarray:
        """The complete frames that ``block`` finishes: ``(frames, size)`` (a view)."""
        buffer = np.concatenate([self._tail, np.asarray(block, dtype=np.float32)])
        if len(buffer) < self.size:
            self._tail = buffer
            return np.zeros((0, self.size), dtype=np.float32)
        count = (len(buffer) - self.size) // self.hop + 1
        frames = sliding_window_view(buffer, self.size)[:: self.hop][:count]
        self._tail = buffer[count * self.hop :].copy()
        return frames


class SpectrumStream:
    """Magnitude spectra (Hann window) of a mono stream, resampled to ``to_rate`` first.

    :param from_rate: rate of the blocks given to :meth:`add`.
    :param to_rate: rate the spectra are taken at.
    :param size: FFT size; ``hop``: samples between frames.
    """

    def __init__(self, from_rate: int, to_rate: int, size: int, hop: int) -> None:
        self._resampler = StreamResampler(from_rate, to_rate)
        self._frames = FrameStream(size, hop)
        self._window = np.hanning(size).astype(np.float32)

    def add(self, mono: np.ndarray) -> np.ndarray:
        """``(frames, size // 2 + 1)`` magnitudes of the frames ``mono`` completes."""
        return self._spectra(self._resampler.add(mono))

    def flush(self) -> np.ndarray:
        """Spectra of what the resampler still held at the end of the stream."""
        return self._spectra(self._resampler.flush())

    def _spectra(self, samples: np.ndarray) -> np.ndarray:
        frames = self._frames.add(samples)
        if len(frames) == 0:
            return np.zeros((0, self._frames.size // 2 + 1), dtype=np.float32)
        return np.abs(np.fft.rfft(frames * self._window, axis=1))
