"""Ours vs essentia vs pyloudnorm vs librosa: accuracy and time on the same files, in one run.

    nice -n 10 .venv/bin/python bench/oracles.py [--seconds 20] [--music 12] [--per-style 2]

Accuracy, on material whose truth is known by construction:

* loudness — EBU Tech 3341 cases 1–5 (integrated), case 13's construction with bursts off the
  100 ms grid (maximum momentary loudness), Tech 3342 cases 1–4 (loudness range), all at
  48 kHz; a steady 1 kHz tone's loudness range (0 by definition); and steady tones at 30 and
  50 Hz against their power through BS.1770's published filter. librosa has no loudness meter.
* tempo and key — synthesized music, 44.1 kHz stereo, written as 192 kbit/s MP3 files:
  ``--music`` tracks from ``tests/support/audio/music.py`` (one tempo in each slice of 70–180
  BPM, keys drawn from all 24, seeds 9_400_000 + i) and ``--per-style`` tracks of each style of
  ``tests/support/audio/styles.py`` (the independent generator: drum and bass, trap, punk, swing,
  waltz, house, ballad, techno, tempo-less intro; seeds 9_600_000 + 1000 × style + i). These
  seeds were chosen for this benchmark; nothing was tuned on them. Accuracy1: BPM within 4 %;
  Accuracy2: the same allowing half or double; key: mean MIREX score.

Time: each file is decoded once (``audio.decode``) and the same PCM goes to every library;
seconds per minute of audio, on one core (this process pinned to one CPU, one BLAS/OpenMP/numba
thread), after a warm-up call of each (librosa's first call compiles with numba for ~30 s).
"ours (file)" is ``analyze_file`` on the MP3: decode, loudness, tempo, key and waveform in one
pass. The ratio is the library's time over ours for the same task, measured in the same run.

What each library is called with:

* ours: ``measure_loudness`` (integrated, LRA, true peak), ``estimate_tempo`` and
  ``estimate_key`` on the mono mix (at 44.1 kHz; they resample to 11,025 Hz themselves);
* essentia 2.1b6: ``LoudnessEBUR128`` + ``TruePeakDetector`` (per channel), default
  ``RhythmExtractor2013`` (multifeature), ``KeyExtractor`` (default profile ``bgate``);
* pyloudnorm 0.2: ``Meter`` (default K-weighting) ``integrated_loudness`` + ``loudness_range``;
  no true peak;
* librosa 0.11 (``bench`` extra), kept simple and said so: ``librosa.feature.tempo`` (global
  estimate, default onset envelope, hop 512) and the textbook key — mean ``chroma_cqt``
  correlated with the Krumhansl–Kessler major and minor profiles, best of 24.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy, scipy and numba load

import argparse  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audio.analyze import analyze_file  # noqa: E402
from audio.decode import decode  # noqa: E402
from audio.key import TONICS, estimate_key  # noqa: E402
from audio.loudness import LoudnessMeter, measure_loudness  # noqa: E402
from audio.tempo import estimate_tempo  # noqa: E402
from audio.true_peak import TruePeakMeter  # noqa: E402
from tests.support.audio import ebu_signals as ebu  # noqa: E402
from tests.support.audio import oracles, styles  # noqa: E402
from tests.support.audio.accuracy import mirex_score, within  # noqa: E402
from tests.support.audio.music import synthesize_track  # noqa: E402
from tests.support.audio.signals import tone, write_audio  # noqa: E402

RATE = 44100
EBU_RATE = 48000
MUSIC_SEED, STYLES_SEED = 9_400_000, 9_600_000
LIBRARIES = ("ours", "essentia", "pyloudnorm", "librosa")
# Krumhansl & Kessler (1982) probe-tone ratings, C major / C minor.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


# -- the libraries, called the same way for every file -----------------------------------------


def librosa_tempo(mono: np.ndarray, rate: int) -> float:
    import librosa

    return float(librosa.feature.tempo(y=mono, sr=rate)[0])


def librosa_key(mono: np.ndarray, rate: int) -> tuple[str, str]:
    import librosa

    chroma = librosa.feature.chroma_cqt(y=mono, sr=rate).mean(axis=1)
    scores = [
        (np.corrcoef(chroma, np.roll(profile, tonic))[0, 1], TONICS[tonic], scale)
        for profile, scale in ((KK_MAJOR, "major"), (KK_MINOR, "minor"))
        for tonic in range(12)
    ]
    _, tonic, scale = max(scores)
    return tonic, scale


def ours_true_peak(pcm: np.ndarray, rate: int) -> float:
    """Our true-peak meter alone (``measure_loudness`` runs it too)."""
    meter = TruePeakMeter(rate, pcm.shape[0])
    meter.add(pcm)
    return meter.peak


def pyloudnorm_loudness(pcm: np.ndarray, rate: int) -> float:
    oracles.pyloudnorm_range(pcm, rate)
    return oracles.pyloudnorm_integrated(pcm, rate)


LOUDNESS: dict[str, Callable] = {
    "ours": lambda pcm, rate: measure_loudness(pcm, rate).integrated_lufs,
    "essentia": lambda pcm, rate: oracles.essentia_loudness(pcm, rate).integrated_lufs,
    "pyloudnorm": pyloudnorm_loudness,
}
TRUE_PEAK: dict[str, Callable] = {
    "ours": ours_true_peak,
    "essentia": oracles.essentia_true_peak_dbtp,
}
TEMPO: dict[str, Callable] = {
    "ours": lambda mono, rate: estimate_tempo(mono, rate).bpm or 0.0,
    "essentia": oracles.essentia_tempo,
    "librosa": librosa_tempo,
}


def ours_key(mono: np.ndarray, rate: int) -> tuple[str | None, str | None]:
    key = estimate_key(mono, rate)
    return key.tonic, key.scale


KEY: dict[str, Callable] = {
    "ours": ours_key,
    "essentia": oracles.essentia_key,
    "librosa": librosa_key,
}


# -- accuracy on the EBU signals ---------------------------------------------------------------


def _ours_max_momentary(samples: np.ndarray, rate: int) -> float:
    meter = LoudnessMeter(rate, samples.shape[0])
    meter.add(samples)
    return float(meter.momentary_lufs().max())


INTEGRATED: dict[str, Callable] = {
    "ours": lambda pcm, rate: measure_loudness(pcm, rate).integrated_lufs,
    "essentia": lambda pcm, rate: oracles.essentia_loudness(pcm, rate).integrated_lufs,
    "pyloudnorm": oracles.pyloudnorm_integrated,
}
RANGE: dict[str, Callable] = {
    "ours": lambda pcm, rate: measure_loudness(pcm, rate).loudness_range_lu,
    "essentia": lambda pcm, rate: oracles.essentia_loudness(pcm, rate).loudness_range_lu,
    "pyloudnorm": oracles.pyloudnorm_range,
}
MOMENTARY: dict[str, Callable] = {
    "ours": _ours_max_momentary,
    "essentia": lambda pcm, rate: float(oracles.essentia_loudness(pcm, rate).momentary_lufs.max()),
}


def ebu_signals():
    """``(measure, meters, samples, expected)``, one signal at a time (some are 100 s long)."""
    for _, parts, expected in ebu.INTEGRATED_CASES:
        yield "I", INTEGRATED, ebu.sequence(EBU_RATE, parts), expected
    for _, parts, expected in ebu.RANGE_CASES:
        yield "LRA", RANGE, ebu.sequence(EBU_RATE, parts), expected
    steady = tone(1000.0, 10.0, EBU_RATE, channels=2, amplitude=0.1)
    yield "LRA0", RANGE, steady, 0.0  # a steady tone's loudness range is 0 by definition
    bursts = ebu.case_13_momentary_bursts(EBU_RATE, [0.05, 0.77, 1.13])
    yield "M", MOMENTARY, bursts, -23.0
    for freq in (30.0, 50.0):
        low = tone(freq, 5.0, EBU_RATE, channels=2, amplitude=0.1)
        yield "low", INTEGRATED, low, oracles.bs1770_tone_lufs(freq, 0.1)


MEASURES = ("I", "M", "LRA", "LRA0", "low")


def ebu_accuracy() -> dict[str, dict[str, float]]:
    """Largest |error| per measure and library (LU or dB), on signals of known loudness."""
    errors: dict[str, dict[str, float]] = defaultdict(dict)
    for measure, meters, samples, expected in ebu_signals():
        for library, meter in meters.items():
            error = abs(meter(samples, EBU_RATE) - expected)
            errors[library][measure] = max(errors[library].get(measure, 0.0), error)
    return errors


# -- the corpus: files, one decode, every library ------------------------------------------------


def make_corpus(folder: Path, music: int, per_style: int, seconds: float) -> list[dict]:
    """Write the tracks as MP3 192k; return ``{path, bpm, tonic, scale, generator[, style]}``."""
    rng = np.random.default_rng(MUSIC_SEED)
    edges = np.linspace(70, 180, music + 1)
    tempi = rng.uniform(edges[:-1], edges[1:])
    keys = rng.permutation(np.arange(-(-music // 24) * 24) % 24)[:music]  # all 24 evenly
    tracks = []
    for i, (bpm, k) in enumerate(zip(tempi, keys, strict=True)):
        tonic, scale = TONICS[k % 12], "major" if k < 12 else "minor"
        bpm = float(round(bpm, 1))
        tracks.append(synthesize_track(bpm, tonic, scale, seconds, RATE, seed=MUSIC_SEED + i))
    generators = ["music.py"] * len(tracks)
    independent = styles.corpus(STYLES_SEED, per_style, seconds, RATE) if per_style else []
    tracks += independent
    generators += ["styles.py"] * len(independent)
    corpus = []
    for i, (track, generator) in enumerate(zip(tracks, generators, strict=True)):
        path = write_audio(folder / f"{i:02d}.mp3", track.samples, RATE, "mp3", bitrate=192_000)
        item = {"path": path, "bpm": track.bpm, "tonic": track.tonic, "scale": track.scale}
        item["generator"] = generator
        if hasattr(track, "style"):
            item["style"] = track.style
        corpus.append(item)
    return corpus


def tasks_for(pcm: np.ndarray, mono: np.ndarray) -> list[tuple[str, dict, np.ndarray]]:
    """``(task, library → function, its input)``: loudness and true peak on the stereo PCM,
    tempo and key on its mono mix."""
    return [
        ("loudness", LOUDNESS, pcm),
        ("true peak", TRUE_PEAK, pcm),
        ("tempo", TEMPO, mono),
        ("key", KEY, mono),
    ]


def timed(fn: Callable, *args):
    start = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - start, value


def warm_up() -> None:
    """One call of everything on a short clip, so no first-call cost lands in the timings."""
    clip = synthesize_track(120.0, "C", "major", 6.0, RATE, seed=1).samples
    for _, table, signal in tasks_for(clip, clip.mean(axis=0)):
        for fn in table.values():
            fn(signal, RATE)


def run_corpus(corpus: list[dict]) -> tuple[dict, dict, float]:
    """Estimates and seconds per (task, library); minutes of audio."""
    estimates: dict = defaultdict(list)
    seconds: dict = defaultdict(float)
    minutes = 0.0
    for item in corpus:
        pcm, rate = decode(item["path"])
        mono = pcm.mean(axis=0)
        minutes += pcm.shape[1] / rate / 60
        for task, table, signal in tasks_for(pcm, mono):
            for library, fn in table.items():
                elapsed, value = timed(fn, signal, rate)
                seconds[task, library] += elapsed
                estimates[task, library].append(value)
        elapsed, analysis = timed(analyze_file, item["path"])
        seconds["file", "ours"] += elapsed
        estimates["tempo", "ours (file)"].append(analysis.tempo.bpm or 0.0)
        estimates["key", "ours (file)"].append((analysis.key.tonic, analysis.key.scale))
    return estimates, seconds, minutes


def tempo_accuracy(bpms: list[float], corpus: list[dict], generator: str | None = None):
    pairs = [
        (e, item["bpm"])
        for e, item in zip(bpms, corpus, strict=True)
        if generator is None or item["generator"] == generator
    ]
    acc1 = np.mean([within(e, t) for e, t in pairs])
    acc2 = np.mean([any(within(e * f, t) for f in (0.5, 1, 2)) for e, t in pairs])
    return float(acc1), float(acc2)


def key_mirex(keys: list[tuple], corpus: list[dict]) -> float:
    return float(
        np.mean(
            [
                mirex_score(item["tonic"], item["scale"], *key) if key[0] else 0.0
                for key, item in zip(keys, corpus, strict=True)
            ]
        )
    )


# -- report ------------------------------------------------------------------------------------


def corpus_offset(estimates, library: str) -> str:
    """How far a library's integrated loudness of the corpus is from ours (no truth there)."""
    if library == "ours" or ("loudness", library) not in estimates:
        return "—" if library not in ("ours", "ours (file)") else ""
    diff = np.subtract(estimates["loudness", library], estimates["loudness", "ours"])
    return f"{diff.mean():+.2f} ({diff.min():+.2f}…{diff.max():+.2f})"


