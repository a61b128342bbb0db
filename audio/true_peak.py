"""True peak (ITU-R BS.1770-4 Annex 2): the highest level of the reconstructed waveform.

Samples can sit below the crests of the analogue signal they describe (a sine at a quarter of
the sample rate, phased 45°, reads 3 dB low). The signal is oversampled with a windowed-sinc
interpolator — 4× below 96 kHz, 2× below 192 kHz, none above — and the largest magnitude of
the original and interpolated points is the true peak.
"""

from __future__ import annotations

import numpy as np

#: Interpolator taps per phase: 12, as in BS.1770-4's reference filter.
TAPS = 12
_HALF = TAPS // 2


def oversampling(sample_rate: int) -> int:
    """The oversampling factor BS.1770-4 asks for at ``sample_rate``."""
    if sample_rate < 96_000:
        return 4
    if sample_rate < 192_000:
        return 2
    return 1


def interpolator(factor: int) -> np.ndarray:
    """Taps ``(factor - 1, TAPS)`` giving the points ``p / factor`` between samples.

    Row ``p - 1`` applied to ``x[n - 5] … x[n + 6]`` gives the value at ``n + p / factor``: a
    Kaiser-windowed sinc, normalised to unity gain at DC. (Phase 0 is the sample itself.)
    """
    rows = []
    k = np.arange(-_HALF + 1, _HALF + 1)  # -5 … 6
    for p in range(1, factor):
        t = p / factor - k  # distance from the wanted point to each sample
        window = np.kaiser(2 * TAPS + 1, 6.0)
        # Evaluate the window continuously at t (it spans -_HALF … +_HALF).
        w = np.interp(t, np.linspace(-_HALF, _HALF, 2 * TAPS + 1), window)
        taps = np.sinc(t) * w
        rows.append(taps / taps.sum())
    return np.asarray(rows, dtype=np.float32).reshape(max(0, factor - 1), TAPS)


class TruePeakMeter:
    """Streaming true peak of one signal (all channels together).

    Only what can raise the peak read so far is computed (see :meth:`Polyphase.peak`): on
    music most of a track's rows cannot, once its loudest passage has been read.

    :param sample_rate: Hz.
    :param channels: number of channels of the blocks given to :meth:`add`.
    """

    def __init__(self, sample_rate: int, channels: int) -> None:
        self.factor = oversampling(sample_rate)
        self._taps = interpolator(self.factor)
        self._polyphase = Polyphase(self._taps)
        self._history = np.zeros((channels, TAPS - 1), dtype=np.float32)
        self.peak = 0.0  # linear magnitude
        self.sample_peak = 0.0

    def add(self, block: np.ndarray) -> None:
        """Measure ``block`` (float32 ``(channels, n)``), continuing from the previous one."""
        if block.shape[1] == 0:
            return
        segment = np.concatenate([self._history, block], axis=1)
        self._history = segment[:, -(TAPS - 1) :].astype(np.float32)
        largest = magnitude(segment)
        block_peak = float(largest[TAPS - 1 :].max())
        self.sample_peak = max(self.sample_peak, block_peak)
        self.peak = max(self.peak, block_peak)
        # No interpolated point can exceed the neighbouring samples times the taps' gain.
        if float(largest.max()) * self._polyphase.gain <= self.peak:
            return
        self.peak = max(self.peak, self._polyphase.peak(segment, self.peak, largest))


