"""``GET /api/openapi.json``: an OpenAPI 3.1 description of the HTTP API.

Written by hand, next to the routes; a test checks that every ``/api`` route of the app is in
it, so the two cannot drift apart silently.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

bp = Blueprint("openapi", __name__)

_ERROR = {
    "description": "error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


#: PostgreSQL, NATS or the storage is away: nothing was kept, try again after ``Retry-After``.
_UNAVAILABLE = {
    **_ERROR,
    "description": "a server behind the API is away; nothing was kept: retry after Retry-After",
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
}


#: Downloads from S3 storage with ``S3_PRESIGN=1``.
_PRESIGNED = {"description": "S3_PRESIGN=1: Location is a presigned URL of the file (5 minutes)"}


def _op(summary: str, responses: dict, **extra) -> dict:
    return {"summary": summary, "responses": {**responses, "default": _ERROR}, **extra}


def _json(description: str, schema: str | None = None) -> dict:
    content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    return {"description": description, **({"content": content} if schema else {})}


_ID = {"in": "path", "required": True, "schema": {"type": "string"}}
_DLQ_FILTERS = [
    {"in": "query", "name": "queue", "schema": {"type": "string"}},
    {"in": "query", "name": "actor", "schema": {"type": "string"}},
]

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {"title": "PhantomChain", "version": "1"},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                    }
                },
            },
            "Accepted": {
                "type": "object",
                "properties": {
                    "upload_id": {"type": "string"},
                    "job_id": {"type": "string"},
                    "status": {"type": "string"},
                    "links": {"type": "object"},
                },
            },
            "Job": {"type": "object"},
            "Upload": {"type": "object"},
            "UploadForm": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "formats": {"type": "string", "example": "mp3,opus"},
                    "normalize": {
                        "type": "string",
                        "description": "normalise every output to a platform's target "
                        "(spotify −14 LUFS, apple −16, youtube −14, ebu −23, podcast −16; "
                        "all with a −1 dBTP ceiling) or to a number of LUFS (−60 … −5)",
                        "example": "spotify",
                    },
                    "true_peak": {
                        "type": "string",
                        "description": "the true-peak ceiling in dBTP (−20 … 0), with normalize",
                        "example": "-1",
                    },
                    "callback_url": {
                        "type": "string",
                        "description": "an http(s) URL on a public address, POSTed the job's "
                        "end (job.done | job.failed), signed per Standard Webhooks "
                        "(webhook-id, webhook-timestamp, webhook-signature); needs "
                        "WEBHOOK_SECRET on the service",
                        "example": "https://example.com/hooks/phantomchain",
                    },
                },
            },
            "Delivery": {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "description": "the webhook-id header"},
                    "type": {"type": "string", "example": "job.done"},
                    "url": {"type": "string"},
                    "status": {"type": "string", "enum": ["pending", "delivered", "failed"]},
                    "attempts": {"type": "integer"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
                    "finished_at": {"type": ["string", "null"], "format": "date-time"},
                    "tries": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "at": {"type": "string", "format": "date-time"},
                                "status_code": {"type": ["integer", "null"]},
                                "error": {"type": ["string", "null"]},
                                "duration_ms": {"type": "integer"},
                            },
                        },
                    },
                },
            },
            "BatchForm": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "minItems": 1,
                        "maxItems": 100,
                        "description": "several fields named file, each an audio file",
                    },
                    "formats": {"type": "string", "example": "mp3,opus"},
                    "normalize": {"type": "string", "description": "as for one upload"},
                    "true_peak": {"type": "string", "description": "as for one upload"},
                    "callback_url": {
                        "type": "string",
                        "description": "the batch's webhook, made once when all its jobs ended",
                    },
                },
            },
            "BatchOfUploads": {
                "type": "object",
                "required": ["upload_ids"],
                "additionalProperties": False,
                "properties": {
                    "upload_ids": {
                        "type": "array",
                        "items": {"type": "string"},
                        "minItems": 1,
                        "maxItems": 100,
                        "uniqueItems": True,
                        "description": "the latest job of each is grouped (not run again)",
                    },
                    "callback_url": {"type": ["string", "null"]},
                },
            },
            "BatchAccepted": {
                "type": "object",
                "properties": {
                    "batch_id": {"type": "string"},
                    "status": {"$ref": "#/components/schemas/BatchStatus"},
                    "jobs": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "upload_id": {"type": "string"},
                                "job_id": {"type": "string"},
                                "status": {"type": "string"},
                            },
                        },
                    },
                    "links": {
                        "type": "object",
                        "properties": {"batch": {"type": "string"}},
                    },
                },
            },
            "BatchStatus": {
                "type": "string",
                "enum": ["queued", "running", "done", "failed"],
                "description": "queued: every job is; done: every job is; failed: all ended, "
                "some failed; running otherwise",
            },
            "Batch": {
                "type": "object",
                "properties": {
                    "batch_id": {"type": "string"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "ended_at": {
                        "type": ["string", "null"],
                        "format": "date-time",
                        "description": "when every job had ended and the webhook was made",
                    },
                    "status": {"$ref": "#/components/schemas/BatchStatus"},
                    "counts": {
                        "type": "object",
                        "properties": {
                            s: {"type": "integer"} for s in ("queued", "running", "done", "failed")
                        },
                    },
                    "callback_url": {"type": ["string", "null"]},
                    "jobs": {
                        "type": "array",
                        "description": "in the order given",
                        "items": {
                            "type": "object",
                            "properties": {
                                "job_id": {"type": "string"},
                                "upload_id": {"type": "string"},
                                "filename": {"type": "string"},
                                "status": {"type": "string"},
                                "stage": {"type": ["string", "null"]},
                                "progress": {"type": "integer"},
                                "error": {"type": ["string", "null"]},
                            },
                        },
                    },
                    "deliveries": {
                        "type": "array",
                        "items": {"type": "object"},
                        "description": "the batch's webhook messages, each with its attempts",
                    },
                },
            },
            "Normalization": {
                "type": ["object", "null"],
                "description": "what normalising did to an output, measured on the decoded file",
                "properties": {
                    "target_lufs": {"type": "number"},
                    "true_peak_ceiling_dbtp": {"type": "number"},
                    "gain_db": {"type": "number"},
                    "limited_db": {"type": "number", "description": "most gain reduction"},
                    "output_integrated_lufs": {"type": ["number", "null"]},
                    "output_true_peak_dbtp": {"type": ["number", "null"]},
                    "reason": {"type": ["string", "null"]},
                },
            },
            "Analysis": {
                "type": "object",
                "description": "A measurement the audio gives no evidence for is null, and its "
                "`*_reason` says why (DC, a click, silence, noise, drums only, no onsets).",
                "properties": {
                    "integrated_lufs": {"type": ["number", "null"]},
                    "loudness_range_lu": {"type": ["number", "null"]},
                    "true_peak_dbtp": {"type": ["number", "null"]},
                    "sample_peak_dbfs": {"type": ["number", "null"]},
                    "loudness_reason": {"type": ["string", "null"]},
                    "loudness_range_reason": {"type": ["string", "null"]},
                    "bpm": {"type": ["number", "null"]},
                    "bpm_confidence": {
                        "type": ["number", "null"],
                        "description": "0…1; low when the octave (half/double) is ambiguous",
                    },
                    "bpm_reason": {"type": ["string", "null"]},
                    "beats": {
                        "type": ["array", "null"],
                        "items": {"type": "number"},
                        "description": "seconds of each beat: a beat grid",
                    },
                    "key": {"type": ["string", "null"], "example": "A minor"},
                    "key_confidence": {"type": ["number", "null"]},
                    "key_reason": {"type": ["string", "null"]},
                    "camelot": {"type": ["string", "null"], "example": "8A"},
                    "audio_start_s": {
                        "type": ["number", "null"],
                        "description": "where the sound starts (the leading silence ends)",
                    },
                    "audio_end_s": {"type": ["number", "null"]},
                    "leading_silence_s": {"type": ["number", "null"]},
                    "trailing_silence_s": {"type": ["number", "null"]},
                    "outputs": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "properties": {
                                "url": {"type": "string"},
                                "size_bytes": {"type": "integer"},
                                "bitrate": {"type": ["integer", "null"]},
                                "normalization": {"$ref": "#/components/schemas/Normalization"},
                            },
                        },
                    },
                },
            },
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/api/uploads": {
            "post": _op(
                "Upload audio (multipart field `file`; optional `formats`, e.g. mp3,opus, "
                "`normalize` and `true_peak`)",
                {
                    "202": _json("queued", "Accepted"),
                    "400": _ERROR,
                    "413": _ERROR,
                    "422": _json("the Idempotency-Key was sent before with another request"),
                    "429": _json("over a tenant quota (Retry-After)"),
                    "503": _UNAVAILABLE,
                },
                parameters=[
                    {
                        "in": "header",
                        "name": "Idempotency-Key",
                        "schema": {"type": "string", "maxLength": 200},
                    }
                ],
                requestBody={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {"$ref": "#/components/schemas/UploadForm"}
                        }
                    },
                },
            )
        },
        "/api/uploads/{upload_id}": {
            "get": _op(
                "An upload and its audio properties",
                {"200": _json("the upload", "Upload")},
                parameters=[{**_ID, "name": "upload_id"}],
            ),
            "delete": _op(
                "Remove an upload whose job has ended, with its outputs and waveform",
                {"204": {"description": "removed"}, "404": _ERROR, "409": _ERROR},
                parameters=[{**_ID, "name": "upload_id"}],
            ),
        },
        "/api/uploads/{upload_id}/analysis": {
            "get": _op(
                "The analysis: 202 while it runs, 409 if it failed",
                {"200": _json("the analysis", "Analysis"), "202": _json("running"), "409": _ERROR},
                parameters=[{**_ID, "name": "upload_id"}],
            )
        },
        "/api/uploads/{upload_id}/outputs/{fmt}": {
            "get": _op(
                "Download a transcode",
                {"200": {"description": "the audio file"}, "302": _PRESIGNED},
                parameters=[{**_ID, "name": "upload_id"}, {**_ID, "name": "fmt"}],
            )
        },
        "/api/uploads/{upload_id}/waveform.{kind}": {
            "get": _op(
                "The waveform: png, or json (BBC audiowaveform layout)",
                {"200": {"description": "image or peaks"}, "302": _PRESIGNED},
                parameters=[{**_ID, "name": "upload_id"}, {**_ID, "name": "kind"}],
            )
        },
        "/api/batches": {
            "post": _op(
                "Several files (multipart: several `file` fields, with the options of one "
                "upload for every job) or several uploads' latest jobs (JSON `upload_ids`) "
                "under one id; all or nothing; `callback_url` is told once all have ended",
                {
                    "202": _json("queued", "BatchAccepted"),
                    "400": _json(
                        "not_audio (naming the file), empty_batch, too_many, "
                        "duplicate_upload, bad_body, bad_callback_url…"
                    ),
                    "404": _json("an upload that is not the caller's"),
                    "413": _ERROR,
                    "429": _json("over a tenant quota (Retry-After)"),
                    "503": _UNAVAILABLE,
                },
                requestBody={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {"$ref": "#/components/schemas/BatchForm"}
                        },
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/BatchOfUploads"}
                        },
                    },
                },
            )
        },
        "/api/batches/{batch_id}": {
            "get": _op(
                "A batch: each job's state in order, counts, overall status, its webhook",
                {"200": _json("the batch", "Batch"), "404": _ERROR},
                parameters=[{**_ID, "name": "batch_id"}],
            )
        },
        "/api/jobs": {
            "get": _op(
                "Jobs, newest first",
                {"200": _json("a page of jobs")},
                parameters=[
                    {"in": "query", "name": "status", "schema": {"type": "string"}},
                    {"in": "query", "name": "limit", "schema": {"type": "integer"}},
                    {"in": "query", "name": "offset", "schema": {"type": "integer"}},
                ],
            )
        },
        "/api/jobs/{job_id}": {
            "get": _op(
                "A job with its events",
                {"200": _json("the job", "Job")},
                parameters=[{**_ID, "name": "job_id"}],
            ),
            "patch": _op(
                "Admin: set a job's status (the Go service's route)",
                {"200": _json("the job", "Job")},
                parameters=[{**_ID, "name": "job_id"}],
            ),
        },
        "/api/jobs/{job_id}/deliveries": {
            "get": _op(
                "The webhooks the job's end made, each with every attempt",
                {
                    "200": {
                        "description": "{deliveries: [...]}",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "deliveries": {
                                            "type": "array",
                                            "items": {"$ref": "#/components/schemas/Delivery"},
                                        }
                                    },
                                }
                            }
                        },
                    }
                },
                parameters=[{**_ID, "name": "job_id"}],
            )
        },
        "/api/jobs/{job_id}/events": {
            "get": _op(
                "Progress as Server-Sent Events until done or failed",
                {"200": {"description": "text/event-stream"}},
                parameters=[{**_ID, "name": "job_id"}],
            )
        },
        "/api/jobs/{job_id}/retry": {
            "post": _op(
                "Admin: run a failed job again",
                {"202": _json("queued")},
                parameters=[{**_ID, "name": "job_id"}],
            )
        },
        "/api/dead-letters": {
            "get": _op(
                "Admin: dead letters, oldest first",
                {"200": _json("{dead_letters, count}")},
                parameters=[
                    *_DLQ_FILTERS,
                    {"in": "query", "name": "limit", "schema": {"type": "integer"}},
                ],
            ),
            "delete": _op(
                "Admin: purge dead letters (optionally of one queue and/or actor)",
                {"200": _json("{purged}")},
                parameters=_DLQ_FILTERS,
            ),
        },
        "/api/dead-letters/retry": {
            "post": _op(
                'Admin: replay dead letters: {"ids": [...]} or {"all": true, "queue", "actor"}',
                {
                    "202": _json("{retried, not_found, not_replayable}"),
                    "200": _json("none retried"),
                    "400": _ERROR,
                },
            )
        },
        "/api/dead-letters/{dead_letter_id}": {
            "get": _op(
                "Admin: one dead letter with payload and traceback",
                {"200": _json("the dead letter"), "404": _ERROR},
                parameters=[{**_ID, "name": "dead_letter_id"}],
            ),
            "delete": _op(
                "Admin: drop one dead letter",
                {"204": {"description": "deleted"}, "404": _ERROR},
                parameters=[{**_ID, "name": "dead_letter_id"}],
            ),
        },
        "/api/dead-letters/{dead_letter_id}/retry": {
            "post": _op(
                "Admin: replay one dead letter (its pipeline job goes back to queued)",
                {"202": _json("{id, message_id, job_id}"), "404": _ERROR, "409": _ERROR},
                parameters=[{**_ID, "name": "dead_letter_id"}],
            )
        },
        "/api/openapi.json": {"get": _op("This document", {"200": _json("OpenAPI")}, security=[])},
        "/healthz": {"get": _op("Liveness", {"200": _json("ok")}, security=[])},
        "/readyz": {
            "get": _op(
                "Readiness: database, migrations, NATS, JetStream",
                {"200": _json("ready"), "503": _json("not ready")},
                security=[],
            )
        },
    },
}


@bp.get("/api/openapi.json")
def document():
    return jsonify(DOCUMENT)
