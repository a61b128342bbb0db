"""Tempo on synthesized music of known BPM (70–180, the octave traps included).

The corpus test runs on held-apart seeds (``conftest.SEEDS``), never used to set the
thresholds of ``audio/tempo.py``; its floors are the ones BENCHMARKS.md publishes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from audio.resample import resample
from audio.tempo import TempoAnalyzer, estimate_tempo
from tests.unit.audio.accuracy import (
    TEMPO_ACCURACY1_FLOOR,
    TEMPO_ACCURACY2_FLOOR,
    score_tempo,
    within,
)
from tests.unit.audio.music import synthesize_track


def test_tempo_accuracy_on_the_held_apart_corpus(music_corpus):
    """Accuracy1 (within 4 %) and Accuracy2 (half or double allowed) at least their floors."""
    score = score_tempo(music_corpus)
    assert score.accuracy1 >= TEMPO_ACCURACY1_FLOOR, score.misses
    assert score.accuracy2 >= TEMPO_ACCURACY2_FLOOR, score.misses
    for estimate in score.estimates:
        assert estimate.half_bpm == pytest.approx(estimate.bpm / 2)
        assert estimate.double_bpm == pytest.approx(estimate.bpm * 2)
        assert 0 < estimate.confidence <= 1


@pytest.mark.parametrize("bpm", [72.0, 174.0])
def test_the_octave_traps(bpm):
    track = synthesize_track(bpm, "D", "minor", seconds=20, sample_rate=11025, seed=7)
    assert within(estimate_tempo(track.samples.mean(axis=0), 11025).bpm, bpm)


@pytest.mark.parametrize("rate", [44100, 48000, 96000])
def test_a_twin_at_another_rate_gives_the_same_tempo(rate):
    track = synthesize_track(128.0, "G", "major", seconds=15, sample_rate=22050, seed=11)
    mono = track.samples.mean(axis=0)
    reference = estimate_tempo(mono, 22050).bpm
    twin = estimate_tempo(resample(mono, 22050, rate), rate).bpm
    assert twin == pytest.approx(reference, rel=0.01)
    assert within(twin, 128.0)


def test_streaming_in_odd_blocks_equals_one_shot():
    track = synthesize_track(97.0, "E", "minor", seconds=15, sample_rate=11025, seed=3)
    mono = track.samples.mean(axis=0)
    analyzer = TempoAnalyzer(11025)
    for start in range(0, len(mono), 7001):
        analyzer.add(mono[start : start + 7001])
    assert analyzer.result().bpm == pytest.approx(estimate_tempo(mono, 11025).bpm, rel=1e-6)


def test_silence_and_noise_without_a_beat():
    silent = estimate_tempo(np.zeros(11025 * 10, dtype=np.float32), 11025)
    assert silent.bpm is None and silent.confidence is None
    assert json.dumps(silent.to_dict(), allow_nan=False)
    short = estimate_tempo(np.ones(11025, dtype=np.float32), 11025)  # 1 s: too short
    assert short.bpm is None


def test_piecewise_autocorrelation_equals_the_direct_sum():
    from audio.tempo import ACF_PIECE, _autocorrelation

    x = np.random.default_rng(0).random(3 * ACF_PIECE + 123)
    centred = x - x.mean()
    lags = range(0, 801, 40)
    direct = np.array([centred[: len(x) - k] @ centred[k:] / (len(x) - k) for k in lags])
    assert np.allclose(_autocorrelation(x, 800)[list(lags)], direct / direct[0], atol=1e-12)
