"""DC offset: each channel's mean, against construction and FFmpeg's ``astats``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from audio.dc_offset import DcOffsetMeter
from tests.support.audio.reference import astats

RATE = 44100


def offsets(samples: np.ndarray, block: int = 1000) -> list[float | None]:
    meter = DcOffsetMeter(samples.shape[0])
    for start in range(0, samples.shape[1], block):
        meter.add(samples[:, start : start + block])
    return meter.result()


def test_a_dc_step_reads_its_mean_and_agrees_with_astats():
    """Silence, then +0.1 for the second half (on a tone): the mean is 0.05, −26.02 dBFS. The
    other channel is digital silence: no offset."""
    n = 4 * RATE
    t = np.arange(n) / RATE
    step = np.where(np.arange(n) >= n // 2, 0.1, 0.0) + 0.2 * np.sin(2 * np.pi * 441 * t)
    samples = np.stack([step, np.zeros(n)]).astype(np.float32)
    left, right = offsets(samples)
    assert left == pytest.approx(20 * math.log10(0.05), abs=0.01)
    assert right is None
    assert 10 ** (left / 20) == pytest.approx(abs(astats(samples, RATE)[0]["DC_offset"]), rel=1e-3)


def test_a_negative_offset_reads_its_magnitude():
    samples = np.full((1, RATE), -0.01, np.float32)
    assert offsets(samples)[0] == pytest.approx(-40.0, abs=0.01)
