"""Our engine against the field's libraries: pyloudnorm and essentia (issue 14, point 4).

The same PCM goes to ours and to each oracle. Where the truth is known by construction (EBU
Tech 3341/3342 signals, a tone through BS.1770's published filter, a sine whose crest falls
between samples, music synthesized at a known tempo and key), ours is held to the truth and the
oracles are shown beside it; where it is not (synthesized music's loudness, encoded files), ours
is held to the oracles within what each one is known to deviate (see
:mod:`tests.support.audio.oracles`). Where an oracle and the EBU value disagree, ours is asserted
on the EBU value and the oracle's figure is in the message.

Seeds: nothing in ``audio/`` is tuned here. The tolerance for synthesized music against
essentia (0.25 LU) was set on probes of ``music.py`` seeds 9_100_000–9_100_002 and 9_200_000;
the tests measure other seeds: white noise 9_200_010, ``music.py`` 9_200_001–9_200_003
(loudness) and 9_300_000–9_300_009 (tempo, key), ``styles.py`` 9_500_000 + 1000 × style (tempo,
key). None of them tuned an estimator (tuning seeds: ``music.TUNING_SEEDS`` 100–147,
``styles.py`` from 500_000); ``bench/oracles.py`` uses yet others (9_400_000…, 9_600_000…).

The module skips only when essentia or pyloudnorm is not installed; when they are, any error
importing or running them fails the tests.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

_MISSING = [m for m in ("essentia", "pyloudnorm") if importlib.util.find_spec(m) is None]
if _MISSING:
    pytest.skip(
        f"{' and '.join(_MISSING)} not installed: the oracles are in the dev extra "
        "(pip install -e '.[dev]')",
        allow_module_level=True,
    )

from audio.decode import decode  # noqa: E402
from audio.key import estimate_key  # noqa: E402
from audio.loudness import LoudnessMeter, measure_loudness  # noqa: E402
from audio.tempo import estimate_tempo  # noqa: E402
from tests.support.audio import ebu_signals as ebu  # noqa: E402
from tests.support.audio import oracles, styles  # noqa: E402
from tests.support.audio.accuracy import mirex_score, within  # noqa: E402
from tests.support.audio.music import TONICS, synthesize_track  # noqa: E402
from tests.support.audio.reference import ebur128, ebur128_of_file  # noqa: E402
from tests.support.audio.signals import noise as white_noise  # noqa: E402
from tests.support.audio.signals import tone, write_audio  # noqa: E402

RATE = 48000
#: Tech 3341's tolerance for integrated loudness and Tech 3342's for LRA.
EBU_LU = 0.1
#: Two meters implementing BS.1770 with the same filter agree far closer than EBU's ±0.1:
#: only block boundaries and float rounding differ (measured ≤ 0.003 LU).
SAME_FILTER_LU = 0.02
#: pyloudnorm's default shelf (1500 Hz) reads 0.03–0.05 LU low on every signal measured.
PYLOUDNORM_DEFAULT_LU = 0.1
#: essentia's extra low-frequency attenuation costs ``music.py``'s tracks 0.07–0.15 LU (probes,
#: seeds 9_100_000–9_100_002): allowed 0.25, and the tone test pins down why. (``styles.py``'s
#: sub-bass costs more: there ours is held to BS.1770's other implementations instead.)
ESSENTIA_MUSIC_LU = 0.25


# -- loudness: EBU signals, truth by construction -----------------------------------------------


@pytest.mark.parametrize(("case", "parts", "expected"), ebu.INTEGRATED_CASES)
def test_integrated_tech3341_ours_essentia_pyloudnorm(case, parts, expected):
    samples = ebu.sequence(RATE, parts)
    ours = measure_loudness(samples, RATE).integrated_lufs
    ess = oracles.essentia_loudness(samples, RATE).integrated_lufs
    pyln = oracles.pyloudnorm_integrated(samples, RATE)
    exact = oracles.pyloudnorm_integrated(samples, RATE, exact_filter=True)
    figures = (
        f"case {case}: EBU {expected}, ours {ours:.3f}, essentia {ess:.3f}, "
        f"pyloudnorm {pyln:.3f} (exact filter {exact:.3f})"
    )
    assert ours == pytest.approx(expected, abs=EBU_LU), figures
    assert ours == pytest.approx(ess, abs=SAME_FILTER_LU), figures
    assert ours == pytest.approx(exact, abs=SAME_FILTER_LU), figures
    assert ours == pytest.approx(pyln, abs=PYLOUDNORM_DEFAULT_LU), figures


@pytest.mark.parametrize(("case", "parts", "expected"), ebu.RANGE_CASES)
def test_loudness_range_tech3342_ours_essentia_pyloudnorm(case, parts, expected):
    samples = ebu.sequence(RATE, parts)
    ours = measure_loudness(samples, RATE).loudness_range_lu
    ess = oracles.essentia_loudness(samples, RATE).loudness_range_lu
    pyln = oracles.pyloudnorm_range(samples, RATE)
    figures = f"case {case}: EBU {expected}, ours {ours:.3f}, essentia {ess:.3f}, pyln {pyln:.3f}"
    assert ours == pytest.approx(expected, abs=EBU_LU), figures
    assert ours == pytest.approx(ess, abs=EBU_LU), figures
    assert ours == pytest.approx(pyln, abs=EBU_LU), figures


def test_steady_tone_has_no_loudness_range_where_pyloudnorm_reads_one_lu():
    """A steady tone's LRA is 0 by definition. pyloudnorm appends 1.5 s of silence before
    measuring, so its last short-term windows fade and it reads ≈1 LU: ours stays on 0."""
    samples = tone(1000.0, 10.0, RATE, channels=2, amplitude=0.1)
    ours = measure_loudness(samples, RATE).loudness_range_lu
    ess = oracles.essentia_loudness(samples, RATE).loudness_range_lu
    pyln = oracles.pyloudnorm_range(samples, RATE)
    figures = f"ours {ours:.3f}, essentia {ess:.3f}, pyloudnorm {pyln:.3f}"
    assert ours == pytest.approx(0.0, abs=EBU_LU), figures
    assert ess == pytest.approx(0.0, abs=EBU_LU), figures


@pytest.mark.parametrize("freq", [30.0, 50.0, 1000.0])
def test_low_tone_on_bs1770s_published_filter_where_essentia_reads_low(freq):
    """The loudness of a tone is its power through BS.1770's published 48 kHz filter. essentia
    attenuates below ~60 Hz more (−2.7 dB at 30 Hz, −0.7 dB at 50 Hz); ours and pyloudnorm's
    exact filter are on the published response."""
    samples = tone(freq, 5.0, RATE, channels=2, amplitude=0.1)
    expected = oracles.bs1770_tone_lufs(freq, 0.1)
    ours = measure_loudness(samples, RATE).integrated_lufs
    exact = oracles.pyloudnorm_integrated(samples, RATE, exact_filter=True)
    ess = oracles.essentia_loudness(samples, RATE).integrated_lufs
    figures = f"{freq} Hz: BS.1770 {expected:.3f}, ours {ours:.3f}, essentia {ess:.3f}"
    assert ours == pytest.approx(expected, abs=SAME_FILTER_LU), figures
    assert exact == pytest.approx(expected, abs=SAME_FILTER_LU), figures


def test_white_noise_on_bs1770s_published_filter():
    """White noise's loudness is its power times the published filter's white-noise gain: ours
    and both oracles on it (pyloudnorm's default filter within its known offset)."""
    samples = white_noise(5.0, RATE, channels=2, amplitude=0.5, seed=9_200_010)
    expected = oracles.bs1770_white_noise_lufs(samples)
    ours = measure_loudness(samples, RATE).integrated_lufs
    ess = oracles.essentia_loudness(samples, RATE).integrated_lufs
    pyln = oracles.pyloudnorm_integrated(samples, RATE)
    figures = f"expected {expected:.3f}, ours {ours:.3f}, essentia {ess:.3f}, pyln {pyln:.3f}"
    assert ours == pytest.approx(expected, abs=SAME_FILTER_LU), figures
    assert ess == pytest.approx(expected, abs=SAME_FILTER_LU), figures
    assert pyln == pytest.approx(expected, abs=PYLOUDNORM_DEFAULT_LU), figures


def test_momentary_burst_off_the_100ms_grid():
    """Tech 3341 case 13's trap: 0.4 s bursts at −23 LUFS starting between 100 ms marks. Ours
    reports momentary loudness every 10 ms and catches each whole; essentia's default 100 ms
    hop reads 0.2 LU low (outside Tech 3341's ±0.1), its 10 ms hop agrees with ours."""
    samples = ebu.case_13_momentary_bursts(RATE, [0.05, 0.77, 1.13])
    meter = LoudnessMeter(RATE, 2)
    meter.add(samples)
    ours = float(meter.momentary_lufs().max())
    default_hop = float(oracles.essentia_loudness(samples, RATE).momentary_lufs.max())
    fine_hop = float(oracles.essentia_loudness(samples, RATE, hop_s=0.01).momentary_lufs.max())
    figures = f"EBU −23, ours {ours:.3f}, essentia {default_hop:.3f} (10 ms hop {fine_hop:.3f})"
    assert ours == pytest.approx(-23.0, abs=EBU_LU), figures
    assert ours == pytest.approx(fine_hop, abs=SAME_FILTER_LU), figures


# -- loudness: synthesized music and encoded files (no truth by construction) ------------------


@pytest.fixture(scope="module")
def track():
    """20 s of synthesized stereo music at 44.1 kHz (A minor, 128 BPM), held-apart seed."""
    return synthesize_track(128.0, "A", "minor", 20.0, 44100, seed=9_200_001)


def _assert_music_agrees(samples: np.ndarray, rate: int, label: str):
    """Ours against the oracles on music: pyloudnorm's exact filter within what two
    implementations of one filter differ, its default and essentia within their known
    deviations, LRA against essentia's (pyloudnorm pads silence, see the tone test)."""
    ours = measure_loudness(samples, rate)
    ess = oracles.essentia_loudness(samples, rate)
    pyln = oracles.pyloudnorm_integrated(samples, rate)
    exact = oracles.pyloudnorm_integrated(samples, rate, exact_filter=True)
    figures = (
        f"{label}: ours {ours.integrated_lufs:.3f} LRA {ours.loudness_range_lu:.3f}, "
        f"essentia {ess.integrated_lufs:.3f} LRA {ess.loudness_range_lu:.3f}, "
        f"pyloudnorm {pyln:.3f} (exact filter {exact:.3f})"
    )
    assert ours.integrated_lufs == pytest.approx(exact, abs=SAME_FILTER_LU), figures
    assert ours.integrated_lufs == pytest.approx(pyln, abs=PYLOUDNORM_DEFAULT_LU), figures
    assert ours.integrated_lufs == pytest.approx(ess.integrated_lufs, abs=ESSENTIA_MUSIC_LU)
    assert ours.loudness_range_lu == pytest.approx(ess.loudness_range_lu, abs=EBU_LU), figures
    return ours, ess


@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_encoded_file_loudness_and_true_peak_agree(tmp_path, track, fmt):
    """A real file: ours on the whole file (the analysis the service runs, decode included),
    and on the one PCM our decoder gives, ours, essentia and pyloudnorm; essentia's own decoder
    and FFmpeg's ``ebur128`` on the file as further opinions."""
    from audio.analyze import analyze_file

    path = write_audio(tmp_path / f"track.{fmt}", track.samples, 44100, fmt)
    pcm, rate = decode(path)
    ours, ess = _assert_music_agrees(pcm, rate, fmt)
    whole = analyze_file(path).loudness
    assert whole.integrated_lufs == pytest.approx(ours.integrated_lufs, abs=0.01)
    assert whole.true_peak_dbtp == pytest.approx(ours.true_peak_dbtp, abs=0.01)
    ffmpeg = ebur128_of_file(path)
    assert ours.integrated_lufs == pytest.approx(ffmpeg.integrated_lufs, abs=0.05), (
        f"ours {ours.integrated_lufs:.3f}, ffmpeg ebur128 {ffmpeg.integrated_lufs:.3f}"
    )
    # The two decoders give the same PCM: essentia measures the same from either.
    their_pcm, their_rate = oracles.essentia_decode(path)
    assert their_pcm.shape == pcm.shape
    own = oracles.essentia_loudness(their_pcm, their_rate).integrated_lufs
    assert own == pytest.approx(ess.integrated_lufs, abs=0.01)
    tp = oracles.essentia_true_peak_dbtp(pcm, rate)
    assert ours.true_peak_dbtp == pytest.approx(tp, abs=0.1), (ours.true_peak_dbtp, tp)


@pytest.mark.parametrize("seed", [9_200_002, 9_200_003])
def test_music_loudness_agrees(seed):
    """Synthesized music (kicks and bass: where essentia's low end differs), straight PCM."""
    music = synthesize_track(96.0 + seed % 10 * 20, "E", "minor", 15.0, 44100, seed=seed)
    _assert_music_agrees(music.samples, 44100, f"seed {seed}")


@pytest.mark.parametrize(("style", "seed"), [("swing", 9_503_000), ("house", 9_505_000)])
def test_sub_bass_music_on_bs1770_where_essentia_reads_low(style, seed):
    """``styles.py``'s 808 kicks and sine sub-bass can put much energy below 60 Hz, where
    essentia's filter departs from BS.1770's: it reads these two tracks 0.55 and 0.34 LU low
    (its nine styles at seeds 9_500_000 + 1000 × style: 0.18–0.55). Ours stays with
    pyloudnorm's exact filter and FFmpeg's ``ebur128`` (no truth by construction here: two
    independent implementations of BS.1770 are the reference)."""
    music = styles.synthesize(style, seed, 12.0, 44100).samples
    ours = measure_loudness(music, 44100).integrated_lufs
    exact = oracles.pyloudnorm_integrated(music, 44100, exact_filter=True)
    ffmpeg = ebur128(music, 44100).integrated_lufs
    ess = oracles.essentia_loudness(music, 44100).integrated_lufs
    figures = f"ours {ours:.3f}, pyln exact {exact:.3f}, ffmpeg {ffmpeg:.3f}, essentia {ess:.3f}"
    assert ours == pytest.approx(exact, abs=SAME_FILTER_LU), figures
    assert ours == pytest.approx(ffmpeg, abs=0.05), figures


# -- true peak ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [44100, 48000])
@pytest.mark.parametrize(("divisor", "phase"), [(4, 45.0), (6, 60.0), (8, 67.5)])
@pytest.mark.parametrize("crest", [-6.0, 3.0])
def test_true_peak_between_samples(rate, divisor, phase, crest):
    """Sines whose crest (``crest`` dBTP, +3 is over full scale) falls between samples (Tech
    3341 cases 15–18 by construction): ours and essentia both find it, within Tech 3341's
    +0.2/−0.4 dB, and agree with each other within 0.1 dB."""
    samples = ebu.true_peak_sine(rate, divisor, phase, crest)
    ours = measure_loudness(samples, rate)
    ess = oracles.essentia_true_peak_dbtp(samples, rate)
    figures = f"crest {crest}, ours {ours.true_peak_dbtp:.3f}, essentia {ess:.3f}"
    assert crest - 0.4 <= ours.true_peak_dbtp <= crest + 0.2, figures
    assert crest - 0.4 <= ess <= crest + 0.2, figures
    assert ours.true_peak_dbtp == pytest.approx(ess, abs=0.1), figures
    if divisor == 4:  # the samples sit 3 dB under the crest: the inter-sample peak is real
        assert ours.sample_peak_dbfs < crest - 2.5


# -- tempo and key -----------------------------------------------------------------------------

#: Two sets of known tempo and key at 44.1 kHz (RhythmExtractor2013's rate), on seeds chosen
#: for this module after every estimator was tuned (none of them tuned anything):
#: - ``music.py``: 10 tracks of 12 s, one tempo in each tenth of 70–180 BPM, keys drawn from all
#:   24, seeds 9_300_000–9_300_009;
#: - ``styles.py`` (the independent generator): one 16 s track of each style (drum and bass,
#:   trap, punk, swing, waltz, house, ballad, techno, tempo-less intro), seeds 9_500_000 +
#:   1000 × style (its tuning seeds start at 500_000, its held-apart ones at 9_100_000).
MUSIC_SEED, MUSIC_COUNT, MUSIC_SECONDS = 9_300_000, 10, 12.0
STYLES_SEED, STYLES_SECONDS = 9_500_000, 16.0


@pytest.fixture(scope="module")
def known_tracks() -> dict[str, list]:
    rng = np.random.default_rng(MUSIC_SEED)
    edges = np.linspace(70, 180, MUSIC_COUNT + 1)
    tempi = rng.uniform(edges[:-1], edges[1:])
    keys = rng.permutation(24)[:MUSIC_COUNT]
    ours = []
    for i, (bpm, k) in enumerate(zip(tempi, keys, strict=True)):
        tonic, scale = TONICS[k % 12], "major" if k < 12 else "minor"
        ours.append(
            synthesize_track(
                float(round(bpm, 1)), tonic, scale, MUSIC_SECONDS, 44100, seed=MUSIC_SEED + i
            )
        )
    independent = styles.corpus(STYLES_SEED, 1, STYLES_SECONDS, 44100)
    return {"music.py": ours, "styles.py": independent}


def _accuracies(estimates, truths) -> tuple[float, float]:
    acc1 = np.mean([within(e, t) for e, t in zip(estimates, truths, strict=True)])
    acc2 = np.mean(
        [any(within(e * f, t) for f in (0.5, 1, 2)) for e, t in zip(estimates, truths, strict=True)]
    )
    return float(acc1), float(acc2)


@pytest.mark.slow  # the first to run builds the 19 tracks: 6–12 s on the 2-core machine
@pytest.mark.parametrize("generator", ["music.py", "styles.py"])
def test_tempo_at_least_as_accurate_as_rhythm_extractor(known_tracks, generator):
    """Accuracy1 (±4 %) and Accuracy2 (octave errors allowed) of ours and of essentia's
    ``RhythmExtractor2013`` on the same PCM, per generator: ours must not fall below the
    oracle."""
    tracks = known_tracks[generator]
    truths = [t.bpm for t in tracks]
    ours = [estimate_tempo(t.samples.mean(axis=0), 44100).bpm or 0.0 for t in tracks]
    ess = [oracles.essentia_tempo(t.samples.mean(axis=0), 44100) for t in tracks]
    (ours1, ours2), (ess1, ess2) = _accuracies(ours, truths), _accuracies(ess, truths)
    each = [(t, round(o, 1), round(e, 1)) for t, o, e in zip(truths, ours, ess, strict=True)]
    figures = (
        f"ours A1 {ours1:.2f} A2 {ours2:.2f}, essentia A1 {ess1:.2f} A2 {ess2:.2f}; "
        f"(truth, ours, essentia): {each}"
    )
    assert ours1 >= ess1, figures
    assert ours2 >= ess2, figures
    assert ess2 == 1.0, figures  # the oracle itself works on this material


@pytest.mark.slow  # builds the 19 tracks when run without the tempo test
@pytest.mark.parametrize("profile", ["bgate", "edma", "temperley"])
def test_key_at_least_as_accurate_as_key_extractor(known_tracks, profile):
    """Mean MIREX score of ours and of essentia's ``KeyExtractor`` on both sets together
    (``bgate`` is its default profile, ``edma`` its electronic-music one, ``temperley`` the
    profile ours starts from)."""
    ours, ess = [], []
    for t in known_tracks["music.py"] + known_tracks["styles.py"]:
        mono = t.samples.mean(axis=0)
        key = estimate_key(mono, 44100)
        ours.append(mirex_score(t.tonic, t.scale, key.tonic, key.scale) if key.tonic else 0.0)
        tonic, scale = oracles.essentia_key(mono, 44100, profile)
        ess.append(mirex_score(t.tonic, t.scale, tonic, scale))
    figures = f"MIREX ours {np.mean(ours):.3f}, essentia {profile} {np.mean(ess):.3f}"
    assert np.mean(ours) >= np.mean(ess), figures
    assert np.mean(ess) >= 0.5, figures  # the oracle itself works on this material
