"""Leading and trailing silence: where the sound of a file starts and ends.

:class:`SilenceDetector` is fed the same float32 ``(channels, n)`` blocks as the loudness meter
and keeps a few numbers whatever the length (the first and last sounding sample, one unfinished
window). The rule, chosen rather than tuned (no signal set was used to pick these numbers):

* **Sound is a 10 ms window whose RMS about its own mean is above −60 dBFS** (on its loudest
  channel): ffmpeg's ``silencedetect`` default level, but measured on a short window instead of
  sample by sample, so a lone stray sample (a dither spike, a bit error) must be 26 dB louder than
  the threshold (at 44.1 kHz) to count, and steady noise at −80 dBFS never does. A sine counts
  from a peak of −57 dBFS.
* **DC is not sound.** Each window's own mean is taken away before its RMS, so a DC offset or a
  sub-audio drift (nearly constant over 10 ms) reads as silence, and a tone on top of an offset
  starts where the tone starts. A high-pass filter would do the same but ring after every abrupt
  end, moving ``end_s`` by 15 ms and more; the window mean has no memory. The price is in the
  deep bass: in one window a 50 Hz sine reads 0–7 dB low (3 dB on average over its phases), a
  20 Hz one 6–20 dB; from 80 Hz up it reads within 1.5 dB. A DC *step* inside the file is an
  audible click, and is sound (one window of it).
* **Where, to the sample.** Inside the first (last) sounding window the start (end) is the first
  (last) sample that strays from the window's median (its resting level, DC included) by more
  than the threshold's amplitude, 10^(−60/20). So the offsets are exact for a clean onset or a
  lone click, and never off by more than one window (10 ms): noise just under the threshold, or
  sound filling most of the window, can move them within it.

``start_s`` is the first moment above the threshold, ``end_s`` the end of the last sample above
it; ``leading_s = start_s``, ``trailing_s = duration − end_s``. All ``None`` for a file that is
silent throughout.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from audio.blocks import channel_block

#: Sound is a window whose RMS is above this (dBFS, after removing DC).
THRESHOLD_DBFS = -60.0
#: Length of the windows the RMS is measured on, seconds.
WINDOW_S = 0.01

_AMPLITUDE = 10 ** (THRESHOLD_DBFS / 20)


@dataclass(frozen=True)
class Silence:
    """Where the sound starts and ends, seconds from the file's start (``None``: no sound)."""

    start_s: float | None
    end_s: float | None
    leading_s: float | None
    trailing_s: float | None

    def to_dict(self) -> dict:
        """JSON-safe, rounded to the millisecond."""
        return {k: None if v is None else round(v, 3) for k, v in asdict(self).items()}


def _strays(window: np.ndarray) -> np.ndarray:
    """Which samples of a sounding window are sound: those that stray from the window's median
    (its resting level: silence or the DC offset, when the sound fills less than half of it) by
    more than the threshold's amplitude — or, if none does, from its mean (one always does)."""
    for centre in (np.median(window, axis=1), window.mean(axis=1)):
        strays = (np.abs(window - centre[:, None]) > _AMPLITUDE).any(axis=0)
        if strays.any():
            break
    return strays


class SilenceDetector:
    """Streaming detector of the first and last sound (see the module's docstring).

    :param sample_rate: Hz.
    :param channels: channels of the blocks given to :meth:`add`.
    """

    def __init__(self, sample_rate: int, channels: int):
        self.sample_rate = sample_rate
        self.channels = channels
        self.samples = 0  # samples seen
        self._window = max(1, round(sample_rate * WINDOW_S))
        self._pending = np.zeros((channels, 0), np.float32)  # samples of the unfinished window
        self._first = -1  # index of the first sounding sample (-1: none yet)
        self._last = -1  # index of the last sounding sample
        self._known = True  # False when restored from an archive without silence

    def add(self, block: np.ndarray) -> None:
        """Look at ``block``: float32 ``(channels, n)``."""
        block = channel_block(block, self.channels)
        if block.shape[1] == 0:
            return
        pending = np.concatenate([self._pending, block], axis=1)
        start = self.samples - self._pending.shape[1]  # on the window grid
        complete = pending.shape[1] // self._window * self._window
        self._first, self._last = self._scan(pending[:, :complete], start)
        self._pending = pending[:, complete:]
        self.samples += block.shape[1]

    def _scan(self, samples: np.ndarray, start: int) -> tuple[int, int]:
        """First and last sounding sample so far, after the windows of ``samples`` (which
        begin at sample ``start``, on the window grid; a shorter last window is allowed)."""
        first, last = self._first, self._last
        n = samples.shape[1]
        if n == 0:
            return first, last
        x = samples.astype(np.float64)
        bounds = np.arange(0, n, self._window)
        lengths = np.diff(np.append(bounds, n))
        means = np.add.reduceat(x, bounds, axis=1) / lengths
        power = np.add.reduceat(x * x, bounds, axis=1) / lengths - means * means  # about the mean
        loud = np.nonzero(power.max(axis=0) > _AMPLITUDE**2)[0]
        if len(loud) == 0:
            return first, last
        if first < 0:
            lo = bounds[loud[0]]
            first = start + lo + int(np.argmax(_strays(x[:, lo : lo + lengths[loud[0]]])))
        lo = bounds[loud[-1]]
        strays = _strays(x[:, lo : lo + lengths[loud[-1]]])
        last = start + lo + len(strays) - 1 - int(np.argmax(strays[::-1]))
        return first, last

    def _final(self) -> tuple[int, int]:
        """First and last sounding sample, the unfinished window included."""
        start = self.samples - self._pending.shape[1]
        return self._scan(self._pending, start)

    def result(self) -> Silence:
        first, last = self._final()
        if not self._known or first < 0:
            return Silence(None, None, None, None)
        start_s = first / self.sample_rate
        end_s = (last + 1) / self.sample_rate
        trailing_s = (self.samples - last - 1) / self.sample_rate
        return Silence(float(start_s), float(end_s), float(start_s), float(trailing_s))

    def state(self) -> dict[str, np.ndarray]:
        """What :meth:`result` needs (six numbers), for :meth:`restore`."""
        first, last = self._final() if self._known else (-1, -1)
        meta = [self.sample_rate, self.channels, self.samples, first, last, int(self._known)]
        return {"silence_meta": np.array(meta, dtype=np.int64)}

    @classmethod
    def restore(cls, state: dict[str, np.ndarray]) -> SilenceDetector:
        """A detector whose :meth:`result` is the saved one; from an archive written before
        silence was measured (no ``silence_meta``), one that reports ``None``."""
        if "silence_meta" not in state:
            detector = cls(1, 1)
            detector._known = False
            return detector
        rate, channels, samples, first, last, known = (int(v) for v in state["silence_meta"])
        detector = cls(rate, channels)
        detector.samples, detector._first, detector._last = samples, first, last
        detector._known = bool(known)
        return detector
