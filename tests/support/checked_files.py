"""Short stereo FLACs whose quality checks are known by construction (``audio.verdicts``):

* ``clipped`` — a 440 Hz sine driven to twice full scale and hard-clipped: flat tops on every
  crest, so it fails ``clipping`` (and ``true_peak``: its peaks are at full scale);
* ``clean`` — the same sine at −20 dBFS, the same on both channels: fails no check;
* ``inverted`` — the clean sine with the right channel the left inverted: summed to mono it
  cancels, so it fails ``mono`` and nothing else.
"""

from __future__ import annotations

from pathlib import Path

#: What each file fails, as ``failed_checks`` names it.
FAILS = {"clipped": ["clipping", "true_peak"], "clean": [], "inverted": ["mono"]}


def checked_flac(folder: Path, kind: str, seconds: float = 3.0, rate: int = 44100) -> bytes:
    """The FLAC bytes of ``kind`` (a key of :data:`FAILS`), written under ``folder``."""
    from tests.support.audio.signals import tone, write_audio

    amplitude = {"clipped": 2.0, "clean": 0.1, "inverted": 0.1}[kind]
    samples = tone(440.0, seconds, rate, channels=2, amplitude=amplitude)  # clipped when written
    if kind == "inverted":
        samples[1] *= -1
    return write_audio(Path(folder) / f"{kind}.flac", samples, rate, "flac").read_bytes()
