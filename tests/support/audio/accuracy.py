"""Tempo, beat and key accuracy on synthesized music, and the floors the tests enforce.

Two generators, each with a tuning set and a held-apart set (``corpora.SETS``
names them): ``music.py`` (the project's first synthesizer) and ``styles.py`` (a second one,
written apart from it: drum and bass, trap, punk, swing, waltz, house, ballads, fast techno,
tempo-less intros). The estimators were tuned on the tuning sets only; the claims — the numbers
BENCHMARKS.md publishes and the tests assert — rest on the held-apart sets. Key, tuned again
after the styles sets those name as held apart had been looked at, has held-apart sets of its
own (:data:`KEY_HELD_APART_STYLES_FIRST_SEEDS`, :data:`KEY_HELD_APART_MUSIC_FIRST_SEED`),
printed after them. Print them with::

    .venv/bin/python -m tests.support.audio.accuracy
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audio.key import TONICS, Key, estimate_key
from audio.tempo import Tempo, estimate_tempo

#: Accuracy1: share of tracks whose BPM is within 4 % of the truth (at most 2 of 45–48 wrong).
TEMPO_ACCURACY1_FLOOR = 0.95
#: Accuracy2: the same, allowing half or double the truth (every track).
TEMPO_ACCURACY2_FLOOR = 1.0
#: Key's held-apart sets since its third pass (declared 2026-11-30 02:15 UTC, before that pass
#: changed anything; first scored once, at its end): ``styles.py`` seeds 9 700 000… and
#: 9 900 000… (5 tracks of 16 s a style) and ``music.py`` seeds 8 000 000–8 000 047. Key was
#: tuned on ``styles.py`` 500 000…, 600 000…, 700 000…, 9 100 000…, 9 300 000… and 9 500 000…
#: (the last two were held apart for its second pass, and looked at), ``music.py`` 100–147 and
#: 200–247 (a tuning range declared here).
KEY_HELD_APART_STYLES_FIRST_SEEDS = (9_700_000, 9_900_000)
KEY_HELD_APART_MUSIC_FIRST_SEED = 8_000_000
KEY_TUNING_STYLES_FIRST_SEEDS = (500_000, 600_000, 700_000, 9_100_000, 9_300_000, 9_500_000)
KEY_TUNING_MUSIC_FIRST_SEEDS = (100, 200)
#: Mean MIREX key score and share of keys exactly right on each of those held-apart sets (the
#: issue's goal; measured once, 2026-11-30: styles 9 700 000… 1.00 and 100 %, 9 900 000… 0.967
#: and 95.6 %, music.py 8 000 000… 0.990 and 97.9 %).
KEY_HELD_APART_MIREX_FLOOR = 0.95
KEY_HELD_APART_EXACT_FLOOR = 0.95
#: Beats: mean F-measure (±30 ms) over the tracks whose tempo is right.
BEAT_F_FLOOR = 0.9
BEAT_TOLERANCE_S = 0.03
TOLERANCE = 0.04
#: Tempo bands (true BPM) the figures are broken down by.
BANDS = ((0.0, 90.0), (90.0, 120.0), (120.0, 150.0), (150.0, 1000.0))


def within(estimate: float | None, truth: float, tolerance: float = TOLERANCE) -> bool:
    return estimate is not None and abs(estimate / truth - 1) < tolerance


def mirex_score(truth_tonic, truth_scale, tonic, scale) -> float:
    """MIREX key weighting: exact 1, fifth 0.5, relative 0.3, parallel 0.2 (0 for no key)."""
    if tonic is None:
        return 0.0
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


def beat_f_measure(
    estimated: tuple[float, ...], truth: tuple[float, ...], tolerance: float = BEAT_TOLERANCE_S
) -> float:
    """F-measure of beat times: a true beat is found when an estimate lies within ±tolerance
    (each estimate matches at most one true beat)."""
    if not estimated or not truth:
        return 0.0
    estimates, used, hits = np.asarray(estimated), set(), 0
    for beat in truth:
        i = int(np.argmin(np.abs(estimates - beat)))
        if abs(estimates[i] - beat) <= tolerance and i not in used:
            used.add(i)
            hits += 1
    precision, recall = hits / len(estimates), hits / len(truth)
    return 2 * precision * recall / (precision + recall) if hits else 0.0


@dataclass(frozen=True)
class TempoScore:
    estimates: list[Tempo]
    accuracy1: float
    accuracy2: float
    misses: list[tuple[float, float | None]]  # (truth, estimate) outside 4 %


@dataclass(frozen=True)
class KeyScore:
    estimates: list[Key]
    mirex: float
    exact: float
    misses: list[str]


def _mono(track) -> np.ndarray:
    return track.samples.mean(axis=0)


def score_tempo(tracks, estimates: list[Tempo] | None = None) -> TempoScore:
    if estimates is None:
        estimates = [estimate_tempo(_mono(t), t.sample_rate) for t in tracks]
    pairs = list(zip(estimates, tracks, strict=True))
    right = [within(e.bpm, t.bpm) for e, t in pairs]
    octave = [any(within(e.bpm and e.bpm * f, t.bpm) for f in (0.5, 1, 2)) for e, t in pairs]
    misses = [
        (t.bpm, None if e.bpm is None else round(float(e.bpm), 1))
        for (e, t), ok in zip(pairs, right, strict=True)
        if not ok
    ]
    return TempoScore(estimates, float(np.mean(right)), float(np.mean(octave)), misses)


def score_key(tracks, estimates: list[Key] | None = None) -> KeyScore:
    if estimates is None:
        estimates = [estimate_key(_mono(t), t.sample_rate) for t in tracks]
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


def score_beats(tracks, estimates: list[Tempo]) -> float:
    """Mean beat F-measure over the tracks that know their beats and whose tempo is right."""
    values = [
        beat_f_measure(e.beats, t.beats)
        for e, t in zip(estimates, tracks, strict=True)
        if getattr(t, "beats", None) and within(e.bpm, t.bpm)
    ]
    return float(np.mean(values)) if values else float("nan")


def _row(label: str, tracks, estimates: list[Tempo]) -> str:
    score = score_tempo(tracks, estimates)
    return f"| {label} | {len(tracks)} | {score.accuracy1:.1%} | {score.accuracy2:.1%} |"


def report(name: str, tracks) -> None:
    """Markdown tables of one set: tempo by band and by style, beats, confidence, key."""
    tempi = [estimate_tempo(_mono(t), t.sample_rate) for t in tracks]
    keys = [estimate_key(_mono(t), t.sample_rate) for t in tracks]
    tempo, key = score_tempo(tracks, tempi), score_key(tracks, keys)
    print(f"\n### {name}\n")
    print("| tempo band (true BPM) | tracks | Accuracy1 | Accuracy2 |\n|---|---|---|---|")
    for low, high in BANDS:
        chosen = [i for i, t in enumerate(tracks) if low <= t.bpm < high]
        if chosen:
            label = (
                f"< {high:g}" if low == 0 else f"≥ {low:g}" if high > 500 else f"{low:g}–{high:g}"
            )
            print(_row(label, [tracks[i] for i in chosen], [tempi[i] for i in chosen]))
    print(_row("all", tracks, tempi))
    styles = sorted({getattr(t, "style", "") for t in tracks} - {""})
    if styles:
        print("\n| style | tracks | Accuracy1 | Accuracy2 |\n|---|---|---|---|")
        for style in styles:
            chosen = [i for i, t in enumerate(tracks) if t.style == style]
            print(_row(style, [tracks[i] for i in chosen], [tempi[i] for i in chosen]))
    confidences = [t.confidence for t in tempi if t.confidence is not None]
    print(
        f"\ntempo misses {tempo.misses}; confidence median {np.median(confidences):.2f} "
        f"(min {min(confidences):.2f}); beat F-measure ±30 ms {score_beats(tracks, tempi):.3f}"
    )
    nulls = sum(t.bpm is None for t in tempi), sum(k.tonic is None for k in keys)
    print(
        f"key MIREX {key.mirex:.3f}, exact {key.exact:.1%}; misses {key.misses}; "
        f"nulls: tempo {nulls[0]}, key {nulls[1]}"
    )


def key_held_apart_styles(first_seed: int) -> list:
    """One of key's held-apart ``styles.py`` sets (5 tracks of 16 s a style)."""
    from tests.support.audio import styles
    from tests.support.audio.corpora import PER_STYLE, RATE, STYLE_SECONDS

    assert first_seed in KEY_HELD_APART_STYLES_FIRST_SEEDS
    return styles.corpus(first_seed, PER_STYLE, STYLE_SECONDS, RATE)


