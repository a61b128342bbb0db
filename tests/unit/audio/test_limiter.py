"""The look-ahead true-peak limiter, on signals whose peaks are known by construction.

True peaks are read twice: by our BS.1770 meter and by an independent reference (4×
``scipy.signal.resample_poly``, a different interpolation filter). The reference may read a
few hundredths of a dB above our detector (its filter's ripple), hence ``RESAMPLER_SLACK_DB``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import resample_poly

from audio.limiter import LOOKAHEAD_S, TruePeakLimiter
from audio.loudness import measure_loudness
from tests.support.audio.music import synthesize_track
from tests.support.audio.signals import tone

RATE = 44100
#: The reference resampler's ripple over our detector, dB: up to 0.021 measured on music
#: seeds 3 and 4 (+4 and +10 dB of gain into a −1 dBTP ceiling).
RESAMPLER_SLACK_DB = 0.03


def limit(x: np.ndarray, gain_db: float, ceiling_dbtp: float, sizes=None, **kwargs):
    """Run ``x`` through a limiter in blocks of ``sizes`` (cycled; None: one block)."""
    limiter = TruePeakLimiter(
        RATE, x.shape[0], gain_db=gain_db, ceiling_dbtp=ceiling_dbtp, **kwargs
    )
    parts, start, i = [], 0, 0
    while start < x.shape[1]:
        size = x.shape[1] if sizes is None else sizes[i % len(sizes)]
        parts.append(limiter.process(x[:, start : start + size]))
        start, i = start + size, i + 1
    parts.append(limiter.flush())
    return np.concatenate(parts, axis=1), limiter


def reference_peak_db(y: np.ndarray) -> float:
    return float(20 * np.log10(np.abs(resample_poly(y.astype(np.float64), 4, 1, axis=1)).max()))


@pytest.fixture(scope="module")
def music() -> np.ndarray:
    """6 s of synthesized music, peaks at −1 dBFS: drums give it a high crest factor."""
    return synthesize_track(100, "C", "major", seconds=6, sample_rate=RATE, seed=3).samples


def test_under_the_ceiling_the_output_is_exactly_input_times_gain(music):
    # −6 dB: the true peak (about −1 dBTP) stays 5 dB under the −1 dBTP ceiling.
    y, limiter = limit(music, -6.0, -1.0)
    assert np.array_equal(y, music * np.float32(10 ** (-6 / 20)))
    assert limiter.reduction_db == 0.0


@pytest.mark.parametrize("gain_db", [4.0, 12.0])
def test_positive_gain_is_held_under_the_ceiling(music, gain_db):
    y, limiter = limit(music, gain_db, -1.0)
    assert y.shape == music.shape
    assert measure_loudness(y, RATE).true_peak_dbtp <= -1.0 + 1e-5  # float rounding
    assert reference_peak_db(y) <= -1.0 + RESAMPLER_SLACK_DB
    # It only takes what it must: the most reduction is the excess of the true peak.
    excess = measure_loudness(music, RATE).true_peak_dbtp + gain_db + 1.0
    assert excess <= limiter.reduction_db <= excess + 0.1


def test_odd_block_sizes_give_the_one_shot_output(music):
    whole, _ = limit(music, 10.0, -1.0)
    pieces, _ = limit(music, 10.0, -1.0, sizes=[1, 997, 13, 4099, 65536, 2])
    assert pieces.shape == whole.shape
    assert np.abs(pieces - whole).max() <= 1e-6  # the release's float rounding, no more


def test_look_ahead_lowers_the_gain_before_a_click_and_leaves_the_rest():
    # A quiet tone with clicks at the very first sample and in the middle: only around the
    # clicks may the gain move; the ramp down starts before the click arrives.
    x = tone(440, seconds=2.0, rate=RATE, amplitude=0.1)
    middle = RATE
    x[0, 0] = x[0, middle] = 1.0
    y, limiter = limit(x, 0.0, -6.0)
    assert measure_loudness(y, RATE).true_peak_dbtp <= -6.0 + 1e-5
    lookahead = round(LOOKAHEAD_S * RATE)
    before = middle - lookahead // 2
    assert abs(y[0, before]) < 0.9 * abs(x[0, before])  # the gain is already going down
    untouched = middle - lookahead - 40  # beyond the look-ahead and the detector's reach
    assert y[0, untouched] == x[0, untouched]
    # 6 dB of reduction, held 30 ms and released at 50 dB/s, is gone 0.16 s after the click
    # (a release of 20 dB/s would take 0.33 s): exact again from 0.2 s.
    later = middle + round(0.2 * RATE)
    assert np.array_equal(y[:, later:], x[:, later:])
    assert limiter.reduction_db == pytest.approx(6.0, abs=0.05)


def test_a_loud_bass_note_is_held_without_distortion():
    # A 40 Hz sine 6 dB over the ceiling. Without the 30 ms hold the gain would dip at every
    # crest and recover between them: harmonics at −47 dB with our 50 dB/s release, −37 dB
    # with 200 dB/s. With it the gain is steady once the note is held.
    x = tone(40, seconds=3.0, rate=RATE, amplitude=1.0)
    y, _ = limit(x, 0.0, -6.0)
    steady = y[0, RATE:].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(steady * np.hanning(len(steady))))
    freqs = np.fft.rfftfreq(len(steady), 1 / RATE)
    level = [spectrum[np.argmin(np.abs(freqs - 40 * k))] for k in range(1, 20)]
    assert 20 * np.log10(max(level[1:]) / level[0]) < -80
    assert 20 * np.log10(np.abs(steady).max()) == pytest.approx(-6.0, abs=0.01)
