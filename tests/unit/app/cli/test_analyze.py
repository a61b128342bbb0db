"""``phantomchain analyze``: JSON Lines, the human table, failures, parallel jobs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from app.cli import main
from app.cli.analyze import FIELDS
from tests.support.audio.music import synthesize_track
from tests.support.audio.reference import ebur128_of_file
from tests.support.audio.signals import write_audio

#: EBU Tech 3341's tolerance for integrated loudness, LU.
LU_TOLERANCE = 0.1


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    songs = []
    for name, bpm, tonic, scale, fmt in [
        ("one.flac", 96.0, "G", "major", "flac"),
        ("two.mp3", 140.0, "D", "minor", "mp3"),
    ]:
        track = synthesize_track(bpm, tonic, scale, seconds=15, sample_rate=44100, seed=len(songs))
        path = folder / name
        write_audio(path, track.samples, 44100, fmt)
        # The truth: FFmpeg's own loudness meter on the file as FFmpeg decodes it (MP3 takes
        # about 0.5 LU off this synthesized track: the encoder's low-pass cuts the hats).
        lufs = ebur128_of_file(path).integrated_lufs
        songs.append((path, bpm, f"{tonic} {scale}", lufs))
    garbage = folder / "garbage.wav"
    garbage.write_bytes(b"RIFF" + bytes(range(256)) * 40)
    return songs, garbage


def test_json_lines_in_input_order_with_errors_and_exit_status(files, tmp_path):
    songs, garbage = files
    paths = [str(songs[0][0]), str(garbage), str(songs[1][0])]
    result = CliRunner().invoke(main, ["analyze", "--json", "--jobs", "2", *paths])
    assert result.exit_code == 1  # one file failed
    records = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [r["path"] for r in records] == paths
    for record in records:
        assert set(FIELDS) <= set(record)
    good = [records[0], records[2]]
    for record, (path, bpm, key, lufs) in zip(good, songs, strict=True):
        assert record["error"] is None
        assert abs(record["bpm"] / bpm - 1) < 0.04
        assert record["key"] == key
        assert record["integrated_lufs"] == pytest.approx(lufs, abs=LU_TOLERANCE)
        assert record["duration_s"] == pytest.approx(15.0, abs=0.05)  # gapless MP3 too
        assert (record["sample_rate"], record["channels"]) == (44100, 2)
        assert record["codec"].startswith(path.suffix[1:])  # FFmpeg's MP3 decoder: "mp3float"
    assert records[1]["error"] and records[1]["bpm"] is None
    assert records[1]["integrated_lufs"] is None


def test_all_good_exits_zero_and_transcodes_go_to_out(files, tmp_path):
    songs, _ = files
    result = CliRunner().invoke(
        main,
        [
            "analyze",
            "--json",
            "--jobs",
            "1",
            "--formats",
            "mp3,opus",
            "--out",
            str(tmp_path),
            str(songs[0][0]),
        ],
    )
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert {o["format"] for o in record["outputs"]} == {"mp3", "opus"}
    assert (tmp_path / "one.mp3").stat().st_size > 0
    assert (tmp_path / "one.opus").stat().st_size > 0


def test_a_person_gets_a_table(files):
    songs, garbage = files
    result = CliRunner().invoke(main, ["analyze", "--jobs", "1", str(songs[1][0]), str(garbage)])
    assert result.exit_code == 1
    lines = result.stdout.strip().splitlines()
    assert lines[0].split()[:6] == ["file", "length", "LUFS", "LRA", "dBTP", "BPM"]
    assert "two.mp3" in lines[1] and "D minor" in lines[1]
    name, length, lufs, _lra, _peak, bpm = lines[1].split()[:6]
    _, truth_bpm, _, truth_lufs = songs[1]
    assert (name, length) == ("two.mp3", "0:15.0")
    assert float(lufs) == pytest.approx(truth_lufs, abs=LU_TOLERANCE + 0.05)  # shown to 0.1
    assert abs(float(bpm) / truth_bpm - 1) < 0.04
    assert "garbage.wav" in lines[2]


def test_unknown_format_is_a_usage_error(files):
    songs, _ = files
    result = CliRunner().invoke(main, ["analyze", "--formats", "mp4", str(songs[0][0])])
    assert result.exit_code == 2
    assert "unknown format mp4" in result.output


def test_the_console_script_runs(files):
    songs, _ = files
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from app.cli import main; main()",
            "analyze",
            "--json",
            str(songs[1][0]),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout)["camelot"] == "7A"  # D minor


def test_normalize_writes_the_transcodes_as_normalised_masters(files, tmp_path):
    """``--normalize -20 --true-peak -2``: the WAV written measures −20 LUFS (±0.2) by our meter
    and by FFmpeg's, under −2 dBTP; the record says what was done."""
    from audio.decode import decode
    from audio.loudness import measure_loudness

    songs, _ = files
    path = songs[0][0]
    result = CliRunner().invoke(
        main,
        [
            "analyze",
            "--json",
            "--formats",
            "wav",
            "--normalize",
            "-20",
            "--true-peak",
            "-2",
            "--out",
            str(tmp_path),
            str(path),
        ],
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["normalize"] == {
        "name": None,
        "target_lufs": -20.0,
        "true_peak_ceiling_dbtp": -2.0,
    }
    (output,) = record["outputs"]
    assert output["normalization"]["target_lufs"] == -20.0
    samples, rate = decode(output["path"])
    measured = measure_loudness(samples, rate)
    assert measured.integrated_lufs == pytest.approx(-20.0, abs=0.2)
    assert ebur128_of_file(output["path"]).integrated_lufs == pytest.approx(-20.0, abs=0.2)
    assert measured.true_peak_dbtp <= -2.0
    # The analysis itself is of the file as given, not of the master.
    assert record["integrated_lufs"] == pytest.approx(songs[0][3], abs=LU_TOLERANCE)


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["--normalize", "spotify"], "--formats"),
        (["--formats", "wav", "--normalize", "loud"], "spotify"),
        (["--formats", "wav", "--true-peak", "-1"], "needs --normalize"),
    ],
)
def test_a_bad_normalize_is_refused_before_any_file(files, arguments, words):
    songs, _ = files
    result = CliRunner().invoke(main, ["analyze", *arguments, str(songs[0][0])])
    assert result.exit_code == 2 and words in result.output