class Polyphase:
    """Points between samples, every phase of an interpolator at once, as matrix products.

    Why: one ``np.convolve`` per phase and channel runs at ~2 GMAC/s; the same arithmetic as
    a matrix product runs in BLAS's sgemm at many times that. The frames are cut into rows of
    :attr:`block`; each row, with the :attr:`shifts` − 1 rows after it (the samples its points
    reach), is multiplied by one fixed Toeplitz matrix of the taps, giving every phase of every
    frame of the row. Only rows whose points may matter are computed: no point can exceed the
    samples it reads times :attr:`gain` (the largest L1 norm of a phase), and that bound is
    cheap per row.

    Frame ``j`` of a segment ``x`` (``(channels, length)``) is the points ``table @ x[:, j :
    j + width]``, for ``j`` in ``0 … length - width``.
    """

    #: Rows computed per matrix product: big enough for sgemm, small enough to stay in cache.
    BATCH = 256

    def __init__(self, table: np.ndarray, block: int = 32) -> None:
        phases, width = table.shape
        self.width = width
        self.block = block
        self.shifts = -(-(block + width - 1) // block)  # rows of samples one row of frames reads
        self.gain = float(np.abs(table).sum(axis=1).max()) if phases else 0.0
        self.phases = phases
        # Column p * block + b: phase p of frame b of a row; row m: sample m of the row's span.
        matrix = np.zeros((self.shifts * block, phases, block), dtype=np.float32)
        for b in range(block):
            matrix[b : b + width, :, b] = table.T
        self._matrix = matrix.reshape(self.shifts * block, phases * block)

    def frames(self, segment: np.ndarray) -> int:
        """How many frames ``segment`` (``(channels, length)``) has whole points for."""
        return max(0, segment.shape[1] - self.width + 1)

    def bound(self, largest: np.ndarray) -> np.ndarray:
        """Each row's bound on the magnitude of its points, ``(rows,)`` (every row of frames,
        the last one partly past the end), from ``largest``, the :func:`magnitude` of the
        segment."""
        count = max(0, len(largest) - self.width + 1)
        rows = -(-count // self.block)
        padded = np.zeros((rows + self.shifts - 1) * self.block, dtype=np.float32)
        padded[: len(largest)] = largest
        per_block = padded.reshape(-1, self.block).max(axis=1)
        bound = per_block[:rows].copy()
        for shift in range(1, self.shifts):
            np.maximum(bound, per_block[shift : shift + rows], out=bound)
        return bound * self.gain

    def blocks(self, segment: np.ndarray) -> np.ndarray:
        """``segment`` as float32 ``(channels, rows + shifts - 1, block)``, zero-padded: the
        rows :meth:`points` reads."""
        rows = -(-self.frames(segment) // self.block)
        padded = np.zeros((segment.shape[0], (rows + self.shifts - 1) * self.block), np.float32)
        padded[:, : segment.shape[1]] = segment
        return padded.reshape(segment.shape[0], -1, self.block)

    def points(self, blocks: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The largest magnitude over channels and phases of the points of each frame of
        ``rows`` (indices into ``blocks``' rows of frames): ``(len(rows), block)`` float32."""
        channels, block, shifts = blocks.shape[0], self.block, self.shifts
        out = np.empty((len(rows), block), dtype=np.float32)
        for start in range(0, len(rows), self.BATCH):
            chosen = rows[start : start + self.BATCH]
            n = len(chosen)
            spans = np.empty((channels, n, shifts * block), dtype=np.float32)
            for shift in range(shifts):
                spans[:, :, shift * block : (shift + 1) * block] = blocks[:, chosen + shift]
            values = spans.reshape(channels * n, shifts * block) @ self._matrix
            np.abs(values, out=values)
            values = values.reshape(channels, n, self.phases, block)
            best = out[start : start + n]
            best[:] = values[0, :, 0]
            for channel in range(channels):
                for phase in range(self.phases):
                    np.maximum(best, values[channel, :, phase], out=best)
        return out

    def peak(self, segment: np.ndarray, floor: float, largest: np.ndarray | None = None) -> float:
        """The largest magnitude of any point of ``segment``'s frames if it passes ``floor``;
        otherwise some value ≤ ``floor`` (0 when nothing was computed). ``largest``:
        :func:`magnitude` of ``segment`` if the caller has it.

        Exact, not an estimate: rows are visited loudest bound first, and once no remaining
        row's bound beats both ``floor`` and the largest point found, none of their points
        can.
        """
        count = self.frames(segment)
        if count == 0 or not self.phases:
            return 0.0
        bound = self.bound(magnitude(segment) if largest is None else largest)
        candidates = np.flatnonzero(bound > floor)
        if not len(candidates):
            return 0.0
        blocks = self.blocks(segment)
        order = candidates[np.argsort(-bound[candidates], kind="stable")]
        best, start, batch = 0.0, 0, 8
        last, tail = len(bound) - 1, count - (len(bound) - 1) * self.block
        while start < len(order):
            chosen = order[start : start + batch]
            chosen = chosen[bound[chosen] > max(best, floor)]
            if not len(chosen):
                break
            values = self.points(blocks, chosen)
            values[chosen == last, tail:] = 0.0  # frames past the end: no whole points
            best = max(best, float(values.max()))
            start, batch = start + batch, min(4 * batch, self.BATCH)
        return best


def magnitude(segment: np.ndarray) -> np.ndarray:
    """The largest magnitude over channels of each frame of ``segment`` (float32): one
    elementwise pass per channel, much cheaper than a reduction over the channel axis."""
    largest = np.abs(np.asarray(segment[0], dtype=np.float32))
    for channel in segment[1:]:
        np.maximum(largest, np.abs(channel), out=largest)
    return largest
