"""Audio benchmark: our one-pass analysis against the Go service's ffmpeg + librosa, same run.

    .venv/bin/python bench/audio.py [--seconds 180]
    .venv/bin/python bench/audio.py --overshoot 21-26     # encoders' overshoot, per seed
    .venv/bin/python bench/audio.py --acceptance 21-26 [--target -9]  # normalised outputs
    .venv/bin/python bench/audio.py --against REV [--repeat 5]  # whole analysis: this tree / REV
    .venv/bin/python bench/audio.py --paths [--against REV] [--repeat 5]  # the three paths
    .venv/bin/python bench/audio.py --rss-hours 4  # peak memory of the three paths, long file

A synthesized track of known tempo and key (stereo, 44.1 kHz) is written as a 192 kbit/s MP3,
the kind of upload the Go service got. Everything runs pinned to one core (``taskset -c 0``,
one BLAS/OpenMP thread), each side in its own process:

* ours — the realtime factor (audio seconds / wall seconds) of each stage on the decoded
  signal, of the whole analysis (``analyze_file``: loudness + tempo + key + waveform, decode
  included) and of the analysis plus an MP3 transcode in the same pass; peak RSS of a process
  doing the latter;
* the Go service's way — ``ffmpeg`` transcoding to MP3 192k, ``ffmpeg … loudnorm`` for the
  loudness, and a Python process loading the file with librosa for the median of its tempo and
  the argmax of the mean ``chroma_cqt``, as its script did;
* the normalised path — the analysis, then the MP3 normalised to Spotify's −14 LUFS / −1 dBTP
  (:func:`audio.normalize.normalize_file`, given the analysis' loudness), against the plain
  analysis + MP3, and against ffmpeg's two-pass ``loudnorm`` (measure, then encode with the
  measured values, ``linear=true``) writing the same MP3; its peak RSS too.

``--paths`` times the three paths a job can take, wall and CPU seconds (all threads), with
both cores allowed (the encoder runs on a thread of its own; ``--cores 0``: one core, no
second thread, as ``ENCODE_THREAD=auto`` where every core is taken): the MP3 encode alone (from
decoded samples), the analysis + MP3 in one pass, the analysis + MP3 normalised to Spotify;
and the ratios issue 27 sets (≤ 1.3 and ≤ 1.6). ``--against REV`` with it measures REV the same
way in the same run, alternating, so CPU seconds per job (what a fleet pays for) are compared.

Needs ffmpeg on the PATH (Debian: ``apt-get install ffmpeg``) and librosa (``pip install -e
.[bench]``); a missing peer is reported and skipped. The last line is
``speedup vs ffmpeg+librosa: X.XX`` (their total time / ours for analysis + MP3), with
normalisation off; the one before it describes the normalised path.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.revision import checked_out  # noqa: E402

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

from pathlib import Path
from audio.targets import PRESETS

path, out_dir, mode = sys.argv[1], sys.argv[2], sys.argv[3]
from audio.work_thread import spare_cores
options = {"threaded": spare_cores(1)}  # one core here: no second thread, as the workers'

def normalized():
    folder = Path(out_dir) / "normalised"
    analysis = analyze_file(path, formats=("mp3",), out_dir=folder, normalize=PRESETS["spotify"],
                            **options)
    return analysis.normalizations[0]

if mode in ("rss", "rss-normalized"):
    if mode == "rss":
        analyze_file(path, formats=("mp3",), out_dir=out_dir, **options)
    else:
        normalized()
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
    with AudioEncoder(out_dir + "/stage.mp3", "mp3", in_rate=rate, in_channels=2,
                      **options) as e:
        for b in blocks: e.write(b)
times["loudness"], _ = timed(loudness)
times["downmix + resample"], mono = timed(downmix)
times["tempo"], tempo = timed(lambda: feed(TempoAnalyzer(ANALYSIS_RATE), mono))
times["key"], key = timed(lambda: feed(KeyAnalyzer(ANALYSIS_RATE), mono))
times["waveform"], _ = timed(waveform)
times["MP3 transcode"], _ = timed(mp3)
times["whole analysis"], analysis = timed(lambda: analyze_file(path))
times["analysis + MP3"], _ = timed(
    lambda: analyze_file(path, formats=("mp3",), out_dir=out_dir, **options))
times["analysis + MP3 normalised to spotify"], norm = timed(normalized)
record = analysis.to_dict()
print(json.dumps({"times": times, "bpm": record["bpm"], "key": record["key"],
                  "lufs": record["integrated_lufs"], "duration": samples.shape[1] / rate,
                  "normalized": norm.to_dict()}))
"""

