"""The loudness the limiter will leave, estimated without running it: settling a master's gain.

To normalise under a true-peak ceiling the gain must bring the *limited* signal to the target:
past the ceiling a dB of gain adds less than a dB of loudness, so ``target − input`` falls short.
Running the limiter and the meter over the whole file for every guess costs a decode and a
limiter pass per guess. Instead, in a pass that reads the source anyway (the analysis),
:class:`SourceProfile` keeps per bucket of about 1.4 ms (a seventh of the meter's 10 ms slice)
two numbers: the limiter's detector reading (:class:`audio.limiter.IntervalPeaks`, the larger of
BS.1770's interpolator and a longer one) and the K-weighted energy. The limiter's gain depends
on the peaks only, scaled by the gain, so :func:`limited_lufs` replays its rules — the
required gain, hold, look-ahead, dB-linear release, the ramp — on the buckets, and BS.1770's
gating on the energies times the squared gain. Trying a gain then costs microseconds per second
of audio, and :func:`settle_gain` tries as many as it needs.

It is an estimate (the buckets blur the limiter's sample-exact timing), and the output decoded
again is what decides whether a master is on target (:mod:`audio.normalize`): within 0.05 LU of
the limiter run over the file on the tested tracks (``tests/unit/audio/test_limiter_estimate.py``).
Memory: two float32 and a uint16 per bucket, 7 kB per second of 44.1 kHz audio (100 MB for
four hours); trying a gain, a few MB more.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import minimum_filter1d
from scipy.signal import sosfilt, sosfilt_zi

from audio.blocks import channel_block
from audio.limiter import HALF_TAPS, HOLD_S, LOOKAHEAD_S, RELEASE_DB_PER_S, IntervalPeaks
from audio.loudness import SLICE_S, channel_weights, gated_integrated_lufs, k_weighting
from audio.work_thread import worker

#: Frames per bucket, about (a whole number of buckets per 10 ms slice).
BUCKET_FRAMES = 64
#: Buckets :func:`limited_lufs` takes at once (about six minutes of audio).
CHUNK_BUCKETS = 1 << 18


@dataclass(frozen=True)
class Profile:
    """Per bucket: the largest detector reading (linear) and the channel-weighted K-weighted
    energy; and the buckets' layout."""

    sample_rate: int
    buckets_per_slice: int
    peaks: np.ndarray  # float32, one per bucket
    energies: np.ndarray  # float32, one per bucket
    frames: np.ndarray  # uint16, frames per bucket

    @property
    def bucket_s(self) -> float:
        return SLICE_S / self.buckets_per_slice

    def to_bytes(self) -> bytes:
        """An ``.npz`` archive: kept between a job's stages (the first pass makes it, the
        normalising stage uses it)."""
        buffer = io.BytesIO()
        layout = np.array([self.sample_rate, self.buckets_per_slice], dtype=np.int64)
        np.savez(
            buffer,
            layout=layout,
            peaks=self.peaks,
            energies=self.energies,
            frames=self.frames,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Profile:
        with np.load(io.BytesIO(data)) as archive:
            rate, per_slice = (int(value) for value in archive["layout"])
            return cls(
                rate,
                per_slice,
                archive["peaks"],
                archive["energies"],
                archive["frames"].astype(np.uint16),
            )


class _Buckets:
    """Per-frame values reduced (``np.maximum`` or ``np.add``) into buckets whose ends fall at
    ``round(k * per_bucket)`` frames, streamed."""

    def __init__(self, per_bucket: float, reduce: np.ufunc) -> None:
        self._per_bucket = per_bucket
        self._reduce = reduce
        self._done = 0  # buckets finished
        self._start = 0  # the first frame of ``_pending``
        self._pending = np.zeros(0, dtype=np.float64)
        self.values: list[np.ndarray] = []
        self.lengths: list[np.ndarray] = []  # frames per bucket

    def add(self, values: np.ndarray) -> None:
        joined = np.concatenate([self._pending, values])
        end = self._start + len(joined)
        count = int(len(joined) / self._per_bucket) + 2
        ends = np.rint(np.arange(self._done + 1, self._done + 1 + count) * self._per_bucket)
        ends = ends[ends <= end].astype(np.int64) - self._start
        if not len(ends):
            self._pending = joined
            return
        starts = np.concatenate([[0], ends[:-1]])
        self.values.append(self._reduce.reduceat(joined[: ends[-1]], starts).astype(np.float32))
        self.lengths.append((ends - starts).astype(np.uint16))
        self._done += len(ends)
        self._start += int(ends[-1])
        self._pending = joined[ends[-1] :]

    def finish(self) -> np.ndarray:
        if len(self._pending):
            self.values.append(np.array([self._reduce.reduce(self._pending)], dtype=np.float32))
            self.lengths.append(np.array([len(self._pending)], dtype=np.uint16))
            self._pending = self._pending[:0]
        return np.concatenate(self.values) if self.values else np.zeros(0, np.float32)


class SourceProfile:
    """Collect a :class:`Profile` from float32 ``(channels, n)`` blocks (:meth:`add`)."""

    def __init__(
        self, sample_rate: int, channels: int, channel_names: tuple[str, ...] = ()
    ) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        per_slice = sample_rate * SLICE_S
        self._per_slice = max(1, round(per_slice / BUCKET_FRAMES))
        per_bucket = per_slice / self._per_slice
        self._peaks = _Buckets(per_bucket, np.maximum)
        self._energies = _Buckets(per_bucket, np.add)
        self._detector = IntervalPeaks(sample_rate)
        self._history = np.zeros((channels, 2 * HALF_TAPS - 1), dtype=np.float32)
        self._late = HALF_TAPS  # detector readings before the first frame, still to drop
        self._weights = channel_weights(channels, channel_names)
        self._sos = k_weighting(sample_rate)
        self._zi: np.ndarray | None = None
        self._frames = 0  # frames added
        self._peak_frames = 0  # frames whose detector reading is in

    def add(self, block: np.ndarray) -> None:
        block = channel_block(block, self.channels)
        if not block.shape[1]:
            return
        if self._zi is None:  # the meter's start: the steady state of the first sample
            first = block[:, 0].astype(np.float64)
            self._zi = sosfilt_zi(self._sos)[:, None, :] * first[None, :, None]
        filtered, self._zi = sosfilt(self._sos, block, axis=-1, zi=self._zi)
        self._energies.add(self._weights @ (filtered * filtered))
        self._read_peaks(block)
        self._frames += block.shape[1]

    def _read_peaks(self, block: np.ndarray) -> None:
        """The detector's readings, which lag the input by ``HALF_TAPS`` frames."""
        segment = np.concatenate([self._history, block], axis=1)
        peaks = self._detector(segment, 0.0)  # exact everywhere: the gain is not known yet
        self._history = segment[:, segment.shape[1] - self._history.shape[1] :]
        dropped = min(self._late, len(peaks))
        self._late -= dropped
        self._peaks.add(peaks[dropped:])
        self._peak_frames += len(peaks) - dropped

    def result(self) -> Profile:
        """The profile of everything added (call once, at the end)."""
        # The last frames' readings: the detector sees silence after the end.
        tail = self._detector(
            np.concatenate([self._history, np.zeros_like(self._history)], axis=1), 0.0
        )
        self._peaks.add(tail[self._late :][: self._frames - self._peak_frames])
        peaks, energies = self._peaks.finish(), self._energies.finish()
        lengths = self._energies.lengths
        frames = np.concatenate(lengths) if lengths else np.zeros(0, np.uint16)
        count = len(energies)
        return Profile(self.sample_rate, self._per_slice, peaks[:count], energies, frames)


def limited_lufs(profile: Profile, gain_db: float, ceiling_dbtp: float) -> float | None:
    """The integrated loudness of the source after ``gain_db`` and the limiter at
    ``ceiling_dbtp`` (:class:`audio.limiter.TruePeakLimiter`'s rules, bucket by bucket), in
    chunks of :data:`CHUNK_BUCKETS` carrying the limiter's state: memory stays a few MB
    whatever the file's length."""
    gain = 10 ** (gain_db / 20)
    ceiling = 10 ** (ceiling_dbtp / 20)
    step_s = profile.bucket_s
    hold = round(HOLD_S / step_s)
    lookahead = max(1, round(LOOKAHEAD_S / step_s))
    length = hold + lookahead
    step = RELEASE_DB_PER_S * step_s
    per = profile.buckets_per_slice
    chunk = max(per, CHUNK_BUCKETS // per * per)  # whole slices
    count = len(profile.peaks)
    released_db = 0.0  # the release level of the bucket before the chunk
    recent = np.zeros(lookahead - 1)  # the reduction of the buckets before the chunk
    slice_sums: list[np.ndarray] = []
    for start in range(0, count, chunk):
        end = min(count, start + chunk)
        # The required gain over [start - hold, end + lookahead - 1): ones outside the file.
        low, high = start - hold, end + lookahead - 1
        required = np.ones(high - low)
        inside = slice(max(low, 0) - low, min(high, count) - low)
        peaks = profile.peaks[max(low, 0) : min(high, count)].astype(np.float64) * gain
        over = peaks > ceiling
        required[inside][over] = ceiling / peaks[over]
        # M[k] = min of the required gain over [k - hold, k + lookahead).
        ahead = minimum_filter1d(required, length, mode="nearest")[
            length // 2 : length // 2 + end - start
        ]
        with np.errstate(divide="ignore"):
            target_db = 20 * np.log10(ahead)
        index = np.arange(end - start)
        lowest = np.minimum.accumulate(target_db - index * step)
        released = np.minimum(index * step + lowest, released_db + (index + 1) * step)
        released = np.minimum(released, target_db)
        released_db = float(released[-1])
        reduction = np.concatenate([recent, 1.0 - 10 ** (np.minimum(released, 0.0) / 20)])
        sums = np.concatenate([[0.0], np.cumsum(reduction)])
        ramp = (sums[lookahead:] - sums[: len(sums) - lookahead]) / lookahead
        recent = reduction[len(reduction) - (lookahead - 1) :]
        energies = profile.energies[start:end] * (gain * (1.0 - ramp)) ** 2
        whole = len(energies) // per * per
        slice_sums.append(energies[:whole].reshape(-1, per).sum(axis=1))
    whole = count // per * per
    slice_counts = profile.frames[:whole].reshape(-1, per).sum(axis=1, dtype=np.int64)
    sums_per_slice = np.concatenate(slice_sums) if slice_sums else np.zeros(0)
    return gated_integrated_lufs(sums_per_slice, slice_counts.astype(np.float64))


def settle_gain(
    profile: Profile,
    target_lufs: float,
    ceiling_dbtp: float,
    linear_gain_db: float,
    max_extra_db: float,
) -> float:
    """The gain (dB) whose limited signal reads ``target_lufs`` by :func:`limited_lufs`,
    between the linear gain and ``max_extra_db`` past it (the top when even that falls short:
    the target is then out of reach of a transparent limiter)."""
    low, high = linear_gain_db, linear_gain_db + max_extra_db
    low_lufs = limited_lufs(profile, low, ceiling_dbtp)
    if low_lufs is None or low_lufs >= target_lufs - 0.005:
        return low
    high_lufs = limited_lufs(profile, high, ceiling_dbtp)
    if high_lufs is None or high_lufs <= target_lufs:
        return high
    for _ in range(40):  # regula falsi (Illinois): a few steps to 0.005 LU
        gain = low + (target_lufs - low_lufs) * (high - low) / (high_lufs - low_lufs)
        lufs = limited_lufs(profile, gain, ceiling_dbtp)
        if lufs is None or abs(lufs - target_lufs) < 0.005 or high - low < 1e-4:
            return gain
        if lufs < target_lufs:
            low, low_lufs = gain, lufs
            high_lufs = target_lufs + (high_lufs - target_lufs) / 2
        else:
            high, high_lufs = gain, lufs
            low_lufs = target_lufs + (low_lufs - target_lufs) / 2
    return gain if math.isfinite(gain) else low


class BackgroundProfile:
    """A :class:`SourceProfile` fed on a thread of its own: in the analysis' pass of a
    normalised job no encoder runs, and the profile's detector takes the spare core (not
    ``threaded``: fed on the caller's, as a sink of :func:`audio.features.extract`)."""

    def __init__(self, profile: SourceProfile, threaded: bool = True) -> None:
        self._profile = profile
        self._threaded = threaded
        self._thread = worker(profile.add, "limiter profile", threaded)

    def add(self, block: np.ndarray) -> None:
        # Threaded, a copy: the caller may reuse its block while the thread still reads it.
        self._thread.put(np.array(block, dtype=np.float32, copy=True if self._threaded else None))

    def result(self) -> Profile:
        self._thread.finish()
        return self._profile.result()

    def discard(self) -> None:
        self._thread.abandon()
