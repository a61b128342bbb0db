"""Musical key (tonic and mode) from a stream of mono samples.

A chromagram — the spectral peaks (not the noise of drums, not the skirts of partials) folded onto
the twelve pitch classes, 65 Hz–2 kHz — is summed over the whole track, each frame normalised so
loud passages don't outvote the rest; a second one covers the bass (60–250 Hz), where chord roots
live (both start above the 40–60 Hz of kick drums, which are pitched but rarely in the key). Each
of the 24 keys is scored by the correlation of both with that key's profiles, and the best wins.
Relative keys share their notes; the bass's weight on the tonic is what keeps an i–VI–VII loop
in A minor from reading as C major.

No key (``None``, with a reason) for silence, and when under a quarter of the audible frames hold
notes — several sharp spectral peaks standing clear of their surroundings: DC, hiss and drum
kits give none, music nearly always some.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter

from audio.frames import SpectrumStream
from audio.tempo import ANALYSIS_RATE

TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
FFT_SIZE = 4096
HOP = 2048
# Temperley (2007), Kostka–Payne corpus, scaled to a maximum of 1 …
_TEMPERLEY_MAJOR = np.array([748, 60, 488, 82, 670, 460, 96, 715, 104, 366, 57, 400]) / 748
_TEMPERLEY_MINOR = np.array([712, 84, 474, 618, 49, 460, 105, 747, 404, 67, 133, 330]) / 747
# … averaged half and half with the mean chroma this front end measures on tracks of known key
# (96 synthesized tracks, seeds other than the tests'): the chroma of real instruments carries
# their harmonics, which a profile of note counts doesn't expect.
_MEASURED_MAJOR = np.array([1.0, 0.09, 0.42, 0.08, 0.44, 0.48, 0.10, 0.87, 0.08, 0.48, 0.08, 0.26])
_MEASURED_MINOR = np.array([1.0, 0.08, 0.35, 0.42, 0.14, 0.45, 0.09, 0.76, 0.45, 0.12, 0.37, 0.17])
MAJOR_PROFILE = (_TEMPERLEY_MAJOR + _MEASURED_MAJOR) / 2
MINOR_PROFILE = (_TEMPERLEY_MINOR + _MEASURED_MINOR) / 2
# The bass (chord roots), measured the same way.
MAJOR_BASS = np.array([1.0, 0.10, 0.21, 0.10, 0.12, 0.58, 0.11, 0.76, 0.12, 0.44, 0.10, 0.12])
MINOR_BASS = np.array([1.0, 0.10, 0.11, 0.12, 0.11, 0.46, 0.10, 0.62, 0.47, 0.11, 0.34, 0.12])
BASS_WEIGHT = 0.15
# The chroma's low edges: above most kick drums' fundamentals (40–60 Hz, pitched but rarely in
# the key), low enough for the bass's roots (C2 is 65 Hz). Set 2026-11-30 on tuning seeds of
# both generators (``styles.py`` 500000… and 9100000…, ``music.py`` 100–147): MIREX 0.862,
# 0.844, 0.990 at the former 55/40 Hz; 0.944, 0.971, 0.990 at 65/60 Hz (80/60 did as well on
# styles and broke the i–VI–VII test, C#2 being 69 Hz). Reported on held-apart seeds (styles
# 9300000… and 9500000…, music.py 7000000…).
FULL_LOW_HZ, BASS_LOW_HZ = 65.0, 60.0
#: A frame is pitched when it holds at least this many spectral peaks standing this far above
#: their surroundings (the median over ±8 bins) between 100 Hz and 2 kHz: notes do, the noise
#: of drums and hiss does not.
TONAL_PEAKS, TONAL_PROMINENCE = 4, 5.0
#: Less than this share of audible frames pitched: no key. Set on tuning seeds (music of styles
#: 500000… ≥ 0.44, its drum kits without the ride ≤ 0.09, white noise 0, DC 0). A kit with an
#: 808-style ride (square waves: pitched) reads as pitched, 0.66.
MIN_TONAL_SHARE = 0.25
#: A frame is audible when its loudest bin is above this (a sine at −70 dBFS: N/4 · 10^(−70/20)).
AUDIBLE = FFT_SIZE / 4 * 10 ** (-70 / 20)
#: Camelot wheel numbers of the major keys, C … B (minor keys share their relative major's).
_CAMELOT_MAJOR = (8, 3, 10, 5, 12, 7, 2, 9, 4, 11, 6, 1)


def camelot(tonic: str, scale: str) -> str:
    """The Camelot code of a key: ``8A`` is A minor, ``8B`` C major."""
    index = TONICS.index(tonic)
    if scale == "major":
        return f"{_CAMELOT_MAJOR[index]}B"
    return f"{_CAMELOT_MAJOR[(index + 3) % 12]}A"


@dataclass(frozen=True)
class Key:
    tonic: str | None
    scale: str | None
    confidence: float | None
    camelot: str | None
    reason: str | None = None

    @property
    def name(self) -> str | None:
        return f"{self.tonic} {self.scale}" if self.tonic else None

    def to_dict(self) -> dict:
        return {
            "key": self.name,
            "tonic": self.tonic,
            "scale": self.scale,
            "confidence": None if self.confidence is None else round(self.confidence, 3),
            "camelot": self.camelot,
            "reason": self.reason,
        }


def no_key(reason: str) -> Key:
    return Key(None, None, None, None, reason)


NO_KEY = no_key("no audio")


_BIN_HZ = ANALYSIS_RATE / FFT_SIZE


def _peak_chroma(magnitude: np.ndarray, low_hz: float, high_hz: float) -> np.ndarray:
    """Sum over frames of each frame's chroma (normalised to its maximum), built from spectral
    peaks only: the noise of drums and the skirts of strong partials add nothing."""
    m = magnitude
    is_peak = (m[:, 1:-1] > m[:, :-2]) & (m[:, 1:-1] >= m[:, 2:])
    frame, index = np.nonzero(is_peak)
    index = index + 1
    a, b, c = (
        np.log(m[frame, index - 1] + 1e-12),
        np.log(m[frame, index] + 1e-12),
        np.log(m[frame, index + 1] + 1e-12),
    )
    denominator = a - 2 * b + c
    offset = np.where(
        denominator < 0, 0.5 * (a - c) / np.where(denominator < 0, denominator, -1), 0
    )
    freq = (index + offset) * _BIN_HZ
    amplitude = m[frame, index]
    keep = (freq >= low_hz) & (freq <= high_hz)
    loudest = np.zeros(len(m))
    np.maximum.at(loudest, frame[keep], amplitude[keep])
    keep &= amplitude > 1e-3 * loudest[frame]  # within 60 dB of the frame's loudest peak
    frame, freq, amplitude = frame[keep], freq[keep], amplitude[keep]
    chroma = np.zeros((len(m), 12))
    pitch = 69 + 12 * np.log2(freq / 440.0)
    nearest = np.rint(pitch)
    closeness = np.cos(np.pi * np.abs(pitch - nearest)) ** 2  # 1 on the note, 0 halfway
    np.add.at(chroma, (frame, nearest.astype(int) % 12), amplitude * closeness)
    peak = chroma.max(axis=1, keepdims=True)
    audible = peak[:, 0] > 0
    return (chroma[audible] / peak[audible]).sum(axis=0)


def _tonal_frames(magnitude: np.ndarray) -> tuple[int, int]:
    """(pitched frames, audible frames) among ``magnitude``'s frames."""
    lo, hi = int(100 / _BIN_HZ), int(2000 / _BIN_HZ)
    band = magnitude[:, lo - 8 : hi + 9]
    surroundings = median_filter(band, size=(1, 17), mode="nearest")[:, 8:-8]
    centre = band[:, 8:-8]
    is_peak = (centre > band[:, 7:-9]) & (centre >= band[:, 9:-7])
    pitched = (is_peak & (centre > TONAL_PROMINENCE * surroundings)).sum(axis=1) >= TONAL_PEAKS
    audible = magnitude.max(axis=1) > AUDIBLE
    return int((pitched & audible).sum()), int(audible.sum())


