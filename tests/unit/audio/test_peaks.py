"""The true-peak detectors against a straightforward reference: one ``np.convolve`` per phase
and channel, in float64, every frame computed.

The detectors compute the interpolated points as matrix products, only where they may matter
(:class:`audio.true_peak.Polyphase`); they must read what the reference reads, to float32
rounding, wherever the contract says they are exact.
"""

from __future__ import annotations

import numpy as np
import pytest

from audio.limiter import HALF_TAPS, IntervalPeaks, StrictPeak, detector_taps
from audio.true_peak import TAPS, TruePeakMeter, interpolator, oversampling
from tests.support.audio.music import synthesize_track

RATE = 44100
#: float32 rounding of a sum of 32 products, relative to the signal's peak.
TOLERANCE = 1e-5


def reference_points(segment: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Largest magnitude over channels and phases of ``table @ segment[:, j : j + width]``,
    for every ``j``."""
    segment = segment.astype(np.float64)
    count = segment.shape[1] - table.shape[1] + 1
    out = np.zeros(max(0, count))
    if count <= 0:
        return out
    for row in table.astype(np.float64):
        for channel in segment:
            out = np.maximum(out, np.abs(np.convolve(channel, row[::-1], "valid")))
    return out


def reference_interval(segment: np.ndarray, rate: int = RATE) -> np.ndarray:
    """What :class:`IntervalPeaks` reads, everywhere."""
    table = np.concatenate([phases[1:] for phases in detector_taps(oversampling(rate))])
    count = max(0, segment.shape[1] - 2 * HALF_TAPS + 1)
    samples = np.abs(segment[:, HALF_TAPS - 1 : HALF_TAPS - 1 + count]).max(axis=0, initial=0)
    return np.maximum(samples, reference_points(segment, table)) if len(table) else samples


def signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    t = np.arange(3 * RATE) / RATE
    # A sweep from 15 to 22 kHz: near Nyquist the interpolators read far over the samples.
    sweep = np.sin(2 * np.pi * (15_000 * t + (22_000 - 15_000) / (2 * 3) * t**2))
    music = synthesize_track(100, "C", "major", seconds=3, sample_rate=RATE, seed=3).samples
    return {
        "noise": (0.3 * rng.standard_normal((2, 20_011))).astype(np.float32),
        "uniform": rng.uniform(-1, 1, (1, 9_999)).astype(np.float32),
        "sweep": np.stack([sweep, -0.5 * sweep]).astype(np.float32),
        "music": (music * 1.6).astype(np.float32),
    }


SIGNALS = signals()
CEILINGS = [0.0, 0.5, 0.9, 1.0, 1.3, 100.0]


@pytest.mark.parametrize("name", SIGNALS)
@pytest.mark.parametrize("length", [31, 32, 33, 95, 4_097, None])
def test_interval_peaks_are_exact_wherever_they_may_pass_the_ceiling(name, length):
    segment = SIGNALS[name][:, :length]
    truth = reference_interval(segment)
    scale = TOLERANCE * max(1.0, float(truth.max(initial=0)))
    detector = IntervalPeaks(RATE)
    for ceiling in CEILINGS:
        peaks = detector(segment, ceiling)
        assert peaks.shape == truth.shape
        over = truth > ceiling
        assert np.abs(peaks[over] - truth[over]).max(initial=0) <= scale
        # Elsewhere a lower bound, under the ceiling like the truth.
        assert (peaks <= truth + scale).all()
        assert (peaks[~over] <= ceiling + scale).all()


@pytest.mark.parametrize("name", SIGNALS)
def test_the_strict_peak_is_the_largest_reading_over_any_blocks(name):
    x = SIGNALS[name]
    silence = np.zeros((x.shape[0], 2 * HALF_TAPS - 1), dtype=np.float32)
    truth = float(reference_interval(np.concatenate([silence, x, silence], axis=1)).max())
    for floor in [0.0, 0.9, 1.3, 100.0]:
        for sizes in ([x.shape[1]], [1, 997, 13, 4_099, 2], [31, 64]):
            strict = StrictPeak(RATE, x.shape[0], floor)
            start, i = 0, 0
            while start < x.shape[1]:
                strict.add(x[:, start : start + sizes[i % len(sizes)]])
                start, i = start + sizes[i % len(sizes)], i + 1
            value = strict.result()
            if truth > floor:
                assert value == pytest.approx(truth, rel=TOLERANCE)
            else:
                assert value <= floor
        segment = x[:, :5_001]
        whole = reference_interval(segment).max()
        peak = IntervalPeaks(RATE).peak(segment, floor)
        assert peak == pytest.approx(whole, rel=TOLERANCE) if whole > floor else peak <= floor


def reference_meter(x: np.ndarray, rate: int = RATE) -> float:
    """BS.1770's true peak: the samples and the points of its 12-tap interpolator, with
    silence before the first sample (the meter's starting history)."""
    padded = np.concatenate([np.zeros((x.shape[0], TAPS - 1)), x], axis=1)
    taps = interpolator(oversampling(rate))
    points = reference_points(padded, taps).max(initial=0) if len(taps) else 0.0
    return max(float(np.abs(x).max()), float(points))


@pytest.mark.parametrize("name", SIGNALS)
@pytest.mark.parametrize("rate", [44_100, 96_000, 192_000])
def test_the_meter_reads_the_reference_true_peak_over_any_blocks(name, rate):
    x = SIGNALS[name]
    truth = reference_meter(x, rate)
    for sizes in ([x.shape[1]], [1, 997, 13, 4_099, 2], [11, 12, 100]):
        meter = TruePeakMeter(rate, x.shape[0])
        start, i = 0, 0
        while start < x.shape[1]:
            meter.add(x[:, start : start + sizes[i % len(sizes)]])
            start, i = start + sizes[i % len(sizes)], i + 1
        assert meter.peak == pytest.approx(truth, rel=TOLERANCE)
        assert meter.sample_peak == float(np.abs(x).max())
