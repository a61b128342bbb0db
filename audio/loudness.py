"""Loudness as EBU R128 measures it: ITU-R BS.1770-4 and EBU Tech 3341/3342.

:class:`LoudnessMeter` is fed blocks of any length and keeps only the K-weighted energy of each
10 ms slice (72 kB per hour), so a two-hour file is measured in bounded memory. From the slices:

* momentary loudness — 400 ms windows, reported every 10 ms so a short burst is caught whole
  (Tech 3341 case 13; a 100 ms hop can miss it by half a dB);
* short-term loudness — 3 s windows;
* integrated loudness — 400 ms blocks every 100 ms, absolute gate −70 LUFS, relative gate −10 LU;
* loudness range — short-term values every 100 ms, gates −70 LUFS and −20 LU, 95th minus 10th
  percentile (Tech 3342);
* true peak (:mod:`audio.true_peak`) and sample peak.

The K-weighting filter is derived from its analogue prototype for the actual sample rate, so
48 kHz gives exactly BS.1770's coefficients and 8–384 kHz all measure the same.

Honest nulls. The filters start in the steady state of the file's first sample (as if that value
had always been there), so a file that starts at a DC offset has no start-up transient to gate in
(a WAV of pure DC used to read −29.3 LUFS). Integrated loudness is ``None``, with
:attr:`Loudness.reason` saying why, when there is nothing to measure:

* the audio is shorter than one 400 ms gating block (BS.1770's own minimum);
* no block rises above the −70 LUFS absolute gate (silence, DC, sub-audio rumble);
* everything above the gate is one instant: see :func:`rests_on_one_instant`.

None of these can move a conformance result or a piece of music: each needs the loudness to rest
on less than 60 ms of sound.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.signal import sosfilt, sosfilt_zi

from audio.blocks import channel_block
from audio.true_peak import TruePeakMeter

#: Length of one slice of energy, seconds.
SLICE_S = 0.01
#: Spacing of the short-term values in :attr:`Loudness.short_term_lufs`, seconds.
SHORT_TERM_HOP_S = 1.0
ABSOLUTE_GATE_LUFS = -70.0

_MOMENTARY = 40  # slices in 400 ms
_SHORT_TERM = 300  # slices in 3 s
_GATING_STEP = 10  # slices in 100 ms
#: The instant :func:`rests_on_one_instant` blanks: slices before and after the loudest one.
#: Not tuned on any signal: derived from the K-weighting. Its 38 Hz high-pass (Q 0.5, nearly
#: critically damped) rings after an edge; the ringing of a full-scale DC step, as a share of a
#: 400 ms block, is at −53 LUFS 30 ms on, −70 at 40 ms, −88 at 50 ms (every rate, 8–384 kHz). One
#: slice before covers a click straddling a slice boundary, four after cover the ringing with
#: 18 dB to spare (a +12 dBFS float step still falls under the gate).
_INSTANT_BEFORE, _INSTANT_AFTER = 1, 4
#: Channels BS.1770-4 Table 3 weighs 1.41 (+1.5 dB): those at 60°–120° left or right of the
#: front, below 30° of elevation — sides, wides, the surrounds of 5.x. The back pair (``BL``,
#: ``BR``) is at ±110° where the layout has no sides (5.x: it *is* the surround pair) and at ±135°
#: where it has (7.1), which Table 3 weighs 1.0, as libebur128 does.
_AT_THE_SIDES = {"SL", "SR", "LS", "RS", "SIDE_LEFT", "SIDE_RIGHT", "WL", "WR", "SDL", "SDR"}
_SIDE_PAIR = {"SL", "SR", "SIDE_LEFT", "SIDE_RIGHT"}
_BACK_PAIR = {"BL", "BR", "BACK_LEFT", "BACK_RIGHT"}
_LFE = {"LFE", "LFE1", "LFE2", "LOW_FREQUENCY", "LOW_FREQUENCY_2"}
_GUESS_6 = ("FL", "FR", "FC", "LFE", "BL", "BR")
_GUESS_5 = ("FL", "FR", "FC", "BL", "BR")


@dataclass(frozen=True)
class Loudness:
    """One measurement. ``None`` where there is nothing to measure (silence, too short).

    ``reason`` says, in a sentence, why ``integrated_lufs`` is ``None`` (``None`` when it has a
    value); ``range_reason`` says the same of ``loudness_range_lu``.
    """

    integrated_lufs: float | None
    loudness_range_lu: float | None
    true_peak_dbtp: float | None
    sample_peak_dbfs: float | None
    short_term_lufs: list[float | None]
    reason: str | None = None
    range_reason: str | None = None
    #: The loudest 400 ms (momentary) and 3 s (short-term) window, every 10 ms (Tech 3341);
    #: None when the audio is shorter than the window or silent throughout.
    max_momentary_lufs: float | None = None
    max_short_term_lufs: float | None = None
    #: Integrated loudness of each channel measured alone (weight 1, gated on its own); None
    #: for a channel with nothing above the gate, and the whole list None when unknown.
    channel_loudness_lufs: list[float | None] | None = None
    #: Integrated loudness of a stereo file summed to mono (played on both speakers); None
    #: when the sum falls under the −70 LUFS gate, or the file is not stereo.
    mono_lufs: float | None = None

    def to_dict(self) -> dict:
        """JSON-safe: ``None`` instead of ±inf/NaN, values rounded to 0.01, reasons as text."""
        return {key: _json_safe(value) for key, value in asdict(self).items()}


def _json_safe(value):
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 2)


def k_weighting(sample_rate: int) -> np.ndarray:
    """BS.1770's K-weighting (high shelf, then high-pass) as second-order sections."""
    # High shelf: the head's acoustic effect (+4 dB above ~1.7 kHz).
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / sample_rate)
    vh = 10 ** (gain_db / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = [
        (vh + vb * k / q + k * k) / a0,
        2 * (k * k - vh) / a0,
        (vh - vb * k / q + k * k) / a0,
        1.0,
        2 * (k * k - 1) / a0,
        (1 - k / q + k * k) / a0,
    ]
    # High-pass: RLB weighting (−∞ at DC, flat above ~100 Hz).
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / sample_rate)
    a0 = 1 + k / q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    return np.array([shelf, highpass])


