"""Features saved after one decode give the same results as measuring directly."""

from __future__ import annotations

import io

import numpy as np
import pytest

from audio.analyze import analyze_file, from_features
from audio.features import Features, extract
from audio.verdicts import NOT_MEASURED, REASON_KEYS, VALUE_KEYS
from tests.support.audio.music import synthesize_track
from tests.support.audio.signals import silence, write_audio


def test_features_survive_a_round_trip_through_bytes(tmp_path):
    track = synthesize_track(93.0, "Eb", "major", seconds=12, sample_rate=44100, seed=6)
    path = tmp_path / "song.flac"
    gap = silence(0.75, 44100, 2)  # the sound starts at 0.75 s and ends 12.75 s, 0.75 s early
    write_audio(path, np.concatenate([gap, track.samples, gap], axis=1), 44100, "flac")
    features, writers = extract(path)
    assert writers == []
    data = features.to_bytes()
    assert len(data) < 100_000  # a few kB per minute, not the audio
    direct = analyze_file(path).to_dict()
    restored = from_features(str(path), Features.from_bytes(data))
    again = restored.to_dict()
    for key in (
        "integrated_lufs",
        "loudness_range_lu",
        "true_peak_dbtp",
        "bpm",
        "key",
        "camelot",
        "duration_s",
        "sample_rate",
        "channels",
        "codec",
        "loudness_reason",
        "audio_start_s",
        "audio_end_s",
        "leading_silence_s",
        "trailing_silence_s",
        *VALUE_KEYS,
        *REASON_KEYS,
    ):
        assert again[key] == direct[key], key
    assert again["leading_silence_s"] == pytest.approx(0.75, abs=0.01)
    assert again["trailing_silence_s"] == pytest.approx(0.75, abs=0.01)
    assert again["key"] == "Eb major" and abs(again["bpm"] / 93.0 - 1) < 0.04
    assert restored.waveform.minimum == pytest.approx(analyze_file(path).waveform.minimum)


def test_an_archive_from_before_silence_was_measured_still_opens(tmp_path):
    path = write_audio(tmp_path / "tone.wav", silence(1.0, 8000, 1) + 0.25, 8000, "wav")
    features, _ = extract(path)
    with np.load(io.BytesIO(features.to_bytes())) as archive:
        old = {name: archive[name] for name in archive.files if not name.startswith("silence")}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **old)
    restored = Features.from_bytes(buffer.getvalue())
    assert restored.silence.result().to_dict() == dict.fromkeys(
        ["start_s", "end_s", "leading_s", "trailing_s"]
    )
    assert restored.loudness.result() == features.loudness.result()


def test_an_archive_from_before_the_checks_says_so_for_each(tmp_path):
    track = synthesize_track(120.0, "C", "major", seconds=5, sample_rate=44100, seed=1)
    features, _ = extract(write_audio(tmp_path / "song.flac", track.samples, 44100, "flac"))
    new = ("loudness_rows", "clipping_", "dc_", "stereo_", "spectrum_")
    with np.load(io.BytesIO(features.to_bytes())) as archive:
        old = {name: archive[name] for name in archive.files if not name.startswith(new)}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **old)
    checks = Features.from_bytes(buffer.getvalue()).checks().to_dict()
    for key in ("channel_loudness_lufs", "clipping", "dc_offset_dbfs", "mono_loss_lu"):
        assert checks[key] is None, key
    for key in ("channel_loudness_reason", "clipping_reason", "mono_reason", "bandwidth_reason"):
        assert checks[key] == NOT_MEASURED, key
    # What the old archive kept still gives its values.
    assert checks["max_momentary_lufs"] is not None and checks["plr_db"] is not None
