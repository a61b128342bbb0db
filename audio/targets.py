"""Loudness targets: the platforms' presets, and a target read from a request.

Kept apart from :mod:`audio.normalize` (which does the work) so the web process can check an
upload's ``normalize`` field and list the presets without loading any codec library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from audio.errors import BadTargetError

#: Quieter than −60 LUFS could not even be measured again (BS.1770's gate is −70).
LUFS_RANGE = (-60.0, -5.0)
TRUE_PEAK_RANGE = (-20.0, 0.0)
DEFAULT_TRUE_PEAK_DBTP = -1.0


@dataclass(frozen=True)
class Target:
    """A loudness target: integrated LUFS and a true-peak ceiling (dBTP)."""

    lufs: float
    true_peak_dbtp: float
    name: str | None = None  # the preset's name, None for a number

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "target_lufs": self.lufs,
            "true_peak_ceiling_dbtp": self.true_peak_dbtp,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Target:
        """The inverse of :meth:`to_dict`."""
        return cls(
            float(data["target_lufs"]), float(data["true_peak_ceiling_dbtp"]), data.get("name")
        )


PRESETS: dict[str, Target] = {
    "spotify": Target(-14.0, -1.0, "spotify"),
    "apple": Target(-16.0, -1.0, "apple"),
    "youtube": Target(-14.0, -1.0, "youtube"),
    "ebu": Target(-23.0, -1.0, "ebu"),
    "podcast": Target(-16.0, -1.0, "podcast"),
}


def parse_target(normalize: str, true_peak: str | float | None = None) -> Target:
    """``"spotify"`` (any preset, any case) or a level in LUFS like ``"-18"``, with an optional
    true-peak ceiling in dBTP (default: the preset's, or −1).

    :raises audio.errors.BadTargetError: an unknown name or a value out of range; the message
        says what is accepted.
    """
    text = str(normalize).strip().lower()
    lufs: float | None
    ceiling: float | None
    if text in PRESETS:
        preset = PRESETS[text]
        lufs, ceiling, name = preset.lufs, preset.true_peak_dbtp, preset.name
    else:
        lufs = _number(text.removesuffix("lufs"))
        if lufs is None or not LUFS_RANGE[0] <= lufs <= LUFS_RANGE[1]:
            raise BadTargetError(
                f"normalize must be a platform ({', '.join(PRESETS)}) or a loudness in LUFS "
                f"from {LUFS_RANGE[0]:g} to {LUFS_RANGE[1]:g}, like -18; got {_shown(normalize)}"
            )
        ceiling, name = DEFAULT_TRUE_PEAK_DBTP, None
    if true_peak is not None and str(true_peak).strip() != "":
        ceiling = _number(str(true_peak).strip().lower().removesuffix("dbtp"))
        if ceiling is None or not TRUE_PEAK_RANGE[0] <= ceiling <= TRUE_PEAK_RANGE[1]:
            raise BadTargetError(
                f"true_peak must be a ceiling in dBTP from {TRUE_PEAK_RANGE[0]:g} to "
                f"{TRUE_PEAK_RANGE[1]:g}, like -1; got {_shown(true_peak)}"
            )
    return Target(float(lufs), float(ceiling), name)


def _number(text: str) -> float | None:
    try:
        value = float(text.strip().replace("\u2212", "-"))  # "−16" as the README writes it
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _shown(value: object) -> str:
    """A value echoed in an error, cut short (a request may send megabytes)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}…"