def print_styles(estimates, corpus) -> None:
    """Tempo Accuracy1 per style of the independent generator (and music.py as one row)."""
    libraries = [lib for lib in LIBRARIES if ("tempo", lib) in estimates]
    print(f"\ntempo Accuracy1 per style (tracks)\n\n| style | {' | '.join(libraries)} |")
    print("|---|" + "---|" * len(libraries))
    groups = dict.fromkeys(item.get("style", item["generator"]) for item in corpus)
    for group in groups:
        rows = [i for i, item in enumerate(corpus) if item.get("style", item["generator"]) == group]
        cells = []
        for library in libraries:
            bpms = estimates["tempo", library]
            hits = sum(within(bpms[i], corpus[i]["bpm"]) for i in rows)
            cells.append(f"{hits}/{len(rows)}")
        print(f"| {group} | {' | '.join(cells)} |")


def report(errors, estimates, seconds, minutes, corpus) -> None:
    n_music = sum(item["generator"] == "music.py" for item in corpus)
    n_styles = len(corpus) - n_music
    print(
        f"\nloudness: EBU signals at {EBU_RATE} Hz; tempo/key: {n_music} music.py + {n_styles} "
        f"styles.py tracks, {minutes:.1f} min of 192k MP3 at {RATE} Hz, decoded once\n"
    )
    print(
        "| library | 3341 I max err LU | 3341 #13 M err LU | 3342 LRA max err LU "
        "| steady tone LRA err LU | 30/50 Hz tone err LU | corpus I − ours, mean (range) LU "
        "| tempo A1 music.py / styles.py | tempo A2 | key MIREX |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")

    def cell(library: str, measure: str) -> str:
        value = errors.get(library, {}).get(measure)
        return "—" if value is None else f"{value:.2f}"

    for library in (*LIBRARIES, "ours (file)"):
        tempo = estimates.get(("tempo", library))
        key = estimates.get(("key", library))
        if tempo is not None:
            a1_music = tempo_accuracy(tempo, corpus, "music.py")[0]
            a1_styles = tempo_accuracy(tempo, corpus, "styles.py")[0] if n_styles else float("nan")
            a2 = tempo_accuracy(tempo, corpus)[1]
            tempo_cells = f"{a1_music:.2f} / {a1_styles:.2f} | {a2:.2f}"
        else:
            tempo_cells = "— | —"
        key_cell = f"{key_mirex(key, corpus):.2f}" if key is not None else "—"
        # The EBU signals are measured as PCM, not files: the file row has tempo and key only.
        loud = [cell(library, m) if library != "ours (file)" else "" for m in MEASURES]
        loud.append(corpus_offset(estimates, library))
        print(f"| {library} | {' | '.join(loud)} | {tempo_cells} | {key_cell} |")
    if n_styles:
        print_styles(estimates, corpus)
    print("\nseconds per minute of audio (× ours: the same task, same run):\n")
    tasks = ("loudness", "true peak", "tempo", "key")
    print(f"| library | {' | '.join(tasks)} | everything ours measures |")
    print("|---|---|---|---|---|---|")
    # Ours' loudness includes its true peak; everything = loudness + tempo + key for ours,
    # all four for essentia.
    ours_all = sum(seconds[t, "ours"] for t in ("loudness", "tempo", "key"))
    for library in LIBRARIES:
        cells = []
        for task in tasks:
            if (task, library) not in seconds:
                cells.append("—")
                continue
            mine, base = seconds[task, library], seconds[task, "ours"]
            ratio = "" if library == "ours" else f" ({mine / base:.1f}×)"
            cells.append(f"{mine / minutes:.3f}{ratio}")
        if library == "ours":
            cells.append(f"{ours_all / minutes:.3f}")
        elif all((t, library) in seconds for t in tasks):
            theirs = sum(seconds[t, library] for t in tasks)
            cells.append(f"{theirs / minutes:.3f} ({theirs / ours_all:.1f}×)")
        else:
            cells.append("—")
        print(f"| {library} | {' | '.join(cells)} |")
    file_s = seconds["file", "ours"]
    print(
        f"| ours (file): `analyze_file`, decode + waveform included | | | | | "
        f"{file_s / minutes:.3f} ({file_s / ours_all:.1f}×) |"
    )
    print()
    for library in ("essentia", "librosa", "pyloudnorm"):
        shared = [t for t in tasks if (t, library) in seconds]
        theirs = sum(seconds[t, library] for t in shared)
        # Ours' true peak is timed inside its loudness already.
        ours = sum(
            seconds[t, "ours"] for t in shared if t != "true peak" or "loudness" not in shared
        )
        print(f"{library}/ours time ratio ({', '.join(shared)}): {theirs / ours:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each track")
    parser.add_argument("--music", type=int, default=12, help="tracks from music.py")
    parser.add_argument("--per-style", type=int, default=2, help="tracks of each styles.py style")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    try:
        import librosa  # noqa: F401
    except ImportError as missing:
        raise SystemExit(
            "librosa is not installed: .venv/bin/pip install -e '.[dev,bench]'"
        ) from missing
    started = time.perf_counter()
    errors = ebu_accuracy()
    folder = Path(tempfile.mkdtemp(prefix="bench-oracles-"))
    try:
        corpus = make_corpus(folder, args.music, args.per_style, args.seconds)
        warm_up()
        estimates, seconds, minutes = run_corpus(corpus)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report(errors, estimates, seconds, minutes, corpus)
    print(f"\n(benchmark ran {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
