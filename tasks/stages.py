"""What each pipeline stage does to an upload. Each is idempotent: run twice, same result.

The transcode stage decodes the original once: the encoders and the feature extraction
(:mod:`audio.features`) share that pass, and the features — a few kB per minute — go to storage.
Loudness, tempo/key and the waveform are then computed from them without decoding again (if
they went missing, the stage decodes and extracts them itself). Results are written with upserts
keyed by upload (and format), so a re-run after a crash overwrites.

Every decode is bounded by the settings (:func:`bounds`): the audio's length, declared and
decoded (``MAX_DURATION_S``), the decode's time (``DECODE_TIMEOUT_S``, never a figure from the
file's own header) and the bytes the transcodes write (``MAX_OUTPUT_MB``, counted as they are
encoded). Passing one is a permanent :class:`audio.errors.AudioError`; :func:`reason` words it
for the person who uploaded, naming the setting.

Each stage gets ``stop`` (``should_stop``: true once its job is canceled) and hands it to every
decode, which checks it between blocks and raises :class:`audio.errors.Canceled`; the stages
that decode also ask it before they store anything, so a stage canceled during its last block
writes nothing.
"""

from __future__ import annotations

import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from app import albums, uploads
from app.config import Config
from app.jobs import JobCanceled, JobNotFound
from app.metrics import metrics
from app.models import Job, Upload
from audio.bpm_range import BpmRange
from audio.errors import (
    AudioError,
    Canceled,
    DecodeTimeoutError,
    OutputTooLargeError,
    StopCheck,
    TooLongError,
    limit_words,
)
from audio.features import Features, extract
from audio.formats import DEFAULT_FORMATS, FORMATS
from audio.limiter_estimate import BackgroundProfile, Profile, SourceProfile
from audio.loudness import LoudnessMeter
from audio.normalize import SILENT, Normalization, normalize_file
from audio.replaygain import (
    GatingHistogram,
    output_replaygain,
    replaygain,
    track_replaygain,
    write_tags,
)
from audio.targets import Target
from audio.tempo_range import tempo_in_range
from audio.transcode import AudioEncoder, TranscodeResult
from audio.verdicts import REASON_KEYS, VALUE_KEYS, failed_checks
from tasks.context import WorkerContext

MB = 2**20


class Bounds(TypedDict):
    timeout_s: float
    max_duration_s: float


def bounds(config: Config) -> Bounds:
    """The bounds every decode of an upload runs under (keyword arguments of ``extract``)."""
    return {"timeout_s": config.decode_timeout_s, "max_duration_s": config.max_duration_s}


def reason(exc: AudioError) -> str:
    """The sentence a person gets for a file we refused: the bound errors name their setting,
    the others are already written for a person."""
    if isinstance(exc, TooLongError):
        return (
            f"the audio is longer than the {limit_words(exc.limit_s)} limit "
            f"(MAX_DURATION_S = {exc.limit_s:g} s): {exc.found}"
        )
    if isinstance(exc, DecodeTimeoutError):
        return (
            f"decoding took longer than DECODE_TIMEOUT_S ({exc.timeout_s:g} s) and was stopped "
            f"after {exc.decoded_s:.1f} s of audio: the file is damaged or too slow to decode"
        )
    if isinstance(exc, OutputTooLargeError):
        return (
            f"the outputs would pass MAX_OUTPUT_MB ({exc.limit_bytes / MB:g} MB); "
            "ask for fewer or compressed formats"
        )
    return str(exc)


@dataclass(frozen=True)
class JobWork:
    """What a stage needs to know of its job: the upload, its file, what to make of it."""

    upload_id: str
    storage_key: str
    formats: list[str]
    normalize: Target | None  # None: the outputs are as decoded
    bpm_range: BpmRange | None = None  # None: the tempo's octave is chosen automatically


def _job(ctx: WorkerContext, job_id: str) -> JobWork:
    with ctx.sessions() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise JobNotFound(job_id)
        upload = session.get(Upload, job.upload_id)
        assert upload is not None  # a job's upload_id is a foreign key
        formats = list(job.formats or DEFAULT_FORMATS)
        target = Target.from_dict(job.normalize) if job.normalize else None
        bpm_range = BpmRange.from_list(job.bpm_range) if job.bpm_range else None
        return JobWork(upload.id, upload.storage_key, formats, target, bpm_range)


