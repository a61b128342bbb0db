"""Cutting a stream of samples into overlapping frames, block by block."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


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
