"""DC offset: the mean of each channel, in dBFS.

A converter or a cheap preamp can add a constant to every sample: inaudible itself, it takes
headroom, makes clicks at edits and fades, and offsets the limiter. The offset is the channel's
mean over the whole file (a running float64 sum: exact whatever the length), reported as
``20·log10(|mean|)`` dBFS — −40 dBFS is an offset of 1 % of full scale. A channel that is
digital silence (every sample zero) has no offset to report: ``None``.
"""

from __future__ import annotations

import math

import numpy as np

from audio.blocks import channel_block


class DcOffsetMeter:
    """Per-channel sums of float32 ``(channels, n)`` blocks."""

    def __init__(self, channels: int) -> None:
        self.channels = channels
        self._sums = np.zeros(channels)
        self._nonzero = np.zeros(channels, dtype=bool)
        self._count = 0

    def add(self, block: np.ndarray) -> None:
        block = channel_block(block, self.channels)
        self._sums += block.sum(axis=1)  # float32, pairwise: exact enough per block
        if not self._nonzero.all():  # once every channel has sounded, there is no need
            self._nonzero |= block.any(axis=1)
        self._count += block.shape[1]

    def result(self) -> list[float | None]:
        """dBFS per channel; None for a silent channel. A mean of exactly zero on a channel that
        is not silent (a balanced test tone) reads as the floor of float64, −inf → None too."""
        if self._count == 0:
            return [None] * self.channels
        means = np.abs(self._sums) / self._count
        return [
            20 * math.log10(float(mean)) if nonzero and mean > 0 else None
            for mean, nonzero in zip(means, self._nonzero, strict=True)
        ]

    def state(self) -> dict[str, np.ndarray]:
        return {
            "dc_sums": self._sums,
            "dc_meta": np.array([self._count, *self._nonzero.astype(np.float64)]),
        }

    @classmethod
    def restore(cls, state: dict[str, np.ndarray]) -> DcOffsetMeter | None:
        if "dc_sums" not in state:
            return None
        meter = cls(len(state["dc_sums"]))
        meter._sums = state["dc_sums"].astype(np.float64)
        meter._count = int(state["dc_meta"][0])
        meter._nonzero = state["dc_meta"][1:] > 0
        return meter