def _file_chunks(path: Path, size: int = 1 << 20):
    with path.open("rb") as stream:
        while chunk := stream.read(size):
            yield chunk


def _features_key(upload_id: str) -> str:
    return f"features/{upload_id}.npz"


def profile_key(upload_id: str) -> str:
    """The limiter's profile of a normalised job's source (:mod:`audio.limiter_estimate`),
    from the transcode stage to the normalize stage."""
    return f"profiles/{upload_id}.npz"


def _features(ctx: WorkerContext, upload_id: str, key: str, stop: StopCheck) -> Features:
    """The features the transcode stage saved; decoded again only if they went missing."""
    features_key = _features_key(upload_id)
    if ctx.storage.exists(features_key):
        return Features.from_bytes(b"".join(ctx.storage.read_chunks(features_key)))
    with ctx.storage.local_path(key) as source:
        features, _ = extract(source, should_stop=stop, **bounds(ctx.config))
    _check(stop, features.info.duration_s)
    ctx.storage.save(features_key, [features.to_bytes()])
    return features


def _check(stop: StopCheck, decoded_s: float) -> None:
    """Raise ``Canceled`` if the job was canceled (before a stage stores what it made)."""
    if stop():
        raise Canceled(decoded_s)


def transcode_stage(ctx: WorkerContext, job_id: str, stop: StopCheck) -> str:
    """Decode once: write the transcodes and keep the features the next stages measure from.

    A job that asks for normalised outputs gets them from the normalize stage, which needs the
    loudness of the whole file first: this pass then only measures.
    """
    work = _job(ctx, job_id)
    formats = [] if work.normalize else work.formats
    with (
        ctx.storage.local_path(work.storage_key) as source,
        tempfile.TemporaryDirectory() as folder,
    ):

        def encoders(rate: int, channels: int) -> list[AudioEncoder]:
            return [
                AudioEncoder(
                    Path(folder) / f"out.{FORMATS[fmt].extension}",
                    fmt,
                    in_rate=rate,
                    in_channels=channels,
                    measure=True,  # for its ReplayGain, while it is encoded
                    threaded=ctx.config.encode_on_own_thread,
                )
                for fmt in formats
            ]

        profiles: list[BackgroundProfile] = []

        def profile(rate: int, channels: int, names: tuple[str, ...]) -> list[BackgroundProfile]:
            if work.normalize is not None:  # the normalize stage settles its gain on it
                profile = SourceProfile(rate, channels, names)
                profiles.append(BackgroundProfile(profile, ctx.config.encode_on_own_thread))
            return profiles

        max_output_bytes = ctx.config.max_output_mb * MB
        features, writers = extract(
            source,
            encoders=encoders,
            max_output_bytes=max_output_bytes,
            should_stop=stop,
            also=profile,
            **bounds(ctx.config),
        )
        results = [writer.close() for writer in writers]
        _check(stop, features.info.duration_s)
        _check_output_size(results, max_output_bytes, features.info.duration_s)
        info = features.info
        _tag_outputs(ctx, results, writers, features.loudness, stop)
        _check(stop, info.duration_s)
        with ctx.sessions.begin() as session:
            upload = session.get(Upload, work.upload_id)
            if upload is None:  # removed while the stage ran (its job canceled first)
                raise JobCanceled(job_id)
            upload.duration_s, upload.sample_rate = info.duration_s, info.sample_rate
            upload.channels, upload.codec, upload.bitrate = info.channels, info.codec, info.bitrate
        for fmt, result in zip(formats, results, strict=True):
            _save_output(ctx, work.upload_id, fmt, result)
    if profiles:
        ctx.storage.save(profile_key(work.upload_id), [profiles[0].result().to_bytes()])
    ctx.storage.save(_features_key(work.upload_id), [features.to_bytes()])
    metrics().audio_seconds.inc(info.duration_s or 0.0)
    if work.normalize:
        return "decoded and measured; the outputs are written once normalised"
    return f"transcoded to {', '.join(formats)}"


