"""A tempo range, as DJ software offers one (Rekordbox, Mixed In Key): the BPM is folded by
octaves (×2, ÷2) into ``[low, high]`` instead of the octave being chosen automatically.

Which octave a beat is felt at is a convention of the genre as much as a property of the
signal (drum and bass is 170 to a DJ and 85 to a metronome held at the half-time snare); the
caller who knows the genre says so with a range, and the analysis keeps the pulse it measured.

- A reading already in the range is left alone (a range wider than an octave does not move a
  reading that fits it).
- Otherwise the reading is doubled or halved until it is in the range. When the range is
  narrower than an octave, no octave of a reading may fall inside it (100 BPM into 120–130:
  50, 100, 200 are all outside); the octave *nearest* the range is then taken (nearest on the
  log scale, where octaves are equally far apart: 100 is 18 % below 120, 200 is 54 % above
  130, so 100 stays) — a BPM is never moved off its octaves to fit.
- The beat grid follows: halving keeps every other beat — the phase whose beats fall on the
  stronger onsets when the onsets are given (the downbeat and the snare outweigh the "and"s),
  else the first beat's; doubling adds the midpoint between each two beats.
- The confidence: the octave is then the caller's, not the signal's. A folded reading's
  confidence is how steady the pulse is at the new beat (the square root of the onsets'
  autocorrelation there, as :mod:`audio.tempo` measures it) and at most 0.5 — the ceiling
  :mod:`audio.tempo` gives a reading that no band evidence settled — and half that again when
  no octave fitted the range. Without the onsets, the automatic confidence capped at 0.5.
- No tempo (``bpm`` None) stays none; its low-confidence ``estimate``, where there is one, is
  folded alike (its confidence kept: it was low already).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from audio.bpm_range import BpmRange, octave_in_range
from audio.tempo import FRAME_RATE, MIN_BPM, ONSET_LATENCY_S, Tempo, TempoAnalyzer, autocorrelation

#: The confidence of a reading whose octave the caller chose.
FOLDED_CEILING = 0.5


def fold_tempo(
    tempo: Tempo,
    bpm_range: BpmRange,
    onsets: np.ndarray | None = None,
    periodicity: np.ndarray | None = None,
) -> Tempo:
    """``tempo`` folded into ``bpm_range`` (see the module's notes).

    :param onsets: the normalised onset envelope, :data:`audio.tempo.FRAME_RATE` frames a
        second (:meth:`audio.tempo.TempoAnalyzer.onsets`): picks the phase when halving.
    :param periodicity: its autocorrelation by lag in frames (normalised to 1 at lag 0): the
        confidence of a folded reading.
    """
    if tempo.bpm is None:
        if tempo.estimate is None:
            return tempo
        shift = octave_in_range(tempo.estimate, bpm_range)
        return dataclasses.replace(tempo, estimate=tempo.estimate * 2.0**shift)
    k = octave_in_range(tempo.bpm, bpm_range)
    if k == 0:
        return tempo
    bpm = tempo.bpm * 2.0**k
    beats = _regrid(np.asarray(tempo.beats, dtype=np.float64), k, onsets)
    fitted = bpm_range.low <= bpm <= bpm_range.high
    confidence = _folded_confidence(tempo.confidence, bpm, periodicity)
    if confidence is not None and not fitted:
        confidence /= 2
    return dataclasses.replace(
        tempo,
        bpm=bpm,
        confidence=confidence,
        half_bpm=bpm / 2,
        double_bpm=bpm * 2,
        beats=tuple(float(b) for b in beats),
        estimate=bpm,
        estimate_confidence=confidence,
    )


def _folded_confidence(
    automatic: float | None, bpm: float, periodicity: np.ndarray | None
) -> float | None:
    if periodicity is None or len(periodicity) == 0:
        return None if automatic is None else min(automatic, FOLDED_CEILING)
    lag = 60 * FRAME_RATE / bpm
    i = int(lag)
    if i + 1 >= len(periodicity):
        strength = 0.0
    else:
        f = lag - i
        strength = float(periodicity[i] * (1 - f) + periodicity[i + 1] * f)
    return FOLDED_CEILING * math.sqrt(min(max(strength, 0.0), 1.0))


def _regrid(beats: np.ndarray, k: int, onsets: np.ndarray | None) -> np.ndarray:
    """The grid at ``2^k`` times the tempo: midpoints added (k > 0), or every other beat kept
    (k < 0), once per octave."""
    for _ in range(abs(k)):
        if len(beats) < 2:
            return beats
        if k > 0:
            midpoints = (beats[:-1] + beats[1:]) / 2
            beats = np.sort(np.concatenate([beats, midpoints]))
        else:
            beats = beats[_stronger_phase(beats, onsets) :: 2]
    return beats


def _stronger_phase(beats: np.ndarray, onsets: np.ndarray | None) -> int:
    """0 or 1: which of the alternate beats fall on the stronger onsets (the largest onset
    within ±2 frames of each, averaged); 0 without onsets or on a tie."""
    if onsets is None or len(onsets) == 0:
        return 0
    frames = np.rint((beats - ONSET_LATENCY_S) * FRAME_RATE).astype(int)
    strength = np.zeros(len(beats))
    for shift in range(-2, 3):
        at = np.clip(frames + shift, 0, len(onsets) - 1)
        strength = np.maximum(strength, onsets[at])
    return 1 if strength[1::2].mean() > strength[0::2].mean() else 0


def tempo_in_range(analyzer: TempoAnalyzer, bpm_range: BpmRange | None) -> Tempo:
    """The analyzer's tempo, folded into ``bpm_range`` when one is given."""
    tempo, onsets = analyzer.evidence()
    if bpm_range is None or onsets is None or tempo.estimate is None:
        return tempo
    max_lag = int(60 * FRAME_RATE / MIN_BPM) + 1
    return fold_tempo(tempo, bpm_range, onsets, autocorrelation(onsets, 4 * max_lag + 4))


def estimate_tempo_in_range(mono: np.ndarray, sample_rate: int, bpm_range: BpmRange) -> Tempo:
    """Tempo of a whole mono signal at once, folded into ``bpm_range``."""
    analyzer = TempoAnalyzer(sample_rate)
    analyzer.add(mono)
    return tempo_in_range(analyzer, bpm_range)
