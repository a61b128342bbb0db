"""Mono compatibility of a stereo file: how alike its channels are, and what summing them costs.

Phones, club systems and many speakers play one channel, the sum. Whatever is in one channel
inverted in the other cancels there: a bass recorded out of phase, a "wide" plug-in, a channel
wired backwards.

* ``stereo_correlation``: the correlation of the two channels over the whole file,
  ΣLR / √(ΣL²·ΣR²), from running float64 sums — 1 for the same signal in both, about 0 for
  unrelated ones, −1 for one the other inverted (a phase meter's reading, averaged).
* ``mono_loss_lu``: the stereo file's integrated loudness less the loudness of its mono sum
  played on both speakers (``2·((L+R)/2)²``, K-weighted and gated as BS.1770 does: the meter
  keeps that sum's energy beside the channels', see :class:`audio.loudness.LoudnessMeter`).
  0 LU for the same signal in both channels, about 3 for unrelated ones, more the more cancels.
  When the sum falls under the −70 LUFS absolute gate (one channel is the other inverted) the
  loss is at least the distance from the loudness to that gate, and is reported as that bound,
  with a sentence saying so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from audio.blocks import channel_block
from audio.loudness import ABSOLUTE_GATE_LUFS, Loudness
from audio.verdicts import MONO_LOSS_LIMIT_LU

#: A mono sum this much quieter than the stereo file loses enough to name it in the reason.
AUDIBLE_LOSS_LU = MONO_LOSS_LIMIT_LU


@dataclass(frozen=True)
class MonoCompatibility:
    stereo_correlation: float | None
    mono_loss_lu: float | None
    #: Why a value is None, or what stands out about them (a sentence); None otherwise.
    reason: str | None = None


class CorrelationMeter:
    """Running ΣLR, ΣL², ΣR² of float32 ``(2, n)`` blocks (other channel counts: nothing)."""

    def __init__(self, channels: int) -> None:
        self.channels = channels
        self._sums = np.zeros(3)  # ΣLR, ΣL², ΣR²

    def add(self, block: np.ndarray) -> None:
        if self.channels != 2:
            return
        block = channel_block(block, 2)
        left, right = block[0].astype(np.float64), block[1].astype(np.float64)
        self._sums += (np.dot(left, right), np.dot(left, left), np.dot(right, right))

    def correlation(self) -> float | None:
        both, left, right = self._sums
        if self.channels != 2 or left == 0 or right == 0:
            return None
        return float(np.clip(both / math.sqrt(left * right), -1.0, 1.0))

    def state(self) -> dict[str, np.ndarray]:
        return {"stereo_sums": self._sums}

    @classmethod
    def restore(cls, state: dict[str, np.ndarray], channels: int) -> CorrelationMeter | None:
        if "stereo_sums" not in state:
            return None
        meter = cls(channels)
        meter._sums = state["stereo_sums"].astype(np.float64)
        return meter


def mono_compatibility(
    channels: int, correlation: CorrelationMeter, loudness: Loudness
) -> MonoCompatibility:
    """The correlation and the loss, or None and why (mono, surround, silent channels)."""
    if channels == 1:
        return MonoCompatibility(None, None, "The file is mono: there is nothing to sum.")
    if channels != 2:
        not_stereo = f"Mono compatibility is measured on stereo files, not on {channels} channels."
        return MonoCompatibility(None, None, not_stereo)
    value = correlation.correlation()
    if value is None:
        return MonoCompatibility(
            None, None, "One channel is digital silence: there is nothing to compare."
        )
    stereo = loudness.integrated_lufs
    if stereo is None:
        return MonoCompatibility(value, None, loudness.reason)
    if loudness.mono_lufs is None:
        bound = stereo - ABSOLUTE_GATE_LUFS
        return MonoCompatibility(
            value,
            bound,
            f"Summed to mono the channels cancel: the sum falls under the −70 LUFS gate, at "
            f"least {bound:.0f} LU quieter — one channel is the other inverted.",
        )
    loss = stereo - loudness.mono_lufs
    if loss < AUDIBLE_LOSS_LU:
        return MonoCompatibility(value, loss)
    return MonoCompatibility(
        value,
        loss,
        f"Summed to mono the file is {loss:.1f} LU quieter: much of it is out of phase between "
        "the channels.",
    )
