"""Tempo (BPM), its beat grid and a confidence, from a stream of mono samples.

1. Three onset envelopes, ~86 frames a second: the rise of the log-magnitude spectrum (spectral
   flux, every note and drum), its part above 3 kHz (hats), and the rise of the *linear*
   magnitude between 1.2 and 5 kHz (loud broadband hits — snares, claps — outweigh hats and
   notes there). Only these envelopes are kept (a few hundred kB each for two hours of audio).
2. Periodicities: peaks of the first envelope's autocorrelation between 50 and 220 BPM; the
   fastest one up to 182 BPM at least 0.62 as strong as the strongest is the first guess (bars
   and half notes repeat at least as well as beats; eighth notes clearly less).
3. The octave, from rhythmic evidence:
   - the backbeat: the snare (noise band) repeats every two beats and not every beat, so half
     the noise band's period is a beat. When that backbeat is clear, the beat moves to its
     octave of the first guess (a ballad's eighths read as the beat, punk's 200 BPM as 100),
     or to it when the first guess is no octave of it (a trap kick's dotted rhythm);
   - the tatum: hats (log flux above 3 kHz) do not run faster than sixteenths, so a beat that
     would hold more than ~5 hat strokes is doubled (trap's hats in sixteenths at 140, whose
     snare on beat 3 reads as a 70 BPM backbeat).
4. The beat grid: the phase that best fits the onsets, then each beat followed from the last
   one to the strongest onset near where the tempo predicts it.
5. The confidence: how periodic the envelope is at the beat, times how clearly the evidence
   rules out the neighbouring octaves: a backbeat that set the octave (its contrast), else
   only "the half beat repeats clearly less than the beat", which says nothing against the
   slower reading (at most 0.5). A pulse train as strong at two octaves scores near 0.

Null when there is no evidence: silence, under 4 s, or no steady pulse (sustained pads, speech).
Where the pulse is too weak to call a beat (rubato, a non-percussive piece, pads) people may
still hear a tempo: ``estimate`` is then the first guess all the same, with its pulse strength
(under :data:`MIN_PULSE`) as ``estimate_confidence``. With a steady beat it is the BPM itself.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from audio.frames import SpectrumStream

#: The mono sample rate tempo and key analysis run at.
ANALYSIS_RATE = 11025
FFT_SIZE = 512
HOP = 128
FRAME_RATE = ANALYSIS_RATE / HOP  # ≈ 86.1 frames per second
MIN_BPM, MAX_BPM = 50.0, 220.0
_BIN_HZ = ANALYSIS_RATE / FFT_SIZE
#: Noise band (snares, claps) and hat band, in FFT bins.
NOISE_BAND = (round(1200 / _BIN_HZ), round(5000 / _BIN_HZ))
HAT_BAND = (round(3000 / _BIN_HZ), FFT_SIZE // 2 + 1)
MIN_SECONDS = 4.0
#: Frame ``i`` of the onset envelope rises when an onset enters the FFT window, about three
#: quarters of a window after the frame starts (measured: beats of the styles tuning seeds).
ONSET_LATENCY_S = (FFT_SIZE - HOP) / ANALYSIS_RATE

# Tuning (2026-11-30). STRONG_ENOUGH and FASTEST_BEAT_BPM date from the first corpus (music.py
# seeds 100–147). Everything below them was set looking at `tests/support/audio/styles.py` seeds
# 500000… and 9100000… (5 tracks a style each: `styles.TUNING_FIRST_SEEDS`) and music.py seeds
# 100–147; the figures are reported on the held-apart seeds of both (styles 9300000… and
# 9500000…, music.py 7000000–7000047), which tuned nothing.
#: A periodicity this strong, relative to the strongest, can be the beat …
STRONG_ENOUGH = 0.62
#: … unless it is faster than this (the first guess; the backbeat may still double it).
FASTEST_BEAT_BPM = 182.0
#: The noise band's period is a backbeat when it repeats this much better than at its half …
BACKBEAT_CONTRAST = 0.2
#: … and repeats at least this regularly (see :func:`_is_backbeat` for the support) …
BACKBEAT_REGULARITY = 0.78
#: … or, marked (repeating this much better than at its half), less regularly.
MARKED_CONTRAST = 0.5
#: More hat strokes a beat than this: the beat is really twice as fast (sixteenths of the beat
#: give 4, triplet sixteenths 6; 4.5 and 5.5 tuned alike, 5 is between).
MAX_HATS_PER_BEAT = 5.0
#: Below this pulse strength (mean autocorrelation at 1–4 beats) there is no steady beat: music
#: of the tuning sets ≥ 0.34, pads and speech-like sound (``styles.pads``/``speech_like`` seeds
#: 0–4) ≤ 0.08.
MIN_PULSE = 0.12


@dataclass(frozen=True)
class Tempo:
    """``bpm`` None with a ``reason`` (a sentence) when the signal holds no steady beat;
    ``beats``: seconds of each beat, a grid usable for beat matching. ``estimate`` is never
    None where ``bpm`` is not (they are then equal, and so are the confidences); where ``bpm``
    is None for want of a steady pulse, it is the best guess with a low confidence."""

    bpm: float | None
    confidence: float | None
    half_bpm: float | None
    double_bpm: float | None
    beats: tuple[float, ...] = ()
    reason: str | None = None
    estimate: float | None = None
    estimate_confidence: float | None = None

    def to_dict(self) -> dict:
        numbers = {
            "bpm": self.bpm,
            "confidence": self.confidence,
            "half_bpm": self.half_bpm,
            "double_bpm": self.double_bpm,
            "estimate": self.estimate,
            "estimate_confidence": self.estimate_confidence,
        }
        record: dict = {k: None if v is None else round(float(v), 2) for k, v in numbers.items()}
        record["beats"] = [round(float(b), 3) for b in self.beats]
        record["reason"] = self.reason
        return record


def no_tempo(reason: str) -> Tempo:
    return Tempo(None, None, None, None, (), reason)


NO_TEMPO = no_tempo("no audio")


class TempoAnalyzer:
    """Streaming tempo estimation.

    :param sample_rate: rate of the mono blocks given to :meth:`add`; resampled to
        :data:`ANALYSIS_RATE` when different.
    """

    def __init__(self, sample_rate: int = ANALYSIS_RATE) -> None:
        self._spectra = SpectrumStream(sample_rate, ANALYSIS_RATE, FFT_SIZE, HOP)
        self._previous: tuple[np.ndarray, np.ndarray] | None = None  # last frame, linear and log
        self._envelope: list[np.ndarray] = []
        self._noise: list[np.ndarray] = []
        self._hats: list[np.ndarray] = []

    def add(self, mono: np.ndarray) -> None:
        self._consume(self._spectra.add(mono))

    def _consume(self, spectrum: np.ndarray) -> None:
        if len(spectrum) == 0:
            return
        log_spectrum = np.log1p(1000.0 * spectrum)
        if self._previous is None:  # the first frame rises from itself: no onset
            self._previous = (spectrum[:1], log_spectrum[:1])
        band = slice(*NOISE_BAND)
        linear = np.diff(np.concatenate([self._previous[0][:, band], spectrum[:, band]]), axis=0)
        rise = np.diff(np.concatenate([self._previous[1], log_spectrum]), axis=0)
        self._previous = (spectrum[-1:], log_spectrum[-1:])
        self._noise.append(np.maximum(linear, 0).sum(axis=1))
        np.maximum(rise, 0, out=rise)
        self._envelope.append(rise.sum(axis=1))
        self._hats.append(rise[:, HAT_BAND[0] : HAT_BAND[1]].sum(axis=1))

    def state(self) -> dict[str, np.ndarray]:
        """Everything :meth:`result` needs (the onset envelopes), after the last block."""
        self._consume(self._spectra.flush())
        return {
            "tempo_envelope": _joined(self._envelope),
            "tempo_noise": _joined(self._noise),
            "tempo_hats": _joined(self._hats),
        }

    @classmethod
    def restore(cls, state: dict[str, np.ndarray]) -> TempoAnalyzer:
        """From :meth:`state`; archives from before the band envelopes get the first guess."""
        analyzer = cls(ANALYSIS_RATE)
        for name, parts in (
            ("tempo_envelope", analyzer._envelope),
            ("tempo_noise", analyzer._noise),
            ("tempo_hats", analyzer._hats),
        ):
            if name in state and len(state[name]):
                parts.append(np.asarray(state[name], dtype=np.float64))
        return analyzer

    def result(self) -> Tempo:
        """The tempo, its octave chosen automatically (:mod:`audio.tempo_range` folds it into a
        range instead)."""
        return self.evidence()[0]

    def evidence(self) -> tuple[Tempo, np.ndarray | None]:
        """The tempo and the normalised onset envelope it was read from (None when there was
        nothing to read: too short, silence)."""
        self._consume(self._spectra.flush())
        raw = _joined(self._envelope)
        if len(raw) < FRAME_RATE * MIN_SECONDS:
            return no_tempo(f"too short: a tempo needs at least {MIN_SECONDS:g} s of audio"), None
        envelope = _normalise(raw)
        if envelope is None:
            return no_tempo("silence: no onsets"), None
        noise, hats = _normalise(_joined(self._noise)), _normalise(_joined(self._hats))
        return _estimate(envelope, noise, hats), envelope


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0)


def _normalise(envelope: np.ndarray) -> np.ndarray | None:
    """Remove the local mean (≈0.5 s) and half-wave rectify; None for silence."""
    if len(envelope) == 0 or not np.any(envelope > 1e-6):
        return None
    width = int(FRAME_RATE / 2)
    local = np.convolve(envelope, np.ones(width) / width, mode="same")
    out = np.maximum(envelope - local, 0.0)
    scale = out.std()
    return out / scale if scale > 0 else None


#: Frames per piece the autocorrelation is computed over (≈ 6 minutes): memory stays flat
#: however long the track.
ACF_PIECE = 1 << 15


def autocorrelation(envelope: np.ndarray, max_lag: int) -> np.ndarray:
    """Normalised, unbiased (each lag averages what overlaps); zero beyond the signal.

    Summed piece by piece — each piece with the ``max_lag`` frames that follow it — so a long
    file needs no FFT of its whole length.
    """
    n = len(envelope)
    usable = min(max_lag, n // 2)
    centred = envelope - envelope.mean()
    sums = np.zeros(usable + 1)
    size = 1 << math.ceil(math.log2(ACF_PIECE + 2 * usable + 1))
    for start in range(0, n, ACF_PIECE):
        head = centred[start : start + ACF_PIECE]  # lags start in this piece …
        tail = centred[start : start + ACF_PIECE + usable]  # … and may end in the next
        cross = np.fft.irfft(np.conj(np.fft.rfft(head, size)) * np.fft.rfft(tail, size), size)
        sums += cross[: usable + 1]
    acf = sums / np.arange(n, n - usable - 1, -1)
    if acf[0] > 0:
        acf /= acf[0]
    return np.concatenate([acf, np.zeros(max_lag - usable)])


def _at(acf: np.ndarray, lag: float) -> float:
    """The autocorrelation at a fractional lag (linear interpolation; 0 beyond)."""
    i = int(lag)
    if i + 1 >= len(acf) or i < 0:
        return 0.0
    f = lag - i
    return float(acf[i] * (1 - f) + acf[i + 1] * f)


def _peak(acf: np.ndarray, lag: int) -> float:
    """Parabolic interpolation of the peak at ``lag``."""
    a, b, c = acf[lag - 1], acf[lag], acf[lag + 1]
    denominator = a - 2 * b + c
    return lag + (0.5 * (a - c) / denominator if denominator < 0 else 0.0)


def _first_guess(acf: np.ndarray) -> float | None:
    """The fastest periodicity up to :data:`FASTEST_BEAT_BPM` nearly as strong as the strongest."""
    min_lag = int(60 * FRAME_RATE / MAX_BPM)
    max_lag = int(60 * FRAME_RATE / MIN_BPM) + 1
    window = acf[min_lag - 1 : max_lag + 2]
    is_peak = (window[1:-1] > window[:-2]) & (window[1:-1] >= window[2:]) & (window[1:-1] > 0)
    lags = np.nonzero(is_peak)[0] + min_lag
    if len(lags) == 0:
        return None
    strengths = acf[lags]
    strongest = strengths.max()
    bpms = 60 * FRAME_RATE / lags
    eligible = (strengths >= STRONG_ENOUGH * strongest) & (bpms <= FASTEST_BEAT_BPM)
    if not eligible.any():
        eligible = strengths == strongest
    return _refine(acf, _peak(acf, int(lags[eligible].min())))


def _refine(acf: np.ndarray, period: float) -> float:
    """Sharpen the period with the 4th multiple's peak (4× the resolution)."""
    target = 4 * period
    lo, hi = int(target - 3), int(target + 4)
    if lo < 1 or hi >= len(acf) - 1:
        return period
    return _peak(acf, lo + int(np.argmax(acf[lo:hi]))) / 4