def key_held_apart_music() -> list:
    """Key's held-apart ``music.py`` set: 48 tracks of 20 s, all 24 keys twice."""
    from tests.support.audio.corpora import COUNT, RATE, SECONDS
    from tests.support.audio.music import corpus

    first = KEY_HELD_APART_MUSIC_FIRST_SEED
    return corpus(count=COUNT, seconds=SECONDS, sample_rate=RATE, first_seed=first)


def _key_tuning_sets() -> dict:
    """The sets key's third pass added to its tuning (key figures only)."""
    from tests.support.audio import styles
    from tests.support.audio.corpora import COUNT, PER_STYLE, RATE, SECONDS, STYLE_SECONDS
    from tests.support.audio.music import corpus

    sets: dict = {
        f"styles.py {first}…": lambda first=first: styles.corpus(
            first, PER_STYLE, STYLE_SECONDS, RATE
        )
        for first in (600_000, 700_000)
    }
    sets["music.py 200–247"] = lambda: corpus(
        count=COUNT, seconds=SECONDS, sample_rate=RATE, first_seed=200
    )
    return sets


def key_report(name: str, tracks) -> KeyScore:
    keys = [estimate_key(_mono(t), t.sample_rate) for t in tracks]
    score = score_key(tracks, keys)
    confidences = [k.confidence for k in keys if k.confidence is not None]
    print(
        f"{name}: {len(tracks)} tracks, key MIREX {score.mirex:.3f}, exact {score.exact:.1%}, "
        f"nulls {sum(k.tonic is None for k in keys)}, confidence median "
        f"{np.median(confidences):.2f}; misses {score.misses}"
    )
    return score


def main() -> None:
    from tests.support.audio.corpora import SETS

    for name, (description, build) in SETS.items():
        report(f"{name}: {description}", build())
    print(
        "\n### key: its third pass's held-apart sets (the styles sets called held apart above"
        " were looked at by it, and tuned it)\n"
    )
    for first in KEY_HELD_APART_STYLES_FIRST_SEEDS:
        key_report(f"styles.py {first}…", key_held_apart_styles(first))
    key_report(f"music.py {KEY_HELD_APART_MUSIC_FIRST_SEED}…", key_held_apart_music())
    print("\n### key: tuning sets its third pass added\n")
    for name, build in _key_tuning_sets().items():
        key_report(name, build())


if __name__ == "__main__":
    main()
