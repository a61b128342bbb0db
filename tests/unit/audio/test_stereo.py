"""Mono compatibility on channel pairs whose relation is known by construction."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest

from audio.loudness import LoudnessMeter
from audio.stereo import CorrelationMeter, mono_compatibility
from tests.support.audio import styles
from tests.support.audio.signals import noise

RATE = 48000


def measure(samples: np.ndarray, block: int = 4096):
    meter, correlation = LoudnessMeter(RATE, samples.shape[0]), CorrelationMeter(samples.shape[0])
    for start in range(0, samples.shape[1], block):
        meter.add(samples[:, start : start + block])
        correlation.add(samples[:, start : start + block])
    return mono_compatibility(samples.shape[0], correlation, meter.result())


def music(seconds: float = 10.0) -> np.ndarray:
    return styles.synthesize("swing", 9_410_000, seconds=seconds, rate=RATE).samples


def test_the_same_signal_in_both_channels_loses_nothing():
    left = music()[0]
    result = measure(np.stack([left, left]))
    assert result.stereo_correlation == pytest.approx(1.0, abs=1e-6)
    assert result.mono_loss_lu == pytest.approx(0.0, abs=0.01)
    assert result.reason is None


def test_uncorrelated_noise_loses_3_lu():
    result = measure(noise(20.0, RATE, 2, amplitude=0.2, seed=5))
    assert result.stereo_correlation == pytest.approx(0.0, abs=0.02)
    assert result.mono_loss_lu == pytest.approx(3.01, abs=0.1)


def test_one_channel_the_other_inverted_cancels_and_says_so():
    left = music()[0]
    result = measure(np.stack([left, -left]))
    assert result.stereo_correlation == pytest.approx(-1.0, abs=1e-6)
    assert result.mono_loss_lu >= 20
    assert "inverted" in result.reason


def test_a_half_inverted_mix_loses_what_pyloudnorm_says():
    """Left and right share half their signal, the rest in opposite phase: the loss is the
    stereo loudness less that of the mono sum on both channels, which pyloudnorm (with
    BS.1770's exact filter) measures independently."""
    track = music(12.0)
    common, side = track[0], track[1]
    stereo = np.stack([common + side, common - side]) * 0.5
    result = measure(stereo.astype(np.float32))
    meter = pyloudnorm.Meter(RATE, filter_class="DeMan")
    mono = (stereo[0] + stereo[1]) / 2
    expected = meter.integrated_loudness(stereo.T) - meter.integrated_loudness(
        np.stack([mono, mono]).T
    )
    assert result.mono_loss_lu == pytest.approx(expected, abs=0.1)
    assert -1 < result.stereo_correlation < 1


def test_mono_and_surround_files_have_no_mono_loss_and_say_why():
    mono = measure(music()[:1])
    assert (mono.stereo_correlation, mono.mono_loss_lu) == (None, None)
    assert "mono" in mono.reason
    surround = measure(np.tile(music()[:1], (6, 1)))
    assert surround.mono_loss_lu is None and "6 channels" in surround.reason
