"""One-pass analysis of files: the numbers match the truth, transcodes are produced."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from audio.analyze import analyze_file
from audio.decode import decode
from audio.errors import NotAudioError
from audio.transcode import AudioEncoder
from tests.support.audio.music import synthesize_track
from tests.support.audio.reference import ebur128_of_file
from tests.support.audio.signals import write_audio

#: EBU Tech 3341's tolerance for integrated loudness of its test signals, LU.
LU_TOLERANCE = 0.1


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """20 s at 118 BPM in C# minor, written as FLAC (lossless: the truth survives)."""
    track = synthesize_track(118.0, "C#", "minor", seconds=20, sample_rate=44100, seed=31)
    path = tmp_path_factory.mktemp("song") / "song.flac"
    write_audio(path, track.samples, 44100, "flac")
    return path, track


def test_the_analysis_matches_the_truth(song):
    path, _ = song
    analysis = analyze_file(path)
    record = analysis.to_dict()
    assert abs(record["bpm"] / 118.0 - 1) < 0.04
    assert record["key"] == "C# minor" and record["camelot"] == "12A"
    # The synthesizer scales every track to a sample peak of exactly −1 dBFS.
    assert record["sample_peak_dbfs"] == pytest.approx(-1.0, abs=0.01)
    # Music has no loudness known by construction: FFmpeg's own meter is the reference.
    reference = ebur128_of_file(path)
    assert record["integrated_lufs"] == pytest.approx(reference.integrated_lufs, abs=LU_TOLERANCE)
    # True peak: at least the sample peak; FFmpeg oversamples 48 kHz, we 44.1 kHz (both 4×).
    assert record["true_peak_dbtp"] >= record["sample_peak_dbfs"]
    assert record["true_peak_dbtp"] == pytest.approx(reference.true_peak_dbtp, abs=0.2)
    assert record["duration_s"] == pytest.approx(20.0, abs=0.01)
    assert record["sample_rate"] == 44100 and record["channels"] == 2
    assert record["error"] is None
    json.dumps(record, allow_nan=False)
    assert analysis.waveform.width == 800


#: BS.1770-4's channel weights G_i (Table 3, by position): 1 for the front channels, 0 for the
#: LFE, 1.41 for the surrounds of 5.1 (±110°) and the sides of 7.1 (±90°), 1.0 for the rear pair
#: of 7.1 (±135°; libebur128 agrees, FFmpeg's ebur128 filter gives 1.41).
WEIGHTS = {"FL": 1.0, "FR": 1.0, "FC": 1.0, "LFE": 0.0, "SURROUND": 1.41, "SIDE": 1.41, "REAR": 1.0}
#: Where the tone is, channel by channel (None: silent), in FFmpeg's order for the layout.
TONE_ON = {
    1: ["FC"],
    2: ["FL", "FR"],
    6: ["FL", "FR", "FC", "LFE", "SURROUND", "SURROUND"],
    8: ["FL", "FR", "FC", "LFE", "REAR", "REAR", "SIDE", "SIDE"],
}


@pytest.mark.parametrize(
    ("rate", "channels", "fmt"),
    [(8000, 1, "wav"), (96000, 6, "flac"), (384000, 2, "wavf32"), (48000, 8, "flac")],
)
def test_any_rate_and_up_to_eight_channels(tmp_path, rate, channels, fmt):
    """A 997 Hz sine of peak A in a channel of weight G reads 20·log10(A) − 3.01 + 10·log10(G)
    LUFS (BS.1770-4: a 0 dBFS sine in one front channel reads −3.01); channels add as
    energies. Its true peak is A."""
    amplitude = 0.25
    t = np.arange(3 * rate) / rate
    tone = (amplitude * np.sin(2 * np.pi * 997 * t)).astype(np.float32)
    samples = np.stack([tone if on else np.zeros_like(tone) for on in TONE_ON[channels]])
    path = tmp_path / f"tone.{'wav' if fmt.startswith('wav') else fmt}"
    write_audio(path, samples, rate, fmt)
    record = analyze_file(path, formats=("mp3",), out_dir=tmp_path / "out").to_dict()
    assert record["sample_rate"] == rate and record["channels"] == channels
    weight = sum(WEIGHTS[on] for on in TONE_ON[channels] if on)
    expected = 20 * np.log10(amplitude) - 10 * np.log10(2) + 10 * np.log10(weight)
    assert record["integrated_lufs"] == pytest.approx(expected, abs=LU_TOLERANCE)
    assert record["true_peak_dbtp"] == pytest.approx(20 * np.log10(amplitude), abs=0.1)
    mp3, mp3_rate = decode(record["outputs"][0]["path"])
    assert mp3_rate == 44100 and mp3.shape[0] == 2
    assert abs(mp3.shape[1] / mp3_rate - 3.0) < 0.05


def test_requested_transcodes_are_written_and_decode(song, tmp_path):
    path, _ = song
    progress: list[float] = []
    analysis = analyze_file(
        path, formats=("mp3", "opus"), out_dir=tmp_path, progress=progress.append
    )
    assert [o.format for o in analysis.outputs] == ["mp3", "opus"]
    for output in analysis.outputs:
        samples, rate = decode(output.path)
        assert abs(samples.shape[1] / rate - 20.0) < 0.05
        assert output.size_bytes > 0
    assert (tmp_path / "song.mp3").exists() and (tmp_path / "song.opus").exists()
    assert progress[-1] == 1.0 and progress == sorted(progress)


def test_a_transcode_never_overwrites_its_source(song, tmp_path):
    path, _ = song
    source = tmp_path / "song.flac"
    source.write_bytes(path.read_bytes())
    analysis = analyze_file(source, formats=("flac",), out_dir=tmp_path)
    assert analysis.outputs[0].path == str(tmp_path / "song-flac.flac")
    assert source.read_bytes() == path.read_bytes()


def test_bad_input_raises_the_typed_error_and_leaves_no_output(tmp_path):
    bad = tmp_path / "notes.mp3"
    bad.write_text("these are my notes, not a song\n" * 100)
    with pytest.raises(NotAudioError, match="not an audio file"):
        analyze_file(bad, formats=("mp3",), out_dir=tmp_path / "out")
    assert not list((tmp_path).glob("out/*"))


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="unknown format"):
        analyze_file("whatever.wav", formats=("mp4",))


MEMORY_PROBE = textwrap.dedent(
    """
    import sys
    from audio.analyze import analyze_file
    analyze_file(sys.argv[1])
    # VmHWM, not ru_maxrss: ru_maxrss survives exec and would include the parent's size.
    hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
    print(int(hwm.split()[1]) // 1024)
    """
)


def write_noise_wav(path, seconds: int) -> None:
    rng = np.random.default_rng(0)
    with AudioEncoder(path, "wav", in_rate=44100, in_channels=2) as encoder:
        for _ in range(seconds // 10):
            encoder.write((rng.standard_normal((2, 441000)) * 0.1).astype(np.float32))


@pytest.mark.slow  # 8–11 s on the 2-core machine: two subprocesses, 11 minutes of audio
def test_memory_does_not_grow_with_the_length(tmp_path):
    """Peak RSS of a process analysing a 1-minute and a 10-minute file: within a few MB."""

    def peak_mb(seconds: int) -> int:
        path = tmp_path / f"long{seconds}.wav"
        write_noise_wav(path, seconds)
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        path.unlink()
        return int(out.stdout.strip())

    short, long = peak_mb(60), peak_mb(600)
    assert long - short < 15, (short, long)
    assert long < 300