def _backbeat(noise: np.ndarray | None) -> tuple[float | None, float, float]:
    """Half the noise band's period (a beat, if that is a backbeat) and its contrast.

    The period is the shortest clear peak (≥ 0.8 of the strongest) between 0.45 and 2.3 s:
    bars repeat as well as backbeats. The contrast is how much better it repeats than at its
    half: a backbeat (snare on 2 and 4) repeats every two beats, not every beat. The regularity
    is the autocorrelation at the period (a snare hits every time; sporadic hits do not).
    """
    if noise is None:
        return None, 0.0, 0.0
    lo, hi = int(0.45 * FRAME_RATE), int(2.3 * FRAME_RATE)
    acf = autocorrelation(noise, hi + 2)
    window = acf[lo - 1 : hi + 2]
    is_peak = (window[1:-1] > window[:-2]) & (window[1:-1] >= window[2:]) & (window[1:-1] > 0)
    lags = np.nonzero(is_peak)[0] + lo
    if len(lags) == 0:
        return None, 0.0, 0.0
    strongest = acf[lags].max()
    lag = int(lags[acf[lags] >= 0.8 * strongest].min())
    period = _peak(acf, lag)
    return period / 2, acf[lag] - _at(acf, period / 2), float(acf[lag])


def _hats_per_second(hats: np.ndarray | None) -> float:
    """How many hat strokes a second: peaks of the hat band's onsets (> 1 spread above the
    local mean), at least 50 ms apart, over the span from the first to the last."""
    if hats is None or len(hats) < 3:
        return 0.0
    is_peak = (hats[1:-1] > hats[:-2]) & (hats[1:-1] >= hats[2:]) & (hats[1:-1] > 1.0)
    strokes, last, gap = [], -math.inf, 0.05 * FRAME_RATE
    for i in np.nonzero(is_peak)[0] + 1:
        if i - last >= gap:
            strokes.append(i)
            last = float(i)
    if len(strokes) < 2:
        return 0.0
    return (len(strokes) - 1) * FRAME_RATE / (strokes[-1] - strokes[0])


