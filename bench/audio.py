"""Audio benchmark: our one-pass analysis against the Go service's ffmpeg + librosa, same run.

    .venv/bin/python bench/audio.py [--seconds 180]

A synthesized track of known tempo and key (stereo, 44.1 kHz) is written as a 192 kbit/s MP3,
the kind of upload the Go service got. Everything runs pinned to one core (``taskset -c 0``,
one BLAS/OpenMP thread), each side in its own process:

* ours — the realtime factor (audio seconds / wall seconds) of each stage on the decoded
  signal, of the whole analysis (``analyze_file``: loudness + tempo + key + waveform, decode
  included) and of the analysis plus an MP3 transcode in the same pass; peak RSS of a process
  doing the latter;
* the Go service's way — ``ffmpeg`` transcoding to MP3 192k, ``ffmpeg … loudnorm`` for the
  loudness, and a Python process loading the file with librosa for the median of its tempo and
  the argmax of the mean ``chroma_cqt``, as its script did.

Needs ffmpeg on the PATH (Debian: ``apt-get install ffmpeg``) and librosa (``pip install -e
.[bench]``); a missing peer is reported and skipped. The last line is
``speedup vs ffmpeg+librosa: X.XX`` (their total time / ours for analysis + MP3).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SINGLE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
}
BPM, TONIC, SCALE = 124.0, "E", "minor"

OURS = r"""
import json, sys, time
import numpy as np
from audio.analyze import analyze_file
from audio.decode import decode
from audio.key import KeyAnalyzer
from audio.loudness import LoudnessMeter
from audio.resample import StreamResampler
from audio.tempo import ANALYSIS_RATE, TempoAnalyzer
from audio.transcode import AudioEncoder
from audio.waveform import WaveformBuilder

path, out_dir, mode = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "rss":
    analyze_file(path, formats=("mp3",), out_dir=out_dir)
    # VmHWM, not ru_maxrss: ru_maxrss survives exec and would report the parent's size.
    hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
    print(json.dumps({"rss_mb": int(hwm.split()[1]) / 1024}))
    sys.exit()

def timed(fn):
    start = time.perf_counter(); value = fn(); return time.perf_counter() - start, value

times = {}
times["decode"], (samples, rate) = timed(lambda: decode(path))
blocks = [samples[:, i:i + 65536] for i in range(0, samples.shape[1], 65536)]
def loudness():
    meter = LoudnessMeter(rate, samples.shape[0])
    for b in blocks: meter.add(b)
    return meter.result()
def downmix():
    r = StreamResampler(rate, ANALYSIS_RATE)
    parts = [r.add(b.mean(axis=0)) for b in blocks] + [r.flush()]
    return np.concatenate(parts)
def feed(analyzer, mono):
    for i in range(0, len(mono), 16384): analyzer.add(mono[i:i + 16384])
    return analyzer.result()
def waveform():
    w = WaveformBuilder(samples.shape[1], rate)
    for b in blocks: w.add(b)
    return w.result()
def mp3():
    with AudioEncoder(out_dir + "/stage.mp3", "mp3", in_rate=rate, in_channels=2) as e:
        for b in blocks: e.write(b)
times["loudness"], _ = timed(loudness)
times["downmix + resample"], mono = timed(downmix)
times["tempo"], tempo = timed(lambda: feed(TempoAnalyzer(ANALYSIS_RATE), mono))
times["key"], key = timed(lambda: feed(KeyAnalyzer(ANALYSIS_RATE), mono))
times["waveform"], _ = timed(waveform)
times["MP3 transcode"], _ = timed(mp3)
times["whole analysis"], analysis = timed(lambda: analyze_file(path))
times["analysis + MP3"], _ = timed(lambda: analyze_file(path, formats=("mp3",), out_dir=out_dir))
record = analysis.to_dict()
print(json.dumps({"times": times, "bpm": record["bpm"], "key": record["key"],
                  "lufs": record["integrated_lufs"], "duration": samples.shape[1] / rate}))
