"""Clipping: flat tops, runs of samples held at full scale.

A master pushed past 0 dBFS loses its crests: the converter or the encoder holds every sample
beyond the ceiling at the ceiling, so the waveform has flat tops. :class:`ClippingDetector`
counts **runs of 3 or more consecutive samples at full scale** in each channel (the rule of
Audacity's "Find Clipping" and of most mastering meters): one or two samples at the ceiling
happen on any loud clean master whose crest lands there; three in a row do not, except for a
tone below ~50 Hz at full scale, whose crest is flatter than one 16-bit step.

Full scale is :data:`FULL_SCALE`, the largest positive 16-bit sample (32767/32768): every
integer format of 16 bits or more reaches it, and floating-point samples beyond ±1 (overs that
clip on playback) count too. A master limited to −0.1 dBFS has no flat tops here, however hard
it was limited: that is a limiter's job done, not clipping.

Streaming: each channel keeps the length of the run its last block ended in, so a flat top split
between two blocks counts once. A few numbers whatever the file's length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audio.blocks import channel_block

#: The largest positive 16-bit sample, as a float: the ceiling of every integer format.
FULL_SCALE = 1.0 - 2.0**-15
#: The shortest run of samples at full scale that is a flat top.
MIN_RUN = 3


@dataclass(frozen=True)
class Clipping:
    """``runs``: flat tops, counted per channel (a clip in both channels of a stereo file counts
    twice); ``clipped_s``: seconds at full scale in flat tops, in the channel that has the most;
    ``first_s``: where the first flat top starts (None: there is none)."""

    runs: int
    clipped_s: float
    first_s: float | None

    def to_dict(self) -> dict:
        return {
            "runs": self.runs,
            "clipped_s": round(self.clipped_s, 4),
            "first_s": None if self.first_s is None else round(self.first_s, 4),
        }


class ClippingDetector:
    """Counts flat tops in float32 ``(channels, n)`` blocks."""

    def __init__(self, sample_rate: int, channels: int) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self._seen = 0
        self._open_length = np.zeros(channels, dtype=np.int64)  # run each channel ends in
        self._open_start = np.zeros(channels, dtype=np.int64)
        self._runs = np.zeros(channels, dtype=np.int64)
        self._clipped = np.zeros(channels, dtype=np.int64)  # samples in flat tops
        self._first: int | None = None

    def add(self, block: np.ndarray) -> None:
        block = channel_block(block, self.channels)
        n = block.shape[1]
        if n == 0:
            return
        if not self._open_length.any() and block.min() > -FULL_SCALE and block.max() < FULL_SCALE:
            self._seen += n  # nothing at full scale: the usual block, two fast reductions
            return
        hot = (block >= FULL_SCALE) | (block <= -FULL_SCALE)
        channels = np.flatnonzero(hot.any(axis=1) | (self._open_length > 0))
        for channel in channels:
            self._scan(int(channel), hot[channel], n)
        self._seen += n

    def _scan(self, channel: int, hot: np.ndarray, n: int) -> None:
        edges = np.diff(np.concatenate(([0], hot.view(np.int8), [0])))
        starts = np.flatnonzero(edges == 1)
        ends = np.flatnonzero(edges == -1)  # run i spans [starts[i], ends[i])
        lengths = ends - starts
        absolute = starts + self._seen
        open_length = int(self._open_length[channel])
        if open_length:
            if len(starts) and starts[0] == 0:  # the run the last block ended in goes on
                lengths[0] += open_length
                absolute[0] = self._open_start[channel]
            else:
                self._close(channel, int(self._open_start[channel]), open_length)
        self._open_length[channel] = 0
        if len(ends) and ends[-1] == n:  # this block ends inside a run: wait for its end
            self._open_length[channel] = lengths[-1]
            self._open_start[channel] = absolute[-1]
            lengths, absolute = lengths[:-1], absolute[:-1]
        flat = lengths >= MIN_RUN
        for start, length in zip(absolute[flat], lengths[flat], strict=True):
            self._close(channel, int(start), int(length))

    def _close(self, channel: int, start: int, length: int) -> None:
        if length < MIN_RUN:
            return
        self._runs[channel] += 1
        self._clipped[channel] += length
        self._first = start if self._first is None else min(self._first, start)

    def _close_open_runs(self) -> None:
        for channel in np.flatnonzero(self._open_length > 0):  # runs the file ends in
            start, length = self._open_start[channel], self._open_length[channel]
            self._close(int(channel), int(start), int(length))
            self._open_length[channel] = 0

    def result(self) -> Clipping:
        self._close_open_runs()
        return Clipping(
            runs=int(self._runs.sum()),
            clipped_s=float(self._clipped.max(initial=0)) / self.sample_rate,
            first_s=None if self._first is None else self._first / self.sample_rate,
        )

    def state(self) -> dict[str, np.ndarray]:
        """Per-channel runs and clipped samples, the first flat top (−1: none), the rate."""
        self._close_open_runs()
        first = -1 if self._first is None else self._first
        return {
            "clipping_runs": self._runs,
            "clipping_samples": self._clipped,
            "clipping_meta": np.array([self.sample_rate, first], dtype=np.int64),
        }

    @classmethod
    def restore(cls, state: dict[str, np.ndarray]) -> ClippingDetector | None:
        """None from an archive made before clipping was counted."""
        if "clipping_runs" not in state:
            return None
        rate, first = (int(v) for v in state["clipping_meta"])
        detector = cls(rate, len(state["clipping_runs"]))
        detector._runs = state["clipping_runs"].astype(np.int64)
        detector._clipped = state["clipping_samples"].astype(np.int64)
        detector._first = None if first < 0 else first
        return detector
