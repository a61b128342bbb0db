"""loudgain (libebur128), ReplayGain 2.0's reference tool, as an oracle; and the ReplayGain tags
of a file as mutagen reads them back."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

needs_loudgain = pytest.mark.skipif(
    shutil.which("loudgain") is None, reason="loudgain is not installed (apt-get install loudgain)"
)


def loudgain(*paths: Path, album: bool = False) -> dict[str, dict[str, float]]:
    """loudgain's scan (``-s s``: no tags written): per file name (and ``Album`` with
    ``album``), its loudness (LUFS), gain (dB; relative to −23 LUFS for Opus, as loudgain
    reports it) and true peak (linear)."""
    args = ["loudgain", "-q", "-O", "-s", "s", *(["-a"] if album else []), *map(str, paths)]
    done = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120)
    rows = [line.split("\t") for line in done.stdout.splitlines() if "\t" in line]
    header, *values = rows
    found = {}
    for row in values:
        cells = dict(zip(header, row, strict=True))
        found[Path(cells["File"]).name] = {
            "lufs": float(cells["Loudness"].split()[0]),
            "gain_db": float(cells["Gain"].split()[0]),
            "peak": float(cells["True_Peak"]),
        }
    return found


def read_tags(path: Path, fmt: str) -> dict[str, str]:
    """The ReplayGain (and R128) tags of a file, by upper-case name, as mutagen reads them."""
    import mutagen

    audio = mutagen.File(path)
    assert audio is not None and audio.tags is not None
    found = {}
    for key, value in audio.tags.items():
        if fmt in ("mp3", "wav") and key.startswith("TXXX:"):
            found[key[5:].upper()] = str(value.text[0])
        elif fmt == "aac" and key.startswith("----:com.apple.iTunes:"):
            found[key.rsplit(":", 1)[1].upper()] = bytes(value[0]).decode()
        elif fmt in ("flac", "opus"):
            found[key.upper()] = value[0]
    return {k: v for k, v in found.items() if k.startswith(("REPLAYGAIN_", "R128_"))}
