"""Key on synthesized music of known key: all 24 keys, idiomatic progressions, i–VI–VII too;
and no key where nothing is pitched.

The corpus tests run on held-apart seeds of two generators (``conftest.SEEDS`` of ``music.py``,
``styles.HELD_APART_FIRST_SEED`` of ``styles.py``), never used to set ``audio/key.py``; their
floors are the ones BENCHMARKS.md publishes.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from audio.key import TONICS, KeyAnalyzer, camelot, estimate_key
from audio.resample import resample
from tests.unit.audio import styles
from tests.unit.audio.accuracy import (
    KEY_EXACT_FLOOR,
    KEY_MIREX_FLOOR,
    STYLES_KEY_EXACT_FLOOR,
    STYLES_KEY_MIREX_FLOOR,
    mirex_score,
    score_key,
)
from tests.unit.audio.music import synthesize_track

RATE = 11025


def test_mirex_score_and_exact_rate_on_the_held_apart_corpus(music_corpus):
    score = score_key(music_corpus)
    assert score.mirex >= KEY_MIREX_FLOOR, score.misses
    assert score.exact >= KEY_EXACT_FLOOR, score.misses
    assert {(t.tonic, t.scale) for t in music_corpus} == {
        (tonic, scale) for tonic in TONICS for scale in ("major", "minor")
    }


def test_mirex_score_on_independent_styles(styles_corpus):
    score = score_key(styles_corpus)
    assert score.mirex >= STYLES_KEY_MIREX_FLOOR, score.misses
    assert score.exact >= STYLES_KEY_EXACT_FLOOR, score.misses
    assert all(k.reason is None for k in score.estimates)  # no null on music


@pytest.mark.parametrize(("tonic", "seed"), [("A", 5), ("C#", 6), ("F", 7), ("Bb", 8)])
def test_the_minor_i_vi_vii_loop_stays_minor(tonic, seed):
    loop = [0, 5, 6, 0]  # i–VI–VII–i: its notes are the relative major's
    track = synthesize_track(100.0, tonic, "minor", 20, RATE, seed=seed, progression=loop)
    key = estimate_key(track.samples.mean(axis=0), RATE)
    assert key.name == f"{tonic} minor"
    assert key.camelot == camelot(tonic, "minor")


@pytest.mark.parametrize("rate", [44100, 48000, 96000])
def test_a_twin_at_another_rate_gives_the_same_key(rate):
    track = synthesize_track(110.0, "F#", "minor", seconds=15, sample_rate=22050, seed=21)
    mono = track.samples.mean(axis=0)
    assert estimate_key(resample(mono, 22050, rate), rate).name == "F# minor"


def test_streaming_in_odd_blocks_equals_one_shot():
    track = synthesize_track(120.0, "Bb", "major", seconds=12, sample_rate=RATE, seed=8)
    mono = track.samples.mean(axis=0)
    analyzer = KeyAnalyzer(RATE)
    for start in range(0, len(mono), 5003):
        analyzer.add(mono[start : start + 5003])
    streamed, whole = analyzer.result(), estimate_key(mono, RATE)
    assert streamed.name == whole.name
    assert streamed.confidence == pytest.approx(whole.confidence, abs=1e-9)


def test_state_round_trip_and_archives_from_before_the_tonality_count():
    track = synthesize_track(120.0, "E", "major", seconds=10, sample_rate=RATE, seed=9)
    analyzer = KeyAnalyzer(RATE)
    analyzer.add(track.samples.mean(axis=0))
    state = analyzer.state()
    assert KeyAnalyzer.restore(state).result() == estimate_key(track.samples.mean(axis=0), RATE)
    old = {name: state[name] for name in ("key_chroma", "key_bass")}
    assert KeyAnalyzer.restore(old).result().name == "E major"


def test_mirex_score_weights():
    assert mirex_score("C", "major", "C", "major") == 1.0
    assert mirex_score("C", "major", "G", "major") == 0.5  # a fifth up
    assert mirex_score("C", "major", "F", "major") == 0.5  # a fifth down
    assert mirex_score("C", "major", "A", "minor") == 0.3  # relative
    assert mirex_score("A", "minor", "C", "major") == 0.3
    assert mirex_score("C", "major", "C", "minor") == 0.2  # parallel
    assert mirex_score("C", "major", "D", "major") == 0.0
    assert mirex_score("C", "major", None, None) == 0.0  # no key


def test_camelot_wheel():
    assert camelot("A", "minor") == "8A"
    assert camelot("C", "major") == "8B"
    assert camelot("G", "major") == "9B"
    assert camelot("E", "minor") == "9A"
    assert camelot("B", "major") == "1B"
    assert camelot("Ab", "minor") == "1A"
    codes = {camelot(t, s) for t in TONICS for s in ("major", "minor")}
    assert codes == {f"{n}{m}" for n in range(1, 13) for m in "AB"}
    # Relative keys share a number; a fifth up is one step round the wheel.
    for i, tonic in enumerate(TONICS):
        relative_minor = TONICS[(i + 9) % 12]
        assert camelot(tonic, "major")[:-1] == camelot(relative_minor, "minor")[:-1]
        fifth = TONICS[(i + 7) % 12]
        assert (
            int(camelot(fifth, "major")[:-1]) % 12 == (int(camelot(tonic, "major")[:-1]) + 1) % 12
        )


@functools.cache
def _nothing_pitched() -> dict[str, np.ndarray]:
    noise = np.random.default_rng(3).normal(0, 0.1, RATE * 10)
    signals = {"DC only": np.full(RATE * 10, 0.25, dtype=np.float32), "white noise": noise}
    for style, seed in (("dnb", 31), ("house", 32), ("trap", 33), ("techno", 34)):
        signals[f"{style} drums only"] = styles.synthesize(style, seed, 12, drums_only=True)
    return {
        k: v if isinstance(v, np.ndarray) else v.samples.mean(axis=0) for k, v in signals.items()
    }


@pytest.mark.parametrize("name", list(_nothing_pitched()))
def test_no_key_without_pitched_content(name):
    key = estimate_key(_nothing_pitched()[name], RATE)
    assert key.name is None and key.confidence is None and key.camelot is None
    assert key.reason.startswith("no pitched content")
    assert json.loads(json.dumps(key.to_dict(), allow_nan=False))["reason"] == key.reason


def test_the_same_drums_with_their_music_have_a_key():
    """The null is about the drums having no notes, not about drums being there."""
    track = styles.synthesize("dnb", 31, 12)
    assert estimate_key(track.samples.mean(axis=0), RATE).reason is None
    pads = estimate_key(styles.pads(seed=22), RATE)  # sustained C major chords, no onsets
    assert pads.name == "C major"


def test_silence_has_no_key():
    key = estimate_key(np.zeros(RATE * 5, dtype=np.float32), RATE)
    assert key.name is None and key.camelot is None
    assert key.reason.startswith("silence")
    assert json.dumps(key.to_dict(), allow_nan=False)
