"""Masters normalised to a platform's loudness target under a true-peak ceiling.

:func:`normalize_file` writes each requested output with one linear gain that brings the file's
integrated loudness to the target; where that gain would push the true peak over the ceiling,
the look-ahead limiter of :mod:`audio.limiter` holds it. The figures it reports are measured on
each output *decoded again*, with our own meter, since a lossy encoder changes both:

1. the input's integrated loudness (given, or measured in a decode pass) sets the gain;
2. if limiting may be needed, the gain that brings the *limited* signal to the target (limiting
   lowers loudness) is settled on a profile of the source's peaks and energy
   (:mod:`audio.limiter_estimate`), kept by the pass that measured it: no pass of its own;
3. each output is encoded (outputs with the same settings share one decode), and measured as
   decoded — an MP3 while it is encoded (:mod:`audio.output_meter`), others from the file; one
   over the ceiling is encoded again with the limiter's ceiling lowered by the excess (and one
   off the target with its gain corrected), a bounded number of times.

Outputs are written under temporary names beside their paths and renamed when all are done:
on any failure nothing half-written is left.

The targets themselves (the platforms' presets, a target read from a request) are in
:mod:`audio.targets`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from audio.errors import StopCheck
from audio.targets import Target

if TYPE_CHECKING:
    from audio.limiter_estimate import Profile
    from audio.output_meter import OutputLoudness
    from audio.transcode import AudioEncoder, TranscodeResult


@dataclass(frozen=True)
class Normalization:
    """What normalising did to one output, measured on the output decoded again."""

    target_lufs: float
    true_peak_ceiling_dbtp: float
    gain_db: float  # the linear gain applied
    limited_db: float  # the most gain reduction the limiter applied (≥ 0)
    output_integrated_lufs: float | None
    output_true_peak_dbtp: float | None
    reason: str | None = None  # why the output is not (or not quite) on target

    def to_dict(self) -> dict:
        """JSON-safe: ``None`` for missing or non-finite figures, numbers rounded to 0.01."""
        values = dataclasses.asdict(self)
        return {
            key: value if isinstance(value, str) or value is None else _rounded(value)
            for key, value in values.items()
        }


def _rounded(value: float) -> float | None:
    return round(float(value), 2) if math.isfinite(value) else None


# -- the passes ------------------------------------------------------------------------------

#: The limiter's ceiling below the target's on the first encode, dB: room for what the encoder
#: adds. Lossless outputs need only room for the WAV's 16-bit rounding and for interpolators
#: that read higher than ours (4× ``resample_poly`` read up to 0.021 dB over the limiter's
#: ceiling on seeds 3–4, see ``tests/unit/audio/test_limiter.py``); lossy encoders
#: overshoot (they drop bands and shift phases): by −0.6 to +1.8 dB over the limiter's ceiling
#: on seeds 11–16 of ``tests/support/audio/music.py`` (8 s at 44.1 kHz brought to −14 and −9
#: LUFS, limited to −1 dBTP: the tuning set). The margins let 10 (MP3), 10 (Opus) and 9 (AAC)
#: of those 12 through on the first encode; on seeds 21–26, never used to tune, 10, 11 and 11
#: of 12 (``bench/audio.py --overshoot 11-16``, ``--overshoot 21-26``). The rest are encoded
#: again with the ceiling lowered by what was measured.
FIRST_MARGIN_DB = {"mp3": 0.6, "opus": 0.8, "aac": 1.1, "flac": 0.05, "wav": 0.05}
#: What an output may miss the target by before it is encoded again (inside the acceptance
#: of ±0.5 LU for lossy, ±0.2 for lossless, so a re-encode is rare and the result safe).
LOUDNESS_TOLERANCE_LU = {"flac": 0.1, "wav": 0.1}
LOSSY_TOLERANCE_LU = 0.3
#: Encodes per output at most (the first included).
MAX_ENCODES = 4
#: How much higher than BS.1770's reading the limiter's detector may read a peak, dB (0.28
#: measured on hi-hats, see :func:`audio.limiter.detector_taps`): a source whose metered peak
#: plus the gain stays this far under the ceiling is not run through the limiter first.
PEAK_READING_SLACK_DB = 0.5
#: The most gain added past the linear gain to make up for what the limiter takes, dB.
MAX_EXTRA_GAIN_DB = 6.0
#: Below the ceiling by this much after a re-encode, dB, beyond the measured excess.
RETRY_MARGIN_DB = 0.1
#: The most the limiter's ceiling is lowered for one re-encode, dB. An encoder's overshoot
#: can shrink much faster than the level: FFmpeg's AAC encoder put a +3.9 dB glitch on one
#: synthesized track limited to −1 dBTP, and +1.7 dB at −4 (seed 14 of
#: ``tests/support/audio/music.py`` at −8 LUFS, −2.1 dB): lowering by the whole excess at once
#: would limit far more than needed.
MAX_CEILING_STEP_DB = 3.0

SILENT = "the audio is silent: there is no loudness to normalise, the outputs are unchanged"
NO_LOUDNESS = (
    "the audio has no loudness to normalise (a click, a constant offset or under 400 ms): "
    "no gain was applied, only the true-peak ceiling held"
)


@dataclass
class _Bounds:
    """The bounds every pass runs under: each decode gets the whole ``timeout_s`` (as every
    decode of an upload does; the pipeline's stage time limit bounds the passes together)."""

    timeout_s: float | None
    max_duration_s: float | None
    max_output_bytes: int | None
    should_stop: StopCheck | None = None
    threaded: bool = True  # each encoder on a thread of its own

    def stream(self, path: Path):
        from audio.decode import DecodedStream

        return DecodedStream(
            path,
            timeout_s=self.timeout_s,
            max_duration_s=self.max_duration_s,
            should_stop=self.should_stop,
        )


@dataclass
class _Output:
    path: Path
    fmt: str
    gain_db: float
    ceiling_db: float  # the limiter's
    temp: Path  # where each encode is written
    linear_gain_db: float = 0.0  # what the gain would be without limiting
    encodes: int = 0
    done: bool = False
    result: TranscodeResult | None = None
    measured: OutputLoudness | None = None  # the last encode as decoded, if measured then
    normalization: Normalization | None = None
    #: The encode under the ceiling nearest the target so far (its file at ``kept_path``).
    kept: tuple[TranscodeResult, Normalization] | None = None
    last: tuple | None = None  # (gain, ceiling, loudness) of the last encode

    @property
    def kept_path(self) -> Path:
        return self.temp.with_name(f"{self.temp.stem}-kept{self.temp.suffix}")


def normalize_file(
    source: Path,
    outputs: Sequence[tuple[Path, str]],
    target: Target,
    *,
    input_lufs: float | None = None,
    input_true_peak_dbtp: float | None = None,
    profile: Profile | None = None,
    timeout_s: float | None = None,
    max_duration_s: float | None = None,
    max_output_bytes: int | None = None,
    should_stop: StopCheck | None = None,
    threaded: bool = True,
) -> list[tuple[TranscodeResult, Normalization]]:
    """Write ``source`` normalised to ``target`` into each ``(path, format key)`` of ``outputs``.

    :param input_lufs: the source's integrated loudness if already measured; ``None``: measured
        here in a decode pass.
    :param input_true_peak_dbtp: the source's true peak if already measured: when the gain
        keeps it well under the ceiling, the decode pass that checks whether limiting is needed
        is skipped; given without ``input_lufs``, the source was measured and has no loudness
        (a click, under 400 ms). Both ``None``: measured here.
    :param profile: the source's :class:`audio.limiter_estimate.Profile`, kept by the pass that
        measured it (``extract(also=…)``); None: made here, in a pass of its own, when the gain
        may need limiting. Only the outputs at the source's own rate and channels use it.
    :param timeout_s: the bound on each decode pass (the caller bounds them together).
    :param max_duration_s: the longest audio accepted.
    :param max_output_bytes: the most the outputs may take in all, counted as they are written.
    :param should_stop: checked between blocks of every pass; true raises
        :class:`audio.errors.Canceled` (no output left behind, as for any error).
    :param threaded: each encoder on a thread of its own (see :class:`AudioEncoder`).
    :returns: per output, in order: what was written (at its path) and what was done to it.
    :raises audio.errors.AudioError: the source cannot be decoded or passes a bound; no output
        (and no partial one) is left behind.
    """
    from audio.formats import check_formats

    source = Path(source)
    check_formats([fmt for _, fmt in outputs])
    if not outputs:
        return []
    bounds = _Bounds(timeout_s, max_duration_s, max_output_bytes, should_stop, threaded)
    native, conformed = _by_layout(source, outputs, bounds)
    done: dict[int, tuple[TranscodeResult, Normalization]] = {}
    try:
        if native:
            found = _normalize(
                source,
                [outputs[i] for i in native],
                target,
                input_lufs,
                input_true_peak_dbtp,
                profile,
                bounds,
            )
            done.update(zip(native, found, strict=True))
        for (rate, channels), indices in conformed.items():
            first = Path(outputs[indices[0]][0])
            intermediate = first.with_name(f".{first.stem}.conformed-{rate}-{channels}.w64")
            try:
                lufs, peak, conformed_profile = _conform(
                    source, intermediate, rate, channels, bounds
                )
                found = _normalize(
                    intermediate,
                    [outputs[i] for i in indices],
                    target,
                    lufs,
                    peak,
                    conformed_profile,
                    bounds,
                )
            finally:
                intermediate.unlink(missing_ok=True)
            done.update(zip(indices, found, strict=True))
    except BaseException:
        for result, _ in done.values():
            Path(result.path).unlink(missing_ok=True)
        raise
    return [done[i] for i in range(len(outputs))]


def _by_layout(
    source: Path, outputs: Sequence[tuple[Path, str]], bounds: _Bounds
) -> tuple[list[int], dict[tuple[int, int], list[int]]]:
    """The outputs encoded at the source's rate and channels, and the others by the rate and
    channels their format turns the audio into (an MP3 is stereo at 44.1 kHz, an Opus file
    48 kHz). Those must be normalised *as they will sound*: a 5.1 downmix or a resampled
    signal has another loudness and other peaks than the source."""
    from audio.formats import FORMATS
    from audio.transcode import output_rate

    stream = bounds.stream(source)
    rate, channels = stream.sample_rate, stream.channels
    stream.close()
    native: list[int] = []
    conformed: dict[tuple[int, int], list[int]] = {}
    for i, (_, fmt) in enumerate(outputs):
        layout = (output_rate(FORMATS[fmt], rate), FORMATS[fmt].channels or channels)
        if layout == (rate, channels):
            native.append(i)
        else:
            conformed.setdefault(layout, []).append(i)
    return native, conformed


def _conform(
    source: Path, target: Path, rate: int, channels: int, bounds: _Bounds
) -> tuple[float | None, float | None, Profile]:
    """Write ``source`` at ``rate`` and ``channels`` as 32-bit float Wave64 (lossless, no
    clipping, no 4 GB limit): what an encoder of that layout would be fed. Returns what
    :func:`_measure_with_profile` would of the file written, measured as it is written."""
    import av
    import numpy as np

    from audio.limiter_estimate import SourceProfile
    from audio.loudness import LoudnessMeter
    from audio.transcode import LAYOUTS

    stream = bounds.stream(source)
    resampler = av.AudioResampler(format="flt", layout=LAYOUTS[channels], rate=rate)
    meter, profile = LoudnessMeter(rate, channels), SourceProfile(rate, channels)

    def measured(frame: av.AudioFrame) -> av.AudioFrame:
        samples = frame.to_ndarray().reshape(-1, channels).T
        meter.add(samples)
        profile.add(samples)
        return frame

    try:
        with av.open(str(target), "w", format="w64") as container:
            out = container.add_stream("pcm_f32le", rate=rate)
            out.layout = LAYOUTS[channels]
            out.format = "flt"
            for block in itertools.chain(stream.blocks(), [None]):
                frame = None
                if block is not None:
                    packed = np.ascontiguousarray(block.T).reshape(1, -1)
                    frame = av.AudioFrame.from_ndarray(
                        packed, format="flt", layout=LAYOUTS[stream.channels]
                    )
                    frame.sample_rate = stream.sample_rate
                for converted in resampler.resample(frame):
                    for packet in out.encode(measured(converted)):
                        container.mux(packet)
            for packet in out.encode(None):
                container.mux(packet)
    except BaseException:
        stream.close()
        target.unlink(missing_ok=True)
        raise
    result = meter.result()
    return result.integrated_lufs, result.true_peak_dbtp, profile.result()


def _normalize(
    source: Path,
    outputs: Sequence[tuple[Path, str]],
    target: Target,
    input_lufs: float | None,
    input_true_peak_dbtp: float | None,
    profile: Profile | None,
    bounds: _Bounds,
) -> list[tuple[TranscodeResult, Normalization]]:
    """:func:`normalize_file` for outputs encoded at the source's own rate and channels."""
    from audio.limiter_estimate import settle_gain

    jobs = [
        _Output(Path(path), fmt, 0.0, target.true_peak_dbtp, _temp_path(Path(path)))
        for path, fmt in outputs
    ]
    try:
        source_peak_db = input_true_peak_dbtp
        if input_lufs is None and input_true_peak_dbtp is None:  # not measured yet
            input_lufs, source_peak_db, profile = _measure_with_profile(source, bounds)
        if input_lufs is None and source_peak_db is None:  # digital silence
            _write_unchanged(source, jobs, target, bounds)
        else:
            # No loudness (a click, DC, under 400 ms): no gain, but the ceiling still holds.
            linear = 0.0 if input_lufs is None else target.lufs - input_lufs
            for job in jobs:
                job.ceiling_db = target.true_peak_dbtp - FIRST_MARGIN_DB.get(job.fmt, 0.6)
                job.gain_db, job.linear_gain_db = linear, linear
                if input_lufs is not None and _may_limit(source_peak_db, linear, job.ceiling_db):
                    if profile is None:
                        profile = _measure_with_profile(source, bounds)[2]
                    job.gain_db = settle_gain(
                        profile, target.lufs, job.ceiling_db, linear, MAX_EXTRA_GAIN_DB
                    )
            while not all(job.done for job in jobs):
                _encode_round(source, jobs, target, bounds)
            if input_lufs is None:
                for job in jobs:
                    assert job.normalization is not None  # set when it was done (_judge)
                    if job.normalization.reason is None:
                        job.normalization = dataclasses.replace(
                            job.normalization, reason=NO_LOUDNESS
                        )
    except BaseException:
        for job in jobs:
            job.temp.unlink(missing_ok=True)
            job.kept_path.unlink(missing_ok=True)
        raise
    for job in jobs:
        os.replace(job.temp, job.path)
    return [_finished(job) for job in jobs]


def _finished(job: _Output) -> tuple[TranscodeResult, Normalization]:
    """A done output's encode, at its own path, and what its normalization came to."""
    assert job.result is not None and job.normalization is not None  # set once it is done
    return dataclasses.replace(job.result, path=str(job.path)), job.normalization


def _temp_path(path: Path) -> Path:
    """Beside ``path`` (same file system, so the rename is atomic), with its extension."""
    return path.with_name(f".{path.stem}.normalizing{path.suffix}")


def _measure(path: Path, bounds: _Bounds) -> tuple[float | None, float | None]:
    """Integrated loudness and true peak (dBTP) of a file, decoded, by our meter."""
    lufs, peak, _ = _measure_strictly(path, bounds, None)
    return lufs, peak


def _measure_strictly(
    path: Path, bounds: _Bounds, ceiling_db: float | None
) -> tuple[float | None, float | None, float]:
    """:func:`_measure`, and the true peak by the limiter's detector too (dBTP, −inf for
    silence): the larger of BS.1770's reading and a longer interpolator's (see
    :func:`audio.limiter.detector_taps`), exact wherever it may pass ``ceiling_db``. That is
    what an output is judged by. ``ceiling_db`` None: the meter only."""
    from audio.limiter import StrictPeak
    from audio.loudness import LoudnessMeter

    stream = bounds.stream(path)
    meter = LoudnessMeter(stream.sample_rate, stream.channels, stream.info.channel_names)
    ceiling = 0.0 if ceiling_db is None else 10 ** (ceiling_db / 20)
    detector = StrictPeak(stream.sample_rate, stream.channels, ceiling)
    for block in stream.blocks():
        meter.add(block)
        if ceiling_db is not None:
            detector.add(block)
    strict = detector.result() if ceiling_db is not None else 0.0
    result = meter.result()
    strict_db = 20 * math.log10(strict) if strict > 0 else -math.inf
    if result.true_peak_dbtp is not None:
        strict_db = max(strict_db, result.true_peak_dbtp)
    return result.integrated_lufs, result.true_peak_dbtp, strict_db


def _may_limit(source_peak_db: float | None, gain_db: float, ceiling_db: float) -> bool:
    """Whether the limiter may act: unless the source's metered true peak plus the gain stays
    :data:`PEAK_READING_SLACK_DB` under the ceiling (the detector may read a little higher)."""
    return source_peak_db is None or source_peak_db + gain_db >= ceiling_db - PEAK_READING_SLACK_DB


def _measure_with_profile(
    path: Path, bounds: _Bounds
) -> tuple[float | None, float | None, Profile]:
    """Integrated loudness, true peak (dBTP) and the limiter's profile of a file, decoded."""
    from audio.limiter_estimate import SourceProfile
    from audio.loudness import LoudnessMeter

    stream = bounds.stream(path)
    names = stream.info.channel_names
    meter = LoudnessMeter(stream.sample_rate, stream.channels, names)
    profile = SourceProfile(stream.sample_rate, stream.channels, names)
    for block in stream.blocks():
        meter.add(block)
        profile.add(block)
    result = meter.result()
    return result.integrated_lufs, result.true_peak_dbtp, profile.result()


def _encode_round(source: Path, jobs: list[_Output], target: Target, bounds: _Bounds) -> None:
    """Encode every unfinished output once (one decode per distinct gain and ceiling), then
    measure each decoded and decide whether it is done."""
    groups: dict[tuple[float, float], list[_Output]] = {}
    for job in jobs:
        if not job.done:
            groups.setdefault((job.gain_db, job.ceiling_db), []).append(job)
    for (gain_db, ceiling_db), group in groups.items():
        others = [job for job in jobs if job not in group and job.result is not None]
        reduction = _encode(
            source, group, others, gain_db, ceiling_db, target.true_peak_dbtp, bounds
        )
        for job in group:
            _judge(job, target, reduction, bounds)


def _encode(
    source: Path,
    group: list[_Output],
    others: list[_Output],
    gain_db: float,
    ceiling_db: float,
    target_peak_db: float,
    bounds: _Bounds,
) -> float:
    """One decode of ``source`` through gain and limiter into the group's encoders (each
    output measured as it is written where its format allows, strictly over the target's
    ceiling ``target_peak_db``)."""
    from audio.limiter import TruePeakLimiter

    stream = bounds.stream(source)
    limiter = TruePeakLimiter(
        stream.sample_rate, stream.channels, gain_db=gain_db, ceiling_dbtp=ceiling_db
    )

    def write(block, writers: list[AudioEncoder]) -> None:
        for writer in writers:
            writer.write(block)
        _check_size(writers, _results(others), bounds.max_output_bytes, stream.decoded_s)

    def step(writers: list[AudioEncoder]) -> None:
        for block in stream.blocks():
            write(limiter.process(block), writers)
        write(limiter.flush(), writers)

    results = _with_encoders(stream, group, step, target_peak_db, bounds.threaded)
    for job, (result, measured) in zip(group, results, strict=True):
        job.result, job.measured = result, measured
        job.encodes += 1
    _check_size([], _results(group + others), bounds.max_output_bytes, stream.decoded_s)
    return limiter.reduction_db


def _with_encoders(
    stream,
    group: list[_Output],
    step: Callable,
    measure_over: float | None = None,
    threaded: bool = True,
) -> list[tuple[TranscodeResult, OutputLoudness | None]]:
    """Open an encoder per output, run ``step`` with them and close them; on any failure
    discard every one (the file is removed) and close the stream. Each output comes with its
    figures as decoded where its encoder measured them (``measure_over``: the floor of the
    strict true-peak reading; None: not measured)."""
    from audio.transcode import AudioEncoder

    writers: list[AudioEncoder] = []
    try:
        for job in group:
            job.temp.parent.mkdir(parents=True, exist_ok=True)
            job.temp.unlink(missing_ok=True)
            writers.append(
                AudioEncoder(
                    job.temp,
                    job.fmt,
                    in_rate=stream.sample_rate,
                    in_channels=stream.channels,
                    measure=measure_over is not None,
                    strict_floor_dbtp=measure_over,
                    threaded=threaded,
                )
            )
        step(writers)
        return [(writer.close(), writer.measured) for writer in writers]
    except BaseException:
        stream.close()
        for writer in writers:
            writer.discard()
        raise


def _check_size(
    writers: list[AudioEncoder],
    done: Sequence[TranscodeResult],
    limit: int | None,
    decoded_s: float,
) -> None:
    """Raise ``OutputTooLargeError`` once the encoders of this pass and the outputs ``done``
    together pass ``limit``: a few kB of compressed silence can decode to hours. (Checked as
    blocks are written — the encoders run a few blocks behind — and again once closed.)"""
    from audio.errors import OutputTooLargeError

    if limit is None:
        return
    written = sum(writer.bytes_written for writer in writers)
    written += sum(result.size_bytes for result in done)
    if written > limit:
        raise OutputTooLargeError(limit_bytes=limit, written_bytes=written, decoded_s=decoded_s)


def _results(jobs: list[_Output]) -> list[TranscodeResult]:
    return [job.result for job in jobs if job.result is not None]


def _judge(job: _Output, target: Target, reduction_db: float, bounds: _Bounds) -> None:
    """Measure the encoded output; done if on target and under the ceiling, else correct its
    ceiling and gain for another encode. Out of tries, the output is the encode under the
    ceiling nearest the target (the ceiling first: a ceiling is a promise), with a reason."""
    if job.measured is not None and job.measured.strict_peak_dbtp is not None:
        lufs = job.measured.loudness.integrated_lufs
        peak = job.measured.loudness.true_peak_dbtp
        strict_peak = job.measured.strict_peak_dbtp
        if peak is not None:
            strict_peak = max(strict_peak, peak)
    else:
        lufs, peak, strict_peak = _measure_strictly(job.temp, bounds, target.true_peak_dbtp)
    over = strict_peak - target.true_peak_dbtp
    tolerance = LOUDNESS_TOLERANCE_LU.get(job.fmt, LOSSY_TOLERANCE_LU)
    miss = None if lufs is None else target.lufs - lufs
    ok_peak = over <= 0.0
    ok_loudness = miss is None or abs(miss) <= tolerance
    reason = None
    if not ok_peak:
        reason = f"the encoder's overshoot kept the true peak {over:.2f} dB over the ceiling"
    elif not ok_loudness and miss is not None and miss > 0 and reduction_db > 0:
        reason = f"the true-peak ceiling holds the loudness at {lufs:.1f} LUFS"
    elif not ok_loudness:
        reason = f"the loudness is {lufs:.1f} LUFS after {job.encodes} encodes"
    normalization = Normalization(
        target_lufs=target.lufs,
        true_peak_ceiling_dbtp=target.true_peak_dbtp,
        gain_db=job.gain_db,
        limited_db=reduction_db,
        output_integrated_lufs=lufs,
        output_true_peak_dbtp=peak,
        reason=reason,
    )
    if ok_peak and (job.kept is None or _distance(normalization) < _distance(job.kept[1])):
        assert job.result is not None  # the encode just measured
        os.replace(job.temp, job.kept_path)
        job.kept = (job.result, normalization)
    if not (ok_peak and ok_loudness) and job.encodes < MAX_ENCODES:
        previous, job.last = job.last, (job.gain_db, job.ceiling_db, lufs)
        if not ok_peak:
            job.ceiling_db -= min(over + RETRY_MARGIN_DB, MAX_CEILING_STEP_DB)
            # Encoding again anyway: aim at the target too, but gain against a ceiling
            # being lowered only adds limiting (and overshoot), so add little.
            job.gain_db += min(miss, 0.5) if miss is not None else 0.0
        elif miss is not None:
            job.gain_db += miss / _slope(previous, job.last)
        job.gain_db = min(job.gain_db, job.linear_gain_db + MAX_EXTRA_GAIN_DB)
        return
    job.done = True
    if job.kept is not None:
        os.replace(job.kept_path, job.temp)
        job.result, job.normalization = job.kept
    else:
        job.normalization = normalization


def _slope(previous: tuple | None, current: tuple) -> float:
    """LU of output per dB of gain between two encodes ``(gain, ceiling, loudness)`` at the
    same ceiling (1 without them): under heavy limiting a dB of gain adds much less."""
    if previous is None or previous[1] != current[1] or previous[0] == current[0]:
        return 1.0
    if previous[2] is None or current[2] is None:
        return 1.0
    return min(1.0, max(0.25, (current[2] - previous[2]) / (current[0] - previous[0])))


def _distance(normalization: Normalization) -> float:
    """How far an output is from its target loudness, LU (0 for silence)."""
    lufs = normalization.output_integrated_lufs
    return 0.0 if lufs is None else abs(lufs - normalization.target_lufs)


def _write_unchanged(source: Path, jobs: list[_Output], target: Target, bounds: _Bounds) -> None:
    """Silent input: the outputs as decoded (gain 0), saying why."""
    stream = bounds.stream(source)

    def step(writers) -> None:
        for block in stream.blocks():
            for writer in writers:
                writer.write(block)
            _check_size(writers, [], bounds.max_output_bytes, stream.decoded_s)

    results = _with_encoders(stream, jobs, step, threaded=bounds.threaded)
    _check_size([], [r for r, _ in results], bounds.max_output_bytes, stream.decoded_s)
    for job, (result, _) in zip(jobs, results, strict=True):
        lufs, peak = _measure(job.temp, bounds)
        job.result, job.done = result, True
        job.normalization = Normalization(
            target.lufs, target.true_peak_dbtp, 0.0, 0.0, lufs, peak, reason=SILENT
        )
