"""A tempo range as DJ software offers one (Rekordbox, Mixed In Key): ``LOW-HIGH`` in BPM, read
and checked. Pure Python, so the web process checks an upload's ``bpm_range`` without loading
the audio stack; :mod:`audio.tempo_range` folds a tempo into it."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

#: The BPMs a range may name: anything outside is no tempo music is felt at.
LOWEST_BPM, HIGHEST_BPM = 30.0, 300.0

_RANGE = re.compile(r"^ *([0-9]+(?:\.[0-9]+)?) *- *([0-9]+(?:\.[0-9]+)?) *$")


class BadBpmRangeError(ValueError):
    """A tempo range that cannot be used; the message says what is accepted. Not an
    ``AudioError``: the request is wrong, not the file."""


@dataclass(frozen=True)
class BpmRange:
    """``low`` < ``high``, both within :data:`LOWEST_BPM`–:data:`HIGHEST_BPM`."""

    low: float
    high: float

    def __post_init__(self) -> None:
        for value in (self.low, self.high):
            if not (math.isfinite(value) and LOWEST_BPM <= value <= HIGHEST_BPM):
                raise BadBpmRangeError(
                    f"bpm_range must lie within {LOWEST_BPM:g}–{HIGHEST_BPM:g} BPM (got {value:g})"
                )
        if self.low >= self.high:
            raise BadBpmRangeError(
                f"bpm_range must go from low to high, e.g. 120-200 (got {self.low:g}-{self.high:g})"
            )

    def to_list(self) -> list[float]:
        """As ``jobs.bpm_range`` stores it: ``[low, high]``."""
        return [self.low, self.high]

    @classmethod
    def from_list(cls, values: list | tuple) -> BpmRange:
        low, high = values
        return cls(float(low), float(high))

    def __str__(self) -> str:
        return f"{self.low:g}-{self.high:g}"


def parse_bpm_range(text: str) -> BpmRange:
    """``"LOW-HIGH"`` (e.g. ``"120-200"``, ``"87.5-175"``) as a range.

    :raises BadBpmRangeError: malformed, reversed, or outside 30–300 BPM.
    """
    found = _RANGE.match(text) if len(text) <= 40 else None
    if found is None:
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise BadBpmRangeError(f"bpm_range must be LOW-HIGH in BPM, e.g. 120-200 (got {shown!r})")
    return BpmRange(float(found.group(1)), float(found.group(2)))


def octave_in_range(bpm: float, bpm_range: BpmRange) -> int:
    """The power of two ``k`` that puts ``bpm · 2^k`` in the range: 0 when it is already, the
    smallest move otherwise, and when no octave fits, the octave nearest the range (log scale)."""
    if bpm_range.low <= bpm <= bpm_range.high:
        return 0
    if bpm < bpm_range.low:
        k = math.ceil(math.log2(bpm_range.low / bpm))  # the first octave at or above low
        if bpm * 2.0**k <= bpm_range.high:
            return k
        below = math.log2(bpm_range.low / (bpm * 2.0 ** (k - 1)))
        above = math.log2(bpm * 2.0**k / bpm_range.high)
        return k if above < below else k - 1
    k = -math.ceil(math.log2(bpm / bpm_range.high))  # the first octave at or below high
    if bpm * 2.0**k >= bpm_range.low:
        return k
    above = math.log2(bpm * 2.0 ** (k + 1) / bpm_range.high)
    below = math.log2(bpm_range.low / (bpm * 2.0**k))
    return k if below < above else k + 1
