"""Leading and trailing silence on signals whose sound starts and ends where they were built to."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audio.features import extract
from audio.silence import WINDOW_S, Silence, SilenceDetector
from tests.support.audio.signals import noise, silence, tone, write_audio

RATE = 44100


def detect(samples: np.ndarray, rate: int = RATE, sizes: tuple[int, ...] = ()) -> Silence:
    """Feed ``samples`` in blocks of ``sizes`` (then 4096 at a time; all at once by default)."""
    detector = SilenceDetector(rate, samples.shape[0])
    position = 0
    for size in sizes:
        detector.add(samples[:, position : position + size])
        position += size
    step = 4096 if sizes else samples.shape[1] or 1
    while position < samples.shape[1]:
        detector.add(samples[:, position : position + step])
        position += step
    return detector.result()


def tone_between_silences(rate: int = RATE, amplitude: float = 0.5) -> np.ndarray:
    """1.5 s silence, 3 s of 1 kHz, 2 s silence (stereo): sound from 1.5 s to 4.5 s of 6.5 s."""
    parts = [silence(1.5, rate, 2), tone(1000, 3, rate, 2, amplitude), silence(2, rate, 2)]
    return np.concatenate(parts, axis=1)


def assert_sound_between(result: Silence, start: float, end: float, duration: float, tol: float):
    assert result.start_s == pytest.approx(start, abs=tol)
    assert result.end_s == pytest.approx(end, abs=tol)
    assert result.leading_s == result.start_s
    assert result.trailing_s == pytest.approx(duration - result.end_s, abs=1e-9)


@pytest.mark.parametrize("rate", [22050, 44100, 48000])
def test_a_tone_between_silences(rate):
    result = detect(tone_between_silences(rate), rate)
    assert_sound_between(result, 1.5, 4.5, 6.5, tol=WINDOW_S)


def test_sound_throughout_has_no_silence():
    result = detect(tone(440, 3, RATE, 2))
    assert_sound_between(result, 0.0, 3.0, 3.0, tol=WINDOW_S)


@pytest.mark.parametrize(
    "samples",
    [
        silence(3, RATE, 2),
        silence(3, RATE, 2) + np.float32(0.4),  # DC offset only
        noise(3, RATE, 2, amplitude=10 ** (-80 / 20), seed=11),  # noise peaking at −80 dBFS
        silence(0.005, RATE, 1) + np.float32(-0.3),  # shorter than a window
    ],
    ids=["digital silence", "DC", "noise at -80 dBFS", "5 ms of DC"],
)
def test_no_sound_gives_nulls(samples):
    result = detect(samples)
    assert result == Silence(None, None, None, None)
    assert json.loads(json.dumps(result.to_dict())) == dict.fromkeys(
        ["start_s", "end_s", "leading_s", "trailing_s"]
    )


def test_noise_at_minus_80_dbfs_around_the_tone_is_silence():
    samples = tone_between_silences() + noise(6.5, RATE, 2, amplitude=10 ** (-80 / 20), seed=12)
    assert_sound_between(detect(samples), 1.5, 4.5, 6.5, tol=WINDOW_S)


@pytest.mark.parametrize("offset", [0.3, -0.45])
def test_a_dc_offset_is_not_sound(offset):
    samples = tone_between_silences(amplitude=0.4) + np.float32(offset)
    assert_sound_between(detect(samples), 1.5, 4.5, 6.5, tol=WINDOW_S)


@pytest.mark.parametrize(("rms_dbfs", "heard"), [(-57.0, True), (-63.0, False)])
def test_the_threshold_is_minus_60_dbfs_rms(rms_dbfs, heard):
    amplitude = float(10 ** (rms_dbfs / 20) * np.sqrt(2))  # a sine's peak for that RMS
    result = detect(tone_between_silences(amplitude=amplitude))
    assert (result.start_s is not None) == heard


def test_a_lone_sample_is_not_sound_but_a_loud_click_is():
    quiet, loud = silence(2, RATE, 1), silence(2, RATE, 1)
    quiet[0, RATE] = 0.01  # −40 dBFS alone in 10 ms: −66 dBFS RMS, under the threshold
    loud[0, RATE] = 0.5
    assert detect(quiet).start_s is None
    assert_sound_between(detect(loud), 1.0, 1.0 + 1 / RATE, 2.0, tol=1e-9)


def test_streaming_in_odd_blocks_equals_one_shot():
    samples = tone_between_silences() + noise(6.5, RATE, 2, amplitude=0.0005, seed=13)
    whole = detect(samples)
    assert detect(samples, sizes=(1, 7, 440, 441, 442, 3, 65536)) == whole
    assert detect(samples, sizes=(1,) * 500) == whole


def test_state_restores_the_result_and_an_old_archive_gives_nulls():
    samples = tone_between_silences()
    detector = SilenceDetector(RATE, 2)
    detector.add(samples[:, : round(4.5 * RATE) - 100])  # stops in the tone's last window
    restored = SilenceDetector.restore(detector.state())
    assert restored.result() == detector.result()
    assert restored.result().end_s == pytest.approx(4.5, abs=WINDOW_S)
    assert SilenceDetector.restore({}).result() == Silence(None, None, None, None)


@pytest.mark.parametrize(
    ("fmt", "tolerance_s"),
    # FLAC is lossless: one window. MP3: the LAME tag the muxer writes lets the decoder drop
    # the encoder's 1105 samples of delay (25 ms at 44.1 kHz) exactly, and pre-echo can spread
    # the onset back by a granule (576 samples, 13 ms); measured 0 ms here, allowed 30 ms so a
    # decoder that ignores the tag still passes and one that shifts by more fails.
    [("flac", WINDOW_S), ("mp3", 0.03)],
)
def test_through_extract_on_an_encoded_file(tmp_path, fmt, tolerance_s):
    path = write_audio(tmp_path / f"gap.{fmt}", tone_between_silences(), RATE, fmt)
    features, _ = extract(path)
    duration = features.info.duration_s
    assert duration == pytest.approx(6.5, abs=0.01)
    assert_sound_between(features.silence.result(), 1.5, 4.5, duration, tol=tolerance_s)
