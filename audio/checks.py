"""The checks a mastering engineer runs, from the same decode as everything else.

What is *wrong* with a track, beside what it is: its loudest moments and the loudness of each
channel (:mod:`audio.loudness`), the peak-to-loudness ratio, flat tops (:mod:`audio.clipping`),
DC offset (:mod:`audio.dc_offset`), mono compatibility (:mod:`audio.stereo`), bandwidth and a
lossy origin (:mod:`audio.bandwidth`). :class:`Checks` gathers them into the flat record of the
API, every null with a sentence in ``<name>_reason``; which of them *fail* is
:mod:`audio.verdicts`' to say.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from audio.bandwidth import Bandwidth
from audio.clipping import Clipping
from audio.loudness import Loudness
from audio.stereo import MonoCompatibility
from audio.verdicts import NOT_MEASURED, REASON_KEYS


@dataclass(frozen=True)
class Checks:
    max_momentary_lufs: float | None
    max_short_term_lufs: float | None
    plr_db: float | None
    channel_loudness_lufs: list[float | None] | None
    clipping: Clipping | None
    dc_offset_dbfs: list[float | None] | None
    stereo_correlation: float | None
    mono_loss_lu: float | None
    bandwidth_hz: float | None
    lossy_origin: bool | None
    reasons: dict[str, str | None] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The flat record (JSON-safe, rounded): values, then a reason for each check."""
        return {
            "max_momentary_lufs": _round(self.max_momentary_lufs, 2),
            "max_short_term_lufs": _round(self.max_short_term_lufs, 2),
            "plr_db": _round(self.plr_db, 2),
            "channel_loudness_lufs": _round_list(self.channel_loudness_lufs, 2),
            "clipping": None if self.clipping is None else self.clipping.to_dict(),
            "dc_offset_dbfs": _round_list(self.dc_offset_dbfs, 1),
            "stereo_correlation": _round(self.stereo_correlation, 3),
            "mono_loss_lu": _round(self.mono_loss_lu, 2),
            "bandwidth_hz": _round(self.bandwidth_hz, 0),
            "lossy_origin": self.lossy_origin,
            **{key: self.reasons.get(key) for key in REASON_KEYS},
        }


def gather(
    loudness: Loudness,
    clipping: Clipping | None,
    dc_offset: list[float | None] | None,
    mono: MonoCompatibility | None,
    bandwidth: Bandwidth | None,
) -> Checks:
    """The checks from their measurements; ``None`` for one an old archive did not keep."""
    reasons: dict[str, str | None] = {}
    momentary, short_term = loudness.max_momentary_lufs, loudness.max_short_term_lufs
    if momentary is None:
        reasons["max_momentary_reason"] = _short_or_silent(loudness, "400 ms")
    if short_term is None:
        reasons["max_short_term_reason"] = _short_or_silent(loudness, "3 s")
    plr = None
    if loudness.integrated_lufs is not None and loudness.true_peak_dbtp is not None:
        plr = loudness.true_peak_dbtp - loudness.integrated_lufs
    else:
        reasons["plr_reason"] = loudness.reason or "The audio has no true peak: it is silent."
    channels = loudness.channel_loudness_lufs
    if channels is None:
        reasons["channel_loudness_reason"] = NOT_MEASURED
    elif None in channels:
        silent = _unmeasured(channels)
        reasons["channel_loudness_reason"] = (
            f"Nothing in channel {silent} rises above the −70 LUFS gate."
        )
    if clipping is None:
        reasons["clipping_reason"] = NOT_MEASURED
    if dc_offset is None:
        reasons["dc_offset_reason"] = NOT_MEASURED
    elif None in dc_offset:
        silent = _unmeasured(dc_offset)
        reasons["dc_offset_reason"] = (
            f"Channel {silent} is digital silence (or averages exactly zero): no offset."
        )
    if mono is None:
        mono = MonoCompatibility(None, None, NOT_MEASURED)
    reasons["mono_reason"] = mono.reason
    if bandwidth is None:
        bandwidth = Bandwidth(None, None, NOT_MEASURED, NOT_MEASURED)
    reasons["bandwidth_reason"] = bandwidth.reason
    reasons["lossy_origin_reason"] = bandwidth.lossy_reason
    return Checks(
        max_momentary_lufs=momentary,
        max_short_term_lufs=short_term,
        plr_db=plr,
        channel_loudness_lufs=channels,
        clipping=clipping,
        dc_offset_dbfs=dc_offset,
        stereo_correlation=mono.stereo_correlation,
        mono_loss_lu=mono.mono_loss_lu,
        bandwidth_hz=bandwidth.bandwidth_hz,
        lossy_origin=bandwidth.lossy_origin,
        reasons={key: value for key, value in reasons.items() if value},
    )


def _unmeasured(values: list[float | None]) -> str:
    """The channels (numbered from 1) whose value is None: ``"2, 3"``."""
    return ", ".join(str(i + 1) for i, value in enumerate(values) if value is None)


def _short_or_silent(loudness: Loudness, window: str) -> str:
    if loudness.sample_peak_dbfs is None:
        return "The audio is digital silence: every sample is zero."
    return f"The audio is shorter than the {window} window this maximum is measured over."


def _round(value: float | None, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits) + 0.0  # never −0.0


def _round_list(values: list[float | None] | None, digits: int) -> list[float | None] | None:
    return None if values is None else [_round(v, digits) for v in values]
