"""Bandwidth and lossy origin: wideband music against the same music through a lossy encoder,
saved as lossless.

The seeds here (styles 8_300_000…) set nothing: ``audio.bandwidth``'s constants were fixed
first (see its docstring and BENCHMARKS.md).
"""

from __future__ import annotations

import numpy as np
import pytest

from audio.analyze import analyze_file
from audio.decode import decode
from audio.transcode import AudioEncoder
from tests.support.audio import styles
from tests.support.audio.signals import write_audio

RATE = 44100
STYLES = ("dnb", "waltz", "ballad", "techno")


def lossy_copy(samples: np.ndarray, folder, name: str, fmt: str, bitrate: int):
    """``samples`` encoded as ``fmt`` at ``bitrate``, decoded and saved as FLAC."""
    encoded = folder / f"{name}.{fmt}"
    with AudioEncoder(encoded, fmt, in_rate=RATE, in_channels=2, bitrate=bitrate) as encoder:
        encoder.write(samples)
    decoded, rate = decode(encoded)
    return write_audio(folder / f"{name}-{fmt}.flac", decoded, rate, "flac"), encoded


@pytest.mark.parametrize("style", STYLES)
def test_wideband_music_is_not_lossy_and_its_128k_mp3_saved_as_flac_is(tmp_path, style):
    seed = 8_300_000 + 1000 * list(styles.STYLES).index(style)
    track = styles.synthesize(style, seed, seconds=10.0, rate=RATE)
    original = analyze_file(write_audio(tmp_path / "wide.flac", track.samples, RATE, "flac"))
    assert original.checks.lossy_origin is False
    assert original.checks.bandwidth_hz > 20_000
    flac, mp3 = lossy_copy(track.samples, tmp_path, "song", "mp3", 128_000)
    lossy = analyze_file(flac).checks
    assert lossy.lossy_origin is True
    assert 15_500 <= lossy.bandwidth_hz <= 17_600  # LAME's 128 kbit/s low-pass
    assert "lossy" in lossy.reasons["lossy_origin_reason"]
    # The MP3 itself is expected to be cut off: no verdict on a lossy upload.
    as_uploaded = analyze_file(mp3).checks
    assert as_uploaded.lossy_origin is None
    assert "lossy format" in as_uploaded.reasons["lossy_origin_reason"]


def test_an_aac_at_96k_saved_as_wav_is_found_too(tmp_path):
    track = styles.synthesize("house", 8_305_001, seconds=10.0, rate=RATE)
    flac, _ = lossy_copy(track.samples, tmp_path, "song", "aac", 96_000)
    assert analyze_file(flac).checks.lossy_origin is True


def test_a_lone_tone_is_no_wall_and_silence_has_no_bandwidth(tmp_path):
    t = np.arange(5 * RATE) / RATE
    tone = np.stack([0.3 * np.sin(2 * np.pi * 5000 * t)] * 2).astype(np.float32)
    checks = analyze_file(write_audio(tmp_path / "tone.flac", tone, RATE, "flac")).checks
    assert checks.lossy_origin is not True
    silent = analyze_file(write_audio(tmp_path / "silent.flac", tone * 0, RATE, "flac")).checks
    assert silent.bandwidth_hz is None and silent.lossy_origin is None
    assert "silence" in silent.reasons["bandwidth_reason"]