def _tag_outputs(
    ctx: WorkerContext,
    results: list[TranscodeResult],
    writers: list[AudioEncoder],
    source: LoudnessMeter,
    stop: StopCheck,
) -> None:
    """Write each output's ReplayGain 2.0 tags: its own, not the upload's (see
    :func:`audio.replaygain.output_replaygain`): ``source``'s figures, or the output's as
    decoded (measured while it was encoded, or decoded now)."""
    loudness = source.result()
    for result, writer in zip(results, writers, strict=True):
        gain = output_replaygain(
            result.path,
            result.format,
            source=loudness,
            source_rate=source.sample_rate,
            source_channels=source.channels,
            measured=writer.measured.loudness if writer.measured else None,
            should_stop=stop,
            timeout_s=ctx.config.decode_timeout_s,
        )
        write_tags(result.path, result.format, gain)


def _save_output(
    ctx: WorkerContext,
    upload_id: str,
    fmt: str,
    result: TranscodeResult,
    normalization: dict | None = None,
) -> None:
    """Store an encoded file and its row (overwriting both when a stage runs again)."""
    out_key = f"outputs/{upload_id}/{fmt}.{FORMATS[fmt].extension}"
    stored = ctx.storage.save(out_key, _file_chunks(Path(result.path)))
    uploads.save_output(
        ctx.sessions,
        upload_id,
        fmt,
        storage_key=out_key,
        size_bytes=stored.size,
        bitrate=result.bitrate,
        duration_s=result.duration_s,
        normalization=normalization,
    )


def _check_output_size(results: list[TranscodeResult], max_bytes: int, decoded_s: float) -> None:
    """The outputs as closed (the encoders' last frames and the containers' headers included)
    within ``max_bytes``; ``extract`` has stopped any that passed it while encoding."""
    written = sum(result.size_bytes for result in results)
    if written > max_bytes:
        raise OutputTooLargeError(limit_bytes=max_bytes, written_bytes=written, decoded_s=decoded_s)


def loudness_stage(ctx: WorkerContext, job_id: str, stop: StopCheck) -> str:
    work = _job(ctx, job_id)
    features = _features(ctx, work.upload_id, work.storage_key, stop)
    result = features.loudness.result()
    silence = features.silence.result()
    checks = features.checks(result).to_dict()
    measured = {key: checks[key] for key in VALUE_KEYS}
    reasons = {key: checks[key] for key in REASON_KEYS if checks[key]}
    record = {**result.to_dict(), **checks, "channels": features.info.channels}
    record["integrated_lufs"] = result.integrated_lufs
    histogram = GatingHistogram.from_meter(features.loudness).to_dict()  # the album's blocks
    ctx.storage.save(albums.loudness_key(work.upload_id), [json.dumps(histogram).encode()])
    uploads.save_analysis(
        ctx.sessions,
        work.upload_id,
        integrated_lufs=result.integrated_lufs,
        loudness_range_lu=result.loudness_range_lu,
        true_peak_dbtp=result.true_peak_dbtp,
        sample_peak_dbfs=result.sample_peak_dbfs,
        short_term_lufs=result.to_dict()["short_term_lufs"],
        loudness_reason=result.reason,
        loudness_range_reason=result.range_reason,
        silence=silence.to_dict(),
        **measured,
        quality_reasons=reasons,
        failed_checks=failed_checks(record),
        **track_replaygain(result).to_dict(),
    )
    if result.integrated_lufs is None:
        return f"no loudness: {result.reason}" if result.reason else "no loudness"
    return f"loudness {result.integrated_lufs:.1f} LUFS"


