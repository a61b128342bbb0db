"""Tempo, beats and confidence on synthesized music of known BPM, and nulls where there is none.

The corpus tests run on held-apart seeds of two generators (``conftest.SEEDS`` of ``music.py``,
``styles.HELD_APART_FIRST_SEED`` of ``styles.py``), never used to set ``audio/tempo.py``; their
floors are the ones BENCHMARKS.md publishes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from audio.resample import resample
from audio.tempo import TempoAnalyzer, estimate_tempo
from tests.support.audio import styles
from tests.support.audio.accuracy import (
    BEAT_F_FLOOR,
    TEMPO_ACCURACY1_FLOOR,
    TEMPO_ACCURACY2_FLOOR,
    beat_f_measure,
    score_beats,
    score_tempo,
    within,
)
from tests.support.audio.music import synthesize_track

RATE = 11025


def test_tempo_accuracy_on_the_held_apart_corpus(music_corpus):
    """Accuracy1 (within 4 %) and Accuracy2 (half or double allowed) at least their floors."""
    score = score_tempo(music_corpus)
    assert score.accuracy1 >= TEMPO_ACCURACY1_FLOOR, score.misses
    assert score.accuracy2 >= TEMPO_ACCURACY2_FLOOR, score.misses
    for estimate in score.estimates:
        assert estimate.half_bpm == pytest.approx(estimate.bpm / 2)
        assert estimate.double_bpm == pytest.approx(estimate.bpm * 2)
        assert 0 < estimate.confidence <= 1 and estimate.reason is None


def test_tempo_and_beats_on_independent_styles(styles_corpus):
    """Drum and bass, trap, punk, swing, waltz, house, ballads, fast techno, intros of pads."""
    score = score_tempo(styles_corpus)
    assert score.accuracy1 >= TEMPO_ACCURACY1_FLOOR, score.misses
    assert score.accuracy2 >= TEMPO_ACCURACY2_FLOOR, score.misses
    assert score_beats(styles_corpus, score.estimates) >= BEAT_F_FLOOR
    for estimate, track in zip(score.estimates, styles_corpus, strict=True):
        if within(estimate.bpm, track.bpm):  # the grid's spacing is the tempo's
            assert np.median(np.diff(estimate.beats)) == pytest.approx(60 / track.bpm, rel=0.02)
        if track.style == "intro":  # no beats over the 8 s of pads
            assert min(estimate.beats) > 8.0 - 0.1


def test_beat_f_measure():
    truth = (1.0, 1.5, 2.0, 2.5)
    assert beat_f_measure(truth, truth) == 1.0
    assert beat_f_measure(tuple(b + 0.025 for b in truth), truth) == 1.0
    assert beat_f_measure(tuple(b + 0.25 for b in truth), truth) == 0.0  # the offbeats
    assert beat_f_measure((1.0, 1.5), truth) == pytest.approx(2 / 3)


@pytest.mark.parametrize("bpm", [72.0, 174.0])
def test_the_octave_traps(bpm):
    track = synthesize_track(bpm, "D", "minor", seconds=20, sample_rate=RATE, seed=7)
    assert within(estimate_tempo(track.samples.mean(axis=0), RATE).bpm, bpm)


@pytest.mark.parametrize("rate", [44100, 48000])
def test_a_twin_at_another_rate_gives_the_same_tempo_and_beats(rate):
    track = synthesize_track(128.0, "G", "major", seconds=15, sample_rate=22050, seed=11)
    mono = track.samples.mean(axis=0)
    reference = estimate_tempo(mono, 22050)
    twin = estimate_tempo(resample(mono, 22050, rate), rate)
    assert twin.bpm == pytest.approx(reference.bpm, rel=0.01)
    assert within(twin.bpm, 128.0)
    assert beat_f_measure(twin.beats, reference.beats, tolerance=0.012) > 0.95


def test_streaming_in_odd_blocks_equals_one_shot():
    track = synthesize_track(97.0, "E", "minor", seconds=15, sample_rate=RATE, seed=3)
    mono = track.samples.mean(axis=0)
    analyzer = TempoAnalyzer(RATE)
    for start in range(0, len(mono), 7001):
        analyzer.add(mono[start : start + 7001])
    streamed, whole = analyzer.result(), estimate_tempo(mono, RATE)
    assert streamed.bpm == pytest.approx(whole.bpm, rel=1e-6)
    assert streamed.beats == pytest.approx(whole.beats, abs=1e-9)


def test_state_round_trip_and_archives_from_before_the_band_envelopes():
    track = styles.synthesize("dnb", 3, seconds=12)
    analyzer = TempoAnalyzer(RATE)
    analyzer.add(track.samples.mean(axis=0))
    state = analyzer.state()
    restored = TempoAnalyzer.restore(state).result()
    assert restored == TempoAnalyzer.restore(dict(state)).result()
    assert within(restored.bpm, track.bpm) and len(restored.beats) > 20
    old = TempoAnalyzer.restore({"tempo_envelope": state["tempo_envelope"]}).result()
    assert old.bpm is not None and old.reason is None  # the first guess, without band evidence


def _clicks(period_s: float, seconds: float, seed: int = 0) -> np.ndarray:
    """Identical broadband clicks every ``period_s``: the same onsets at every octave."""
    rng = np.random.default_rng(seed)
    out = np.zeros(round(seconds * RATE))
    click = rng.normal(0, 0.5, round(0.01 * RATE)) * np.exp(-np.arange(round(0.01 * RATE)) / 30)
    for at in np.arange(0.1, seconds - 0.1, period_s):
        i = round(at * RATE)
        out[i : i + len(click)] += click
    return out


def _backbeat(bpm: float, seconds: float) -> np.ndarray:
    """Kick on 1 and 3, snare on 2 and 4, hats in eighths: a beat nobody hears at another octave."""
    rng = np.random.default_rng(1)
    beat, out = 60 / bpm, np.zeros(round(seconds * RATE))
    t = np.arange(round(0.3 * RATE)) / RATE
    kick = np.sin(2 * np.pi * 55 * t) * np.exp(-t * 12)
    snare = rng.normal(0, 0.6, len(t)) * np.exp(-t * 25)
    hat = np.diff(rng.normal(0, 0.3, 301)) * np.exp(-np.arange(300) / 60)
    for n, at in enumerate(np.arange(0.05, seconds - 0.4, beat / 2)):
        i = round(at * RATE)
        sound = hat if n % 2 else (kick if n % 4 == 0 else snare) + np.pad(hat, (0, len(t) - 300))
        out[i : i + len(sound)] += sound
    return out


def test_confidence_is_low_when_the_octave_is_ambiguous_and_high_when_it_is_not():
    ambiguous = estimate_tempo(_clicks(0.3, 16.0), RATE)  # as periodic at 100 as at 200 BPM
    assert any(within(ambiguous.bpm, bpm) for bpm in (100.0, 200.0))
    assert ambiguous.confidence < 0.5
    clear = estimate_tempo(_backbeat(100.0, 16.0), RATE)
    assert within(clear.bpm, 100.0)
    assert clear.confidence >= 0.5


@pytest.mark.parametrize("seed", [20, 21])
def test_no_tempo_for_sustained_pads_or_speech(seed):
    """Pads swelling in over 2 s (no onsets), and speech-like sound (syllables at ~4–5 Hz of
    irregular length: glottal pulses through formant resonators, ``styles.speech_like``)."""
    for mono in (styles.pads(seed=seed), styles.speech_like(seed=seed)):
        tempo = estimate_tempo(mono, RATE)
        assert tempo.bpm is None and tempo.confidence is None and tempo.beats == ()
        assert "no steady beat" in tempo.reason


def test_silence_and_too_short_have_no_tempo_and_say_why():
    silent = estimate_tempo(np.zeros(RATE * 10, dtype=np.float32), RATE)
    assert silent.bpm is None and silent.confidence is None
    assert silent.reason.startswith("silence")
    record = silent.to_dict()
    assert record["beats"] == [] and record["reason"] == silent.reason
    assert json.dumps(record, allow_nan=False)
    short = estimate_tempo(_backbeat(120.0, 3.0), RATE)  # 3 s of a clear beat: too short
    assert short.bpm is None and short.reason.startswith("too short")


def test_to_dict_is_json_safe_with_beats():
    tempo = estimate_tempo(_backbeat(120.0, 8.0), RATE)
    record = json.loads(json.dumps(tempo.to_dict(), allow_nan=False))
    assert record["bpm"] == pytest.approx(tempo.bpm, abs=0.01) and record["reason"] is None
    assert record["beats"] == pytest.approx(tempo.beats, abs=0.001)


def test_piecewise_autocorrelation_equals_the_direct_sum():
    from audio.tempo import ACF_PIECE, autocorrelation

    x = np.random.default_rng(0).random(3 * ACF_PIECE + 123)
    centred = x - x.mean()
    lags = range(0, 801, 40)
    direct = np.array([centred[: len(x) - k] @ centred[k:] / (len(x) - k) for k in lags])
    assert np.allclose(autocorrelation(x, 800)[list(lags)], direct / direct[0], atol=1e-12)


def test_beats_keep_to_the_beat_after_an_offbeat_pickup():
    """The grid's phase is the one that fits all the onsets, not the first onset's (here a
    loud click an eighth before the first beat)."""
    beat = 60 / 120.0
    mono = np.concatenate([np.zeros(RATE), _backbeat(120.0, 12.0)])
    pickup = _clicks(1.0, 1.0, seed=2)[round(0.1 * RATE) : round(0.12 * RATE)] * 4  # loud, early
    start = round((1.05 - beat / 2) * RATE)
    mono[start : start + len(pickup)] += pickup
    tempo = estimate_tempo(mono, RATE)
    truth = tuple(1.05 + k * beat for k in range(int(11.5 / beat)))
    assert within(tempo.bpm, 120.0)
    assert beat_f_measure(tempo.beats, truth) > 0.9
