"""The field's libraries as oracles: essentia and pyloudnorm, called the way their docs say.

Each wrapper takes the samples our engine takes — float32 ``(channels, n)`` at ``rate`` Hz, or a
mono ``(n,)`` array — so a test hands the *same PCM* to ours and to the oracle. What each oracle
is known to do differently from BS.1770 / EBU Tech 3341–3342 (measured in
``tests/unit/audio/test_oracles.py``, published in BENCHMARKS.md):

* pyloudnorm 0.2's default ``K-weighting`` is an approximation of BS.1770's shelf (1500 Hz,
  Q 0.707 instead of 1681.97 Hz, Q 0.7072): everything reads ≈0.04 LU low. Its ``DeMan``
  filter class is BS.1770's exact filter. Its loudness range appends 1.5 s of silence and
  steps 90 ms, so a steady tone reads ≈1 LU instead of 0.
* essentia's ``LoudnessEBUR128`` attenuates low frequencies more than BS.1770's high-pass
  (−0.7 dB at 50 Hz, −2.7 dB at 30 Hz at 48 kHz), so bass-heavy music reads 0.1–0.2 LU low;
  its momentary and short-term loudness step 100 ms by default, which misses part of a burst
  that is not on that grid (Tech 3341 case 13). It takes stereo only.
* essentia's ``TruePeakDetector`` oversamples 4× at every rate (libresample, ``quality`` 1;
  BS.1770 asks 2× from 96 kHz, none from 192 kHz) and returns the linear magnitude of the
  oversampled signal (4n − 1 points) — its peak list holds only points over its threshold
  (−0.0002 dB), so the true peak is the maximum of that output. A component at exactly
  Nyquist vanishes in its resampler (reads −91 dB where the samples say −6).
* essentia's ``RhythmExtractor2013`` expects 44.1 kHz.

This module imports essentia and pyloudnorm (the ``dev`` extra), never librosa (``bench``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import freqz, lfilter

#: BS.1770-4 Table 1 and 2: the K-weighting filter at 48 kHz, as published (not derived).
BS1770_SHELF = (
    [1.53512485958697, -2.69169618940638, 1.19839281085285],
    [1.0, -1.69065929318241, 0.73248077421585],
)
BS1770_HIGHPASS = ([1.0, -2.0, 1.0], [1.0, -1.99004745483398, 0.99007225036621])

#: essentia's spelling of the twelve tonics → ours (``audio.key.TONICS``).
_ENHARMONIC = {"Db": "C#", "D#": "Eb", "Gb": "F#", "G#": "Ab", "A#": "Bb"}


@dataclass(frozen=True)
class EssentiaLoudness:
    integrated_lufs: float
    loudness_range_lu: float
    momentary_lufs: np.ndarray  # every ``hop_s``
    short_term_lufs: np.ndarray


def _essentia():
    import essentia

    essentia.log.infoActive = False  # it prints an INFO line per algorithm otherwise
    import essentia.standard as es

    return es


def _channels(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float32)
    return samples[None, :] if samples.ndim == 1 else samples


def essentia_loudness(samples: np.ndarray, rate: int, hop_s: float = 0.1) -> EssentiaLoudness:
    """essentia ``LoudnessEBUR128``. Mono is given as left only (BS.1770's one-channel sum)."""
    x = _channels(samples)
    if x.shape[0] == 1:
        x = np.vstack([x, np.zeros_like(x)])
    if x.shape[0] != 2:
        raise ValueError("essentia's LoudnessEBUR128 measures stereo only")
    meter = _essentia().LoudnessEBUR128(sampleRate=rate, hopSize=hop_s)
    momentary, short_term, integrated, lra = meter(np.ascontiguousarray(x.T))
    return EssentiaLoudness(float(integrated), float(lra), momentary, short_term)


def _pyloudnorm_meter(rate: int, exact_filter: bool):
    import pyloudnorm

    return pyloudnorm.Meter(rate, filter_class="DeMan" if exact_filter else "K-weighting")


def pyloudnorm_integrated(samples: np.ndarray, rate: int, exact_filter: bool = False) -> float:
    """pyloudnorm's integrated loudness (``exact_filter``: its ``DeMan`` class, BS.1770's own
    filter; otherwise its default, as users call it)."""
    meter = _pyloudnorm_meter(rate, exact_filter)
    return float(meter.integrated_loudness(_channels(samples).T.astype(np.float64)))


def pyloudnorm_range(samples: np.ndarray, rate: int) -> float:
    """pyloudnorm's loudness range (default filter; 3 s blocks every 90 ms, 1.5 s of silence
    appended)."""
    meter = _pyloudnorm_meter(rate, exact_filter=False)
    return float(meter.loudness_range(_channels(samples).T.astype(np.float64)))


def essentia_true_peak_dbtp(samples: np.ndarray, rate: int) -> float:
    """essentia ``TruePeakDetector`` (BS.1770-4 flow, 4× oversampling): the loudest channel."""
    detector = _essentia().TruePeakDetector(sampleRate=rate, version=4)
    peak = max(float(detector(np.ascontiguousarray(ch))[1].max()) for ch in _channels(samples))
    return 20 * np.log10(peak) if peak > 0 else float("-inf")


def essentia_tempo(mono: np.ndarray, rate: int) -> float:
    """essentia ``RhythmExtractor2013`` (multifeature), BPM."""
    if rate != 44100:
        raise ValueError("RhythmExtractor2013 works at 44.1 kHz only")
    extractor = _essentia().RhythmExtractor2013(method="multifeature")
    return float(extractor(np.ascontiguousarray(mono, dtype=np.float32))[0])


def essentia_key(mono: np.ndarray, rate: int, profile: str = "bgate") -> tuple[str, str]:
    """essentia ``KeyExtractor``: ``(tonic, scale)`` spelled as :data:`audio.key.TONICS`."""
    extractor = _essentia().KeyExtractor(sampleRate=rate, profileType=profile)
    tonic, scale, _strength = extractor(np.ascontiguousarray(mono, dtype=np.float32))
    return _ENHARMONIC.get(tonic, tonic), scale


def essentia_decode(path) -> tuple[np.ndarray, int]:
    """essentia's own decoder (``AudioLoader``): ``(channels, n)`` float32 and the rate."""
    audio, rate, *_ = _essentia().AudioLoader(filename=str(path))()
    return np.ascontiguousarray(audio.T), int(rate)


def bs1770_tone_lufs(freq: float, amplitude: float, channels: int = 2) -> float:
    """Loudness of a steady sine of peak ``amplitude`` on ``channels`` front channels, from
    BS.1770's *published* 48 kHz filter: the truth for a tone, independent of any meter."""
    _, shelf = freqz(*BS1770_SHELF, worN=[freq], fs=48000)
    _, highpass = freqz(*BS1770_HIGHPASS, worN=[freq], fs=48000)
    power = abs(shelf[0] * highpass[0]) ** 2 * amplitude**2 / 2
    return float(-0.691 + 10 * np.log10(channels * power))


def bs1770_white_noise_lufs(samples: np.ndarray) -> float:
    """Expected loudness of white noise at 48 kHz: each channel's mean square times the power
    gain of BS.1770's *published* filter for a white spectrum (the energy of its impulse
    response). Exact in expectation; a few seconds of noise land within ~0.005 LU."""
    impulse = np.zeros(48000)
    impulse[0] = 1.0
    response = lfilter(*BS1770_HIGHPASS, lfilter(*BS1770_SHELF, impulse))
    power = sum(float(np.mean(np.square(ch, dtype=np.float64))) for ch in _channels(samples))
    return float(-0.691 + 10 * np.log10(power * np.sum(response**2)))