#: The whole analysis of one file, timed in-process (best of three), for ``--against``.
WHOLE_ANALYSIS = r"""
import json, sys, time
from audio.analyze import analyze_file
best = min(
    (lambda start: (analyze_file(sys.argv[1]), time.perf_counter() - start)[1])(time.perf_counter())
    for _ in range(3)
)
print(json.dumps({"seconds": best}))
"""

#: The three paths of a job, wall and CPU seconds each, for ``--paths``.
PATHS = r"""
import json, sys, time
from pathlib import Path
from audio.analyze import analyze_file
from audio.decode import decode
from audio.targets import PRESETS
from audio.transcode import AudioEncoder

path, out_dir, rounds = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
import inspect
options = {}  # a revision from before the encoder's thread has no choice
if "threaded" in inspect.signature(analyze_file).parameters:
    # As the workers' ENCODE_THREAD=auto: a thread of its own only with a core to spare.
    from audio.work_thread import spare_cores
    options = {"threaded": spare_cores(1)}
samples, rate = decode(path)
blocks = [samples[:, i:i + 65536] for i in range(0, samples.shape[1], 65536)]

def encode():
    with AudioEncoder(out_dir / "alone.mp3", "mp3", in_rate=rate, in_channels=2,
                      **options) as encoder:
        for block in blocks:
            encoder.write(block)

def plain():
    analyze_file(path, formats=("mp3",), out_dir=out_dir / "plain", **options)

def normalised():
    folder = out_dir / "normalised"
    analysis = analyze_file(path, formats=("mp3",), out_dir=folder, normalize=PRESETS["spotify"],
                            **options)
    return analysis.normalizations[0].to_dict()

def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, value

plain()  # imports and caches warm
paths = {"MP3 encode alone": encode, "analysis + MP3": plain,
         "analysis + normalised MP3": normalised}
times = {name: [] for name in paths}
normalization = None
for _ in range(rounds):
    for name, fn in paths.items():
        wall, cpu, value = timed(fn)
        times[name].append([wall, cpu])
        normalization = value if value is not None else normalization
print(json.dumps({"times": times, "normalization": normalization}))
"""

LIBROSA = r"""
import json, sys, numpy as np, librosa
y, sr = librosa.load(sys.argv[1], sr=22050, mono=True)
tempo = float(np.median(librosa.feature.tempo(y=y, sr=sr, aggregate=None)))
chroma = librosa.feature.chroma_cqt(y=y, sr=sr)
names = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
print(json.dumps({"bpm": tempo, "key": names[int(np.argmax(chroma.mean(axis=1)))]}))
"""


def pinned(command: list[str], cores: str = "0") -> list[str]:
    return ["taskset", "-c", cores, *command] if shutil.which("taskset") else command


def run(
    command: list[str], env: dict | None = None, cores: str = "0", root: Path = ROOT
) -> tuple[float, str]:
    """Run ``command`` pinned to ``cores``, importing the tree at ``root`` (its working folder
    too: ``python -c`` puts the working folder ahead of ``PYTHONPATH``)."""
    start = time.perf_counter()
    out = subprocess.run(
        pinned(command, cores),
        cwd=root,
        env={**os.environ, **SINGLE_THREAD, "PYTHONPATH": str(root), **(env or {})},
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"{command[0]} failed:\n{out.stderr[-2000:]}")
    return time.perf_counter() - start, out.stdout + out.stderr


