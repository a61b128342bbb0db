"""Features saved after one decode give the same results as measuring directly."""

from __future__ import annotations

import pytest

from audio.analyze import analyze_file, from_features
from audio.features import Features, extract
from tests.unit.audio.music import synthesize_track
from tests.unit.audio.signals import write_audio


def test_features_survive_a_round_trip_through_bytes(tmp_path):
    track = synthesize_track(93.0, "Eb", "major", seconds=12, sample_rate=44100, seed=6)
    path = tmp_path / "song.flac"
    write_audio(path, track.samples, 44100, "flac")
    features, writers = extract(path)
    assert writers == []
    data = features.to_bytes()
    assert len(data) < 100_000  # a few kB per minute, not the audio
    direct = analyze_file(path).to_dict()
    restored = from_features(str(path), Features.from_bytes(data))
    again = restored.to_dict()
    for key in ("integrated_lufs", "loudness_range_lu", "true_peak_dbtp", "bpm", "key",
                "camelot", "duration_s", "sample_rate", "channels", "codec"):  # fmt: skip
        assert again[key] == direct[key], key
    assert again["key"] == "Eb major" and abs(again["bpm"] / 93.0 - 1) < 0.04
    assert restored.waveform.minimum == pytest.approx(analyze_file(path).waveform.minimum)
