"""EBU Tech 3341 and 3342 test signals, built from their recipes at any sample rate.

Each function returns ``(samples, expected)`` where ``samples`` is float32 ``(channels, n)``.
Levels are dBFS of a sine's peak; a stereo 1 kHz sine at −23 dBFS reads −23 LUFS by definition.
"""

from __future__ import annotations

import numpy as np


def sine(seconds: float, rate: int, dbfs: float, freq: float = 1000.0, phase: float = 0.0):
    t = np.arange(round(seconds * rate)) / rate
    return (10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def stereo(mono: np.ndarray) -> np.ndarray:
    return np.stack([mono, mono])


def sequence(rate: int, parts: list[tuple[float, float | None]]) -> np.ndarray:
    """Stereo 1 kHz sine segments ``(seconds, dBFS or None for silence)``, phase-continuous."""
    pieces = []
    start = 0
    for seconds, level in parts:
        n = round(seconds * rate)
        t = (start + np.arange(n)) / rate
        if level is None:
            pieces.append(np.zeros(n, dtype=np.float32))
        else:
            pieces.append((10 ** (level / 20) * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
        start += n
    return stereo(np.concatenate(pieces))


# Tech 3341, integrated loudness: (case, segments, expected LUFS)
INTEGRATED_CASES = [
    (1, [(20, -23.0)], -23.0),
    (2, [(20, -33.0)], -33.0),
    (3, [(10, -36.0), (60, -23.0), (10, -36.0)], -23.0),
    (4, [(10, -72.0), (10, -36.0), (60, -23.0), (10, -36.0), (10, -72.0)], -23.0),
    (5, [(20, -26.0), (20.1, -20.0), (20, -26.0)], -23.0),
]


def case_6_five_channels(rate: int) -> tuple[np.ndarray, tuple[str, ...], float]:
    """Tech 3341 case 6: L, R at −28 dBFS, C at −24, Ls, Rs at −30 (5.0) → −23.0 LUFS."""
    front = sine(20, rate, -28.0)
    centre = sine(20, rate, -24.0)
    surround = sine(20, rate, -30.0)
    samples = np.stack([front, front, centre, surround, surround])
    return samples, ("FL", "FR", "FC", "SL", "SR"), -23.0


def case_9_short_term(rate: int) -> np.ndarray:
    """Tech 3341 case 9: 20 × (1.34 s at −20 dBFS, 1.66 s at −30 dBFS) → short-term −23.0."""
    return sequence(rate, [(1.34, -20.0), (1.66, -30.0)] * 20)


def case_10_short_term_bursts(rate: int, offsets: list[float]) -> np.ndarray:
    """Tech 3341 case 10: 3 s bursts at −23 dBFS among silence → max short-term −23.0."""
    parts: list[tuple[float, float | None]] = []
    for offset in offsets:
        parts += [(offset, None), (3.0, -23.0)]
    return sequence(rate, [*parts, (1.0, None)])


def case_12_momentary(rate: int) -> np.ndarray:
    """Tech 3341 case 12: 20 × (0.18 s at −20 dBFS, 0.22 s at −30 dBFS) → momentary −23.0."""
    return sequence(rate, [(0.18, -20.0), (0.22, -30.0)] * 20)


def case_13_momentary_bursts(rate: int, offsets: list[float]) -> np.ndarray:
    """Tech 3341 case 13: 0.4 s bursts at −23 dBFS among silence → max momentary −23.0.

    Offsets not on a 100 ms grid are the trap: a meter stepping 100 ms sees part of a burst.
    """
    parts: list[tuple[float, float | None]] = []
    for offset in offsets:
        parts += [(offset, None), (0.4, -23.0)]
    return sequence(rate, [*parts, (1.0, None)])


# Tech 3342, loudness range: (case, segments, expected LU)
RANGE_CASES = [
    (1, [(20, -20.0), (20, -30.0)], 10.0),
    (2, [(20, -20.0), (20, -15.0)], 5.0),
    (3, [(20, -40.0), (20, -20.0)], 20.0),
    (4, [(20, -50.0), (20, -35.0), (20, -20.0), (20, -35.0), (20, -50.0)], 15.0),
]


def true_peak_sine(rate: int, divisor: int, phase_deg: float, dbtp: float) -> np.ndarray:
    """A stereo sine at ``rate / divisor`` whose crest is ``dbtp`` but whose samples,
    phased ``phase_deg``, may all fall below it (Tech 3341 cases 15–18 by construction).

    It fades in and out over 50 ms: a sine switched on abruptly really does overshoot between
    samples near the switch (Gibbs), which is not what these cases measure.
    """
    n = rate  # one second
    k = np.arange(n)
    amplitude = 10 ** (dbtp / 20)
    x = amplitude * np.sin(2 * np.pi * k / divisor + np.radians(phase_deg))
    ramp = round(0.05 * rate)
    fade = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    x[:ramp] *= fade
    x[-ramp:] *= fade[::-1]
    return stereo(x.astype(np.float32))
