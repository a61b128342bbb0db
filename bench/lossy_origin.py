"""Lossy origin: how often ``audio.bandwidth`` tells wideband music from the same music through a
lossy encoder, decoded and saved as FLAC.

    .venv/bin/python bench/lossy_origin.py [--first-seed 8400000] [--per-style 2]
        [--codecs mp3:128,mp3:192,aac:128] [--seconds 12]

Tracks come from ``tests/support/audio/styles.py`` (every style, ``--per-style`` seeds each, at
44.1 kHz, whose hats and cymbals reach Nyquist). Each is analysed as a FLAC of the synthesized
samples (expected: ``lossy_origin`` false) and, per codec, as the decoded encode saved as FLAC
(expected: true). Prints, per codec, how many were found and the walls' range, then the false
positives on the originals. The seeds 8_100_000 (128k) and 8_200_000 (192k, 320k) were looked
at while ``audio.bandwidth`` was written; report on others.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from audio.analyze import analyze_file
    from audio.decode import decode
    from audio.transcode import AudioEncoder
    from tests.support.audio import styles
    from tests.support.audio.signals import write_audio

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--first-seed", type=int, default=8_400_000)
    parser.add_argument("--per-style", type=int, default=2)
    parser.add_argument("--codecs", default="mp3:128,mp3:192,aac:128")
    parser.add_argument("--seconds", type=float, default=12.0)
    args = parser.parse_args()
    codecs = [(name, int(kbps)) for name, kbps in (c.split(":") for c in args.codecs.split(","))]
    rate = 44100
    found: dict[str, list[float | None]] = {f"{n} {k}k": [] for n, k in codecs}
    originals: list[bool | None] = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for s, style in enumerate(styles.STYLES):
            for i in range(args.per_style):
                seed = args.first_seed + 1000 * s + i
                track = styles.synthesize(style, seed, seconds=args.seconds, rate=rate)
                flac = write_audio(work / "original.flac", track.samples, rate, "flac")
                originals.append(analyze_file(flac).checks.lossy_origin)
                for name, kbps in codecs:
                    encoded = work / f"encoded.{name}"
                    with AudioEncoder(
                        encoded, name, in_rate=rate, in_channels=2, bitrate=kbps * 1000
                    ) as encoder:
                        encoder.write(track.samples)
                    decoded, decoded_rate = decode(encoded)
                    lossy = write_audio(work / "lossy.flac", decoded, decoded_rate, "flac")
                    checks = analyze_file(lossy).checks
                    found[f"{name} {kbps}k"].append(
                        checks.bandwidth_hz if checks.lossy_origin else None
                    )
    total = len(originals)
    print(f"{total} tracks, seeds from {args.first_seed} ({args.per_style} a style)")
    print("| saved as FLAC from | found lossy | walls (kHz) |\n|---|---|---|")
    for label, walls in found.items():
        hits = [w for w in walls if w is not None]
        span = f"{min(hits) / 1000:.1f}–{max(hits) / 1000:.1f}" if hits else "–"
        print(f"| {label} | {len(hits)}/{total} | {span} |")
    wrong = sum(1 for o in originals if o is not False)
    print(f"| the originals (wideband) | {wrong}/{total} called lossy or unknown | |")


if __name__ == "__main__":
    main()