def _is_backbeat(contrast: float, regularity: float, support: float) -> bool:
    """Whether the noise band's period is a backbeat that sets the beat.

    ``support``: how periodic all the onsets are at its beat, relative to the first guess. A
    marked backbeat (snare on 2 and 4, nothing on the beats between) may be irregular (breaks)
    and only half supported; a faint one must be regular and well supported.
    """
    marked = contrast >= MARKED_CONTRAST and regularity >= 0.6 and support >= 0.5
    faint = contrast >= BACKBEAT_CONTRAST and regularity >= BACKBEAT_REGULARITY and support >= 0.7
    return marked or faint


def _nearest_octave(beat: float, guess: float) -> float:
    """The octave of ``beat`` (a period, frames) nearest ``guess`` no faster than
    :data:`FASTEST_BEAT_BPM`, as the first guess is: a first guess between two octaves (a
    dotted rhythm at 162 between 109 and 218, a real hip-hop clip) must not lift the beat past
    what the first guess may be."""
    fastest = 60 * FRAME_RATE / FASTEST_BEAT_BPM  # the shortest period allowed
    k = round(math.log2(guess / beat))
    while beat * 2.0**k < fastest:
        k += 1
    return beat * 2.0**k


def _octave(period: float, target: float) -> int | None:
    """k such that ``period · 2^k`` is within 6 % of ``target`` (k in −1…1), else None."""
    for k in (-1, 0, 1):
        if abs(period * 2.0**k / target - 1) < 0.06:
            return k
    return None


