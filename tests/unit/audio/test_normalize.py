"""Normalised outputs: every format lands on the target under the ceiling, measured on the
decoded output by our meter, by pyloudnorm, and (true peak) by an independent 4× resampler.

Inputs are written with ``tests/support/audio/signals.write_audio`` (not the encoder under test);
their loudness is set by construction (scaled by our meter's reading of the synthesized music).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
from scipy.signal import resample_poly

import audio.normalize
from audio.decode import decode
from audio.errors import DecodeTimeoutError, OutputTooLargeError, TooLongError
from audio.formats import FORMATS
from audio.loudness import measure_loudness
from audio.normalize import NO_LOUDNESS, SILENT, Normalization, normalize_file
from audio.targets import PRESETS, Target, parse_target
from tests.support.audio.music import synthesize_track
from tests.support.audio.signals import silence, write_audio

RATE = 44100
LOSSLESS = {"wav", "flac"}
#: The reference resampler's filter ripple over our detector (see test_limiter.py), dB.
RESAMPLER_SLACK_DB = 0.03


def music_at(lufs: float, seed: int, seconds: float = 6.0) -> np.ndarray:
    track = synthesize_track(118, "D", "minor", seconds=seconds, sample_rate=RATE, seed=seed)
    level = measure_loudness(track.samples, RATE).integrated_lufs
    return track.samples * np.float32(10 ** ((lufs - level) / 20))


def high_crest(seed: int = 8) -> np.ndarray:
    """Quiet music (−30 LUFS, peaks near −17 dBTP) with a sharp 3 kHz click peaking at −6 dBFS
    every 1.5 s: the clicks barely add loudness (the mix measures about −29.5 LUFS) but set the
    peak, so the +15 dB to −14 LUFS would put them 9 dB over a −1 dBTP ceiling."""
    x = music_at(-30.0, seed)
    t = np.arange(round(0.004 * RATE)) / RATE
    click = (0.5 * np.sin(2 * np.pi * 3000 * t) * np.exp(-t * 800)).astype(np.float32)
    for start in range(RATE // 4, x.shape[1] - len(click), round(1.5 * RATE)):
        x[:, start : start + len(click)] += click
    return x


def outputs_in(folder: Path, formats) -> list[tuple[Path, str]]:
    return [(folder / f"out.{FORMATS[fmt].extension}", fmt) for fmt in formats]


def check_acceptance(path: Path, fmt: str, target: Target, normalization: Normalization):
    """Integrated within ±0.5 LU (±0.2 lossless) and true peak under the ceiling, by our meter
    (reported) and by pyloudnorm and a 4× resampler (independent)."""
    y, rate = decode(path)
    tolerance = 0.2 if fmt in LOSSLESS else 0.5
    ours = measure_loudness(y, rate)
    assert normalization.output_integrated_lufs == pytest.approx(ours.integrated_lufs, abs=1e-6)
    assert normalization.output_true_peak_dbtp == pytest.approx(ours.true_peak_dbtp, abs=1e-6)
    assert abs(ours.integrated_lufs - target.lufs) <= tolerance
    assert ours.true_peak_dbtp <= target.true_peak_dbtp
    theirs = pyloudnorm.Meter(rate).integrated_loudness(y.T.astype(np.float64))
    assert abs(theirs - target.lufs) <= tolerance
    oversampled = resample_poly(y.astype(np.float64), 4, 1, axis=1)
    assert 20 * np.log10(np.abs(oversampled).max()) <= target.true_peak_dbtp + RESAMPLER_SLACK_DB


def test_normalization_to_dict_is_rounded_and_json_safe():
    n = Normalization(-14.0, -1.0, 3.14159, 0.0, None, float("-inf"), reason=None)
    assert n.to_dict() == {
        "target_lufs": -14.0,
        "true_peak_ceiling_dbtp": -1.0,
        "gain_db": 3.14,
        "limited_db": 0.0,
        "output_integrated_lufs": None,
        "output_true_peak_dbtp": None,
        "reason": None,
    }


# -- outputs ---------------------------------------------------------------------------------

ALL_FORMATS = ("mp3", "opus", "aac", "flac", "wav")


@pytest.fixture(scope="module")
def quiet_file_normalised(tmp_path_factory):
    folder = tmp_path_factory.mktemp("quiet")
    source = write_audio(folder / "quiet.wav", high_crest(), RATE)
    done = normalize_file(source, outputs_in(folder, ALL_FORMATS), PRESETS["spotify"])
    return folder, dict(zip(ALL_FORMATS, done, strict=True))


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_quiet_high_crest_file_is_limited_onto_the_target(quiet_file_normalised, fmt):
    # pyloudnorm#35: positive gain must not clip the clicks; the limiter holds them.
    folder, done = quiet_file_normalised
    result, normalization = done[fmt]
    assert Path(result.path) == folder / f"out.{FORMATS[fmt].extension}"
    assert normalization.gain_db > 14
    assert normalization.limited_db > 8
    assert normalization.reason is None
    check_acceptance(Path(result.path), fmt, PRESETS["spotify"], normalization)
    assert not list(folder.glob(".*"))  # no temporary file left


def test_an_encoder_overshoot_is_measured_and_encoded_again(tmp_path, monkeypatch):
    # With no room left for the encoders, their first encodes pass the ceiling: by +7.8 dB for
    # FFmpeg's AAC encoder (a glitch at 0.51 s of this track) and +0.9 for Opus. Each output is
    # decoded, measured over, and encoded again with the limiter's ceiling lowered. Where the
    # extra limiting keeps the loudness off the target, the reason says so.
    for fmt in ("aac", "opus"):
        monkeypatch.setitem(audio.normalize.FIRST_MARGIN_DB, fmt, 0.0)
    target = parse_target("-11")
    source = write_audio(tmp_path / "in.wav", music_at(-8.0, seed=14), RATE, "wavf32")
    done = normalize_file(source, outputs_in(tmp_path, ["aac", "opus"]), target)
    for result, normalization in done:
        y, rate = decode(result.path)
        assert measure_loudness(y, rate).true_peak_dbtp <= target.true_peak_dbtp
        oversampled = resample_poly(y.astype(np.float64), 4, 1, axis=1)
        assert 20 * np.log10(np.abs(oversampled).max()) <= -1.0 + RESAMPLER_SLACK_DB
        if abs(normalization.output_integrated_lufs - target.lufs) > 0.3:
            assert "ceiling holds the loudness" in normalization.reason
        else:
            assert normalization.reason is None


def test_out_of_encodes_the_output_is_the_one_under_the_ceiling(tmp_path, monkeypatch):
    # −9 LUFS under −1 dBTP needs some 12 dB of limiting here. With two encodes allowed, the
    # first AAC lands under the ceiling but 0.95 LU short; the second, louder, passes the
    # ceiling (by 0.1 dB): the first is the output, saying why it is short.
    monkeypatch.setattr(audio.normalize, "MAX_ENCODES", 2)
    target = parse_target("-9")
    source = write_audio(tmp_path / "in.wav", music_at(-20.0, seed=12), RATE, "wavf32")
    [(result, normalization)] = normalize_file(source, outputs_in(tmp_path, ["aac"]), target)
    y, rate = decode(result.path)
    assert measure_loudness(y, rate).true_peak_dbtp <= target.true_peak_dbtp
    oversampled = resample_poly(y.astype(np.float64), 4, 1, axis=1)
    assert 20 * np.log10(np.abs(oversampled).max()) <= -1.0 + RESAMPLER_SLACK_DB
    assert "ceiling holds the loudness" in normalization.reason
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "out.m4a"]


def test_loud_file_gets_exactly_the_linear_gain(tmp_path):
    # −8 LUFS as float WAV (its overs kept), to EBU's −23: −15 dB, nothing near the ceiling.
    # Given the loudness and peak measured before, as the service does.
    x = music_at(-8.0, seed=9)
    source = write_audio(tmp_path / "loud.wav", x, RATE, "wavf32")
    measured = measure_loudness(x, RATE)
    done = normalize_file(
        source,
        outputs_in(tmp_path, ["wav", "flac"]),
        PRESETS["ebu"],
        input_lufs=measured.integrated_lufs,
        input_true_peak_dbtp=measured.true_peak_dbtp,
    )
    for (result, normalization), fmt in zip(done, ["wav", "flac"], strict=True):
        assert normalization.limited_db == 0.0
        assert normalization.gain_db == pytest.approx(-15.0, abs=0.01)
        check_acceptance(Path(result.path), fmt, PRESETS["ebu"], normalization)
        y, _ = decode(result.path)
        expected = x * np.float32(10 ** (normalization.gain_db / 20))
        assert np.abs(y - expected).max() <= 1 / 32768  # 16-bit rounding, nothing else


def test_numeric_target_with_its_own_ceiling(tmp_path):
    target = parse_target("-18", "-3")
    source = write_audio(tmp_path / "in.wav", music_at(-24.0, seed=10), RATE)
    done = normalize_file(source, outputs_in(tmp_path, ["mp3", "wav"]), target)
    for (result, normalization), fmt in zip(done, ["mp3", "wav"], strict=True):
        assert normalization.true_peak_ceiling_dbtp == -3.0
        check_acceptance(Path(result.path), fmt, target, normalization)


def test_a_wrong_input_loudness_is_corrected_by_measuring(tmp_path):
    source = write_audio(tmp_path / "in.wav", music_at(-24.0, seed=10), RATE)
    target = PRESETS["podcast"]
    [(result, normalization)] = normalize_file(
        source, outputs_in(tmp_path, ["wav"]), target, input_lufs=-26.0
    )
    assert normalization.gain_db == pytest.approx(8.0, abs=0.05)  # not the 10 dB it was told
    check_acceptance(Path(result.path), "wav", target, normalization)


def test_silent_input_is_written_unchanged_saying_why(tmp_path):
    source = write_audio(tmp_path / "silent.wav", silence(2.0, RATE, channels=2), RATE)
    done = normalize_file(source, outputs_in(tmp_path, ["mp3", "wav"]), PRESETS["spotify"])
    for result, normalization in done:
        assert Path(result.path).exists()
        assert normalization.reason == SILENT
        assert (normalization.gain_db, normalization.limited_db) == (0.0, 0.0)
        assert normalization.output_integrated_lufs is None
        y, _ = decode(result.path)
        assert not y.any()


def test_audio_without_loudness_still_gets_the_ceiling(tmp_path):
    """A 300 ms full-scale square wave has no integrated loudness (shorter than one 400 ms
    block), so no gain — but its outputs must still be held under the ceiling."""
    t = np.arange(round(0.3 * RATE)) / RATE
    square = np.sign(np.sin(2 * np.pi * 441 * t)).astype(np.float32) * 0.999
    source = write_audio(tmp_path / "square.wav", np.stack([square, square]), RATE)
    target = PRESETS["spotify"]
    done = normalize_file(source, outputs_in(tmp_path, ["wav", "mp3"]), target)
    for (result, normalization), fmt in zip(done, ["wav", "mp3"], strict=True):
        assert normalization.reason == NO_LOUDNESS, fmt
        assert normalization.gain_db == 0.0 and normalization.limited_db > 0, fmt
        y, _ = decode(result.path)
        assert measure_loudness(y, RATE).true_peak_dbtp <= target.true_peak_dbtp, fmt
        oversampled = resample_poly(y.astype(np.float64), 4, 1, axis=1)
        peak = 20 * np.log10(np.abs(oversampled).max())
        assert peak <= target.true_peak_dbtp + RESAMPLER_SLACK_DB, fmt


def test_a_surround_source_is_normalised_as_its_stereo_mp3_sounds(tmp_path):
    """5.1 music into an MP3 (stereo, 44.1 kHz) and, at 96 kHz, into Opus (48 kHz): each
    output is normalised as its own downmix or resampled signal sounds, not as the source."""
    stereo = music_at(-30.0, seed=31)
    left, right = stereo
    rumble = 0.02 * np.random.default_rng(31).standard_normal(len(left)).astype(np.float32)
    surround = np.stack([left, right, 0.7 * left, rumble, 0.3 * left, 0.3 * right])
    source = write_audio(tmp_path / "surround.flac", surround, RATE)
    target = PRESETS["spotify"]
    (mp3,) = normalize_file(source, outputs_in(tmp_path, ["mp3"]), target)
    check_acceptance(Path(mp3[0].path), "mp3", target, mp3[1])
    assert mp3[1].reason is None
    hi_rate = write_audio(
        tmp_path / "hi.wav",
        resample_poly(stereo, 96000 // 300, RATE // 300, axis=1).astype(np.float32),
        96000,
    )
    (opus,) = normalize_file(hi_rate, outputs_in(tmp_path, ["opus"]), target)
    check_acceptance(Path(opus[0].path), "opus", target, opus[1])


@pytest.mark.parametrize(
    ("bounds", "error"),
    [
        ({"max_output_bytes": 20_000}, OutputTooLargeError),  # while writing the WAV
        ({"max_output_bytes": 540_000}, OutputTooLargeError),  # the MP3, after the WAV
        ({"timeout_s": 0.0}, DecodeTimeoutError),
        ({"max_duration_s": 1.0}, TooLongError),
    ],
)
def test_bounds_leave_no_output_behind(tmp_path, bounds, error):
    source = write_audio(tmp_path / "in.wav", music_at(-20.0, seed=10, seconds=3.0), RATE)
    with pytest.raises(error):
        normalize_file(source, outputs_in(tmp_path, ["wav", "mp3"]), PRESETS["spotify"], **bounds)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]
