"""Bandwidth, and whether a lossless file was lossy once.

An MP3, AAC or Vorbis encoder low-passes the music before it codes it — a 128 kbit/s MP3 at
about 16–17 kHz — and the cut is a brick wall: tens of dB within a few hundred Hz, nothing above.
Decoded and saved as WAV or FLAC, the file is lossless in name only, and the wall stays.
Natural music falls off gradually (cymbals and air reach 20 kHz and beyond).

:class:`SpectrumSampler` takes one frame (Blackman–Harris window: its sidelobes, −92 dB, keep
a loud tone's skirt from passing for music a kHz away) of every channel every
:data:`FRAME_EVERY_S` at the file's own rate (not of a downmix, where out-of-phase channels
cancel) (a 128 kbit/s MP3's wall at 16 kHz is far above
what the key's 11 kHz analysis rate can see) and keeps the mean power spectrum, one array
whatever the length. From it, in bands of ~86 Hz (levels in dB against a full-scale sine):

* the **wall**: the highest band edge between :data:`LOWEST_WALL_HZ` and
  :data:`HIGHEST_WALL_HZ` (and 90 % of Nyquist) where three quarters of the bands of the
  :data:`SPAN_HZ` under it stand :data:`MUSIC_OVER_FLOOR_DB` over the floor of 16-bit audio
  (music, not a quiet hiss or a lone tone: its gaps are floor) and :data:`WALL_DB` over the
  median of the :data:`SPAN_HZ` starting :data:`GAP_HZ` past it, and nothing from there to
  Nyquist comes back (it carries no music, or stays :data:`WALL_DB` down: an encoder's skirt).
  Resamplers' anti-alias filters are walls too, at 20 kHz and above for 44.1 kHz: hence the
  ceiling of the search, which also leaves out the walls of 256–320 kbit/s MP3 (19.5–20.5 kHz);
* ``bandwidth_hz``: the wall when there is one, else the highest band whose level stands
  :data:`MUSIC_OVER_FLOOR_DB` over the floor of 16-bit audio (its quantisation noise,
  −101 dBFS in all, is what a 16-bit file holds where there is no music);
* ``lossy_origin``: a wall in a lossless upload (PCM, FLAC, ALAC, WavPack…) is true; music
  reaching past :data:`HIGHEST_WALL_HZ` with no wall is false; None for lossy uploads (their
  wall is expected), and for music whose treble dies out below that before any wall could show
  (a dull recording: there is no telling).

The edges come from what encoders do and the floor from 16-bit quantisation; ``WALL_DB`` was
lowered from 30 to 20 dB after looking at three real low-bitrate MP3s decoded to FLAC (quiet
treble: their walls stand 21–23 dB over the floor). See ``BENCHMARKS.md`` for the figures on
signal sets that set nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.fft import rfft
from scipy.signal.windows import blackmanharris

#: One frame of spectrum every this many seconds (the encoders' walls do not move).
FRAME_EVERY_S = 0.5
#: Width of the bands the spectrum is read in, Hz (about eight bins of a 4096-point FFT).
BAND_HZ = 86.0
#: Where a wall is looked for.
LOWEST_WALL_HZ, HIGHEST_WALL_HZ = 3000.0, 19500.0
#: Stretches compared on either side of a candidate wall (the quieter quarter of the bands under
#: it, the median past it: a lone tone or sparse harmonics leave gaps, and are no wall) …
SPAN_HZ = 1000.0
#: … leaving this much between them for the encoder's transition band …
GAP_HZ = 500.0
#: … where the music must fall by this much: a wall, where natural roll-offs lose a few dB a
#: kHz. Nothing beyond may come back: it stays under the music threshold, or this far under.
WALL_DB = 20.0
#: How far above the floor of 16-bit audio a band must be to carry music.
MUSIC_OVER_FLOOR_DB = 15.0
#: Codecs whose files should carry the whole band: a wall in them is a lossy origin.
LOSSLESS_CODECS = ("pcm_", "flac", "alac", "wavpack", "ape", "tta", "mlp", "truehd")


@dataclass(frozen=True)
class Bandwidth:
    bandwidth_hz: float | None
    lossy_origin: bool | None
    #: Why ``bandwidth_hz`` is None (silence, too short); None when it has a value.
    reason: str | None = None
    #: Why ``lossy_origin`` is None, or what the wall says (a sentence).
    lossy_reason: str | None = None


def fft_size(sample_rate: int) -> int:
    """A power of two giving bins of 5–11 Hz at any rate."""
    return 1 << max(8, math.ceil(math.log2(sample_rate / 11.0)))


class SpectrumSampler:
    """Mean power spectrum of frames of a mono stream, taken every :data:`FRAME_EVERY_S`."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.size = fft_size(sample_rate)
        self._window = blackmanharris(self.size).astype(np.float32)
        # A full-scale sine's peak bin reads 1 (0 dB) after this scaling.
        self._scale = 1.0 / (self._window.sum() / 2) ** 2
        self._every = max(self.size, round(FRAME_EVERY_S * sample_rate))
        self._skip = 0  # samples to pass before the next frame starts
        self._frame: list[np.ndarray] = []
        self._filled = 0
        self.power = np.zeros(self.size // 2 + 1)
        self.frames = 0

    def add(self, block: np.ndarray) -> None:
        """Take the frames due in float32 ``(channels, n)`` ``block``."""
        position = 0
        n = block.shape[1]
        while position < n:
            if self._skip:
                taken = min(self._skip, n - position)
                self._skip -= taken
                position += taken
                continue
            taken = min(self.size - self._filled, n - position)
            self._frame.append(block[:, position : position + taken])
            self._filled += taken
            position += taken
            if self._filled == self.size:
                self._measure(np.concatenate(self._frame, axis=1))
                self._frame, self._filled = [], 0
                self._skip = self._every - self.size

    def _measure(self, frame: np.ndarray) -> None:
        spectrum = rfft(frame * self._window, axis=1)  # float32 in, complex64 out
        power = spectrum.real**2 + spectrum.imag**2
        self.power += power.mean(axis=0) * self._scale
        self.frames += 1

    def state(self) -> dict[str, np.ndarray]:
        return {
            "spectrum_power": self.power,
            "spectrum_meta": np.array([self.sample_rate, self.frames]),
        }

    @classmethod
    def restore(cls, state: dict[str, np.ndarray]) -> SpectrumSampler | None:
        if "spectrum_power" not in state:
            return None
        rate, frames = state["spectrum_meta"]
        sampler = cls(int(rate))
        sampler.power, sampler.frames = state["spectrum_power"], int(frames)
        return sampler


def floor_db(size: int) -> float:
    """The level of 16-bit quantisation noise (uniform, one step wide) in one bin of a
    ``size``-point spectrum windowed and scaled as :class:`SpectrumSampler` does."""
    variance = (2.0**-15) ** 2 / 12
    window = blackmanharris(size)
    return 10 * math.log10(variance * (window**2).sum() / (window.sum() / 2) ** 2)


def measure_bandwidth(sampler: SpectrumSampler, codec: str) -> Bandwidth:
    """The bandwidth and the lossy origin of a file from its sampled spectrum."""
    if sampler.frames == 0 or not sampler.power.any():
        reason = (
            "The audio is too short for one frame of spectrum."
            if sampler.frames == 0
            else "The audio is digital silence: it carries no frequencies."
        )
        return Bandwidth(None, None, reason, reason)
    rate = sampler.sample_rate
    bins_per_band = max(1, round(BAND_HZ * sampler.size / rate))
    usable = (len(sampler.power) - 1) // bins_per_band * bins_per_band
    bands = sampler.power[1 : usable + 1].reshape(-1, bins_per_band).mean(axis=1) / sampler.frames
    with np.errstate(divide="ignore"):
        levels = 10 * np.log10(bands)
    band_hz = bins_per_band * rate / sampler.size
    edges = (np.arange(len(levels)) + 1) * band_hz  # upper edge of each band
    music = floor_db(sampler.size) + MUSIC_OVER_FLOOR_DB
    wall = _wall(levels, edges, band_hz, music, rate)
    if wall is None:
        above = np.flatnonzero(levels >= music)
        bandwidth = float(edges[above[-1]]) if len(above) else None
    else:
        bandwidth = wall
    if bandwidth is None:
        reason = "Nothing in the spectrum stands above the noise floor of 16-bit audio."
        return Bandwidth(None, None, reason, reason)
    lossless = codec.startswith(LOSSLESS_CODECS)
    if not lossless:
        expected = f"The upload is {codec}, a lossy format: its cut-off is expected."
        return Bandwidth(bandwidth, None, None, expected)
    if wall is None and bandwidth < HIGHEST_WALL_HZ:
        return Bandwidth(
            bandwidth,
            None,
            None,
            f"The music carries nothing above {bandwidth / 1000:.1f} kHz and fades out there: "
            "too little treble to tell whether it was lossy once.",
        )
    if wall is None:
        return Bandwidth(bandwidth, False, None, None)
    return Bandwidth(
        bandwidth,
        True,
        None,
        f"Nothing above {wall / 1000:.1f} kHz, cut off like a lossy encoder's low-pass: "
        "the file was most likely a lossy one (MP3, AAC) before it was saved as lossless.",
    )


def _wall(
    levels: np.ndarray, edges: np.ndarray, band_hz: float, music: float, rate: int
) -> float | None:
    """The highest band edge that is a brick wall (see the module's docstring), or None."""
    span, gap = max(1, round(SPAN_HZ / band_hz)), max(1, round(GAP_HZ / band_hz))
    if len(levels) < span + gap + 1:
        return None
    windows = np.lib.stride_tricks.sliding_window_view(levels, span)
    # For the edge of band i: the span of bands ending at i, and the span starting i + gap.
    index = np.arange(span - 1, len(levels) - gap)
    under = np.percentile(windows[index - span + 1], 25, axis=1)
    past_windows = np.lib.stride_tricks.sliding_window_view(
        np.concatenate([levels, np.full(span - 1, np.nan)]), span
    )
    past = np.nanmedian(past_windows[index + gap], axis=1)
    beyond = np.maximum.accumulate(levels[::-1])[::-1][index + gap]  # loudest from there on
    comes_back = beyond >= np.maximum(music, under - WALL_DB)
    highest = min(HIGHEST_WALL_HZ, 0.9 * rate / 2)
    where = edges[index]
    walls = (
        (where >= LOWEST_WALL_HZ)
        & (where <= highest)
        & (under >= music)
        & (under - past >= WALL_DB)
        & ~comes_back
    )
    found = np.flatnonzero(walls)
    return float(where[found[-1]]) if len(found) else None
