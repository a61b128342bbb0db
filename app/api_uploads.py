"""Uploads: receive a file (streamed to storage, sniffed, hashed), queue its job, serve results.

The Go service's routes stay as aliases: ``POST /upload``, ``GET /uploads/<id>``,
``GET /uploads/<id>/analysis``. (The ``/api`` rule of each view is declared first, nearest the
function, so ``url_for`` builds links to it.)
"""

from __future__ import annotations

import itertools
import logging

from dramatiq.errors import BrokerConnectionError
from flask import Blueprint, Response, jsonify, request, url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.utils import secure_filename

from app.logs import bind
from app.metrics import metrics
from app.models import Analysis, Job, Output, Upload, new_id
from app.web import ApiError, require_token, sessions, storage
from audio.sniff import HEAD_BYTES, sniff
from audio.transcode import FORMATS

logger = logging.getLogger(__name__)
uploads = Blueprint("uploads", __name__)
CHUNK = 1 << 20
DEFAULT_FORMATS = ["mp3"]


def parse_formats(raw: str | None) -> list[str]:
    if not raw:
        return list(DEFAULT_FORMATS)
    formats = list(dict.fromkeys(f.strip().lower() for f in raw.split(",") if f.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ApiError(
            400, "unknown_format",
            f"unknown format {', '.join(unknown)}; choose from {', '.join(FORMATS)}",
        )  # fmt: skip
    return formats


def links(upload_id: str, job_id: str) -> dict:
    return {
        "upload": url_for("uploads.get_upload", upload_id=upload_id),
        "analysis": url_for("uploads.get_analysis", upload_id=upload_id),
        "job": url_for("jobs.get_job", job_id=job_id),
        "events": url_for("jobs.job_events", job_id=job_id),
    }


def accepted(upload: Upload, job: Job):
    body = {"upload_id": upload.id, "job_id": job.id, "status": job.status,
            "links": links(upload.id, job.id)}  # fmt: skip
    return jsonify(body), 202


@uploads.post("/upload")
@uploads.post("/api/uploads")
@require_token
def create_upload():
    key = request.headers.get("Idempotency-Key", "").strip() or None
    if key is not None:
        earlier = _by_idempotency_key(key)
        if earlier is not None:
            return accepted(*earlier)
    file = request.files.get("file")
    if file is None:
        raise ApiError(400, "no_file", "send the audio as a multipart form field named 'file'")
    formats = parse_formats(request.form.get("formats") or request.args.get("formats"))
    head = file.stream.read(HEAD_BYTES)
    kind = sniff(head)
    if kind is None:
        raise ApiError(400, "not_audio", "not an audio file (MP3, WAV, FLAC, Ogg, M4A or AIFF)")
    extension, content_type = kind
    upload_id = new_id()
    filename = secure_filename(file.filename or "") or f"upload.{extension}"
    chunks = itertools.chain([head], iter(lambda: file.stream.read(CHUNK), b""))
    stored = storage().save(f"uploads/{upload_id}/original.{extension}", chunks)
    upload = Upload(
        id=upload_id, filename=filename[:255], content_type=content_type,
        size_bytes=stored.size, sha256=stored.sha256, storage_key=stored.key,
        idempotency_key=key,
    )  # fmt: skip
    job = Job(upload_id=upload_id, formats=formats)
    try:
        with sessions().begin() as session:
            session.add(upload)
            session.flush()
            job.upload_id = upload.id
            session.add(job)
    except IntegrityError:  # the same Idempotency-Key raced us: answer with the first upload
        storage().delete(stored.key)
        earlier = _by_idempotency_key(key) if key else None
        if earlier is None:
            raise
        return accepted(*earlier)
    bind(upload_id=upload.id, job_id=job.id)
    metrics().uploads.inc()
    metrics().upload_bytes.inc(stored.size)
    _queue(job)
    logger.info("upload %s stored (%d bytes), job %s queued", upload.id, stored.size, job.id)
    return accepted(upload, job)


def _by_idempotency_key(key: str) -> tuple[Upload, Job] | None:
    with sessions()() as session:
        upload = session.scalars(select(Upload).where(Upload.idempotency_key == key)).first()
        if upload is None:
            return None
        job = session.scalars(
            select(Job).where(Job.upload_id == upload.id).order_by(Job.created_at)
        ).first()
        return upload, job


def _queue(job: Job) -> None:
    from tasks import pipeline, progress

    try:
        pipeline.start(job.id)
    except BrokerConnectionError as exc:
        logger.error("could not queue job %s: %s", job.id, exc)
        progress.job_failed(sessions(), job.id, "queue", "could not be queued; retry the job")
        raise ApiError(503, "queue_unavailable", "the job queue is unreachable; retry") from exc


def upload_dict(upload: Upload) -> dict:
    return {
        "id": upload.id,
        "filename": upload.filename,
        "content_type": upload.content_type,
        "size_bytes": upload.size_bytes,
        "sha256": upload.sha256,
        "created_at": upload.created_at.isoformat(),
        "duration_s": upload.duration_s,
        "sample_rate": upload.sample_rate,
        "channels": upload.channels,
        "codec": upload.codec,
        "bitrate": upload.bitrate,
    }


def _upload_or_404(session, upload_id: str) -> Upload:
    upload = session.get(Upload, upload_id)
    if upload is None:
        raise ApiError(404, "not_found", f"no upload {upload_id}")
    return upload


@uploads.get("/uploads/<upload_id>")
@uploads.get("/api/uploads/<upload_id>")
@require_token
def get_upload(upload_id: str):
    with sessions()() as session:
        return jsonify(upload_dict(_upload_or_404(session, upload_id)))


@uploads.get("/uploads/<upload_id>/analysis")
@uploads.get("/api/uploads/<upload_id>/analysis")
@require_token
def get_analysis(upload_id: str):
    with sessions()() as session:
        _upload_or_404(session, upload_id)
        job = session.scalars(
            select(Job).where(Job.upload_id == upload_id).order_by(Job.created_at.desc())
        ).first()
        if job is not None and job.status == "failed":
            raise ApiError(409, "job_failed", job.error or "the analysis failed")
        if job is None or job.status != "done":
            body = {"status": job.status if job else "queued", "stage": job and job.stage,
                    "progress": job.progress if job else 0}  # fmt: skip
            return jsonify(body), 202
        analysis = session.get(Analysis, upload_id)
        outputs = session.scalars(select(Output).where(Output.upload_id == upload_id)).all()
        return jsonify(analysis_dict(analysis, outputs))


def analysis_dict(analysis: Analysis, outputs: list[Output]) -> dict:
    key = f"{analysis.key} {analysis.key_scale}" if analysis.key else None
    return {
        "upload_id": analysis.upload_id,
        "integrated_lufs": analysis.integrated_lufs,
        "loudness_range_lu": analysis.loudness_range_lu,
        "true_peak_dbtp": analysis.true_peak_dbtp,
        "sample_peak_dbfs": analysis.sample_peak_dbfs,
        "short_term_lufs": analysis.short_term_lufs,
        "bpm": analysis.bpm,
        "bpm_confidence": analysis.bpm_confidence,
        "key": key,
        "key_scale": analysis.key_scale,
        "key_confidence": analysis.key_confidence,
        "camelot": analysis.camelot,
        "waveform": {
            "png": url_for("uploads.waveform", upload_id=analysis.upload_id, kind="png"),
            "json": url_for("uploads.waveform", upload_id=analysis.upload_id, kind="json"),
        },
        "outputs": {
            o.format: {
                "url": url_for("uploads.get_output", upload_id=o.upload_id, fmt=o.format),
                "size_bytes": o.size_bytes,
                "bitrate": o.bitrate,
            }
            for o in outputs
        },
    }


def _stream(key: str, mimetype: str, filename: str | None = None) -> Response:
    response = Response(storage().read_chunks(key), mimetype=mimetype)
    if filename:
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


_MIMETYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/mp4",
              "flac": "audio/flac", "wav": "audio/wav"}  # fmt: skip


@uploads.get("/api/uploads/<upload_id>/outputs/<fmt>")
@require_token
def get_output(upload_id: str, fmt: str):
    with sessions()() as session:
        upload = _upload_or_404(session, upload_id)
        output = session.scalars(
            select(Output).where(Output.upload_id == upload_id, Output.format == fmt)
        ).first()
        if output is None:
            raise ApiError(404, "not_found", f"no {fmt} output for upload {upload_id}")
        stem = upload.filename.rsplit(".", 1)[0] or "audio"
        name = f"{stem}.{FORMATS[fmt].extension}" if fmt in FORMATS else None
        return _stream(output.storage_key, _MIMETYPES.get(fmt, "application/octet-stream"), name)


@uploads.get("/api/uploads/<upload_id>/waveform.<kind>")
@require_token
def waveform(upload_id: str, kind: str):
    if kind not in ("png", "json"):
        raise ApiError(404, "not_found", "waveform.png or waveform.json")
    with sessions()() as session:
        _upload_or_404(session, upload_id)
        analysis = session.get(Analysis, upload_id)
        key = analysis and (
            analysis.waveform_png_key if kind == "png" else analysis.waveform_json_key
        )
        if not key:
            raise ApiError(409, "not_ready", "the waveform is not drawn yet")
    return _stream(key, "image/png" if kind == "png" else "application/json")
