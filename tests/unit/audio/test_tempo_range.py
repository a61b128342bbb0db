"""The tempo range: a reading folded by octaves into LOW-HIGH, its grid and confidence with it,
on signals whose tempo and beats are known by construction; the range's parsing."""

from __future__ import annotations

import numpy as np
import pytest

from audio.bpm_range import BadBpmRangeError, BpmRange, octave_in_range, parse_bpm_range
from audio.tempo import Tempo, estimate_tempo
from audio.tempo_range import estimate_tempo_in_range, fold_tempo
from tests.support.audio import styles
from tests.support.audio.accuracy import beat_f_measure, within

RATE = 11025


@pytest.fixture(scope="module")
def half_time_dnb():
    """Drum and bass at 170 whose automatic reading is 85 (its snare on 2 and 4 repeats every
    two beats; seed 2 of the style, found reading half)."""
    track = styles.synthesize("dnb", 2, seconds=16.0, rate=RATE, bpm=170.0)
    mono = track.samples.mean(axis=0)
    automatic = estimate_tempo(mono, RATE)
    assert within(automatic.bpm, 85.0)  # the trap this range is for
    return track, mono, automatic


def test_a_backbeat_read_at_half_comes_back_whole_in_its_range(half_time_dnb):
    track, mono, automatic = half_time_dnb
    folded = estimate_tempo_in_range(mono, RATE, BpmRange(120, 200))
    assert within(folded.bpm, 170.0)
    assert folded.half_bpm == pytest.approx(folded.bpm / 2)
    assert folded.double_bpm == pytest.approx(folded.bpm * 2)
    # the grid doubled: every true beat found, spaced at the new tempo
    assert beat_f_measure(folded.beats, track.beats) >= 0.9
    assert np.median(np.diff(folded.beats)) == pytest.approx(60 / 170, rel=0.02)
    assert beat_f_measure(automatic.beats, track.beats) < 0.7
    # the octave is the caller's: a confidence, at most half
    assert folded.confidence is not None and 0 < folded.confidence <= 0.5


def test_halving_keeps_the_beats_on_the_stronger_onsets():
    """Punk at 170, its snare (2 and 4) the loudest hit: folded into 60–100 the grid keeps
    every other beat, on the snares."""
    track = styles.synthesize("punk", 1, seconds=16.0, rate=RATE, bpm=170.0)
    mono = track.samples.mean(axis=0)
    assert within(estimate_tempo(mono, RATE).bpm, 170.0)
    folded = estimate_tempo_in_range(mono, RATE, BpmRange(60, 100))
    assert within(folded.bpm, 85.0)
    assert beat_f_measure(folded.beats, track.beats[1::2]) >= 0.9
    assert beat_f_measure(folded.beats, track.beats[0::2]) < 0.2


def test_a_reading_already_in_the_range_is_left_alone(half_time_dnb):
    _, mono, automatic = half_time_dnb
    assert estimate_tempo_in_range(mono, RATE, BpmRange(60, 200)) == automatic
    assert estimate_tempo_in_range(mono, RATE, BpmRange(80, 90)) == automatic


def test_no_tempo_stays_none():
    pads = styles.pads(seconds=12.0, rate=RATE, seed=1)
    assert estimate_tempo_in_range(pads, RATE, BpmRange(120, 200)).bpm is None


@pytest.mark.parametrize(
    ("bpm", "low", "high", "folded"),
    [
        (85.0, 120, 200, 170.0),
        (170.0, 60, 100, 85.0),
        (40.0, 120, 200, 160.0),  # two octaves up
        (280.0, 60, 80, 70.0),  # two down
        (128.0, 100, 140, 128.0),
        (100.0, 120, 130, 100.0),  # no octave inside: 100 is nearer 120 than 200 is to 130
        (100.0, 170, 190, 200.0),  # … and 200 nearer 170 than 100
        (60.0, 100, 110, 120.0),
    ],
)
def test_the_octave_chosen(bpm, low, high, folded):
    assert bpm * 2.0 ** octave_in_range(bpm, BpmRange(low, high)) == pytest.approx(folded)


def test_folding_a_result_without_its_onsets():
    """A stored result (no onsets): the grid every other beat from the first, or midpoints;
    the confidence capped at half; halved again when no octave fitted."""
    beats = tuple(0.5 + i * 60 / 170 for i in range(9))
    tempo = Tempo(170.0, 0.8, 85.0, 340.0, beats, None)
    halved = fold_tempo(tempo, BpmRange(70, 100))
    assert halved.bpm == pytest.approx(85.0)
    assert halved.beats == pytest.approx(beats[::2])
    assert halved.confidence == pytest.approx(0.5)
    doubled = fold_tempo(Tempo(85.0, 0.3, 42.5, 170.0, beats[::2], None), BpmRange(150, 200))
    assert doubled.beats == pytest.approx(beats)
    assert doubled.confidence == pytest.approx(0.3)
    outside = fold_tempo(tempo, BpmRange(100, 110))  # 85 and 170 both outside: 85 is nearer
    assert outside.bpm == pytest.approx(85.0) and outside.confidence == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [("120-200", 120, 200), (" 87.5 - 175 ", 87.5, 175), ("30-300", 30, 300)],
)
def test_a_range_parsed(text, low, high):
    parsed = parse_bpm_range(text)
    assert (parsed.low, parsed.high) == (low, high)
    assert BpmRange.from_list(parsed.to_list()) == parsed


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("fast", "LOW-HIGH"),
        ("120", "LOW-HIGH"),
        ("120-200-300", "LOW-HIGH"),
        ("-5-100", "LOW-HIGH"),
        ("1e2-2e2", "LOW-HIGH"),
        ("9" * 100, "LOW-HIGH"),
        ("200-120", "low to high"),
        ("120-120", "low to high"),
        ("20-100", "30–300"),
        ("100-400", "30–300"),
    ],
)
def test_a_bad_range_says_what_is_accepted(text, says):
    with pytest.raises(BadBpmRangeError, match=says):
        parse_bpm_range(text)
