"""resample(): lengths, pitch kept, and no aliasing of content above the new Nyquist."""

from __future__ import annotations

import numpy as np
import pytest

from audio.resample import resample
from tests.support.audio import signals


def _peak_hz(x, rate):
    return np.argmax(np.abs(np.fft.rfft(x))) * rate / len(x)


@pytest.mark.parametrize("from_rate,to_rate", [(44100, 22050), (48000, 44100), (8000, 96000)])
def test_length_and_pitch(from_rate, to_rate):
    x = signals.tone(1000.0, 1.0, from_rate, channels=2)
    y = resample(x, from_rate, to_rate)
    assert y.dtype == np.float32 and y.shape == (2, to_rate)
    assert abs(_peak_hz(y[0], to_rate) - 1000.0) < 2.0
    mid = y[:, to_rate // 10 : -to_rate // 10]
    assert abs(np.max(np.abs(mid)) - 0.5) < 0.01


def test_content_above_new_nyquist_is_removed():
    x = signals.tone(15000.0, 1.0, 44100)[0]  # folds to 7050 Hz at 22050 if not filtered
    y = resample(x, 44100, 22050)
    middle = y[2000:-2000]  # the ends carry the filter's start-up transient
    assert np.sqrt(np.mean(middle**2)) < 0.5 / np.sqrt(2) * 10 ** (-60 / 20)


def test_same_rate_is_a_copy():
    x = signals.noise(0.1)
    y = resample(x, 44100, 44100)
    assert np.array_equal(x, y) and y is not x