def test_two_files_that_would_write_the_same_transcode_are_refused(files, tmp_path):
    songs, _ = files
    twin = tmp_path / "twin" / songs[0][0].name
    twin.parent.mkdir()
    twin.write_bytes(songs[0][0].read_bytes())
    out = tmp_path / "out"
    arguments = ["analyze", "--formats", "wav", "--out", str(out), str(songs[0][0]), str(twin)]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 2 and "would both write" in result.output
    assert not out.exists()  # refused before anything was written


def test_bpm_range_folds_the_tempo_of_every_file(files):
    """``--bpm-range 150-200``: 96 BPM comes back 192; 140 has no octave in the range (70,
    140, 280) and stays 140, the octave nearest it."""
    songs, _ = files
    paths = [str(songs[0][0]), str(songs[1][0])]
    result = CliRunner().invoke(
        main, ["analyze", "--json", "--jobs", "1", "--bpm-range", "150-200", *paths]
    )
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in result.stdout.strip().splitlines())
    assert abs(first["bpm"] / 192.0 - 1) < 0.04
    assert abs(second["bpm"] / 140.0 - 1) < 0.04
    assert first["bpm_confidence"] <= 0.5


@pytest.mark.parametrize(
    ("value", "words"),
    [("fast", "LOW-HIGH"), ("200-150", "low to high"), ("150-400", "30–300")],
)
def test_a_bad_bpm_range_is_refused_before_any_file(files, value, words):
    songs, _ = files
    result = CliRunner().invoke(main, ["analyze", "--bpm-range", value, str(songs[0][0])])
    assert result.exit_code == 2 and words in result.output
