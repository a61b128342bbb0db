"""Decode benchmark: ``audio.decode`` of this tree against an earlier revision, same run.

    .venv/bin/python bench/decode.py [--against REV] [--seconds 180] [--repeat 5]

A synthesized track (as ``bench/audio.py`` makes it: stereo, 44.1 kHz) is written as a
192 kbit/s MP3, a FLAC and a 16-bit WAV. Each file is decoded in full with ``iter_blocks``
(65536-frame blocks) by this tree and by ``REV`` (default: where this branch left ``main``),
checked out as a git worktree in a temporary folder; each side runs in its own process pinned
to one core (``taskset -c 0``, one BLAS thread), rounds alternating between the sides. A
process decodes its file twice: once untimed, hashing the blocks (both sides must hand out the
same samples), then timed in CPU seconds (``time.process_time``). Printed per file: the median
of the rounds for each side and the cost ratio this tree / REV.
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

from bench.audio import BPM, ROOT, SCALE, SINGLE_THREAD, TONIC, pinned
from bench.revision import checked_out

#: One decode of ``argv[1]``: the blocks' digest (untimed pass) and the CPU seconds of a pass.
DECODE = r"""
import hashlib, json, sys, time
import audio.decode
from audio.decode import iter_blocks
digest = hashlib.sha256()
for block in iter_blocks(sys.argv[1]):
    digest.update(block.shape[0].to_bytes(2, "little"))
    digest.update(block.astype("<f4").tobytes())
start = time.process_time()
frames = sum(block.shape[1] for block in iter_blocks(sys.argv[1]))
print(json.dumps({"cpu_s": time.process_time() - start, "frames": frames,
                  "digest": digest.hexdigest(), "module": audio.decode.__file__}))
"""

FORMATS = ("mp3", "flac", "wav")


def make_inputs(folder: Path, seconds: float) -> dict[str, Path]:
    """The synthesized track of ``bench/audio.py``'s ``make_input`` in each format."""
    from audio.transcode import AudioEncoder
    from tests.support.audio.music import synthesize_track

    track = synthesize_track(BPM, TONIC, SCALE, seconds=seconds, sample_rate=44100, seed=42)
    paths = {}
    for fmt in FORMATS:
        paths[fmt] = folder / f"upload.{fmt}"
        with AudioEncoder(paths[fmt], fmt, in_rate=44100, in_channels=2) as encoder:
            encoder.write(track.samples)
    return paths


def decode_in(root: Path, path: Path) -> dict:
    """``DECODE`` in a process of its own importing ``audio`` from ``root``. It runs in ``root``
    too: ``python -c`` puts its working folder first on ``sys.path``, before ``PYTHONPATH``."""
    out = subprocess.run(
        pinned([sys.executable, "-c", DECODE, str(path)]),
        env={**os.environ, **SINGLE_THREAD, "PYTHONPATH": str(root)},
        cwd=root,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"decoding in {root} failed:\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not Path(result["module"]).resolve().is_relative_to(root.resolve()):
        raise SystemExit(f"{root} decoded with {result['module']}")
    return result


def start_of_branch() -> str:
    """The commit this branch started from: its merge base with ``main``."""
    out = subprocess.run(
        ["git", "-C", str(ROOT), "merge-base", "HEAD", "main"],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", metavar="REV", help="default: merge-base of HEAD and main")
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--repeat", type=int, default=5, help="rounds (the median is printed)")
    args = parser.parse_args()
    revision = args.against or start_of_branch()
    folder = Path(tempfile.mkdtemp(prefix="bench-decode-"))
    try:
        with checked_out(revision, folder / "baseline") as baseline:
            paths = make_inputs(folder, args.seconds)
            sides = {"this tree": ROOT, revision[:12]: baseline}
            cpu: dict[tuple[str, str], list[float]] = {(f, s): [] for f in FORMATS for s in sides}
            digests: dict[tuple[str, str], str] = {}
            for _ in range(args.repeat):
                for fmt, path in paths.items():
                    for side, root in sides.items():
                        result = decode_in(root, path)
                        cpu[fmt, side].append(result["cpu_s"])
                        digests[fmt, side] = result["digest"]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    new, old = sides
    print(f"\n{args.seconds:.0f} s synthesized stereo track, 44.1 kHz; one core (taskset -c 0)")
    print(f"CPU seconds of a whole decode, median of {args.repeat} alternating rounds\n")
    print(f"| file | {new} | {old} | {new} / {old} | same samples |")
    print("|---|---|---|---|---|")
    for fmt in FORMATS:
        medians = [sorted(cpu[fmt, side])[len(cpu[fmt, side]) // 2] for side in sides]
        same = "yes" if digests[fmt, new] == digests[fmt, old] else "**no**"
        label = "MP3 192k" if fmt == "mp3" else fmt.upper()
        ratio = medians[0] / medians[1]
        print(f"| {label} | {medians[0]:.3f} | {medians[1]:.3f} | {ratio:.2f} | {same} |")
    print("\nrounds, CPU seconds:")
    for (fmt, side), values in cpu.items():
        print(f"  {fmt:>4} {side:>12}: " + ", ".join(f"{v:.3f}" for v in values))


if __name__ == "__main__":
    main()