def _estimate(envelope: np.ndarray, noise: np.ndarray | None, hats: np.ndarray | None) -> Tempo:
    max_lag = int(60 * FRAME_RATE / MIN_BPM) + 1
    acf = autocorrelation(envelope, 4 * max_lag + 4)
    period = _first_guess(acf)
    if period is None:
        return no_tempo("no periodicity in the onsets")
    pulse = float(np.mean([_at(acf, k * period) for k in (1, 2, 3, 4)]))
    if pulse < MIN_PULSE:  # no beat to call: the first guess, weakly
        weak = no_tempo("no steady beat: the onsets do not repeat at any tempo")
        return dataclasses.replace(
            weak, estimate=60.0 * FRAME_RATE / period, estimate_confidence=max(pulse, 0.0)
        )
    half_beat, contrast, regularity = _backbeat(noise)
    confirmed = half_beat is not None and _is_backbeat(
        contrast, regularity, _at(acf, half_beat) / max(_at(acf, period), 1e-9)
    )
    if confirmed and half_beat is not None:  # confirmed says half_beat is not None
        k = _octave(period, half_beat)
        # Not an octave (a dotted rhythm misled the first guess): the backbeat's octave.
        candidate = period * 2.0**k if k is not None else _nearest_octave(half_beat, period)
        confirmed = MIN_BPM <= 60 * FRAME_RATE / candidate <= MAX_BPM
        period = candidate if confirmed else period
    hats_per_beat = _hats_per_second(hats) * period / FRAME_RATE
    doubled = hats_per_beat > MAX_HATS_PER_BEAT and 120 * FRAME_RATE / period <= MAX_BPM
    period = period / 2 if doubled else period
    bpm = 60.0 * FRAME_RATE / period
    strength = float(np.clip(_at(acf, period), 0.0, 1.0))
    # Without band evidence, only "the half beat repeats clearly less than the beat" speaks for
    # this octave against the faster one, nothing against the slower one: at most 0.5. A
    # backbeat (or hats over one) that set the octave speaks against both.
    faster_margin = 1.0 - max(0.0, _at(acf, period / 2)) / max(strength, 1e-9)
    clarity = 0.5 * float(np.clip(2 * faster_margin, 0, 1))
    if confirmed or doubled:
        clarity = max(clarity, float(np.clip(2 * contrast, 0, 1)))
    confidence = float(np.sqrt(strength) * clarity)
    beats = tuple(float(b) for b in _track_beats(envelope, period))
    return Tempo(bpm, confidence, bpm / 2, bpm * 2, beats, None, bpm, confidence)