"""

LIBROSA = r"""
import json, sys, numpy as np, librosa
y, sr = librosa.load(sys.argv[1], sr=22050, mono=True)
tempo = float(np.median(librosa.feature.tempo(y=y, sr=sr, aggregate=None)))
chroma = librosa.feature.chroma_cqt(y=y, sr=sr)
names = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
print(json.dumps({"bpm": tempo, "key": names[int(np.argmax(chroma.mean(axis=1)))]}))
"""


def pinned(command: list[str]) -> list[str]:
    return ["taskset", "-c", "0", *command] if shutil.which("taskset") else command


def run(command: list[str], env: dict | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(
        pinned(command),
        env={**os.environ, **SINGLE_THREAD, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"{command[0]} failed:\n{out.stderr[-2000:]}")
    return time.perf_counter() - start, out.stdout + out.stderr


def make_input(folder: Path, seconds: float) -> Path:
    sys.path.insert(0, str(ROOT))
    from audio.transcode import AudioEncoder
    from tests.unit.audio.music import synthesize_track

    track = synthesize_track(BPM, TONIC, SCALE, seconds=seconds, sample_rate=44100, seed=42)
    path = folder / "upload.mp3"
    with AudioEncoder(path, "mp3", in_rate=44100, in_channels=2) as encoder:
        encoder.write(track.samples)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-audio-"))
    try:
        source = make_input(folder, args.seconds)
        _, out = run([sys.executable, "-c", OURS, str(source), str(folder), "stages"])
        ours = json.loads(out.strip().splitlines()[-1])
        _, out = run([sys.executable, "-c", OURS, str(source), str(folder), "rss"])
        rss_mb = json.loads(out.strip().splitlines()[-1])["rss_mb"]
        theirs = go_service(source, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report(args.seconds, ours, rss_mb, theirs)


def go_service(source: Path, folder: Path) -> dict | None:
    if shutil.which("ffmpeg") is None:
        print("ffmpeg not found (apt-get install ffmpeg): the Go service's way is skipped")
        return None
    try:
        import librosa  # noqa: F401
    except ImportError:
        print("librosa not installed (pip install -e .[bench]): the Go service's way is skipped")
        return None
    ffmpeg = ["ffmpeg", "-hide_banner", "-nostdin", "-threads", "1", "-y", "-i", str(source)]
    transcode_s, _ = run(
        [*ffmpeg, "-codec:a", "libmp3lame", "-b:a", "192k", str(folder / "go.mp3")]
    )
    loudnorm_s, log = run([*ffmpeg, "-af", "loudnorm=print_format=summary", "-f", "null", "-"])
    lufs = next(
        (float(line.split()[-2]) for line in log.splitlines() if "Input Integrated" in line), None
    )
    librosa_s, out = run([sys.executable, "-c", LIBROSA, str(source)])
    result = json.loads(out.strip().splitlines()[-1])
    return {
        "transcode": transcode_s,
        "loudnorm": loudnorm_s,
        "librosa": librosa_s,
        "bpm": result["bpm"],
        "key": result["key"],
        "lufs": lufs,
    }


def report(seconds: float, ours: dict, rss_mb: float, theirs: dict | None) -> None:
    duration = ours["duration"]
    print(f"\n{seconds:.0f} s synthesized track ({BPM:.0f} BPM, {TONIC} {SCALE}), MP3 192k,")
    print("one core (taskset -c 0, one BLAS thread)\n")
    print("| stage (ours) | seconds | × realtime |")
    print("|---|---|---|")
    for stage, t in ours["times"].items():
        print(f"| {stage} | {t:.2f} | {duration / t:.0f} |")
    print(f"\npeak RSS, analysis + MP3 transcode in one process: {rss_mb:.0f} MB")
    ours_total = ours["times"]["analysis + MP3"]
    whole = duration / ours["times"]["whole analysis"]
    print("\n| way | BPM | key | LUFS | seconds |")
    print("|---|---|---|---|---|")
    print(f"| truth | {BPM:.1f} | {TONIC} {SCALE} | | |")
    print(
        f"| PhantomChain (analysis + MP3) | {ours['bpm']} | {ours['key']} | {ours['lufs']} "
        f"| {ours_total:.2f} |"
    )
    if theirs is not None:
        go_total = theirs["transcode"] + theirs["loudnorm"] + theirs["librosa"]
        print(
            f"| Go service: ffmpeg MP3 {theirs['transcode']:.2f} s + loudnorm "
            f"{theirs['loudnorm']:.2f} s + librosa {theirs['librosa']:.2f} s "
            f"| {theirs['bpm']:.1f} | {theirs['key']} (no mode) | {theirs['lufs']} "
            f"| {go_total:.2f} |"
        )
    print("\n| goal | measured | met |")
    print("|---|---|---|")
    print(f"| whole analysis ≥ 50× realtime per core | {whole:.0f}× | {_yes(whole >= 50)} |")
    if theirs is not None:
        speedup = go_total / ours_total
        print(f"| analysis + MP3 ≥ 3× faster than ffmpeg+librosa | {speedup:.2f}× | "
              f"{_yes(speedup >= 3)} |")  # fmt: skip
    print(f"| peak RSS < 300 MB | {rss_mb:.0f} MB | {_yes(rss_mb < 300)} |")
    if theirs is not None:
        print(f"\nspeedup vs ffmpeg+librosa: {go_total / ours_total:.2f}")
    else:
        print("\nspeedup vs ffmpeg+librosa: n/a (peer missing)")


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


if __name__ == "__main__":
    main()
