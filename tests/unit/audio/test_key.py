"""Key on synthesized music of known key: all 24 keys, idiomatic progressions, i–VI–VII too.

The corpus test runs on held-apart seeds (``conftest.SEEDS``), never used to measure the
profiles of ``audio/key.py``; its floors are the ones BENCHMARKS.md publishes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from audio.key import TONICS, KeyAnalyzer, camelot, estimate_key
from audio.resample import resample
from tests.unit.audio.accuracy import KEY_EXACT_FLOOR, KEY_MIREX_FLOOR, mirex_score, score_key
from tests.unit.audio.music import synthesize_track


def test_mirex_score_and_exact_rate_on_the_held_apart_corpus(music_corpus):
    score = score_key(music_corpus)
    assert score.mirex >= KEY_MIREX_FLOOR, score.misses
    assert score.exact >= KEY_EXACT_FLOOR, score.misses
    assert {(t.tonic, t.scale) for t in music_corpus} == {
        (tonic, scale) for tonic in TONICS for scale in ("major", "minor")
    }


@pytest.mark.parametrize(("tonic", "seed"), [("A", 5), ("C#", 6), ("F", 7), ("Bb", 8)])
def test_the_minor_i_vi_vii_loop_stays_minor(tonic, seed):
    loop = [0, 5, 6, 0]  # i–VI–VII–i: its notes are the relative major's
    track = synthesize_track(100.0, tonic, "minor", 20, 11025, seed=seed, progression=loop)
    key = estimate_key(track.samples.mean(axis=0), 11025)
    assert key.name == f"{tonic} minor"
    assert key.camelot == camelot(tonic, "minor")


@pytest.mark.parametrize("rate", [44100, 48000, 96000])
def test_a_twin_at_another_rate_gives_the_same_key(rate):
    track = synthesize_track(110.0, "F#", "minor", seconds=15, sample_rate=22050, seed=21)
    mono = track.samples.mean(axis=0)
    assert estimate_key(resample(mono, 22050, rate), rate).name == "F# minor"


def test_streaming_in_odd_blocks_equals_one_shot():
    track = synthesize_track(120.0, "Bb", "major", seconds=12, sample_rate=11025, seed=8)
    mono = track.samples.mean(axis=0)
    analyzer = KeyAnalyzer(11025)
    for start in range(0, len(mono), 5003):
        analyzer.add(mono[start : start + 5003])
    streamed, whole = analyzer.result(), estimate_key(mono, 11025)
    assert streamed.name == whole.name
    assert streamed.confidence == pytest.approx(whole.confidence, abs=1e-9)


def test_mirex_score_weights():
    assert mirex_score("C", "major", "C", "major") == 1.0
    assert mirex_score("C", "major", "G", "major") == 0.5  # a fifth up
    assert mirex_score("C", "major", "F", "major") == 0.5  # a fifth down
    assert mirex_score("C", "major", "A", "minor") == 0.3  # relative
    assert mirex_score("A", "minor", "C", "major") == 0.3
    assert mirex_score("C", "major", "C", "minor") == 0.2  # parallel
    assert mirex_score("C", "major", "D", "major") == 0.0


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


def test_silence_has_no_key():
    key = estimate_key(np.zeros(11025 * 5, dtype=np.float32), 11025)
    assert key.name is None and key.camelot is None
    assert json.dumps(key.to_dict(), allow_nan=False)
