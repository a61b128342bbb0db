"""Tempo and key accuracy on the held-apart synthesized corpus, and the floors the tests enforce.

The corpus (:func:`tests.unit.audio.music.corpus`, seeds from
:data:`~tests.unit.audio.music.HELD_APART_FIRST_SEED`) comes from our own synthesizer: the
figures say the estimators work on the music it makes, not on music in general. Print them —
the numbers BENCHMARKS.md publishes — with::

    .venv/bin/python -m tests.unit.audio.accuracy
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audio.key import TONICS, Key, estimate_key
from audio.tempo import Tempo, estimate_tempo
from tests.unit.audio.music import Track

#: Accuracy1: share of tracks whose BPM is within 4 % of the truth (at most 2 of 48 wrong).
TEMPO_ACCURACY1_FLOOR = 0.95
#: Accuracy2: the same, allowing half or double the truth (every track).
TEMPO_ACCURACY2_FLOOR = 1.0
#: Mean MIREX key score, and the share of keys exactly right (at most 2 of 48 wrong).
KEY_MIREX_FLOOR = 0.95
KEY_EXACT_FLOOR = 0.95
TOLERANCE = 0.04


def within(estimate: float, truth: float, tolerance: float = TOLERANCE) -> bool:
    return abs(estimate / truth - 1) < tolerance


def mirex_score(truth_tonic, truth_scale, tonic, scale) -> float:
    """MIREX key weighting: exact 1, fifth 0.5, relative 0.3, parallel 0.2."""
    t, e = TONICS.index(truth_tonic), TONICS.index(tonic)
    if t == e and truth_scale == scale:
        return 1.0
    if truth_scale == scale and (e - t) % 12 in (5, 7):
        return 0.5
    if truth_scale != scale:
        relative = (t + 3) % 12 if truth_scale == "minor" else (t - 3) % 12
        if e == relative:
            return 0.3
        if e == t:
            return 0.2
    return 0.0


@dataclass(frozen=True)
class TempoScore:
    estimates: list[Tempo]
    accuracy1: float
    accuracy2: float
    misses: list[tuple[float, float]]  # (truth, estimate) outside 4 %


@dataclass(frozen=True)
class KeyScore:
    estimates: list[Key]
    mirex: float
    exact: float
    misses: list[str]


def score_tempo(tracks: list[Track]) -> TempoScore:
    estimates = [estimate_tempo(t.samples.mean(axis=0), t.sample_rate) for t in tracks]
    pairs = list(zip(estimates, tracks, strict=True))
    right = [within(e.bpm, t.bpm) for e, t in pairs]
    octave = [any(within(e.bpm * f, t.bpm) for f in (0.5, 1, 2)) for e, t in pairs]
    misses = [
        (t.bpm, round(float(e.bpm), 1)) for (e, t), ok in zip(pairs, right, strict=True) if not ok
    ]
    return TempoScore(estimates, float(np.mean(right)), float(np.mean(octave)), misses)


def score_key(tracks: list[Track]) -> KeyScore:
    estimates = [estimate_key(t.samples.mean(axis=0), t.sample_rate) for t in tracks]
    scores = [
        mirex_score(t.tonic, t.scale, k.tonic, k.scale)
        for k, t in zip(estimates, tracks, strict=True)
    ]
    misses = [
        f"{t.tonic} {t.scale} -> {k.name}"
        for k, t, s in zip(estimates, tracks, scores, strict=True)
        if s < 1
    ]
    exact = float(np.mean([s == 1 for s in scores]))
    return KeyScore(estimates, float(np.mean(scores)), exact, misses)


def main() -> None:
    from tests.unit.audio.conftest import CORPUS, held_apart_corpus

    tracks = held_apart_corpus()
    tempo, key = score_tempo(tracks), score_key(tracks)
    print(f"held-apart corpus: {CORPUS}")
    print(
        f"tempo Accuracy1 {tempo.accuracy1:.3f} (floor {TEMPO_ACCURACY1_FLOOR}), "
        f"Accuracy2 {tempo.accuracy2:.3f} (floor {TEMPO_ACCURACY2_FLOOR}); misses {tempo.misses}"
    )
    print(
        f"key MIREX {key.mirex:.3f} (floor {KEY_MIREX_FLOOR}), "
        f"exact {key.exact:.3f} (floor {KEY_EXACT_FLOOR}); misses {key.misses}"
    )


if __name__ == "__main__":
    main()
