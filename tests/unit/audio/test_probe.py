"""probe(): duration, rate, channels, codec, bitrate, container and channel names."""

from __future__ import annotations

import pytest

from audio.probe import probe
from tests.support.audio import signals

#: Bits per sample of the PCM formats: their bitrate is rate × bits × channels exactly.
PCM_BITS = {"wav": 16, "wav24": 24, "wavf32": 32, "aiff": 16}

EXPECTED = {
    "wav": ("pcm_s16le", "wav"),
    "wav24": ("pcm_s24le", "wav"),
    "wavf32": ("pcm_f32le", "wav"),
    "aiff": ("pcm_s16be", "aiff"),
    "flac": ("flac", "flac"),
    "mp3": ("mp3", "mp3"),
    "ogg": ("vorbis", "ogg"),
    "opus": ("opus", "ogg"),
    "m4a": ("aac", "mp4"),
}


@pytest.mark.parametrize("fmt", list(EXPECTED))
def test_probe_each_format(tmp_path, fmt):
    rate = 48000 if fmt == "opus" else 44100
    path = signals.write_audio(
        signals.path_for(tmp_path, "p", fmt),
        signals.tone(seconds=3.0, rate=rate, channels=2),
        rate,
        fmt,
    )
    info = probe(path)
    codec, container = EXPECTED[fmt]
    assert info.codec.startswith(codec)  # FFmpeg's MP3 decoder is "mp3float"
    assert info.container == container
    assert (info.sample_rate, info.channels) == (rate, 2)
    assert abs(info.duration_s - 3.0) < 0.05
    assert info.channel_names == ("FL", "FR")
    if fmt in PCM_BITS:
        assert info.bitrate == rate * PCM_BITS[fmt] * 2
    else:  # compressed: the file's mean rate, container overhead aside
        assert info.bitrate == pytest.approx(path.stat().st_size * 8 / 3.0, rel=0.05)
    assert info.to_dict()["channel_names"] == ["FL", "FR"]


def test_probe_mp3_bitrate(tmp_path):
    path = signals.write_audio(
        tmp_path / "b.mp3", signals.noise(2.0, channels=2), 44100, bitrate=192_000
    )
    assert probe(path).bitrate == 192_000


def test_probe_surround_channel_names(tmp_path):
    path = signals.write_audio(
        tmp_path / "s.flac", signals.channel_tones([100.0 * i for i in range(1, 7)], 0.5), 48000
    )
    info = probe(path)
    assert info.channels == 6
    assert info.channel_names == ("FL", "FR", "FC", "LFE", "BL", "BR")


def test_probe_mono_rate_and_duration(tmp_path):
    path = signals.write_audio(tmp_path / "m.wav", signals.tone(seconds=1.25, rate=8000), 8000)
    info = probe(path)
    assert (info.sample_rate, info.channels, info.channel_names) == (8000, 1, ("FC",))
    assert info.duration_s == pytest.approx(1.25, abs=1e-3)