def channel_weights(channels: int, channel_names: tuple[str, ...] = ()) -> np.ndarray:
    """BS.1770-4 Table 3 weights by position: 1.41 (+1.5 dB) at ±60°–120° (sides, and the back
    pair when there are no sides), 0 for the LFE, 1.0 elsewhere (front, ±135°, overhead)."""
    names = tuple(n.upper() for n in channel_names)
    if len(names) != channels:
        names = _GUESS_6 if channels == 6 else _GUESS_5 if channels == 5 else ("",) * channels
    sides = _AT_THE_SIDES | (set() if _SIDE_PAIR & set(names) else _BACK_PAIR)
    weights = [0.0 if n in _LFE else 1.41 if n in sides else 1.0 for n in names]
    return np.array(weights)


def to_lufs(energy: np.ndarray | float) -> np.ndarray:
    """Mean-square energy to LUFS (−inf for zero)."""
    with np.errstate(divide="ignore"):
        return -0.691 + 10 * np.log10(energy)


class LoudnessMeter:
    """Streaming EBU R128 meter.

    :param sample_rate: Hz (any, 8 kHz – 384 kHz).
    :param channels: channels of the blocks given to :meth:`add`.
    :param channel_names: FFmpeg channel names (``FL``, ``LFE``, ``SL``…) for the weights.
    """

    def __init__(self, sample_rate: int, channels: int, channel_names: tuple[str, ...] = ()):
        self.sample_rate = sample_rate
        self.channels = channels
        self._weights = channel_weights(channels, channel_names)
        self._sos = k_weighting(sample_rate)
        self._zi = np.zeros((self._sos.shape[0], channels, 2))  # primed by the first sample
        self._true_peak = TruePeakMeter(sample_rate, channels)
        #: Rows of energy kept per slice: each channel alone, then (stereo) the mono sum.
        self._rows = channels + (1 if channels == 2 else 0)
        self._samples = 0  # samples seen
        self._carry = np.zeros(self._rows)  # energy of the unfinished slice, per row
        self._carry_n = 0
        self._finished = 0  # slices complete
        self._sums: list[np.ndarray] = []  # weighted energy sum per finished slice
        self._counts: list[np.ndarray] = []  # samples per finished slice
        #: Per-row energy of the finished slices not yet folded into ``_coarse``: (rows, n).
        self._fine: list[np.ndarray] = []
        #: Per-row energy per gating step (100 ms, ten slices): (rows, steps); None when
        #: restored from an archive made before channels were kept apart.
        self._coarse: np.ndarray | None = np.zeros((self._rows, 0))

    def add(self, block: np.ndarray) -> None:
        """Measure ``block``: float32 ``(channels, n)``."""
        block = channel_block(block, self.channels)
        n = block.shape[1]
        if n == 0:
            return
        if self._samples == 0:  # steady state for the first sample: no start-up transient
            first_sample = block[:, 0].astype(np.float64)
            self._zi = sosfilt_zi(self._sos)[:, None, :] * first_sample[None, :, None]
        self._true_peak.add(block)
        filtered, self._zi = sosfilt(self._sos, block, axis=-1, zi=self._zi)
        # One row per channel, and for stereo the mono sum played on both speakers,
        # 2·((L + R) / 2)²: linear filtering lets the sum be taken after the K-weighting. A zero
        # column closes the last segment of ``reduceat`` below.
        energy = np.empty((self._rows, n + 1))
        np.multiply(filtered, filtered, out=energy[: self.channels, :n])
        if self.channels == 2:
            mono = np.add(filtered[0], filtered[1], out=energy[2, :n])
            np.multiply(mono, mono, out=mono)
            mono *= 0.5
        energy[:, n] = 0.0
        # Slice k spans samples [round(k * rate * SLICE_S), round((k + 1) * rate * SLICE_S)).
        first = self._samples
        last = first + n
        per_slice = self.sample_rate * SLICE_S
        ks = np.arange(self._finished + 1, self._finished + int(n / per_slice) + 3)
        ends = np.rint(ks * per_slice).astype(np.int64)
        ends = ends[ends <= last]
        segments = np.add.reduceat(energy, np.concatenate([[0], ends - first]), axis=1)
        if len(ends):
            rows = segments[:, :-1]
            rows[:, 0] += self._carry
            counts = np.diff(np.concatenate([[first], ends])).astype(np.float64)
            counts[0] += self._carry_n
            self._fine.append(rows)
            self._sums.append(self._weights @ rows[: self.channels])
            self._counts.append(counts)
            self._finished += len(ends)
            self._carry = segments[:, -1].copy()
            self._carry_n = int(last - ends[-1])
        else:
            self._carry += segments[:, 0]
            self._carry_n += n
        self._samples = last
        if len(self._sums) > 64:  # keep the lists short
            self._sums = [np.concatenate(self._sums)]
            self._counts = [np.concatenate(self._counts)]
            self._fold_fine()

    def _fold_fine(self) -> None:
        """Move the complete gating steps of ``_fine`` into ``_coarse`` (ten slices each)."""
        if not self._fine or self._coarse is None:
            return
        fine = np.concatenate(self._fine, axis=1)
        whole = fine.shape[1] // _GATING_STEP * _GATING_STEP
        steps = fine[:, :whole].reshape(self._rows, -1, _GATING_STEP).sum(axis=2)
        self._coarse = np.concatenate([self._coarse, steps], axis=1)
        self._fine = [fine[:, whole:]]

    # -- windows -----------------------------------------------------------------------------

    def _slices(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._sums:
            return np.zeros(0), np.zeros(0)
        return np.concatenate(self._sums), np.concatenate(self._counts)

    def _windows(self, length: int, step: int) -> np.ndarray:
        """Mean energy of every complete window of ``length`` slices, every ``step`` slices."""
        return _block_energies(*self._slices(), length, step)

    def momentary_lufs(self) -> np.ndarray:
        """Momentary loudness (400 ms windows) every 10 ms."""
        return to_lufs(self._windows(_MOMENTARY, 1))

    def short_term_lufs_10ms(self) -> np.ndarray:
        """Short-term loudness (3 s windows) every 10 ms."""
        return to_lufs(self._windows(_SHORT_TERM, 1))

    # -- results -----------------------------------------------------------------------------

    def integrated_lufs(self) -> float | None:
        return self._integrated()[0]

    def _integrated(self) -> tuple[float | None, str | None]:
        """Integrated loudness, or ``None`` and the reason (see the module's docstring)."""
        sums, counts = self._slices()
        if len(sums) < _MOMENTARY:
            ms = 1000 * (counts.sum() + self._carry_n) / self.sample_rate
            return None, (
                f"The audio lasts {ms:.0f} ms, shorter than the 400 ms block that integrated "
                "loudness is measured over."
            )
        blocks = self._windows(_MOMENTARY, _GATING_STEP)
        value = _gated_mean(blocks, relative_gate_lu=-10.0)
        if value is None and self._true_peak.sample_peak == 0:
            return None, "The audio is digital silence: every sample is zero."
        if value is None:
            return None, (
                "Nothing rises above the −70 LUFS absolute gate: the audio holds only a DC "
                "offset, sub-audio rumble or sound too quiet to measure."
            )
        if rests_on_one_instant(sums, counts):
            return None, (
                "The only sound above the −70 LUFS gate is a click (under 60 ms, such as an "
                "impulse or a DC step): too short to have an integrated loudness."
            )
        return value, None

    def loudness_range_lu(self) -> float | None:
        return self._loudness_range()[0]

    def _loudness_range(self) -> tuple[float | None, str | None]:
        """Loudness range, or ``None`` and the reason: none where there is no loudness (a click
        has none), none under 3 s."""
        integrated, reason = self._integrated()
        if integrated is None:
            return None, reason
        if len(self._slices()[0]) < _SHORT_TERM:
            return None, "The audio is shorter than 3 s, the short-term window LRA is made of."
        value = self._gated_range()
        if value is None:
            return None, "No 3 s short-term window rises above the −70 LUFS absolute gate."
        return value, None

    def _gated_range(self) -> float | None:
        energies = self._windows(_SHORT_TERM, _GATING_STEP)
        above = energies[to_lufs(energies) > ABSOLUTE_GATE_LUFS]
        if len(above) == 0:
            return None
        gate = to_lufs(above.mean()) - 20.0
        levels = to_lufs(above)
        levels = levels[levels > gate]
        low, high = np.percentile(levels, [10, 95])
        return float(high - low)

    def short_term_curve(self) -> list[float | None]:
        """Short-term loudness at the end of every second (partial windows in the first 3 s)."""
        sums, counts = self._slices()
        per = round(SHORT_TERM_HOP_S / SLICE_S)
        cs = np.concatenate([[0.0], np.cumsum(sums)])
        cn = np.concatenate([[0.0], np.cumsum(counts)])
        curve: list[float | None] = []
        for end in range(per, len(sums) + 1, per):
            start = max(0, end - _SHORT_TERM)
            level = float(to_lufs((cs[end] - cs[start]) / (cn[end] - cn[start])))
            curve.append(level if level > ABSOLUTE_GATE_LUFS else None)
        return curve

    def _maximum(self, length: int) -> float | None:
        levels = to_lufs(self._windows(length, 1))
        if not len(levels) or not np.isfinite(levels.max()):
            return None
        return float(levels.max())

    def _steps(self) -> np.ndarray | None:
        """Per-row energy of every complete gating step (100 ms), or None when unknown."""
        self._fold_fine()
        return self._coarse

    def _step_counts(self, steps: int) -> np.ndarray:
        counts = self._slices()[1][: steps * _GATING_STEP]
        return counts.reshape(-1, _GATING_STEP).sum(axis=1)

    def _gated_rows(self) -> list[float | None] | None:
        """Integrated loudness of each row of :attr:`_steps` alone (BS.1770 gating)."""
        steps = self._steps()
        if steps is None:
            return None
        counts = self._step_counts(steps.shape[1])
        blocks = _MOMENTARY // _GATING_STEP
        return [_gated_mean(_block_energies(row, counts, blocks, 1), -10.0) for row in steps]

    def state(self) -> dict[str, np.ndarray]:
        """Everything :meth:`result` needs: the energy slices, the energy of each channel (and
        the mono sum) per 100 ms, and the peaks (a few kB/min)."""
        sums, counts = self._slices()
        tp = self._true_peak
        state = {
            "loudness_sums": sums,
            "loudness_counts": counts,
            "loudness_meta": np.array([self.sample_rate, self.channels, tp.peak, tp.sample_peak]),
        }
        steps = self._steps()
        if steps is not None:
            state["loudness_rows"] = steps
        return state

    @classmethod
    def restore(cls, state: dict[str, np.ndarray]) -> LoudnessMeter:
        rate, channels, peak, sample_peak = state["loudness_meta"]
        meter = cls(int(rate), int(channels))
        meter._sums, meter._counts = [state["loudness_sums"]], [state["loudness_counts"]]
        meter._true_peak.peak, meter._true_peak.sample_peak = float(peak), float(sample_peak)
        meter._fine = []
        meter._coarse = state.get("loudness_rows")  # None: an archive from before (#26)
        return meter

    def result(self) -> Loudness:
        tp = self._true_peak
        integrated, reason = self._integrated()
        loudness_range, range_reason = self._loudness_range()
        rows = self._gated_rows()
        return Loudness(
            integrated_lufs=integrated,
            loudness_range_lu=loudness_range,
            true_peak_dbtp=20 * math.log10(tp.peak) if tp.peak > 0 else None,
            sample_peak_dbfs=20 * math.log10(tp.sample_peak) if tp.sample_peak > 0 else None,
            short_term_lufs=self.short_term_curve(),
            reason=reason,
            range_reason=range_reason,
            max_momentary_lufs=self._maximum(_MOMENTARY),
            max_short_term_lufs=self._maximum(_SHORT_TERM),
            channel_loudness_lufs=None if rows is None else rows[: self.channels],
            mono_lufs=rows[2] if rows is not None and self.channels == 2 else None,
        )


def rests_on_one_instant(sums: np.ndarray, counts: np.ndarray) -> bool:
    """Whether all the loudness above the absolute gate comes from one instant: a click.

    BS.1770 measures a click in silence as the 400 ms blocks around it — a full-scale
    one-sample impulse reads −39.7 LUFS, a DC step more — which is the loudness of no programme
    at all. The rule: blank the 60 ms around the loudest 10 ms slice (one slice before, four
    after: the K-weighting's ringing, see ``_INSTANT_AFTER``) and gate again. If no 400 ms block
    then passes −70 LUFS, the gated blocks held nothing but that instant. Sound that lasts
    longer than 60 ms (every EBU test signal, any music, even one 100 ms burst) still passes,
    and then BS.1770's value is reported unchanged: the rule decides *whether* there is a
    loudness, never what it is.

    :param sums: K-weighted energy summed per 10 ms slice; ``counts``: samples per slice.
    """
    if len(sums) < _MOMENTARY:
        return False
    loudest = int(np.argmax(sums / np.maximum(counts, 1)))
    rest = sums.copy()
    rest[max(0, loudest - _INSTANT_BEFORE) : loudest + _INSTANT_AFTER + 1] = 0.0
    blocks = _block_energies(rest, counts, _MOMENTARY, _GATING_STEP)
    return not np.any(to_lufs(blocks) > ABSOLUTE_GATE_LUFS)


def gated_integrated_lufs(sums: np.ndarray, counts: np.ndarray) -> float | None:
    """BS.1770's gated integrated loudness from energy summed per 10 ms slice (``sums``,
    channel-weighted, K-weighted) and samples per slice (``counts``): 400 ms blocks every
    100 ms; None if no block passes the gates. (:class:`LoudnessMeter` adds its reasons.)"""
    blocks = _block_energies(sums, counts, _MOMENTARY, _GATING_STEP)
    return _gated_mean(blocks, relative_gate_lu=-10.0) if len(blocks) else None


def _block_energies(sums: np.ndarray, counts: np.ndarray, length: int, step: int) -> np.ndarray:
    """Mean energy of every complete window of ``length`` slices, every ``step`` slices."""
    if len(sums) < length:
        return np.zeros(0)
    cs = np.concatenate([[0.0], np.cumsum(sums)])
    cn = np.concatenate([[0.0], np.cumsum(counts)])
    ends = np.arange(length, len(sums) + 1, step)
    return (cs[ends] - cs[ends - length]) / (cn[ends] - cn[ends - length])


def _gated_mean(energies: np.ndarray, relative_gate_lu: float) -> float | None:
    """BS.1770 gating: mean energy of the blocks above −70 LUFS and above the relative gate."""
    above = energies[to_lufs(energies) > ABSOLUTE_GATE_LUFS]
    if len(above) == 0:
        return None
    gate = to_lufs(above.mean()) + relative_gate_lu
    kept = above[to_lufs(above) > gate]
    return float(to_lufs(kept.mean()))


def measure_loudness(
    samples: np.ndarray, sample_rate: int, channel_names: tuple[str, ...] = ()
) -> Loudness:
    """Measure a whole signal at once: ``(channels, n)`` or ``(n,)`` float samples."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[None, :]
    meter = LoudnessMeter(sample_rate, samples.shape[0], channel_names)
    meter.add(samples)
    return meter.result()
