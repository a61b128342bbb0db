"""A second synthesizer, written apart from ``music.py``: styles, drums and timbres it lacks.

Nothing is shared with ``music.py`` but the note names. Drums here are an 808-style kick (a
pitch sweep with a click, saturated), a snare of band-passed noise over two drum-head modes, a
clap of three bursts, hats and a ride of six detuned square waves (the 808 "metal"), high-passed.
Pitched parts are Karplus–Strong plucks (guitar, bass), a detuned-saw pad with a slow attack, an
FM electric piano and a sine sub bass, mixed at levels drawn per track. Each style plays its own
idiom (see :data:`STYLES`), with its own tempo range, so every track knows, by construction:

- its tempo — the quarter note, the tempo a DJ counts: drum and bass is 174, not 87. Trap is
  counted at its notated tempo (140, with the snare on beat 3 of the bar, hats in 16ths and
  triplets), not its half-time feel (70): that is the number producers set, stores and DJ
  software list trap at (130–150), and the one its hats run in 16ths of;
- its beat times (quarter notes, unswung, from where the drums come in);
- its key (tonic and scale): chords from idiomatic progressions of that key, bass on the roots,
  a melody leaning on chord tones that ends its phrases on the tonic.

Also here: the signals without a tempo or key, by construction (pads, speech-like sound).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, lfilter, sosfilt

TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
# Progressions (scale degrees 0–6, one chord a bar; "V" in minor is the major dominant). Left
# out, as in ``music.py``: loops that are the relative major's own in disguise (i–iv–VII–III is
# vi–ii–V–I), which nobody could call minor without hearing where the song ends.
_PROGRESSIONS = {
    "major": ((0, 4, 5, 3), (0, 3, 4, 3), (0, 5, 3, 4), (0, 2, 3, 4), (0, 3, 0, 4)),
    "minor": ((0, 3, 4, 0), (0, 6, 5, "V"), (0, 5, 3, "V"), (0, 5, 3, 4), (0, 3, "V", 0)),
}
#: Style → (lowest, highest) BPM.
STYLES = {
    "dnb": (170.0, 180.0),
    "trap": (130.0, 150.0),
    "punk": (160.0, 200.0),
    "swing": (120.0, 180.0),
    "waltz": (90.0, 180.0),
    "house": (125.0, 135.0),
    "ballad": (60.0, 70.0),
    "techno": (140.0, 150.0),
    "intro": (80.0, 160.0),
}


@dataclass(frozen=True)
class StyleTrack:
    samples: np.ndarray  # (2, n) float32
    sample_rate: int
    bpm: float
    tonic: str
    scale: str
    style: str
    beats: tuple[float, ...]  # seconds of the true quarter notes while the drums play
    seed: int


def _hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


class _Bus:
    def __init__(self, seconds: float, rate: int) -> None:
        self.rate = rate
        self.out = np.zeros((2, round(seconds * rate)))

    def put(self, at: float, sound: np.ndarray, gain: float, pan: float = 0.0) -> None:
        i = round(at * self.rate)
        if i >= self.out.shape[1] or i < 0:
            return
        n = min(len(sound), self.out.shape[1] - i)
        self.out[0, i : i + n] += gain * (1 - pan) / 2 * sound[:n]
        self.out[1, i : i + n] += gain * (1 + pan) / 2 * sound[:n]


class _Kit:
    """Drum sounds, drawn once per track (a kit), varied a little per hit."""

    def __init__(self, rate: int, rng: np.random.Generator) -> None:
        self.rate, self.rng = rate, rng
        self.kick_top, self.kick_low = rng.uniform(160, 260), rng.uniform(42, 60)
        self.kick_decay = rng.uniform(0.15, 0.5)
        self.snare_modes = rng.uniform(170, 220), rng.uniform(300, 360)
        self.metal = np.array([205.3, 304.4, 369.6, 522.7, 540.0, 800.0]) * rng.uniform(0.9, 1.1)
        nyquist = rate / 2
        self.band = butter(
            2, [1200 / nyquist, min(4800, 0.9 * nyquist) / nyquist], "band", output="sos"
        )
        self.high = butter(2, min(3000, 0.5 * nyquist) / nyquist, "high", output="sos")

    def _t(self, seconds: float) -> np.ndarray:
        return np.arange(round(seconds * self.rate)) / self.rate

    def kick(self) -> np.ndarray:
        t = self._t(self.kick_decay * 2)
        freq = self.kick_low + (self.kick_top - self.kick_low) * np.exp(-t / 0.03)
        body = np.sin(2 * np.pi * np.cumsum(freq) / self.rate) * np.exp(-t / self.kick_decay)
        click = self.rng.normal(0, 1, len(t)) * np.exp(-t / 0.002)
        return np.tanh(2.0 * (body + 0.3 * click)) / np.tanh(2.0)

    def snare(self) -> np.ndarray:
        t = self._t(0.25)
        noise = sosfilt(self.band, self.rng.normal(0, 1, len(t))) * np.exp(-t / 0.06)
        head = sum(np.sin(2 * np.pi * f * t) for f in self.snare_modes) * np.exp(-t / 0.04)
        return 1.5 * noise + 0.5 * head

    def clap(self) -> np.ndarray:
        t = self._t(0.2)
        env = sum(np.exp(-np.maximum(t - d, 0) / 0.006) * (t >= d) for d in (0, 0.011, 0.022))
        env = env + 0.5 * np.exp(-np.maximum(t - 0.033, 0) / 0.05) * (t >= 0.033)
        return 1.5 * sosfilt(self.band, self.rng.normal(0, 1, len(t))) * env

    def hat(self, open_hat: bool = False, ride: bool = False) -> np.ndarray:
        t = self._t(0.5 if ride else 0.25 if open_hat else 0.06)
        metal = sum(np.sign(np.sin(2 * np.pi * f * t + self.rng.uniform(0, 6))) for f in self.metal)
        decay = 0.25 if ride else 0.08 if open_hat else 0.015
        return sosfilt(self.high, metal / 6) * np.exp(-t / decay)


def _pluck(freq: float, seconds: float, rate: int, rng, bright: float = 0.5) -> np.ndarray:
    """Karplus–Strong string: a noise burst through a damped comb (a recursive filter)."""
    period = max(2, round(rate / freq))
    n = round(seconds * rate)
    burst = np.zeros(n)
    burst[:period] = rng.uniform(-1, 1, min(period, n))
    a = np.zeros(period + 2)
    a[0], a[period], a[period + 1] = 1.0, -0.996 * bright, -0.996 * (1 - bright)
    return lfilter([1.0], a, burst)


def _pad(freq: float, seconds: float, rate: int, rng, attack: float = 0.8) -> np.ndarray:
    """Three detuned band-limited saws, slow attack and release: a sustained chord voice."""
    t = np.arange(round(seconds * rate)) / rate
    wave = np.zeros_like(t)
    for detune in (-0.006, 0.0, 0.007):
        f = freq * (1 + detune)
        phase = rng.uniform(0, 2 * np.pi)
        for h in range(1, int(0.45 * rate / f) + 1)[:8]:
            wave += np.sin(2 * np.pi * h * f * t + h * phase) / h
    env = np.minimum(1.0, t / attack) * np.minimum(1.0, (t[-1] - t + 1e-3) / min(attack, 0.5))
    return wave * env / 3


def _epiano(freq: float, seconds: float, rate: int, rng) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    index = rng.uniform(0.5, 1.5) * np.exp(-t / 0.3)
    wave = np.sin(2 * np.pi * freq * t + index * np.sin(2 * np.pi * freq * t))
    release = np.minimum(1.0, (t[-1] - t) / 0.02 + 1e-3)
    return wave * np.exp(-t / rng.uniform(0.5, 1.2)) * np.minimum(1.0, t / 0.004) * release


def _sub(freq: float, seconds: float, rate: int) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    env = np.minimum(1.0, t / 0.01) * np.minimum(1.0, (t[-1] - t) / 0.03 + 1e-3)
    return np.sin(2 * np.pi * freq * t) * env


def _chord(degree, scale: str) -> list[int]:
    if degree == "V":
        return [7, 11, 14]
    steps = _SCALES[scale]
    return [steps[(degree + i) % 7] + 12 * ((degree + i) // 7) for i in (0, 2, 4)]


# Drum patterns: per bar, (instrument, position in beats). "S" snare, "C" clap, "K" kick,
# "h" closed hat, "o" open hat, "r" ride.
def _drums(style: str, bar: int, meter: int, rng) -> list[tuple[str, float]]:
    hits: list[tuple[str, float]] = []
    if style == "dnb":
        half_time = bar % 8 >= 6  # the last two bars of eight: snare on 3 only
        hits += [("K", 0.0), ("K", 2.5)] + ([("S", 2.0)] if half_time else [("S", 1), ("S", 3)])
        hits += [("h", i / 2) for i in range(8)] + [("S", 3.75)] * int(rng.random() < 0.3)
    elif style == "trap":
        hits += [("K", 0.0), ("K", 0.75), ("C", 2.0)] + [("K", 3.5)] * int(rng.random() < 0.5)
        for beat in range(4):
            triplet = rng.random() < 0.25
            hits += [("h", beat + i / (3 if triplet else 4)) for i in range(3 if triplet else 4)]
    elif style == "punk":
        hits += [("K", 0.0), ("K", 2.0), ("S", 1.0), ("S", 3.0), ("K", 2.5)]
        hits += [("r" if bar % 4 == 0 else "h", i / 2) for i in range(8)]
    elif style == "swing":
        hits += [("K", 0.0), ("K", 2.0)] * int(rng.random() < 0.5) + [("h", 1.0), ("h", 3.0)]
        hits += [("r", float(b)) for b in range(4)] + [("r", 1 + 2 / 3), ("r", 3 + 2 / 3)]
        hits += [("S", 3 + 2 / 3)] * int(rng.random() < 0.3)
    elif style == "waltz":
        hits += [("K", 0.0), ("S", 1.0), ("S", 2.0), ("h", 0.0), ("h", 1.0), ("h", 2.0)]
    elif style in ("house", "intro"):
        hits += [("K", float(b)) for b in range(4)] + [("C", 1.0), ("C", 3.0)]
        hits += [("o", b + 0.5) for b in range(4)] + [("h", i / 4) for i in range(16)]
    elif style == "ballad":
        hits += [("K", 0.0), ("K", 2.5), ("S", 1.0), ("S", 3.0)]
        hits += [("h", i / 2) for i in range(8)]
    elif style == "techno":
        hits += [("K", float(b)) for b in range(4)] + [("o", b + 0.5) for b in range(4)]
        hits += [("C", 1.0), ("C", 3.0)] * int(bar % 2 == 1)
    return [(name, at) for name, at in hits if at < meter]


_DRUM_GAIN = {"K": 0.9, "S": 0.5, "C": 0.45, "h": 0.12, "o": 0.15, "r": 0.12}


def synthesize(
    style: str,
    seed: int,
    seconds: float = 16.0,
    rate: int = 11025,
    bpm: float | None = None,
    tonic: str | None = None,
    scale: str | None = None,
    drums_only: bool = False,
) -> StyleTrack:
    """One track of ``style`` (a key of :data:`STYLES`); tempo and key drawn from ``seed``.

    ``drums_only`` mutes every pitched part (the same drums, no key).
    """
    rng = np.random.default_rng(seed)
    low, high = STYLES[style]
    bpm = float(round(rng.uniform(low, high), 1)) if bpm is None else bpm
    tonic = tonic or TONICS[rng.integers(12)]
    scale = scale or ("major", "minor")[rng.integers(2)]
    meter = 3 if style == "waltz" else 4
    beat = 60.0 / bpm
    bar_s = meter * beat
    intro = 8.0 if style == "intro" else 0.0
    start = intro + (bar_s * rng.uniform(0, 0.5) if style != "intro" else 0.0)
    bus, kit = _Bus(seconds, rate), _Kit(rate, rng)
    steps = _SCALES[scale]
    root = 48 + TONICS.index(tonic)  # G2 … F#3 for the bass, chords an octave up
    root -= 12 * (root > 54)
    progression = _PROGRESSIONS[scale][rng.integers(5)]
    swing = style == "swing" or (style == "ballad" and rng.random() < 0.3)
    levels = {p: rng.uniform(0.6, 1.4) for p in ("drums", "chords", "bass", "lead")}
    if drums_only:
        levels.update(chords=0.0, bass=0.0, lead=0.0)

    def swung(position: float) -> float:
        frac = position % 1
        return position - frac + (2 / 3 if swing and abs(frac - 0.5) < 1e-9 else frac)

    # Tempo-less intro: sustained pads over the first chords, no onsets.
    if intro and not drums_only:
        for i, at in enumerate(np.arange(0.0, intro, 2.0)):
            for note in _chord(progression[i % 4], scale):
                tone = _pad(_hz(root + 12 + note), 2.6, rate, rng, attack=1.0)
                bus.put(at, tone, 0.12 * levels["chords"])
    bars = int((seconds - start) / bar_s) + 1
    for bar in range(bars):
        at = start + bar * bar_s
        chord = _chord(progression[bar % 4], scale)
        chord_at = [at + beat * b for b in range(meter)]
        # Chords: the style's instrument.
        if style == "punk":
            for e in range(meter * 2):  # palm-muted power chords in eighths (root, fifth, octave)
                for note in (chord[0], chord[0] + 7, chord[0] + 12):
                    pluck = np.tanh(4 * _pluck(_hz(root + 12 + note), beat / 2, rate, rng, 0.6))
                    bus.put(at + e * beat / 2, pluck, 0.06 * levels["chords"], pan=-0.4)
            for note in chord:  # the third, from an organ-ish pad under the guitars
                tone = _pad(_hz(root + 24 + note), bar_s, rate, rng, 0.05)
                bus.put(at, tone, 0.05 * levels["chords"])
        elif style == "waltz":
            for b in (1, 2):
                for note in chord:
                    tone = _epiano(_hz(root + 12 + note), beat * 0.9, rate, rng)
                    bus.put(chord_at[b], tone, 0.1 * levels["chords"], pan=0.3)
        elif style in ("ballad", "swing"):
            for i, e in enumerate(np.arange(0, meter, 0.5 if style == "ballad" else 1.0)):
                note = chord[i % 3] + 12 * (i % 6 >= 3)
                length = beat * (0.5 if style == "ballad" else 0.9)
                tone = _epiano(_hz(root + 12 + note), length, rate, rng)
                bus.put(at + swung(e) * beat, tone, 0.12 * levels["chords"], pan=0.2)
        else:
            for note in chord:
                tone = _pad(_hz(root + 12 + note), bar_s, rate, rng, attack=rng.uniform(0.02, 0.3))
                bus.put(at, tone, 0.08 * levels["chords"], pan=rng.uniform(-0.5, 0.5))
        # Bass on the root.
        bass_hz = _hz(root + chord[0] % 12)
        if style == "swing":  # walking: root, third, fifth, approach
            for b, note in enumerate((chord[0], chord[1], chord[2], chord[2] + 2)):
                tone = _pluck(_hz(root + note % 12), beat, rate, rng, 0.5)
                bus.put(at + b * beat, tone, 0.35 * levels["bass"])
        elif style in ("dnb", "trap", "techno"):
            bus.put(at, _sub(bass_hz, bar_s * 0.95, rate), 0.35 * levels["bass"])
        else:
            for b in range(0, meter, 1 if style in ("punk", "house", "intro") else 2):
                tone = _pluck(bass_hz, beat * 0.95, rate, rng, 0.5)
                bus.put(at + b * beat, tone, 0.4 * levels["bass"])
        # Lead: quarters and eighths on chord tones and scale steps; ends each phrase on the tonic.
        position = 0.0
        while position < meter - 1e-9:
            length = float(rng.choice([0.5, 1.0, 1.0, 1.5]))
            length = min(length, meter - position)
            last = bar % 4 == 3 and position + length >= meter - 1e-9
            if last:
                note = 12
            elif rng.random() < 0.65:
                note = chord[rng.integers(3)] % 12
            else:
                note = steps[rng.integers(7)]
            if rng.random() < 0.85:
                tone = _pluck(_hz(root + 24 + note), length * beat, rate, rng, 0.5)
                bus.put(at + swung(position) * beat, tone, 0.12 * levels["lead"], pan=0.2)
            position += length
        # Drums.
        for name, position in _drums(style, bar, meter, rng):
            if name == "K":
                sound = kit.kick()
            elif name in ("S", "C"):
                sound = kit.snare() if name == "S" else kit.clap()
            else:
                sound = kit.hat(open_hat=name == "o", ride=name == "r")
            gain = _DRUM_GAIN[name] * levels["drums"] * rng.uniform(0.85, 1.0)
            bus.put(at + swung(position) * beat, sound, gain, pan=-0.2 if name in "hor" else 0.0)
    samples = bus.out
    samples *= 10 ** (-1 / 20) / max(1e-9, np.abs(samples).max())
    beats = tuple(float(b) for b in np.arange(start, seconds, beat))
    return StyleTrack(samples.astype(np.float32), rate, bpm, tonic, scale, style, beats, seed)


#: Seeds of the tuning sets (5 tracks a style from each, seeds first + 1000·style + i). The
#: octave rules of ``audio/tempo.py``, its beat latency and null threshold, and the chroma edges
#: and null threshold of ``audio/key.py`` (2026-11-30) were set looking at 500 000…; 9 100 000…
#: was first meant as the held-apart set, was looked at once (tempo Accuracy1 0.889: drum and
#: bass and one trap track halved), then the backbeat and hat rules were revised on it, so it is
#: a tuning set now.
TUNING_FIRST_SEEDS = (500_000, 9_100_000)
#: Held-apart: drawn after all tuning, never looked at before the figures were frozen; the
#: floors the tests assert and BENCHMARKS publishes rest on these.
HELD_APART_FIRST_SEED = 9_300_000
#: A second held-apart set, first scored in the final run of ``tests.support.audio.accuracy``
#: (after a last change of the key's chroma edges, made on tuning seeds: see ``audio/key.py``).
SECOND_HELD_APART_FIRST_SEED = 9_500_000


def corpus(first_seed: int, per_style: int, seconds: float = 16.0, rate: int = 11025):
    """``per_style`` tracks of each style, seeds ``first_seed`` onwards (style by style)."""
    tracks = []
    for s, style in enumerate(STYLES):
        for i in range(per_style):
            tracks.append(synthesize(style, first_seed + s * 1000 + i, seconds, rate))
    return tracks


def pads(seconds: float = 16.0, rate: int = 11025, seed: int = 0) -> np.ndarray:
    """Sustained chords, each swelling in over 2 s and crossfading: harmony without onsets."""
    rng = np.random.default_rng(seed)
    bus = _Bus(seconds, rate)
    for i, at in enumerate(np.arange(-1.0, seconds, 3.0)):
        for note in _chord((0, 3, 4, 0)[i % 4], "major"):
            bus.put(max(at, 0), _pad(_hz(60 + note), 4.5, rate, rng, attack=2.0), 0.2)
    return bus.out.mean(axis=0)


def speech_like(seconds: float = 12.0, rate: int = 11025, seed: int = 0) -> np.ndarray:
    """Speech-like sound: a glottal pulse train (100–140 Hz, pitch gliding per syllable) through
    three formant resonators (vowel formants drawn per syllable), in syllables of irregular
    length (120–330 ms, i.e. ~4–5 a second on average), with short pauses and a pause between
    phrases — the onset rhythm of speech, not of a beat."""
    rng = np.random.default_rng(seed)
    out = np.zeros(round(seconds * rate))
    vowels = (
        (730, 1090, 2440),
        (270, 2290, 3010),
        (530, 1840, 2480),
        (570, 840, 2410),
        (300, 870, 2240),
        (660, 1720, 2410),
    )
    t = rng.uniform(0.1, 0.3)
    while t < seconds - 0.4:
        length = rng.uniform(0.12, 0.33)
        n = round(length * rate)
        f0 = rng.uniform(100, 140) * np.linspace(1.0, rng.uniform(0.85, 1.1), n)
        phase = np.cumsum(f0) / rate
        pulses = np.diff(np.floor(phase), prepend=0.0)  # one impulse a glottal period
        voice = lfilter([1.0], [1.0, -0.95], pulses)  # glottal spectral tilt
        sound = np.zeros(n)
        for formant, width in zip(vowels[rng.integers(len(vowels))], (80, 100, 140), strict=True):
            r = np.exp(-np.pi * width / rate)
            theta = 2 * np.pi * min(formant, 0.45 * rate) / rate
            sound += lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], voice)
        envelope = np.sin(np.pi * np.arange(n) / n) ** 0.7
        i = round(t * rate)
        out[i : i + n] += sound[: len(out) - i] * envelope[: len(out) - i]
        t += (
            length + rng.uniform(0.02, 0.12) + (rng.uniform(0.3, 0.6) if rng.random() < 0.12 else 0)
        )
    return out / max(1e-9, np.abs(out).max()) * 0.5
