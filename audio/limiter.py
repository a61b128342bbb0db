"""A look-ahead true-peak limiter: holds a signal under a ceiling without touching what is under it.

Normalising to a loudness target is one linear gain for the whole file. When that gain would
push the true peak over the ceiling, :class:`TruePeakLimiter` lowers the gain around the peaks
only, and only as much as they need. The design choices, and why:

* **Oversampled detection.** Between two samples the reconstructed waveform can rise above both
  (up to 3 dB for a sine at a quarter of the sample rate); a sample-peak limiter lets those
  inter-sample peaks through, and a DAC or the next decoder clips them. The limiter detects the
  peaks 4× oversampled with the BS.1770 interpolator the meter uses
  (:func:`audio.true_peak.interpolator`), so what it holds is what our meter reads, and with a
  longer windowed sinc, because BS.1770's 12 taps under-read content near Nyquist (see
  :func:`detector_taps`); it holds the larger reading. Around each sample ``n`` it takes the
  largest magnitude of every sample and interpolated point whose support touches ``n``
  (``n ± 16`` samples): the gain at ``n`` then bounds every point ``n`` contributes to.
* **Look-ahead.** The gain must already be down when a peak arrives: a limiter that reacts to
  the peak clips it (or must jump instantly, a click). With the required gain
  ``r[n] = min(1, ceiling / peak around n)``, ``M[k]`` is the minimum of ``r`` over the coming
  ``L`` samples ``[k, k + L)`` and the applied gain is the mean of ``M`` over ``[n - L + 1, n]``.
  Every term of that mean covers ``n`` in its window, so each is ``≤ r[n]``: the ceiling holds
  in the sample domain by construction, and the gain moves in straight ramps ``L`` long (no
  step, no click). The audio is delayed by ``L`` (plus the detector's reach) to make room.
* **Hold and release.** ``M`` also looks back: it is the minimum of ``r`` over
  ``[k - hold, k + L)``, so the gain stays down for 30 ms after the last peak that needed it,
  longer than a cycle of bass. A low note held over the ceiling then sees one steady gain; a
  gain that recovered between its crests would modulate it (distortion). After the hold the
  gain comes back at a fixed rate in dB per second (instant attack, dB-linear release, applied
  to ``M`` before the ramp filter), and reaches exactly 0 dB, so the limiter is inactive again
  afterwards.
* **Nothing added where nothing is needed.** Where no peak is near, ``r`` is exactly 1, the
  gain is exactly 1.0 and the output is bit for bit the input times the gain: no colouring,
  no dynamic processing on material that does not need it.
* **Streaming.** State is carried across blocks (the look-ahead buffer, the last gain values,
  the release level), so hours of audio take a few blocks of memory, and any block sizes give
  the same output as one block (to float rounding of the release arithmetic).
* **Measured again after encoding** (:mod:`audio.normalize`). A lossy encoder does not keep the
  waveform: it drops bands and shifts phases, and the decoded signal overshoots the limited
  one (0.5–1 dB is common for MP3). So each output is decoded and measured with our own meter;
  if it passes the ceiling, the limiter runs again with its ceiling lowered by the excess.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import minimum_filter1d

from audio.blocks import channel_block
from audio.true_peak import TAPS, Polyphase, interpolator, magnitude, oversampling

#: Look-ahead, seconds: the length of the gain ramps. 5 ms: short enough to keep the attack
#: tight around a drum hit, long enough that the gain varies little within the interpolators'
#: reach (which keeps the true peak, not only the samples, under the ceiling).
LOOKAHEAD_S = 0.005
#: Hold, seconds: the gain stays down this long after the last peak that needed it before it
#: is released. 30 ms is longer than a cycle of 40 Hz bass, so a held bass note sees one
#: steady gain instead of one that dips at every crest and recovers between them (that
#: modulation is distortion: without the hold, harmonics at −47 dB with our release, −37 dB
#: with 200 dB/s; with it, none measurable).
HOLD_S = 0.03
#: Release rate after the hold, dB per second: 10 dB of reduction is gone in 0.2 s, so a
#: single loud hit does not duck the music after it.
RELEASE_DB_PER_S = 50.0

#: Half the length of the detector's long interpolator, samples (see :func:`detector_taps`).
HALF_TAPS = 16
_REACH = HALF_TAPS  # samples either side of q whose interpolated points use sample q
_BACK = 2 * HALF_TAPS  # history the detector needs before the first frame it gates


def detector_taps(factor: int) -> np.ndarray:
    """The detector's two interpolators, ``(2, factor, 2 * HALF_TAPS)``: phase ``p`` of each,
    applied to ``x[n - 15] … x[n + 16]``, gives the waveform at ``n + p / factor``. ``[0]`` is
    BS.1770's 12-tap interpolator (what our meter reads), ``[1]`` a 32-tap Kaiser-windowed
    sinc (β = 8), closer to the waveform a DAC or a resampler rebuilds.

    Why both: BS.1770's short filter under-reads content near Nyquist (hi-hats, cymbals). On a
    synthesized track limited to −1.0 dBTP by its reading, a 4× ``resample_poly`` read
    −0.77 dBTP and a 32-tap sinc −0.74 (``tests/support/audio/music.py`` seed 5, 10 s, +16 dB).
    The limiter holds the larger of the two readings, so the ceiling holds for the meter and
    for a better interpolator.
    """
    short = np.zeros((factor, 2 * HALF_TAPS))
    long = np.zeros((factor, 2 * HALF_TAPS))
    centre = HALF_TAPS - 1  # the tap on x[n]
    short[0, centre] = long[0, centre] = 1.0
    offset = centre - (TAPS // 2 - 1)  # where BS.1770's x[n - 5] sits
    short[1:, offset : offset + TAPS] = interpolator(factor)
    k = np.arange(-HALF_TAPS + 1, HALF_TAPS + 1)
    window = np.kaiser(4 * HALF_TAPS + 1, 8.0)
    for p in range(1, factor):
        t = p / factor - k
        taps = np.sinc(t) * np.interp(t, np.linspace(-HALF_TAPS, HALF_TAPS, len(window)), window)
        long[p] = taps / taps.sum()
    return np.stack([short, long])


class IntervalPeaks:
    """The largest magnitude, over channels and both detector filters, of each sample and the
    interpolated points after it (up to the next sample): the limiter's view of true peak.

    The points are computed by :class:`audio.true_peak.Polyphase` (all six phases of both
    filters as one matrix product per batch of rows), and only in rows of frames whose points
    may pass the ceiling asked for.
    """

    def __init__(self, sample_rate: int) -> None:
        self.factor = oversampling(sample_rate)
        phases = detector_taps(self.factor)
        # Every interpolating phase of both filters, as rows of taps on x[n - 15] … x[n + 16].
        self._polyphase = Polyphase(np.concatenate([table[1:] for table in phases]))

    def __call__(self, segment: np.ndarray, ceiling: float = 0.0) -> np.ndarray:
        """Peaks for frames ``HALF_TAPS - 1`` … ``len - HALF_TAPS - 1`` of ``segment``
        (``(channels, len)``; each point needs ``HALF_TAPS`` frames either side).

        Exact wherever a point may pass ``ceiling``; elsewhere (the samples around, times the
        filters' gain, stay under it) only the samples are looked at: the value is then a
        lower bound, under the ceiling like the truth.
        """
        count = self._polyphase.frames(segment)
        if count <= 0:
            return np.zeros(0)
        segment = np.asarray(segment, dtype=np.float32)
        largest = magnitude(segment)
        if not self._polyphase.phases:
            return largest[HALF_TAPS - 1 : HALF_TAPS - 1 + count].astype(np.float64)
        samples = largest[HALF_TAPS - 1 : HALF_TAPS - 1 + count]
        bound = self._polyphase.bound(largest)
        rows = np.flatnonzero(bound > ceiling)
        if not len(rows):
            return samples.astype(np.float64)
        points = self._polyphase.points(self._polyphase.blocks(segment), rows)
        peaks = np.zeros((len(bound), self._polyphase.block), dtype=np.float32)
        peaks.reshape(-1)[:count] = samples
        peaks[rows] = np.maximum(peaks[rows], points)
        return peaks.reshape(-1)[:count].astype(np.float64)

    def peak(self, segment: np.ndarray, floor: float = 0.0) -> float:
        """The largest of :meth:`__call__`'s peaks, exact wherever it passes ``floor``;
        otherwise some value ≤ ``floor``.

        For a global maximum only the loudest rows need computing (see
        :meth:`audio.true_peak.Polyphase.peak`): on a limited signal, most of them cannot
        beat the samples or the points already read.
        """
        count = self._polyphase.frames(segment)
        if count <= 0:
            return 0.0
        largest = magnitude(segment)
        best = float(largest[HALF_TAPS - 1 : HALF_TAPS - 1 + count].max())
        return max(best, self._polyphase.peak(segment, max(best, floor), largest))


class StrictPeak:
    """Streaming :meth:`IntervalPeaks.peak` over a whole signal, with silence before and
    after it: the largest detector reading (both filters, all channels), exact wherever it
    passes ``floor``, otherwise some value ≤ ``floor``.

    Blocks are joined by the last ``2 * HALF_TAPS - 1`` frames of the signal so far, so any
    block sizes read the same points as one block; the reading so far is the floor of the
    next block's, which skips every row that cannot raise it.
    """

    def __init__(self, sample_rate: int, channels: int, floor: float = 0.0) -> None:
        self._detector = IntervalPeaks(sample_rate)
        self._history = np.zeros((channels, 2 * HALF_TAPS - 1), dtype=np.float32)
        self.floor = floor
        self.value = 0.0

    def add(self, block: np.ndarray) -> None:
        """Read ``block`` (``(channels, n)``), continuing from the previous one."""
        if block.shape[1] == 0:
            return
        segment = np.concatenate([self._history, block], axis=1)
        self._history = segment[:, segment.shape[1] - self._history.shape[1] :]
        floor = max(self.floor, self.value)
        self.value = max(self.value, self._detector.peak(segment, floor))

    def result(self) -> float:
        """The reading, the last frames' points included (silence after them)."""
        self.add(np.zeros_like(self._history))
        self._history = np.zeros_like(self._history)
        return self.value


class TruePeakLimiter:
    """Apply ``gain_db`` to blocks and hold their true peak at or under ``ceiling_dbtp``.

    Feed float32 ``(channels, n)`` blocks to :meth:`process`; each call returns the limited
    audio that is ready (it lags the input by :attr:`delay` frames); :meth:`flush` returns the
    rest. Over a whole stream the output has exactly as many frames as the input.

    :param sample_rate: Hz; sets the oversampling of the detector (BS.1770: 4× below 96 kHz).
    :param channels: channels of every block; all are limited together (one gain, so the
        stereo image does not move).
    :param gain_db: the linear gain applied before limiting.
    :param ceiling_dbtp: the true-peak ceiling.
    """

    def __init__(
        self,
        sample_rate: int,
        channels: int,
        *,
        gain_db: float = 0.0,
        ceiling_dbtp: float = -1.0,
        lookahead_s: float = LOOKAHEAD_S,
        hold_s: float = HOLD_S,
        release_db_per_s: float = RELEASE_DB_PER_S,
    ) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self.gain = np.float32(10 ** (gain_db / 20))
        self.ceiling = 10 ** (ceiling_dbtp / 20)
        self.lookahead = max(1, round(lookahead_s * sample_rate))
        self.hold = max(0, round(hold_s * sample_rate))
        self.delay = self.lookahead + _BACK
        self._back = _BACK + self.hold  # frames kept before the next one out
        self._peaks = IntervalPeaks(sample_rate)
        self._release_per_sample = release_db_per_s / sample_rate
        # Scaled input not yet output, from frame ``_out - _back`` on (zeros before the start).
        # Output starts L - 1 frames early, on silence, and those frames are dropped: the ramp
        # into a peak in the first L frames then starts before the file does.
        self._out = -(self.lookahead - 1)  # the next frame to output
        self._buffer = np.zeros((channels, self._back + self.lookahead - 1), dtype=np.float32)
        self._in = 0  # frames received so far
        self._release_db = 0.0  # the released gain of the last frame output (≤ 0 dB)
        self._reduction = np.zeros(self.lookahead - 1)  # 1 - released gain, last L - 1 frames
        self.min_gain = 1.0  # the lowest gain applied so far (linear)

    @property
    def reduction_db(self) -> float:
        """The most gain reduction applied so far, dB (≥ 0)."""
        return -20 * math.log10(self.min_gain) if self.min_gain < 1.0 else 0.0

    def process(self, block: np.ndarray) -> np.ndarray:
        """Take ``block`` (float32 ``(channels, n)``); return the limited frames now ready."""
        block = channel_block(block, self.channels)
        self._in += block.shape[1]
        self._buffer = np.concatenate([self._buffer, block * self.gain], axis=1)
        return self._emit(self._in - self.delay)

    def flush(self) -> np.ndarray:
        """The frames still held back (the detector sees silence after the end)."""
        tail = np.zeros((self.channels, self.delay), dtype=np.float32)
        self._buffer = np.concatenate([self._buffer, tail], axis=1)
        return self._emit(self._in)

    def _emit(self, end: int) -> np.ndarray:
        count = end - self._out
        if count <= 0:
            return np.zeros((self.channels, 0), dtype=np.float32)
        ahead = self._ahead(count)  # k = _out … end - 1
        released = self._release(ahead)
        gain = self._ramp(released)
        out = self._buffer[:, self._back : self._back + count] * gain.astype(np.float32)
        self._buffer = self._buffer[:, count:]
        early = min(count, max(0, -self._out))  # frames before the start of the file
        self._out = end
        if early < count:
            self.min_gain = min(self.min_gain, float(gain[early:].min()))
        return out[:, early:]

    def _ahead(self, count: int) -> np.ndarray:
        """``M[k]``, the minimum of ``r`` over ``[k - hold, k + L)``, for frames ``_out`` …
        ``_out + count - 1``: the look-ahead, and the hold behind.

        ``r[n] = min(1, ceiling / true peak around n)``, the peak around ``n`` being the
        largest of the ``2 R + 1`` peaks centred on it (``R`` = the detector's reach). As
        ``ceiling / max(p) == min(ceiling / p)`` exactly, both windows are one minimum over
        ``2 R + hold + L`` per-frame values, and it is taken only around the frames whose peak
        passes the ceiling: everywhere else ``M`` is exactly 1.
        """
        length = 2 * _REACH + self.hold + self.lookahead
        # Peaks of frames _out - hold - R … _out + count - 1 + L - 1 + R, each of which reads
        # the buffer HALF_TAPS frames either side: from buffer index 1.
        span = count + length - 1
        peaks = self._peaks(self._buffer[:, 1 : span + 2 * HALF_TAPS], self.ceiling)
        ahead = np.ones(count)
        over = _span(peaks > self.ceiling)
        if over is not None:
            start, end = max(0, over[0] - length + 1), min(count, over[1])
            part = peaks[start : end + length - 1]
            required = np.divide(
                self.ceiling, part, out=np.ones_like(part), where=part > self.ceiling
            )
            ahead[start:end] = _window_min(required, length)
        return ahead

    def _release(self, ahead: np.ndarray) -> np.ndarray:
        """Instant attack, dB-linear release: ``s[k] = min(M[k], s[k - 1] + step)`` in dB;
        returns the reduction ``1 - 10 ** (s / 20)``, exactly 0 where the gain is 0 dB.

        Computed only from the first frame under 0 dB (or the start, while releasing) to
        where the release from the lowest level must have reached 0 dB: the logarithms and
        powers over every sample of a block cost more than all the rest of the limiter.
        """
        reduction = np.zeros(len(ahead))
        below = _span(ahead < 1.0)
        if below is None and self._release_db == 0.0:
            return reduction
        step = self._release_per_sample
        lowest_db, last = self._release_db, 0  # from ``last`` on, only releasing
        if below is not None:
            lowest_db = min(lowest_db, 20 * math.log10(float(ahead[below[0] : below[1]].min())))
            last = below[1]
        start = 0 if self._release_db < 0.0 or below is None else below[0]
        end = min(len(ahead), last + math.ceil(-lowest_db / step) + 1)
        with np.errstate(divide="ignore"):
            target_db = 20 * np.log10(ahead[start:end])
        index = np.arange(end - start)
        lowest = np.minimum.accumulate(target_db - index * step)
        before = self._release_db if start == 0 else 0.0
        released = np.minimum(index * step + lowest, before + (index + 1) * step)
        released = np.minimum(np.minimum(released, target_db), 0.0)
        self._release_db = float(released[-1]) if end == len(ahead) else 0.0
        reduction[start:end] = 1.0 - np.exp(released * (math.log(10) / 20))  # 10 ** (s / 20)
        return reduction

    def _ramp(self, reduction: np.ndarray) -> np.ndarray:
        """The mean over the last ``L`` frames of the released gain (a straight-line ramp).

        Only where a window holds a reduction: the prefix sums of the zeros before it are
        exactly 0, so the means are bit for bit those of the whole, and exactly 0 elsewhere.
        """
        joined = np.concatenate([self._reduction, reduction])
        length = self.lookahead
        self._reduction = joined[len(joined) - (length - 1) :]
        gain = np.ones(len(reduction))
        reduced = _span(joined != 0.0)
        if reduced is not None:
            # Output k averages joined[k : k + L].
            start = max(0, reduced[0] - length + 1)
            end = min(len(reduction), reduced[1])
            sums = np.concatenate([[0.0], np.cumsum(joined[start : end + length - 1])])
            gain[start:end] = 1.0 - (sums[length:] - sums[:-length]) / length
        return gain


def _span(wanted: np.ndarray) -> tuple[int, int] | None:
    """The first true index of ``wanted`` and one past the last (None: none is): cheaper
    than listing them all when most are."""
    if not wanted.any():
        return None
    return int(wanted.argmax()), len(wanted) - int(wanted[::-1].argmax())


def _window_min(values: np.ndarray, length: int) -> np.ndarray:
    """``out[k] = min(values[k : k + length])`` for every full window."""
    full = minimum_filter1d(values, length, mode="nearest")
    return full[length // 2 : length // 2 + len(values) - length + 1]
