"""True-peak detection: this tree against a revision, same run, one core.

    .venv/bin/python bench/peaks.py [--against REV] [--seconds 180] [--rounds 3] [--repeat 3]

A synthesized track (``tests/support/audio/music.py``, stereo, 44.1 kHz) is made once, and
limited once (+2.16 dB into −1 dBTP, by this tree's limiter); each side then times, in its own
process pinned to one core (``taskset -c 0``, one BLAS/OpenMP thread), with the revision
checked out in a temporary git worktree (removed after):

* ``limiter`` — :class:`audio.limiter.TruePeakLimiter` over the track, +2.16 dB, −1 dBTP, in
  decoder-sized blocks (65,536 frames);
* ``interval`` — :class:`audio.limiter.IntervalPeaks` once over the whole track times the gain,
  ceiling −1 dBTP; ``interval-idle`` the same with a ceiling nothing reaches (the overhead);
* ``meter`` — :class:`audio.true_peak.TruePeakMeter` over the track, in the same blocks;
* ``strict`` — the strict peak of the limited signal with a −1 dBTP floor, as
  ``audio.normalize._measure_strictly`` reads it: :class:`audio.limiter.StrictPeak` where the
  tree has it, else its former loop (``IntervalPeaks`` per block with the last 31 frames).

Each round runs every case ``--repeat`` times in one process per side and keeps the fastest
(the machine is shared: one call can be slowed by another process on the core); rounds
alternate the two sides; the figures are medians over rounds, the ratio this tree / revision.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.audio import ROOT, SINGLE_THREAD, pinned
from bench.revision import checked_out

GAIN_DB, CEILING_DBTP = 2.16, -1.0
CASES = ["limiter", "interval", "interval-idle", "meter", "strict"]

TIMED = r"""
import json, sys, time
import numpy as np
import audio.limiter as limiter
from audio.true_peak import TruePeakMeter

track = np.load(sys.argv[1])
limited = np.load(sys.argv[2])
gain_db, ceiling_db = float(sys.argv[3]), float(sys.argv[4])
ceiling = 10 ** (ceiling_db / 20)
BLOCK = 65536
blocks = [track[:, i : i + BLOCK] for i in range(0, track.shape[1], BLOCK)]
limited_blocks = [limited[:, i : i + BLOCK] for i in range(0, limited.shape[1], BLOCK)]
scaled = track * np.float32(10 ** (gain_db / 20))

def run_limiter():
    tpl = limiter.TruePeakLimiter(44100, 2, gain_db=gain_db, ceiling_dbtp=ceiling_db)
    for block in blocks:
        tpl.process(block)
    tpl.flush()

def run_interval(level):
    return lambda: limiter.IntervalPeaks(44100)(scaled, level)

def run_meter():
    meter = TruePeakMeter(44100, 2)
    for block in blocks:
        meter.add(block)

def run_strict():
    if hasattr(limiter, "StrictPeak"):
        strict = limiter.StrictPeak(44100, 2, ceiling)
        for block in limited_blocks:
            strict.add(block)
        return strict.result()
    detector = limiter.IntervalPeaks(44100)
    history = np.zeros((2, 2 * limiter.HALF_TAPS - 1), dtype=np.float32)
    best = 0.0
    for block in [*limited_blocks, np.zeros_like(history)]:
        segment = np.concatenate([history, block], axis=1)
        peaks = detector(segment, ceiling)
        best = max(best, float(peaks.max()) if len(peaks) else 0.0)
        history = segment[:, segment.shape[1] - history.shape[1] :]
    return best

cases = {
    "limiter": run_limiter,
    "interval": run_interval(ceiling),
    "interval-idle": run_interval(100.0),
    "meter": run_meter,
    "strict": run_strict,
}
times = {}
for name, call in cases.items():
    runs = []
    for _ in range(int(sys.argv[5])):
        start = time.perf_counter()
        call()
        runs.append(time.perf_counter() - start)
    times[name] = min(runs)
times["module"] = limiter.__file__
print(json.dumps(times))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", default="main", help="the revision to compare with")
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="calls per case per round")
    args = parser.parse_args()

    import numpy as np

    from audio.limiter import TruePeakLimiter
    from tests.support.audio.music import synthesize_track

    folder = Path(tempfile.mkdtemp(prefix="bench-peaks-"))
    try:
        with checked_out(args.against, folder / "baseline") as baseline:
            track = synthesize_track(
                124.0, "E", "minor", seconds=args.seconds, sample_rate=44100, seed=42
            ).samples
            limiter = TruePeakLimiter(44100, 2, gain_db=GAIN_DB, ceiling_dbtp=CEILING_DBTP)
            limited = np.concatenate([limiter.process(track), limiter.flush()], axis=1)
            np.save(folder / "track.npy", track)
            np.save(folder / "limited.npy", limited)
            sides = {"this tree": ROOT, args.against: baseline}
            times: dict[str, dict[str, list[float]]] = {
                name: {c: [] for c in CASES} for name in sides
            }
            for _ in range(args.rounds):
                for name, root in sides.items():
                    command = [
                        sys.executable,
                        "-c",
                        TIMED,
                        str(folder / "track.npy"),
                        str(folder / "limited.npy"),
                        str(GAIN_DB),
                        str(CEILING_DBTP),
                        str(args.repeat),
                    ]
                    found = json.loads(_run(command, root).strip().splitlines()[-1])
                    assert found.pop("module").startswith(str(root)), "imported the wrong tree"
                    for case, seconds in found.items():
                        times[name][case].append(seconds)
            print(
                f"{args.seconds:.0f} s stereo 44.1 kHz, one core: median over {args.rounds} rounds "
                f"of the fastest of {args.repeat} calls\n"
            )
            print(f"| case | this tree, s | {args.against}, s | this tree / {args.against} |")
            print("|---|---|---|---|")
            for case in CASES:
                new, old = (_median(times[name][case]) for name in sides)
                print(f"| {case} | {new:.3f} | {old:.3f} | {new / old:.3f} |")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run(command: list[str], root: Path) -> str:
    """``command`` pinned to one core with one BLAS thread, importing from ``root`` (run in
    it: ``python -c`` puts the working directory first on the path)."""
    env = {**os.environ, **SINGLE_THREAD, "PYTHONPATH": str(root)}
    out = subprocess.run(pinned(command), env=env, cwd=root, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{command[0]} failed:\n{out.stderr[-2000:]}")
    return out.stdout


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


if __name__ == "__main__":
    main()