def normalize_stage(ctx: WorkerContext, job_id: str, stop: StopCheck) -> str:
    """Write the outputs normalised to the job's target, when it has one (decoding again: the
    gain needs the loudness of the whole file, which the first pass measured)."""
    work = _job(ctx, job_id)
    if work.normalize is None:
        return "no normalisation asked: the outputs are as decoded"
    features = _features(ctx, work.upload_id, work.storage_key, stop)
    loudness = features.loudness.result()
    profile = None  # made again by normalize_file where it went missing
    if ctx.storage.exists(profile_key(work.upload_id)):
        data = b"".join(ctx.storage.read_chunks(profile_key(work.upload_id)))
        profile = Profile.from_bytes(data)
    max_output_bytes = ctx.config.max_output_mb * MB
    with (
        ctx.storage.local_path(work.storage_key) as source,
        tempfile.TemporaryDirectory() as folder,
    ):
        targets = [(Path(folder) / f"out.{FORMATS[fmt].extension}", fmt) for fmt in work.formats]
        done = normalize_file(
            source,
            targets,
            work.normalize,
            input_lufs=loudness.integrated_lufs,
            input_true_peak_dbtp=loudness.true_peak_dbtp,
            profile=profile,
            max_output_bytes=max_output_bytes,
            should_stop=stop,
            threaded=ctx.config.encode_on_own_thread,
            **bounds(ctx.config),
        )
        _check_output_size(
            [result for result, _ in done], max_output_bytes, features.info.duration_s
        )
        _check(stop, features.info.duration_s)
        for fmt, (result, normalization) in zip(work.formats, done, strict=True):
            output = (normalization.output_integrated_lufs, normalization.output_true_peak_dbtp)
            write_tags(result.path, fmt, replaygain(*output))  # the output's own figures
            _save_output(ctx, work.upload_id, fmt, result, normalization.to_dict())
    return describe_normalization(work.normalize, work.formats, [n for _, n in done])


def describe_normalization(target: Target, formats: list[str], done: list[Normalization]) -> str:
    """The job's event line: the target, then what each output measures after normalising."""
    name = f"{target.name} " if target.name else ""
    head = f"normalised to {name}({target.lufs:g} LUFS, {target.true_peak_dbtp + 0.0:g} dBTP)"
    if done and done[0].reason == SILENT:
        return f"{head}: {SILENT}"
    parts = []
    for fmt, n in zip(formats, done, strict=True):
        limited = f", limited {n.limited_db:.1f} dB" if n.limited_db >= 0.05 else ""
        parts.append(
            f"{fmt} {_figure(n.output_integrated_lufs)} LUFS {_figure(n.output_true_peak_dbtp)} "
            f"dBTP (gain {n.gain_db:+.1f} dB{limited})" + (f": {n.reason}" if n.reason else "")
        )
    return f"{head}: {'; '.join(parts)}"


def _figure(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def tempo_key_stage(ctx: WorkerContext, job_id: str, stop: StopCheck) -> str:
    work = _job(ctx, job_id)
    features = _features(ctx, work.upload_id, work.storage_key, stop)
    t, k = tempo_in_range(features.tempo, work.bpm_range), features.key.result()
    uploads.save_analysis(
        ctx.sessions,
        work.upload_id,
        bpm=t.bpm,
        bpm_confidence=t.confidence,
        bpm_reason=t.reason,
        bpm_estimate=t.estimate,
        bpm_estimate_confidence=t.estimate_confidence,
        beats=[round(b, 3) for b in t.beats],
        key=k.tonic,
        key_scale=k.scale,
        key_confidence=k.confidence,
        key_reason=k.reason,
        camelot=k.camelot,
    )
    tempo = f"tempo {t.bpm:.1f} BPM" if t.bpm else "no tempo"
    if not t.bpm and t.estimate:
        tempo += f" (perhaps {t.estimate:.1f} BPM, confidence {t.estimate_confidence or 0:.2f})"
    if t.bpm and work.bpm_range is not None:
        tempo += f" (range {work.bpm_range})"
    key = f"key {k.name}" if k.name else "no key"
    return f"{tempo}, {key}"


def finalize_stage(ctx: WorkerContext, job_id: str, stop: StopCheck) -> str:
    work = _job(ctx, job_id)
    waveform = _features(ctx, work.upload_id, work.storage_key, stop).waveform.result()
    png = io.BytesIO()
    waveform.render_png(png)
    png_key, json_key = f"waveforms/{work.upload_id}.png", f"waveforms/{work.upload_id}.json"
    ctx.storage.save(png_key, [png.getvalue()])
    ctx.storage.save(json_key, [json.dumps(waveform.to_audiowaveform_json()).encode()])
    uploads.save_analysis(
        ctx.sessions, work.upload_id, waveform_png_key=png_key, waveform_json_key=json_key
    )
    ctx.storage.delete(_features_key(work.upload_id))
    ctx.storage.delete(profile_key(work.upload_id))
    return "waveform drawn"
