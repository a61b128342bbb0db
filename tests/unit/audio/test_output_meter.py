"""An MP3 measured from its own frames while it is encoded, against the finished file decoded
and measured as before (the samples a player gets, trimmed by the file's Info frame)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from audio.decode import decode
from audio.limiter import StrictPeak
from audio.loudness import measure_loudness
from audio.transcode import AudioEncoder
from tests.support.audio import signals
from tests.support.audio.music import synthesize_track


def encoded(path, x: np.ndarray, rate: int, block: int, **options) -> AudioEncoder:
    encoder = AudioEncoder(
        path, "mp3", in_rate=rate, in_channels=x.shape[0], measure=True, **options
    )
    for start in range(0, x.shape[1], block):
        encoder.write(x[:, start : start + block])
    encoder.close()
    return encoder


@pytest.mark.parametrize(
    ("rate", "channels", "block", "bitrate"),
    [(44100, 2, 65536, None), (48000, 1, 4099, None), (44100, 2, 1000, 128_000)],
)
def test_measured_while_encoded_is_the_file_as_decoded(tmp_path, rate, channels, block, bitrate):
    track = synthesize_track(126.0, "G", "minor", seconds=7.0, sample_rate=rate, seed=33)
    x = track.samples[:channels] * np.float32(1.4)  # peaks near full scale
    path = tmp_path / "out.mp3"
    encoder = encoded(path, x, rate, block, bitrate=bitrate, strict_floor_dbtp=-3.0)
    assert encoder.measured is not None
    decoded, out_rate = decode(path)
    assert decoded.shape[1] == round(x.shape[1] * out_rate / rate)  # the same samples…
    ours, file = encoder.measured.loudness, measure_loudness(decoded, out_rate)
    assert ours.integrated_lufs == pytest.approx(file.integrated_lufs, abs=1e-6)  # …measured
    assert ours.true_peak_dbtp == pytest.approx(file.true_peak_dbtp, abs=1e-6)
    assert ours.loudness_range_lu == pytest.approx(file.loudness_range_lu, abs=1e-6)
    strict = StrictPeak(out_rate, 2, 10 ** (-3.0 / 20))
    strict.add(decoded)
    assert encoder.measured.strict_peak_dbtp == pytest.approx(
        20 * math.log10(strict.result()), abs=1e-5
    )


def test_not_asked_nothing_is_measured_and_other_formats_are_not(tmp_path):
    x = signals.tone(440.0, 1.0, channels=2)
    plain = AudioEncoder(tmp_path / "a.mp3", "mp3", in_rate=44100, in_channels=2)
    opus = AudioEncoder(tmp_path / "a.opus", "opus", in_rate=44100, in_channels=2, measure=True)
    for encoder in (plain, opus):
        encoder.write(x)
        encoder.close()
        assert encoder.measured is None


def test_silence_measures_as_silence(tmp_path):
    encoder = encoded(tmp_path / "s.mp3", np.zeros((2, 44100), np.float32), 44100, 8192)
    assert encoder.measured is not None
    assert encoder.measured.loudness.integrated_lufs is None