class KeyAnalyzer:
    """Streaming key estimation.

    :param sample_rate: rate of the mono blocks given to :meth:`add`; resampled to
        :data:`audio.tempo.ANALYSIS_RATE` when different.
    """

    def __init__(self, sample_rate: int = ANALYSIS_RATE) -> None:
        self._spectra = SpectrumStream(sample_rate, ANALYSIS_RATE, FFT_SIZE, HOP)
        self._full = np.zeros(12)
        self._bass = np.zeros(12)
        self._tonality = np.zeros(2)  # pitched frames, audible frames

    def add(self, mono: np.ndarray) -> None:
        self._consume(self._spectra.add(mono))

    def _consume(self, magnitude: np.ndarray) -> None:
        if len(magnitude) == 0:
            return
        for total, low, high in (
            (self._full, FULL_LOW_HZ, 2000.0),
            (self._bass, BASS_LOW_HZ, 250.0),
        ):
            total += _peak_chroma(magnitude, low, high)
        self._tonality += _tonal_frames(magnitude)

    def state(self) -> dict[str, np.ndarray]:
        """Everything :meth:`result` needs (the two chroma sums, the count of pitched and audible
        frames), after the last block."""
        self._consume(self._spectra.flush())
        return {
            "key_chroma": self._full.copy(),
            "key_bass": self._bass.copy(),
            "key_tonality": self._tonality.copy(),
        }

    @classmethod
    def restore(cls, state: dict[str, np.ndarray]) -> KeyAnalyzer:
        """From :meth:`state`; archives from before ``key_tonality`` count as pitched."""
        analyzer = cls(ANALYSIS_RATE)
        analyzer._full, analyzer._bass = state["key_chroma"].copy(), state["key_bass"].copy()
        if "key_tonality" in state:
            analyzer._tonality = np.asarray(state["key_tonality"], dtype=np.float64).copy()
        else:
            analyzer._tonality = np.array([1.0, 1.0])
        return analyzer

    def result(self) -> Key:
        self._consume(self._spectra.flush())
        pitched, audible = self._tonality
        if audible == 0 or self._full.max() <= 0:
            return no_key("silence: nothing audible")
        if pitched < MIN_TONAL_SHARE * audible:
            return no_key(
                f"no pitched content: {pitched / audible:.0%} of the audible frames hold notes"
            )
        scores = np.zeros((2, 12))
        profiles = ((MAJOR_PROFILE, MAJOR_BASS), (MINOR_PROFILE, MINOR_BASS))
        for row, (profile, bass_profile) in enumerate(profiles):
            for tonic in range(12):
                scores[row, tonic] = _correlation(self._full, np.roll(profile, tonic))
                if self._bass.max() > 0:
                    bass = _correlation(self._bass, np.roll(bass_profile, tonic))
                    scores[row, tonic] += BASS_WEIGHT * bass
        row, tonic = np.unravel_index(int(np.argmax(scores)), scores.shape)
        best = scores[row, tonic]
        runner_up = np.partition(scores.ravel(), -2)[-2]
        scale = "major" if row == 0 else "minor"
        confidence = float(np.clip((best - runner_up) / max(abs(best), 1e-9) * 5, 0.0, 1.0))
        return Key(TONICS[tonic], scale, confidence, camelot(TONICS[tonic], scale))


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def estimate_key(mono: np.ndarray, sample_rate: int) -> Key:
    """Key of a whole mono signal at once."""
    analyzer = KeyAnalyzer(sample_rate)
    analyzer.add(mono)
    return analyzer.result()