def against(revision: str, seconds: float, rounds: int) -> None:
    """Whole analysis ×realtime of this tree and of ``revision``, alternating on one core."""
    folder = Path(tempfile.mkdtemp(prefix="bench-against-"))
    try:
        with checked_out(revision, folder / "baseline") as baseline:
            source = make_input(folder, seconds)
            times: dict[str, list[float]] = {"this tree": [], revision: []}
            for _ in range(rounds):
                for name, root in (("this tree", ROOT), (revision, baseline)):
                    command = [sys.executable, "-c", WHOLE_ANALYSIS, str(source)]
                    _, out = run(command, root=root)
                    times[name].append(json.loads(out.strip().splitlines()[-1])["seconds"])
        medians = {name: sorted(values)[len(values) // 2] for name, values in times.items()}
        for name, values in times.items():
            rounds_text = ", ".join(f"{v:.3f}" for v in values)
            print(
                f"{name:>12}: whole analysis {medians[name]:.3f} s median "
                f"({seconds / medians[name]:.0f}× realtime; rounds {rounds_text})"
            )
        print(f"cost this tree / {revision}: {medians['this tree'] / medians[revision]:.3f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


#: Peak RSS of one path on a file, for ``--rss-hours``.
PATH_RSS = r"""
import json, sys
from pathlib import Path
from audio.analyze import analyze_file
from audio.targets import PRESETS
path, out_dir, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
target = PRESETS["spotify"] if mode == "normalised" else None
# No decode bound: memory is measured here, and a busy machine may take longer than the default.
analysis = analyze_file(path, formats=("mp3",), out_dir=out_dir, normalize=target, timeout_s=1e6)
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
normalization = analysis.normalizations[0].to_dict() if analysis.normalizations else None
print(json.dumps({"rss_mb": int(hwm.split()[1]) / 1024, "normalization": normalization}))
"""


def long_file_memory(hours: float, modes: tuple[str, ...] = ("plain", "normalised")) -> None:
    """Peak RSS (``VmHWM``) of analysis + MP3 and of analysis + normalised MP3 on ``hours`` of
    quiet noise with a click every 1.5 s (so the normalised master is limited) at 44.1 kHz
    stereo (a WAV written block by block), each in a process of its own."""
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from audio.transcode import AudioEncoder

    folder = Path(tempfile.mkdtemp(prefix="bench-rss-"))
    try:
        source = folder / "long.wav"
        rng = np.random.default_rng(7)
        frames = round(hours * 3600 * 44100)
        with AudioEncoder(source, "wav", in_rate=44100, in_channels=2) as encoder:
            t = np.arange(round(0.004 * 44100)) / 44100
            click = (0.5 * np.sin(2 * np.pi * 3000 * t) * np.exp(-t * 800)).astype(np.float32)
            period = round(1.5 * 44100)  # 1 << 20 frames hold whole periods but one, cut here
            for start in range(0, frames, 1 << 20):
                count = min(1 << 20, frames - start)
                block = (rng.standard_normal((2, count)) * 0.02).astype(np.float32)
                for at in range(-start % period, count - len(click), period):
                    block[:, at : at + len(click)] += click
                encoder.write(block)
        size = source.stat().st_size / 1e9
        print(f"{hours:g} h of noise and clicks at 44.1 kHz stereo, {size:.1f} GB WAV")
        for mode in modes:
            seconds, out = run(
                [sys.executable, "-c", PATH_RSS, str(source), str(folder / mode), mode],
                cores="0,1",
            )
            result = json.loads(out.strip().splitlines()[-1])
            print(
                f"analysis + MP3 ({mode}): peak RSS {result['rss_mb']:.0f} MB, {seconds:.0f} s; "
                f"{result['normalization']}"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def job_paths(revision: str | None, seconds: float, rounds: int, cores: str = "0,1") -> None:
    """The three paths of a job, wall and CPU (median of ``rounds``), this tree and, given,
    ``revision`` alternating in the same run, on ``cores``; the issue's ratios."""
    folder = Path(tempfile.mkdtemp(prefix="bench-paths-"))
    trees = {"this tree": ROOT}
    try:
        with contextlib.ExitStack() as stack:
            if revision:
                trees[revision] = stack.enter_context(checked_out(revision, folder / "baseline"))
            source = make_input(folder, seconds)
            found: dict[str, dict] = {}
            for _ in range(rounds):
                for name, root in trees.items():
                    out = folder / "out"
                    out.mkdir(exist_ok=True)
                    command = [sys.executable, "-c", PATHS, str(source), str(out), "1"]
                    _, text = run(command, cores=cores, root=root)
                    result = json.loads(text.strip().splitlines()[-1])
                    mine = found.setdefault(name, {"times": {}, "normalization": None})
                    for path, values in result["times"].items():
                        mine["times"].setdefault(path, []).extend(values)
                    mine["normalization"] = result["normalization"]
                    shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\n{seconds:.0f} s synthesized track, MP3 192k; cores {cores}, one BLAS thread;")
    print(f"median of {rounds} rounds, wall / CPU seconds (CPU: all threads)\n")
    print("| path | " + " | ".join(found) + " |")
    print("|---|" + "---|" * len(found))
    medians = {
        name: {
            path: [sorted(v[i] for v in values)[len(values) // 2] for i in (0, 1)]
            for path, values in data["times"].items()
        }
        for name, data in found.items()
    }
    for path in PATH_NAMES:
        cells = [f"{m[path][0]:.2f} / {m[path][1]:.2f}" for m in medians.values()]
        print(f"| {path} | " + " | ".join(cells) + " |")
    for name, m in medians.items():
        alone, plain, normalised = (m[path] for path in PATH_NAMES)
        n = found[name]["normalization"]
        print(
            f"\n{name}: analysis + MP3 / MP3 alone = {plain[0] / alone[0]:.2f} wall, "
            f"{plain[1] / alone[1]:.2f} CPU (goal ≤ 1.3); normalised / plain = "
            f"{normalised[0] / plain[0]:.2f} wall, {normalised[1] / plain[1]:.2f} CPU "
            f"(goal ≤ 1.6); normalised output {n['output_integrated_lufs']} LUFS "
            f"{n['output_true_peak_dbtp']} dBTP (gain {n['gain_db']:+.2f} dB, limited "
            f"{n['limited_db']:.2f} dB)"
        )
    if revision:
        this, base = medians["this tree"], medians[revision]
        for path in PATH_NAMES:
            print(
                f"{path}: this tree / {revision} = {this[path][0] / base[path][0]:.2f} wall, "
                f"{this[path][1] / base[path][1]:.2f} CPU"
            )


PATH_NAMES = ("MP3 encode alone", "analysis + MP3", "analysis + normalised MP3")


def make_input(folder: Path, seconds: float) -> Path:
    sys.path.insert(0, str(ROOT))
    from audio.transcode import AudioEncoder
    from tests.support.audio.music import synthesize_track

    track = synthesize_track(BPM, TONIC, SCALE, seconds=seconds, sample_rate=44100, seed=42)
    path = folder / "upload.mp3"
    with AudioEncoder(path, "mp3", in_rate=44100, in_channels=2) as encoder:
        encoder.write(track.samples)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument(
        "--overshoot",
        metavar="FIRST-LAST",
        help="instead: each encoder's true-peak overshoot over the limiter's ceiling on the "
        "synthesized tracks of these seeds (how audio.normalize.FIRST_MARGIN_DB was set)",
    )
    parser.add_argument(
        "--acceptance",
        metavar="FIRST-LAST",
        help="instead: normalise the synthesized tracks of these seeds (−32 LUFS to spotify, "
        "−8 to ebu, −20 to apple) into every format and check issue 14's acceptance",
    )
    parser.add_argument("--target", help="with --acceptance: one target for all, from −20 LUFS")
    parser.add_argument(
        "--against",
        metavar="REV",
        help="instead: the whole analysis of this tree against git revision REV (a worktree of "
        "it made in a temporary folder), alternating, in the same run; prints the cost ratio",
    )
    parser.add_argument("--repeat", type=int, default=5, help="with --against: rounds")
    parser.add_argument(
        "--paths",
        action="store_true",
        help="instead: the three paths of a job (MP3 alone, analysis + MP3, normalised), wall "
        "and CPU seconds, with --against REV measured too",
    )
    parser.add_argument(
        "--cores", default="0,1", help="with --paths: the cores allowed (taskset -c)"
    )
    parser.add_argument(
        "--rss-hours",
        type=float,
        help="instead: peak RSS of analysis + MP3, plain and normalised, on this many hours",
    )
    parser.add_argument(
        "--rss-paths", default="plain,normalised", help="with --rss-hours: which paths"
    )
    args = parser.parse_args()
    if args.rss_hours:
        long_file_memory(args.rss_hours, tuple(args.rss_paths.split(",")))
        return
    if args.paths:
        job_paths(args.against, args.seconds, args.repeat, args.cores)
        return
    if args.against:
        against(args.against, args.seconds, args.repeat)
        return
    if args.acceptance:
        first, last = (int(part) for part in args.acceptance.split("-"))
        normalization_acceptance(range(first, last + 1), args.target)
        return
    if args.overshoot:
        first, last = (int(part) for part in args.overshoot.split("-"))
        encoder_overshoot(range(first, last + 1))
        return
    folder = Path(tempfile.mkdtemp(prefix="bench-audio-"))
    try:
        source = make_input(folder, args.seconds)
        _, out = run([sys.executable, "-c", OURS, str(source), str(folder), "stages"])
        ours = json.loads(out.strip().splitlines()[-1])
        _, out = run([sys.executable, "-c", OURS, str(source), str(folder), "rss"])
        rss_mb = json.loads(out.strip().splitlines()[-1])["rss_mb"]
        _, out = run([sys.executable, "-c", OURS, str(source), str(folder), "rss-normalized"])
        ours["rss_normalized_mb"] = json.loads(out.strip().splitlines()[-1])["rss_mb"]
        theirs = go_service(source, folder)
        if theirs is not None:
            theirs["loudnorm_two_pass"] = loudnorm_two_pass(source, folder)
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


def loudnorm_two_pass(source: Path, folder: Path) -> dict:
    """ffmpeg's way to a −14 LUFS / −1 dBTP MP3: measure, then encode with what was measured
    (``linear=true``: one gain when the measured values allow it, else its dynamic mode)."""
    ffmpeg = ["ffmpeg", "-hide_banner", "-nostdin", "-threads", "1", "-y", "-i", str(source)]
    spec = "loudnorm=I=-14:TP=-1:LRA=20"
    first_s, log = run([*ffmpeg, "-af", f"{spec}:print_format=json", "-f", "null", "-"])
    measured = json.loads(log[log.rindex("{") : log.rindex("}") + 1])
    second = (
        f"{spec}:linear=true:measured_I={measured['input_i']}:measured_TP={measured['input_tp']}"
        f":measured_LRA={measured['input_lra']}:measured_thresh={measured['input_thresh']}"
        f":offset={measured['target_offset']}"
    )
    out = folder / "loudnorm.mp3"
    second_s, _ = run(
        [*ffmpeg, "-af", second, "-ar", "44100", "-codec:a", "libmp3lame", "-b:a", "192k", str(out)]
    )
    sys.path.insert(0, str(ROOT))
    from audio.decode import decode
    from audio.loudness import measure_loudness

    samples, rate = decode(out)
    result = measure_loudness(samples, rate)
    return {
        "seconds": first_s + second_s,
        "lufs": result.integrated_lufs,
        "true_peak": result.true_peak_dbtp,
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
        print(
            f"| analysis + MP3 ≥ 3× faster than ffmpeg+librosa | {speedup:.2f}× | "
            f"{_yes(speedup >= 3)} |"
        )
    print(f"| peak RSS < 300 MB | {rss_mb:.0f} MB | {_yes(rss_mb < 300)} |")
    rss_norm = ours["rss_normalized_mb"]
    print(f"| peak RSS < 300 MB, normalised | {rss_norm:.0f} MB | {_yes(rss_norm < 300)} |")
    normalized_report(ours, theirs)
    if theirs is not None:
        print(f"\nspeedup vs ffmpeg+librosa: {go_total / ours_total:.2f}")
    else:
        print("\nspeedup vs ffmpeg+librosa: n/a (peer missing)")


def seeded_track(seed: int):
    """An 8 s synthesized track for ``seed`` (tempo, key and mode drawn from it) and its
    integrated loudness: the material of ``--overshoot`` and ``--acceptance``."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from audio.loudness import measure_loudness
    from tests.support.audio.music import TONICS, synthesize_track

    bpm = float(np.random.default_rng(seed).uniform(80, 170))
    scale = "minor" if seed % 2 else "major"
    track = synthesize_track(bpm, TONICS[seed % 12], scale, 8.0, 44100, seed=seed)
    return track, measure_loudness(track.samples, 44100).integrated_lufs


def encoder_overshoot(seeds: range) -> None:
    """Per seed, an 8 s track brought to −14 and −9 LUFS and limited to −1 dBTP, encoded in
    each format, decoded: the true peak read (the larger of our meter and the limiter's
    detector) minus −1. Then how many first encodes each margin lets through."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from audio.decode import decode
    from audio.limiter import HALF_TAPS, IntervalPeaks, TruePeakLimiter
    from audio.loudness import measure_loudness
    from audio.normalize import FIRST_MARGIN_DB
    from audio.transcode import AudioEncoder

    folder = Path(tempfile.mkdtemp(prefix="bench-overshoot-"))
    overshoot: dict[str, list[float]] = {fmt: [] for fmt in FIRST_MARGIN_DB}
    try:
        for seed in seeds:
            track, level = seeded_track(seed)
            for lufs in (-14.0, -9.0):
                limiter = TruePeakLimiter(44100, 2, gain_db=lufs - level, ceiling_dbtp=-1.0)
                limited = np.concatenate([limiter.process(track.samples), limiter.flush()], 1)
                for fmt, values in overshoot.items():
                    path = folder / f"out.{fmt}"
                    with AudioEncoder(path, fmt, in_rate=44100, in_channels=2) as encoder:
                        encoder.write(limited)
                    decoded, rate = decode(path)
                    pad = np.zeros((decoded.shape[0], 2 * HALF_TAPS), np.float32)
                    detector = IntervalPeaks(rate)(np.concatenate([pad, decoded, pad], 1)).max()
                    meter = measure_loudness(decoded, rate).true_peak_dbtp
                    values.append(max(meter, 20 * np.log10(detector)) + 1.0)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"seeds {seeds.start}–{seeds.stop - 1}, −14 and −9 LUFS, limited to −1 dBTP\n")
    print("| format | overshoot, dB (each) | max | margin | through on the first encode |")
    print("|---|---|---|---|---|")
    for fmt, values in overshoot.items():
        margin = FIRST_MARGIN_DB[fmt]
        through = sum(v <= margin for v in values)
        each = " ".join(f"{v:+.2f}" for v in values)
        print(f"| {fmt} | {each} | {max(values):+.2f} | {margin} | {through}/{len(values)} |")


def normalization_acceptance(seeds: range, target_text: str | None) -> None:
    """Issue 14's acceptance per output: integrated within ±0.5 LU of the target (±0.2 for
    WAV/FLAC) by our meter and by pyloudnorm, true peak at or under the ceiling by our meter
    and by 4× ``resample_poly``; and how many encodes each format took."""
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import pyloudnorm
    from scipy.signal import resample_poly

    import audio.normalize as normalize
    from audio.decode import decode
    from audio.targets import parse_target
    from audio.transcode import AudioEncoder

    encodes: dict[str, int] = {}
    plain_encode = normalize._encode

    def counted(source, group, *args):
        for job in group:
            encodes[job.fmt] = encodes.get(job.fmt, 0) + 1
        return plain_encode(source, group, *args)

    normalize._encode = counted
    cases = [(-32.0, "spotify"), (-8.0, "ebu"), (-20.0, "apple")]
    if target_text:
        cases = [(-20.0, target_text)]
    formats = list(normalize.FIRST_MARGIN_DB)
    folder = Path(tempfile.mkdtemp(prefix="bench-acceptance-"))
    failures, outputs = [], 0
    try:
        for seed in seeds:
            track, level = seeded_track(seed)
            for lufs, name in cases:
                source = folder / "source.wav"
                with AudioEncoder(source, "wav", in_rate=44100, in_channels=2) as encoder:
                    encoder.write(track.samples * np.float32(10 ** ((lufs - level) / 20)))
                target = parse_target(name)
                paths = [(folder / f"out.{fmt}", fmt) for fmt in formats]
                done = normalize.normalize_file(source, paths, target)
                for fmt, (result, n) in zip(formats, done, strict=True):
                    outputs += 1
                    decoded, rate = decode(result.path)
                    theirs = pyloudnorm.Meter(rate).integrated_loudness(decoded.T.astype(float))
                    up = resample_poly(decoded.astype(float), 4, 1, axis=1)
                    reference_peak = 20 * np.log10(np.abs(up).max())
                    tolerance = 0.2 if fmt in ("wav", "flac") else 0.5
                    ok = (
                        abs(n.output_integrated_lufs - target.lufs) <= tolerance
                        and abs(theirs - target.lufs) <= tolerance
                        and n.output_true_peak_dbtp <= target.true_peak_dbtp
                        and reference_peak <= target.true_peak_dbtp
                    )
                    if not ok:
                        failures.append(
                            f"seed {seed}, {lufs:g} LUFS to {name}, {fmt}: ours "
                            f"{n.output_integrated_lufs:.2f} LUFS {n.output_true_peak_dbtp:.2f} "
                            f"dBTP, pyloudnorm {theirs:.2f}, resampled peak "
                            f"{reference_peak:.3f}; {n.reason}"
                        )
    finally:
        normalize._encode = plain_encode
        shutil.rmtree(folder, ignore_errors=True)
    per_output = {fmt: round(encodes.get(fmt, 0) / (len(seeds) * len(cases)), 2) for fmt in formats}
    print(
        f"seeds {seeds.start}–{seeds.stop - 1}: {outputs} outputs, {len(failures)} outside "
        f"the acceptance; encodes per output {per_output}"
    )
    for failure in failures:
        print(f"  {failure}")


def normalized_report(ours: dict, theirs: dict | None) -> None:
    """The normalised path: ours against the plain path and against ffmpeg's two passes."""
    plain = ours["times"]["analysis + MP3"]
    normalized = ours["times"]["analysis + MP3 normalised to spotify"]
    n = ours["normalized"]
    print("\n| normalised MP3 (spotify: −14 LUFS, −1 dBTP) | LUFS | dBTP | seconds |")
    print("|---|---|---|---|")
    print(
        f"| PhantomChain: analysis + normalised MP3 (gain {n['gain_db']:+.2f} dB, limited "
        f"{n['limited_db']:.2f} dB) | {n['output_integrated_lufs']} | "
        f"{n['output_true_peak_dbtp']} | {normalized:.2f} |"
    )
    peer = (theirs or {}).get("loudnorm_two_pass")
    if peer is not None:
        print(
            f"| ffmpeg loudnorm two-pass + MP3 (no analysis) | {peer['lufs']:.2f} "
            f"| {peer['true_peak']:.2f} | {peer['seconds']:.2f} |"
        )
        vs_peer = f"{peer['seconds'] / normalized:.2f}× ffmpeg loudnorm two-pass"
    else:
        vs_peer = "ffmpeg loudnorm n/a (ffmpeg missing)"
    print(
        f"\nnormalised path: {normalized:.2f} s = {normalized / plain:.2f}× the plain path "
        f"({plain:.2f} s); speed {vs_peer}"
    )


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


if __name__ == "__main__":
    main()
