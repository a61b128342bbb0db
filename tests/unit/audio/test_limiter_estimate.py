"""The limiter's loudness estimated from a profile of the source, against the limiter run over
the whole signal and measured by our meter (the estimate has no tuned parameter: it replays the
limiter's own constants bucket by bucket; these tracks are not the ones it was tried on)."""

from __future__ import annotations

import numpy as np
import pytest

from audio.limiter import TruePeakLimiter
from audio.limiter_estimate import (
    BackgroundProfile,
    SourceProfile,
    limited_lufs,
    settle_gain,
)
from audio.loudness import LoudnessMeter, measure_loudness
from tests.support.audio.music import TONICS, synthesize_track

RATE = 44100
CEILING = -1.05


def track(seed: int, seconds: float = 8.0, rate: int = RATE) -> np.ndarray:
    bpm = float(np.random.default_rng(seed).uniform(80, 170))
    scale = "minor" if seed % 2 else "major"
    return synthesize_track(bpm, TONICS[seed % 12], scale, seconds, rate, seed=seed).samples


def with_clicks(x: np.ndarray, rate: int = RATE) -> np.ndarray:
    """Quiet music (−30 LUFS) with a sharp click every 1.5 s that sets the peak (high crest
    factor)."""
    x = x * np.float32(10 ** ((-30.0 - measure_loudness(x, rate).integrated_lufs) / 20))
    t = np.arange(round(0.004 * rate)) / rate
    click = (0.5 * np.sin(2 * np.pi * 3000 * t) * np.exp(-t * 800)).astype(np.float32)
    for start in range(rate // 4, x.shape[1] - len(click), round(1.5 * rate)):
        x[:, start : start + len(click)] += click
    return x


def profile_of(x: np.ndarray, rate: int = RATE, block: int = 10_000):
    profile = SourceProfile(rate, x.shape[0])
    for start in range(0, x.shape[1], block):
        profile.add(x[:, start : start + block])
    return profile.result()


def limited_exactly(x: np.ndarray, gain_db: float, rate: int = RATE) -> float:
    limiter = TruePeakLimiter(rate, x.shape[0], gain_db=gain_db, ceiling_dbtp=CEILING)
    meter = LoudnessMeter(rate, x.shape[0])
    for start in range(0, x.shape[1], 65536):
        meter.add(limiter.process(x[:, start : start + 65536]))
    meter.add(limiter.flush())
    value = meter.integrated_lufs()
    assert value is not None
    return value


@pytest.mark.parametrize("seed", [31, 42, 57])
@pytest.mark.parametrize("over_db", [1.0, 4.0, 9.0])
def test_estimate_follows_the_limiter(seed, over_db):
    # The gain puts the true peak ``over_db`` over the ceiling: light to heavy limiting.
    x = track(seed)
    peak = measure_loudness(x, RATE).true_peak_dbtp
    gain = CEILING - peak + over_db
    estimate = limited_lufs(profile_of(x), gain, CEILING)
    assert estimate == pytest.approx(limited_exactly(x, gain), abs=0.05)


def test_estimate_follows_the_limiter_on_clicks_at_48_khz():
    x = with_clicks(track(64, rate=48000), 48000)
    loudness = measure_loudness(x, 48000)
    gain = -14.0 - loudness.integrated_lufs  # the clicks go ~10 dB over the ceiling
    assert loudness.true_peak_dbtp + gain > CEILING + 8
    estimate = limited_lufs(profile_of(x, 48000), gain, CEILING)
    assert estimate == pytest.approx(limited_exactly(x, gain, 48000), abs=0.05)


def test_without_limiting_the_estimate_is_the_meters_reading_plus_the_gain():
    x = track(75)
    loudness = measure_loudness(x, RATE)
    gain = CEILING - loudness.true_peak_dbtp - 3.0  # nothing near the ceiling
    estimate = limited_lufs(profile_of(x), gain, CEILING)
    assert estimate == pytest.approx(loudness.integrated_lufs + gain, abs=1e-3)


def test_settled_gain_brings_the_limited_signal_onto_the_target():
    # Limiting takes loudness away: the linear gain leaves the clicky file about 1 LU short.
    x = with_clicks(track(8))
    linear = -14.0 - measure_loudness(x, RATE).integrated_lufs
    assert limited_exactly(x, linear) < -14.5
    gain = settle_gain(profile_of(x), -14.0, CEILING, linear, 6.0)
    assert gain > linear + 0.5
    assert limited_exactly(x, gain) == pytest.approx(-14.0, abs=0.05)


def test_a_target_out_of_reach_gets_the_most_gain_allowed():
    x = track(9)
    linear = -4.0 - measure_loudness(x, RATE).integrated_lufs
    assert settle_gain(profile_of(x), -4.0, CEILING, linear, 6.0) == linear + 6.0


def test_the_profile_is_the_same_whatever_the_blocks_and_on_a_thread():
    x = track(12, seconds=3.0)
    whole = profile_of(x, block=x.shape[1])
    odd = profile_of(x, block=777)
    made = []
    for threaded in (True, False):
        background = BackgroundProfile(SourceProfile(RATE, 2), threaded=threaded)
        reused = np.empty((2, 4096))  # float64, overwritten block after block, as a caller may
        for start in range(0, x.shape[1], 4096):
            block = reused[:, : x[:, start : start + 4096].shape[1]]
            block[:] = x[:, start : start + 4096]
            background.add(block)
        made.append(background.result())
    for other in (odd, *made):
        assert np.array_equal(other.frames, whole.frames)
        # The detector's sums run in BLAS's order, which depends on where a block starts.
        np.testing.assert_allclose(other.peaks, whole.peaks, rtol=1e-5)
        np.testing.assert_allclose(other.energies, whole.energies, rtol=1e-5)
    assert whole.frames.sum() == x.shape[1]
    assert len(whole.peaks) == len(whole.energies) == len(whole.frames)


@pytest.mark.parametrize("chunk", [7 * 37, 7 * 500])
def test_the_estimate_in_chunks_is_the_estimate_at_once(monkeypatch, chunk):
    # Long files are estimated a few minutes of buckets at a time, the limiter's state carried.
    x = with_clicks(track(18))
    profile = profile_of(x)
    gains = (10.0, 16.0, 22.0)
    whole = [limited_lufs(profile, gain, CEILING) for gain in gains]
    monkeypatch.setattr("audio.limiter_estimate.CHUNK_BUCKETS", chunk)
    chunked = [limited_lufs(profile, gain, CEILING) for gain in gains]
    assert chunked == pytest.approx(whole, abs=1e-9)
