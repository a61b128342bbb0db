"""Flat tops on signals whose clipping is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from audio.clipping import FULL_SCALE, ClippingDetector
from audio.decode import decode
from tests.support.audio import styles
from tests.support.audio.signals import write_audio

RATE = 48000


def detect(samples: np.ndarray, block: int | None = None):
    detector = ClippingDetector(RATE, samples.shape[0])
    step = block or samples.shape[1]
    for start in range(0, samples.shape[1], step):
        detector.add(samples[:, start : start + step])
    return detector.result()


def clipped_sine(seconds: float, freq: float, drive: float, start_s: float = 0.0) -> np.ndarray:
    """A sine of peak ``drive`` hard-clipped at ±1, silent for its first ``start_s``."""
    t = np.arange(round(seconds * RATE)) / RATE
    tone = np.clip(drive * np.sin(2 * np.pi * freq * t), -1.0, 1.0)
    tone[t < start_s] = 0.0
    return tone.astype(np.float32)[None, :]


def test_a_hard_clipped_sine_is_found_at_its_first_flat_top(tmp_path):
    """Driven 2× into ±1, a 1 kHz sine starting at 0.3 s is flat where |2 sin| ≥ 1: from 1/12
    of a period on, two flat tops a period, each a third of a period long (flat two thirds of
    the time) — and stays so through a 16-bit WAV."""
    samples = clipped_sine(2.0, 1000.0, 2.0, start_s=0.3)
    path = write_audio(tmp_path / "clipped.wav", samples, RATE, "wav")
    decoded, _ = decode(path)
    clipping = detect(decoded)
    first = 0.3 + 1 / 12 / 1000
    assert clipping.first_s == pytest.approx(first, abs=0.010)
    assert clipping.runs == pytest.approx(2 * 1000 * 1.7, abs=2)
    # Flat: every sample 16 bits round to full scale, |2 sin| within half a step of 1 or above.
    t = np.arange(round(1.7 * RATE)) / RATE
    flat = np.abs(2 * np.sin(2 * np.pi * 1000 * t)) >= FULL_SCALE - 2.0**-16
    assert clipping.clipped_s == pytest.approx(np.count_nonzero(flat) / RATE, abs=2 / RATE)


def test_both_channels_count_and_the_longest_channel_sets_the_time():
    left = clipped_sine(1.0, 500.0, 2.0)
    right = clipped_sine(1.0, 500.0, 1.2)
    clipping = detect(np.concatenate([left, right]))
    # Each channel has 1,000 flat tops; the left is flat two thirds of the time.
    assert clipping.runs == 2000
    assert clipping.clipped_s == pytest.approx(2 / 3, rel=0.05)


@pytest.mark.parametrize("block", [1, 2, 3, 7, 4096])
def test_a_flat_top_split_between_blocks_counts_once(block):
    samples = np.zeros((1, 64), np.float32)
    samples[0, 10:15] = 1.0  # one run of 5
    samples[0, 30:33] = -1.0  # one run of 3, negative
    samples[0, 50:52] = 1.0  # two samples: no flat top
    samples[0, 62:] = 1.0  # two at the very end: none either
    clipping = detect(samples, block)
    assert (clipping.runs, round(clipping.clipped_s * RATE)) == (2, 8)
    assert clipping.first_s == pytest.approx(10 / RATE)


def test_a_run_the_file_ends_in_is_counted():
    samples = np.zeros((1, 20), np.float32)
    samples[0, 16:] = 1.0
    assert detect(samples, 5).runs == 1


def test_float_overs_beyond_full_scale_are_flat_tops_too():
    samples = np.zeros((1, 10), np.float32)
    samples[0, 2:6] = [1.2, 1.4, 1.1, 1.3]
    assert detect(samples).runs == 1


@pytest.mark.parametrize("seed", [9_400_000, 9_401_000, 9_402_000])
def test_a_clean_master_peaking_at_minus_one_dbfs_and_one_at_full_scale_have_none(seed):
    """Music whose crests touch −1 dBFS, or full scale exactly once per crest, is not clipped:
    the ceiling is reached by single samples, never held."""
    track = styles.synthesize("house", seed, seconds=8.0, rate=RATE)
    assert detect(track.samples).runs == 0
    loud = track.samples / np.abs(track.samples).max()
    assert np.abs(loud).max() >= FULL_SCALE
    assert detect(loud.astype(np.float32)).runs == 0