def _track_beats(envelope: np.ndarray, period: float) -> np.ndarray:
    """Beat times (s): the grid phase that best fits the onsets, then each beat followed to the
    strongest onset within ±10 % of a period of where the last one predicts it.

    Beats are placed only between the first and last strong onset (none over an intro of pads).
    """
    n = len(envelope)
    strong = np.nonzero(envelope > 2.0)[0]
    if len(strong) == 0:
        return np.zeros(0)
    first, last = int(strong[0]), int(strong[-1])
    phases = np.arange(int(period) + 1)
    positions = np.arange(first, last + 1, period)
    fits = [envelope[np.minimum(np.rint(positions + p).astype(int), n - 1)].sum() for p in phases]
    beat = float(first + phases[int(np.argmax(fits))])
    while beat - period >= first - 0.1 * period:
        beat -= period
    beats, reach = [], max(1, int(0.1 * period))
    weights = np.exp(-0.5 * (np.arange(-reach, reach + 1) / (0.5 * reach)) ** 2)
    while beat <= last + 0.1 * period:
        centre = round(beat)
        lo, hi = max(0, centre - reach), min(n, centre + reach + 1)
        window = envelope[lo:hi] * weights[lo - (centre - reach) : hi - (centre - reach)]
        if len(window) and window.max() > 1.0:
            beat = 0.5 * beat + 0.5 * (lo + int(np.argmax(window)))
        beats.append(beat)
        beat += period
    return np.array(beats) / FRAME_RATE + ONSET_LATENCY_S


def estimate_tempo(mono: np.ndarray, sample_rate: int) -> Tempo:
    """Tempo of a whole mono signal at once."""
    analyzer = TempoAnalyzer(sample_rate)
    analyzer.add(mono)
    return analyzer.result()
