"""The synthesized sets tempo and key are scored on (:data:`SETS`): which generator, which
seeds, how long, and which of them tuned anything."""

from __future__ import annotations

from tests.support.audio import styles
from tests.support.audio.music import HELD_APART_FIRST_SEED, TUNING_SEEDS, Track, corpus

COUNT, SECONDS, RATE = 48, 20.0, 11025
SEEDS = range(HELD_APART_FIRST_SEED, HELD_APART_FIRST_SEED + COUNT)
CORPUS = (
    f"{COUNT} tracks of {SECONDS:g} s at {RATE} Hz, seeds {SEEDS.start}–{SEEDS.stop - 1}, "
    "all 24 keys twice, 70–180 BPM"
)
#: Tracks a style in each ``styles.py`` set (9 styles: 45 tracks), and their length.
PER_STYLE, STYLE_SECONDS = 5, 16.0


def held_apart_corpus() -> list[Track]:
    """The ``music.py`` corpus the claims rest on: none of its seeds tuned anything."""
    assert not set(SEEDS) & set(TUNING_SEEDS)
    return corpus(count=COUNT, seconds=SECONDS, sample_rate=RATE, first_seed=SEEDS.start)


def tuning_corpus() -> list[Track]:
    """``music.py``'s tuning seeds (100–147): what its thresholds were set on."""
    return corpus(count=COUNT, seconds=SECONDS, sample_rate=RATE, first_seed=TUNING_SEEDS.start)


def styles_held_apart() -> list[styles.StyleTrack]:
    """The ``styles.py`` set the claims rest on: seeds never looked at while tuning."""
    return styles.corpus(styles.HELD_APART_FIRST_SEED, PER_STYLE, STYLE_SECONDS, RATE)


def styles_tuning(first_seed: int) -> list[styles.StyleTrack]:
    assert first_seed in styles.TUNING_FIRST_SEEDS
    return styles.corpus(first_seed, PER_STYLE, STYLE_SECONDS, RATE)


_STYLE_SET = (
    f"{PER_STYLE} tracks of {STYLE_SECONDS:g} s a style, 9 styles, seeds {{}} + 1000·style + i"
)
#: name → (description, builder), in the order the report prints them.
SETS = {
    "styles.py, held apart (tempo; key tuned on it since)": (
        _STYLE_SET.format(styles.HELD_APART_FIRST_SEED),
        styles_held_apart,
    ),
    "styles.py, second held apart (tempo; key tuned on it since)": (
        _STYLE_SET.format(styles.SECOND_HELD_APART_FIRST_SEED),
        lambda: styles.corpus(styles.SECOND_HELD_APART_FIRST_SEED, PER_STYLE, STYLE_SECONDS, RATE),
    ),
    "music.py, held apart (tempo; key looked at it since)": (CORPUS, held_apart_corpus),
    **{
        f"styles.py, tuning {i + 1}": (
            _STYLE_SET.format(first),
            lambda first=first: styles_tuning(first),
        )
        for i, first in enumerate(styles.TUNING_FIRST_SEEDS)
    },
    "music.py, tuning": (
        f"{COUNT} tracks of {SECONDS:g} s, seeds {TUNING_SEEDS.start}–{TUNING_SEEDS.stop - 1}",
        tuning_corpus,
    ),
}
