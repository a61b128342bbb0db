"""Transcoding: every output format decodes and keeps the input's duration within 50 ms."""

from __future__ import annotations

import numpy as np
import pytest

from audio.decode import decode
from audio.probe import probe
from audio.transcode import FORMATS, AudioEncoder, transcode
from tests.support.audio import signals


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("seconds", [2.0, 3.7])
def test_transcode_keeps_duration(tmp_path, fmt, seconds):
    src = signals.write_audio(tmp_path / "in.wav", signals.tone(440.0, seconds, channels=2), 44100)
    out = tmp_path / f"out.{FORMATS[fmt].extension}"
    result = transcode(src, out, fmt)
    samples, rate = decode(out)
    assert abs(samples.shape[1] / rate - seconds) < 0.05
    assert abs(probe(out).duration_s - seconds) < 0.05
    assert result.duration_s == pytest.approx(seconds, abs=1e-3)
    assert result.size_bytes == out.stat().st_size > 0
    assert result.sample_rate == rate
    spectrum = np.abs(np.fft.rfft(samples[0]))
    assert abs(np.argmax(spectrum) * rate / samples.shape[1] - 440.0) < 2.0


def test_mp3_defaults_192k_44k1_stereo_from_96k_mono(tmp_path):
    src = signals.write_audio(tmp_path / "in.flac", signals.noise(2.0, rate=96000), 96000)
    result = transcode(src, tmp_path / "o.mp3", "mp3")
    info = probe(result.path)
    assert (result.bitrate, result.sample_rate, result.channels) == (192_000, 44100, 2)
    assert (info.sample_rate, info.channels, info.bitrate) == (44100, 2, 192_000)
    assert abs(info.duration_s - 2.0) < 0.05


def test_opus_is_48k_and_bitrate_is_honoured(tmp_path):
    src = signals.write_audio(tmp_path / "in.wav", signals.noise(3.0, channels=2), 44100)
    result = transcode(src, tmp_path / "o.opus", "opus", bitrate=64_000)
    info = probe(result.path)
    assert info.sample_rate == 48000 and info.codec == "opus"
    assert 40_000 < result.size_bytes * 8 / 3.0 < 90_000


def test_lossless_outputs_are_exact(tmp_path):
    original = signals.chirp(seconds=1.0, channels=2)
    for fmt in ("flac", "wav"):
        out = tmp_path / f"o.{fmt}"
        with AudioEncoder(out, fmt, in_rate=44100, in_channels=2) as enc:
            for start in range(0, original.shape[1], 1000):  # odd block sizes
                enc.write(original[:, start : start + 1000])
        samples, _ = decode(out)
        assert samples.shape == original.shape
        assert np.max(np.abs(samples - original)) < 1e-4


def test_encoder_rejects_wrong_channel_count(tmp_path):
    enc = AudioEncoder(tmp_path / "o.wav", "wav", in_rate=44100, in_channels=2)
    with pytest.raises(ValueError, match="channels"):
        enc.write(np.zeros((1, 100), np.float32))
    enc.write(np.zeros((2, 4410), np.float32))
    assert enc.close().duration_s == pytest.approx(0.1)
