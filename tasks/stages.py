"""What each pipeline stage does to an upload. Each is idempotent: run twice, same result.

Stages read the original from storage as a local file, run the pure audio code, and write
results with upserts keyed by upload (and format), so a re-run after a crash overwrites.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

from sqlalchemy.dialects.postgresql import insert

from app.models import Analysis, Job, Output, Upload
from audio.decode import DecodedStream
from audio.key import KeyAnalyzer
from audio.loudness import LoudnessMeter
from audio.probe import probe
from audio.resample import StreamResampler
from audio.tempo import ANALYSIS_RATE, TempoAnalyzer
from audio.transcode import FORMATS, transcode
from audio.waveform import WaveformBuilder
from tasks.context import WorkerContext

DEFAULT_FORMATS = ("mp3",)


def _upload(ctx: WorkerContext, job_id: str) -> tuple[str, str, list[str]]:
    with ctx.sessions() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise LookupError(f"job {job_id} does not exist")
        upload = session.get(Upload, job.upload_id)
        return upload.id, upload.storage_key, list(job.formats or DEFAULT_FORMATS)


def _save_analysis(ctx: WorkerContext, upload_id: str, **values) -> None:
    statement = insert(Analysis).values(upload_id=upload_id, **values)
    statement = statement.on_conflict_do_update(index_elements=["upload_id"], set_=values)
    with ctx.sessions.begin() as session:
        session.execute(statement)


def _file_chunks(path: Path, size: int = 1 << 20):
    with path.open("rb") as stream:
        while chunk := stream.read(size):
            yield chunk


def transcode_stage(ctx: WorkerContext, job_id: str) -> str:
    upload_id, key, formats = _upload(ctx, job_id)
    with ctx.storage.local_path(key) as source, tempfile.TemporaryDirectory() as folder:
        info = probe(source)
        with ctx.sessions.begin() as session:
            upload = session.get(Upload, upload_id)
            upload.duration_s, upload.sample_rate = info.duration_s, info.sample_rate
            upload.channels, upload.codec, upload.bitrate = info.channels, info.codec, info.bitrate
        for fmt in formats:
            extension = FORMATS[fmt].extension
            result = transcode(source, Path(folder) / f"out.{extension}", fmt)
            out_key = f"outputs/{upload_id}/{fmt}.{extension}"
            stored = ctx.storage.save(out_key, _file_chunks(Path(result.path)))
            values = {
                "bitrate": result.bitrate,
                "storage_key": out_key,
                "size_bytes": stored.size,
                "duration_s": result.duration_s,
            }
            statement = insert(Output).values(upload_id=upload_id, format=fmt, **values)
            statement = statement.on_conflict_do_update(
                constraint="outputs_one_per_format", set_=values
            )
            with ctx.sessions.begin() as session:
                session.execute(statement)
    return f"transcoded to {', '.join(formats)}"


def loudness_stage(ctx: WorkerContext, job_id: str) -> str:
    upload_id, key, _ = _upload(ctx, job_id)
    with ctx.storage.local_path(key) as source:
        stream = DecodedStream(source)
        meter = LoudnessMeter(stream.sample_rate, stream.channels, stream.info.channel_names)
        for block in stream.blocks():
            meter.add(block)
    result = meter.result()
    _save_analysis(
        ctx,
        upload_id,
        integrated_lufs=result.integrated_lufs,
        loudness_range_lu=result.loudness_range_lu,
        true_peak_dbtp=result.true_peak_dbtp,
        sample_peak_dbfs=result.sample_peak_dbfs,
        short_term_lufs=result.to_dict()["short_term_lufs"],
    )
    lufs = "silence" if result.integrated_lufs is None else f"{result.integrated_lufs:.1f} LUFS"
    return f"loudness {lufs}"


def tempo_key_stage(ctx: WorkerContext, job_id: str) -> str:
    upload_id, key, _ = _upload(ctx, job_id)
    with ctx.storage.local_path(key) as source:
        stream = DecodedStream(source)
        resampler = StreamResampler(stream.sample_rate, ANALYSIS_RATE)
        tempo, key_analyzer = TempoAnalyzer(ANALYSIS_RATE), KeyAnalyzer(ANALYSIS_RATE)
        for block in stream.blocks():
            mono = resampler.add(block.mean(axis=0))
            tempo.add(mono)
            key_analyzer.add(mono)
        rest = resampler.flush()
        tempo.add(rest)
        key_analyzer.add(rest)
    t, k = tempo.result(), key_analyzer.result()
    _save_analysis(
        ctx,
        upload_id,
        bpm=t.bpm,
        bpm_confidence=t.confidence,
        key=k.tonic,
        key_scale=k.scale,
        key_confidence=k.confidence,
        camelot=k.camelot,
    )
    return f"tempo {t.bpm:.1f} BPM, key {k.name}" if t.bpm and k.name else "no beat or key found"


def finalize_stage(ctx: WorkerContext, job_id: str) -> str:
    upload_id, key, _ = _upload(ctx, job_id)
    with ctx.storage.local_path(key) as source:
        stream = DecodedStream(source)
        frames = round(stream.info.duration_s * stream.sample_rate) or None
        builder = WaveformBuilder(frames, stream.sample_rate)
        for block in stream.blocks():
            builder.add(block)
    waveform = builder.result()
    png = io.BytesIO()
    waveform.render_png(png)
    png_key, json_key = f"waveforms/{upload_id}.png", f"waveforms/{upload_id}.json"
    ctx.storage.save(png_key, [png.getvalue()])
    ctx.storage.save(json_key, [json.dumps(waveform.to_audiowaveform_json()).encode()])
    _save_analysis(ctx, upload_id, waveform_png_key=png_key, waveform_json_key=json_key)
    return "waveform drawn"
