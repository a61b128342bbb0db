"""``GET /api/openapi.json``: an OpenAPI 3.1 description of the HTTP API.

Written by hand, next to the routes; tests check that every ``/api`` route of the app is in
it, and that what it declares — bounds, bodies, form fields, audio types — is what the routes
take and refuse (``tests/integration/app/http/api/test_openapi.py``), so the two cannot drift apart
silently. A request valid by it is taken; it may be narrower than a route (a route also takes
``formats`` in any case, say), never wider.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from app.batches import MAX_JOBS
from app.dead_letters import QUEUE_NAME
from app.failing import FAILING_CHOICES
from app.models import JOB_STATUSES
from app.queue import PRIORITIES
from app.webhooks.addresses import MAX_URL_CHARS
from audio.bpm_range import HIGHEST_BPM, LOWEST_BPM
from audio.formats import FORMATS
from audio.targets import LUFS_RANGE, PRESETS, TRUE_PEAK_RANGE
from audio.verdicts import CHECK_NAMES, REASON_KEYS

bp = Blueprint("openapi", __name__)

_ERROR = {
    "description": "error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def _error(description: str) -> dict:
    return {**_ERROR, "description": description}


#: PostgreSQL, NATS or the storage is away: nothing was kept, try again after ``Retry-After``.
_UNAVAILABLE = {
    **_ERROR,
    "description": "a server behind the API is away; nothing was kept: retry after Retry-After",
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
}
#: Over a tenant's quota (uploads per hour, storage), or its share of event streams.
_NUMBER_OR_NULL = {"type": ["number", "null"]}
_NUMBERS_OR_NULL = {"type": ["array", "null"], "items": {"type": ["number", "null"]}}
#: The quality checks of an analysis (``audio.checks``); each `*_reason` is a sentence when its
#: check is null (or stands out), else null; a row analysed before the checks existed has every
#: value null and every reason saying so.
_CHECKS = {
    "max_momentary_lufs": {**_NUMBER_OR_NULL, "description": "loudest 400 ms (EBU Tech 3341)"},
    "max_short_term_lufs": {**_NUMBER_OR_NULL, "description": "loudest 3 s (EBU Tech 3341)"},
    "plr_db": {**_NUMBER_OR_NULL, "description": "peak to loudness ratio: true peak − LUFS"},
    "channel_loudness_lufs": {
        **_NUMBERS_OR_NULL,
        "description": "integrated loudness of each channel measured alone",
    },
    "clipping": {
        "type": ["object", "null"],
        "description": "flat tops: runs of 3+ samples at full scale, counted per channel",
        "properties": {
            "runs": {"type": "integer"},
            "clipped_s": {"type": "number", "description": "in the most clipped channel"},
            "first_s": {"type": ["number", "null"]},
        },
    },
    "dc_offset_dbfs": {
        **_NUMBERS_OR_NULL,
        "description": "each channel's mean, dBFS (null: a silent channel)",
    },
    "stereo_correlation": {**_NUMBER_OR_NULL, "description": "−1…1; null unless stereo"},
    "mono_loss_lu": {
        **_NUMBER_OR_NULL,
        "description": "how much quieter the channels summed to mono are (0 same, ~3 unrelated)",
    },
    "bandwidth_hz": {**_NUMBER_OR_NULL, "description": "highest frequency carrying the music"},
    "lossy_origin": {
        "type": ["boolean", "null"],
        "description": "a lossless upload cut off like a lossy encoder's low-pass; null for "
        "lossy uploads and when there is too little treble to tell",
    },
    **{key: {"type": ["string", "null"]} for key in REASON_KEYS},
    "failed_checks": {
        "type": ["array", "null"],
        "items": {"type": "string", "enum": list(CHECK_NAMES)},
        "description": "the checks the upload fails (the jobs list's `failing` filter)",
    },
}

_TOO_MANY = {
    **_ERROR,
    "description": "over a tenant quota: retry after Retry-After",
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
}
_UNAUTHORIZED = _error("unauthorized: no valid bearer token (or signed-in session) was sent")
#: A signed-in browser session's unsafe request from another site, or without its CSRF token.
_CROSS_SITE = _error("cross_site or csrf: a browser session's request from another site")
_FORBIDDEN = _error("forbidden: the route needs an admin token (or cross_site, csrf)")
_TOO_LARGE = _error("too_large: the body is over its limit")


#: Downloads from S3 storage with ``S3_PRESIGN=1``.
_PRESIGNED = {"description": "S3_PRESIGN=1: Location is a presigned URL of the file (5 minutes)"}


#: Downloads of stored files answer byte ranges (``app.http.ranges``): the headers a client
#: may send, and the answers besides the whole file.
_RANGE_PARAMETERS = [
    {
        "in": "header",
        "name": "Range",
        "description": "one byte range: bytes=a-b, bytes=a- or bytes=-n (206); several "
        "ranges, or a Range that does not parse, get the whole file (200)",
        "schema": {"type": "string", "examples": ["bytes=0-1023"]},
    },
    {
        "in": "header",
        "name": "If-Range",
        "description": "the ETag of the file the range was taken from; another value gets "
        "the whole file",
        "schema": {"type": "string"},
    },
    {
        "in": "header",
        "name": "If-None-Match",
        "description": "the file's ETag: 304 when it has not changed",
        "schema": {"type": "string"},
    },
]
_FILE_HEADERS = {
    "Accept-Ranges": {"schema": {"type": "string", "const": "bytes"}},
    "ETag": {"schema": {"type": "string"}, "description": "changes with the file's bytes"},
    "Content-Length": {"schema": {"type": "integer"}},
}
_RANGE_RESPONSES = {
    "206": {
        "description": "the byte range asked for",
        "headers": {
            **_FILE_HEADERS,
            "Content-Range": {
                "schema": {"type": "string"},
                "description": "bytes first-last/size",
            },
        },
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},  # the file's type
    },
    "304": {"description": "If-None-Match named the file's ETag", "headers": _FILE_HEADERS},
    "416": {
        **_ERROR,
        "description": "range_not_satisfiable: the range starts past the end of the file",
        "headers": {"Content-Range": {"schema": {"type": "string"}, "description": "bytes */size"}},
    },
}


def _op(summary: str, responses: dict, **extra) -> dict:
    """An operation; one behind a token (any but ``security=[]``) may also be a 401, and a 503
    (the token is looked up in the database)."""
    if extra.get("security") != []:
        responses = {"401": _UNAUTHORIZED, "503": _UNAVAILABLE, **responses}
    return {"summary": summary, "responses": {**responses, "default": _ERROR}, **extra}


def _json(description: str, schema: str | None = None) -> dict:
    content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    return {"description": description, **({"content": content} if schema else {})}


#: ``<id:…>`` in a route (``app.http.params.IdConverter``): a UUID, any case; anything else
#: matches no route (404).
_UUID = {
    "type": "string",
    "format": "uuid",
    "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
}
_ID = {"in": "path", "required": True, "schema": _UUID}
#: A dead letter's id: its sequence number in the dead-letter stream; anything else is a 404.
_DEAD_LETTER_ID = {
    "in": "path",
    "name": "dead_letter_id",
    "required": True,
    "schema": {"type": "string", "pattern": "^[1-9][0-9]*$", "examples": ["42"]},
}
#: A queue's name (``app.dead_letters.QUEUE_NAME``); blank is no filter.
_QUEUE = {
    "type": "string",
    "pattern": f"^{QUEUE_NAME.pattern}$",
    "examples": ["pipeline"],
}
_DLQ_FILTERS = [
    {"in": "query", "name": "queue", "schema": _QUEUE},
    {"in": "query", "name": "actor", "schema": {"type": "string", "examples": ["run_stage"]}},
]
#: ``?limit=`` of a list (``app.http.params.int_arg``): a whole number within the bounds.
_LIMIT = {"in": "query", "name": "limit", "description": "how many at most"}

#: The audio an upload may be (``audio.sniff``): recognised by its first bytes, whatever the
#: part's own Content-Type says; each as the type the upload is then recorded with.
_AUDIO_TYPES = (
    "audio/mpeg",
    "audio/wav",
    "audio/flac",
    "audio/ogg",
    "audio/aiff",
    "audio/mp4",
    "audio/aac",
)
_AUDIO_FILE = {
    "type": "string",
    "format": "binary",
    "contentMediaType": "audio/*",
    "description": "MP3, WAV, FLAC, Ogg (Vorbis, Opus, FLAC), M4A/MP4, AAC (ADTS) or AIFF, "
    "known by its first bytes; anything else is a 400 not_audio",
}
#: How each audio file of a form is sent.
_AUDIO_ENCODING = {"contentType": ", ".join(_AUDIO_TYPES)}

_FORMAT_NAME = "(" + "|".join(FORMATS) + ")"
#: The fields every upload of a form shares (``app.http.api.accepting``). A blank field is absent.
_UPLOAD_FIELDS = {
    "formats": {
        "type": "string",
        "pattern": f"^{_FORMAT_NAME}(,{_FORMAT_NAME})*$",
        "description": f"the outputs, comma-separated: {', '.join(FORMATS)} "
        "(default mp3; any case, spaces allowed)",
        "examples": ["mp3,opus"],
    },
    "normalize": {
        "description": "normalise every output to a platform's target ("
        + ", ".join(f"{name} {target.lufs:g} LUFS" for name, target in PRESETS.items())
        + f"; all with a -1 dBTP ceiling) or to a number of LUFS ({LUFS_RANGE[0]:g} … "
        f"{LUFS_RANGE[1]:g})",
        "anyOf": [
            {"type": "string", "enum": list(PRESETS)},
            {"type": "number", "minimum": LUFS_RANGE[0], "maximum": LUFS_RANGE[1]},
        ],
        "examples": ["spotify", -18],
    },
    "true_peak": {
        "type": "number",
        "minimum": TRUE_PEAK_RANGE[0],
        "maximum": TRUE_PEAK_RANGE[1],
        "description": "the true-peak ceiling in dBTP, with normalize (default: the "
        "preset's, else -1)",
        "examples": [-1],
    },
    "bpm_range": {
        "type": "string",
        "pattern": "^ *[0-9]+(\\.[0-9]+)? *- *[0-9]+(\\.[0-9]+)? *$",
        "maxLength": 40,
        "description": f"LOW-HIGH: the BPM is folded by octaves (x2, /2) into this range, as DJ "
        f"software offers; both within {LOWEST_BPM:g}-{HIGHEST_BPM:g}, LOW below HIGH (else 400 "
        "bad_bpm_range). A range narrower than an octave may hold no octave of the tempo: the "
        "nearest is taken. Default: the octave is chosen automatically",
        "examples": ["120-200", "70-140"],
    },
}
#: An http(s) URL without credentials or fragment (``app.webhooks.addresses``); its host must also
#: resolve to public addresses, and the service have a ``WEBHOOK_SECRET`` (else 400).
_CALLBACK_URL = {
    "type": "string",
    "format": "uri",
    "maxLength": MAX_URL_CHARS,
    # printable ASCII: a host or [IPv6] (no user:password@), a port, a path and query, no #
    "pattern": "^https?://([A-Za-z0-9._~%!$&'()*+,;=-]+|\\[[0-9A-Fa-f:.]+\\])"
    '(:[1-9][0-9]{0,4})?([/?][!-"$-~]*)?$',
}
_CALLBACK_WORDS = (
    "an http(s) URL on a public address, POSTed {what}, signed per Standard Webhooks "
    "(webhook-id, webhook-timestamp, webhook-signature); needs WEBHOOK_SECRET on the service "
    "(else 400 webhooks_off)"
)


def _priority(default: str) -> dict:
    return {
        "type": "string",
        "enum": list(PRIORITIES),
        "default": default,
        "description": "the job's place among its tenant's own work: a tenant's waiting jobs "
        "run most urgent first (single uploads default to normal, batches to low); it never "
        "lets one tenant pass another",
    }


#: What ``Last-Event-ID`` (``app.http.streams.MAX_EVENT_ID``) may be: an event id, 0 for none.
_EVENT_ID = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}

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
                "dependentRequired": {"true_peak": ["normalize"]},
                "properties": {
                    "file": _AUDIO_FILE,
                    **_UPLOAD_FIELDS,
                    "priority": _priority("normal"),
                    "callback_url": {
                        **_CALLBACK_URL,
                        "description": _CALLBACK_WORDS.format(
                            what="the job's end (job.done | job.failed | job.canceled)"
                        ),
                        "examples": ["https://example.com/hooks/phantomchain"],
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
                "dependentRequired": {"true_peak": ["normalize"]},
                "properties": {
                    "file": {
                        "type": "array",
                        "items": _AUDIO_FILE,
                        "minItems": 1,
                        "maxItems": MAX_JOBS,
                        "description": "several fields named file, each an audio file",
                    },
                    **_UPLOAD_FIELDS,
                    "priority": _priority("low"),
                    "callback_url": {
                        **_CALLBACK_URL,
                        "description": _CALLBACK_WORDS.format(
                            what="once, when all the batch's jobs have ended"
                        ),
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
                        "items": {
                            "type": "string",
                            "format": "uuid",
                            "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                            "[0-9a-f]{12}$",
                        },
                        "minItems": 1,
                        "maxItems": MAX_JOBS,
                        "uniqueItems": True,
                        "description": "the latest job of each is grouped (not run again); "
                        "an id of no upload of the caller's is a 404",
                    },
                    "callback_url": {
                        "anyOf": [_CALLBACK_URL, {"type": "null"}],
                        "description": _CALLBACK_WORDS.format(
                            what="once, when all the batch's jobs have ended"
                        ),
                    },
                },
            },
            "JobPatch": {
                "type": "object",
                "required": ["status"],
                "properties": {
                    "status": {"type": "string", "enum": list(JOB_STATUSES)},
                    "error": {
                        "type": ["string", "null"],
                        "maxLength": 2000,
                        "pattern": "^[^\\x00]*$",
                        "description": "the job's error (null clears it; absent: kept)",
                    },
                },
            },
            "DeadLetterRetry": {
                "description": "some dead letters by id, or all of them (of one queue and/or "
                "actor)",
                "oneOf": [
                    {
                        "title": "by id",
                        "type": "object",
                        "required": ["ids"],
                        "additionalProperties": False,
                        "properties": {
                            "ids": {
                                "type": "array",
                                "minItems": 1,
                                "items": {"type": ["string", "integer"]},
                                "description": "dead-letter ids, as listed (a number, or "
                                "its text); each unknown one is reported in not_found",
                                "examples": [["42", "43"]],
                            }
                        },
                    },
                    {
                        "title": "all",
                        "type": "object",
                        "required": ["all"],
                        "additionalProperties": False,
                        "properties": {
                            "all": {"const": True},
                            "queue": {"anyOf": [_QUEUE, {"type": "null"}]},
                            "actor": {"type": ["string", "null"], "examples": ["run_stage"]},
                        },
                    },
                ],
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
                "enum": ["queued", "running", "done", "failed", "canceled"],
                "description": "queued: every job is; once all have ended: failed if any "
                "failed, canceled if all were canceled, else done (counts.canceled tells "
                "canceled jobs apart); running otherwise",
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
                        "properties": {s: {"type": "integer"} for s in JOB_STATUSES},
                    },
                    "callback_url": {"type": ["string", "null"]},
                    "replaygain_album_gain_db": {
                        "type": ["number", "null"],
                        "description": "ReplayGain 2.0 album gain (to −18 LUFS) of the done "
                        "jobs' uploads measured as one programme (their BS.1770 gating blocks "
                        "pooled, as loudgain -a); set once, when the batch ends",
                    },
                    "replaygain_album_peak": {
                        "type": ["number", "null"],
                        "description": "the largest true peak of those tracks, linear",
                    },
                    "replaygain_album_reason": {
                        "type": ["string", "null"],
                        "description": "why the album gain is null: the batch is running, or "
                        "no done track has a loudness to pool",
                    },
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
                    "replaygain_track_gain_db": {
                        "type": ["number", "null"],
                        "description": "ReplayGain 2.0 track gain of the upload: −18 LUFS − "
                        "integrated_lufs (null with it; loudness_reason says why). Each output "
                        "carries its own in its tags (ID3 TXXX in MP3 and WAV, Vorbis comments "
                        "in FLAC, iTunes freeform atoms in M4A, R128_TRACK_GAIN in Opus)",
                    },
                    "replaygain_track_peak": {
                        "type": ["number", "null"],
                        "description": "the upload's true peak, linear (1.0 = full scale), as "
                        "loudgain writes REPLAYGAIN_TRACK_PEAK",
                    },
                    "bpm": {"type": ["number", "null"]},
                    "bpm_confidence": {
                        "type": ["number", "null"],
                        "description": "0…1; low when the octave (half/double) is ambiguous",
                    },
                    "bpm_reason": {"type": ["string", "null"]},
                    "bpm_estimate": {
                        "type": ["number", "null"],
                        "description": "the best guess at a tempo even where there is no "
                        "steady beat (bpm null, bpm_reason says why); equal to bpm otherwise",
                    },
                    "bpm_estimate_confidence": {
                        "type": ["number", "null"],
                        "description": "0…1; under 0.12 where bpm is null",
                    },
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
                    **_CHECKS,
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
                "`normalize`, `true_peak`, `priority`, `bpm_range` and `callback_url`)",
                {
                    "202": _json("queued", "Accepted"),
                    "400": _error(
                        "no_file, not_audio, unknown_format, bad_normalize, bad_priority, "
                        "bad_bpm_range, bad_callback_url, webhooks_off, bad_idempotency_key"
                    ),
                    "403": _CROSS_SITE,
                    "409": _error(
                        "idempotency_key_in_use: an upload with this Idempotency-Key is being "
                        "made; retry after Retry-After"
                    ),
                    "413": _error("the upload is larger than MAX_UPLOAD_MB"),
                    "422": _error("the Idempotency-Key was sent before with another request"),
                    "429": _TOO_MANY,
                    "503": _UNAVAILABLE,
                },
                parameters=[
                    {
                        "in": "header",
                        "name": "Idempotency-Key",
                        "description": "a retry with the same key and request is answered as "
                        "the first time (blank: none)",
                        "schema": {"type": "string", "maxLength": 200, "pattern": "^[ -~]*$"},
                    }
                ],
                requestBody={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {"$ref": "#/components/schemas/UploadForm"},
                            "encoding": {"file": _AUDIO_ENCODING},
                        }
                    },
                },
            )
        },
        "/api/uploads/{upload_id}": {
            "get": _op(
                "An upload and its audio properties",
                {"200": _json("the upload", "Upload"), "404": _ERROR},
                parameters=[{**_ID, "name": "upload_id"}],
            ),
            "delete": _op(
                "Remove an upload with its outputs and waveform; a job still queued or "
                "running is canceled first",
                {
                    "204": {"description": "removed"},
                    "403": _CROSS_SITE,
                    "404": _ERROR,
                    "409": _error("still_running: its job was queued again meanwhile (a retry)"),
                },
                parameters=[{**_ID, "name": "upload_id"}],
            ),
        },
        "/api/uploads/{upload_id}/analysis": {
            "get": _op(
                "The analysis: 202 while it runs, 409 if it failed or was canceled",
                {
                    "200": _json("the analysis", "Analysis"),
                    "202": _json("running"),
                    "404": _ERROR,
                    "409": _error("job_failed, saying why; job_canceled"),
                },
                parameters=[{**_ID, "name": "upload_id"}],
            )
        },
        "/api/uploads/{upload_id}/outputs/{fmt}": {
            "get": _op(
                "Download a transcode",
                {
                    "200": {
                        "description": "the audio file",
                        "headers": _FILE_HEADERS,
                        "content": {
                            mime: {"schema": {"type": "string", "format": "binary"}}
                            for mime in dict.fromkeys(f.mime_type for f in FORMATS.values())
                        },
                    },
                    **_RANGE_RESPONSES,
                    "302": _PRESIGNED,
                    "404": _error("no such upload, or no output in that format"),
                },
                parameters=[
                    *_RANGE_PARAMETERS,
                    {**_ID, "name": "upload_id"},
                    {
                        "in": "path",
                        "name": "fmt",
                        "required": True,
                        "schema": {"type": "string", "enum": list(FORMATS)},
                    },
                ],
            )
        },
        "/api/uploads/{upload_id}/waveform.{kind}": {
            "get": _op(
                "The waveform: png, or json (BBC audiowaveform layout)",
                {
                    "200": {
                        "description": "image or peaks",
                        "headers": _FILE_HEADERS,
                        "content": {
                            "image/png": {"schema": {"type": "string", "format": "binary"}},
                            "application/json": {"schema": {"type": "object"}},
                        },
                    },
                    **_RANGE_RESPONSES,
                    "302": _PRESIGNED,
                    "404": _ERROR,
                    "409": _error("not_ready: the waveform is not drawn yet"),
                },
                parameters=[
                    *_RANGE_PARAMETERS,
                    {**_ID, "name": "upload_id"},
                    {
                        "in": "path",
                        "name": "kind",
                        "required": True,
                        "schema": {"type": "string", "enum": ["png", "json"]},
                    },
                ],
            )
        },
        "/api/batches": {
            "post": _op(
                "Several files (multipart: several `file` fields, with the options of one "
                "upload for every job) or several uploads' latest jobs (JSON `upload_ids`) "
                "under one id; all or nothing; `callback_url` is told once all have ended",
                {
                    "202": _json("queued", "BatchAccepted"),
                    "400": _error(
                        "not_audio (naming the file), empty_batch, too_many, "
                        "duplicate_upload, bad_body, bad_bpm_range, bad_callback_url…"
                    ),
                    "403": _CROSS_SITE,
                    "404": _error("an upload that is not the caller's"),
                    "413": _ERROR,
                    "429": _TOO_MANY,
                    "503": _UNAVAILABLE,
                },
                requestBody={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {"$ref": "#/components/schemas/BatchForm"},
                            "encoding": {"file": _AUDIO_ENCODING},
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
                {"200": _json("a page of jobs"), "400": _error("bad_parameter, bad_failing")},
                parameters=[
                    {
                        "in": "query",
                        "name": "status",
                        "schema": {"type": "string", "enum": list(JOB_STATUSES)},
                    },
                    {
                        "in": "query",
                        "name": "failing",
                        "description": "Only the jobs whose upload's analysis fails this quality "
                        "check (any check: `any`); analyses made before the checks fail none.",
                        "schema": {"type": "string", "enum": list(FAILING_CHOICES)},
                    },
                    {
                        **_LIMIT,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                    },
                    {
                        "in": "query",
                        "name": "offset",
                        "schema": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": 10**9,
                            "default": 0,
                        },
                    },
                ],
            )
        },
        "/api/jobs/{job_id}": {
            "get": _op(
                "A job with its events",
                {"200": _json("the job", "Job"), "404": _ERROR},
                parameters=[{**_ID, "name": "job_id"}],
            ),
            "patch": _op(
                "Admin: set a job's status",
                {
                    "200": _json("the job", "Job"),
                    "400": _error("bad_body, bad_parameter (status)"),
                    "403": _FORBIDDEN,
                    "404": _ERROR,
                    "413": _TOO_LARGE,
                },
                parameters=[{**_ID, "name": "job_id"}],
                requestBody={
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/JobPatch"}}
                    },
                },
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
                    },
                    "404": _ERROR,
                },
                parameters=[{**_ID, "name": "job_id"}],
            )
        },
        "/api/jobs/{job_id}/events": {
            "get": _op(
                "Progress as Server-Sent Events until done, failed or canceled (resumes after "
                "Last-Event-ID; ends after EVENT_STREAM_MAX_S, to be reconnected)",
                {
                    "200": {
                        "description": "the events",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    "400": _error("bad_parameter: Last-Event-ID"),
                    "404": _ERROR,
                    "429": {
                        **_TOO_MANY,
                        "description": "too_many_streams: the tenant has its share of event "
                        "streams open; retry after Retry-After",
                    },
                    "503": {
                        **_UNAVAILABLE,
                        "description": "server_busy (this process has as many streams open as "
                        "it serves), or a server behind the API is away: retry after "
                        "Retry-After",
                    },
                },
                parameters=[
                    {**_ID, "name": "job_id"},
                    {
                        "in": "header",
                        "name": "Last-Event-ID",
                        "description": "the id of the last event seen (0: none)",
                        "schema": _EVENT_ID,
                    },
                    {
                        "in": "query",
                        "name": "last_event_id",
                        "description": "as Last-Event-ID, which wins",
                        "schema": _EVENT_ID,
                    },
                ],
            )
        },
        "/api/jobs/{job_id}/retry": {
            "post": _op(
                "Admin: run a failed job again",
                {
                    "202": _json("queued"),
                    "403": _FORBIDDEN,
                    "404": _ERROR,
                    "409": _error("not_failed: only a failed job is run again"),
                },
                parameters=[{**_ID, "name": "job_id"}],
            )
        },
        "/api/jobs/{job_id}/cancel": {
            "post": _op(
                "Cancel a queued or running job (its tenant or an admin): it never runs, or "
                "its stage stops within 2 s; what it made is removed, the upload kept",
                {
                    "202": _json("canceled"),
                    "403": _CROSS_SITE,
                    "404": _ERROR,
                    "409": _error("already_ended: the job is done, failed or canceled"),
                },
                parameters=[{**_ID, "name": "job_id"}],
            )
        },
        "/api/dead-letters": {
            "get": _op(
                "Admin: dead letters, oldest first",
                {
                    "200": _json("{dead_letters, count}"),
                    "400": _error("bad_parameter"),
                    "403": _FORBIDDEN,
                },
                parameters=[
                    *_DLQ_FILTERS,
                    {
                        **_LIMIT,
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 1000,
                            "default": 100,
                        },
                    },
                ],
            ),
            "delete": _op(
                "Admin: purge dead letters (optionally of one queue and/or actor)",
                {
                    "200": _json("{purged}"),
                    "400": _error("bad_parameter"),
                    "403": _FORBIDDEN,
                },
                parameters=_DLQ_FILTERS,
            ),
        },
        "/api/dead-letters/retry": {
            "post": _op(
                'Admin: replay dead letters: {"ids": [...]} or {"all": true, "queue", "actor"}',
                {
                    "202": _json("{retried, not_found, not_replayable}"),
                    "200": _json("none retried"),
                    "400": _error("bad_body"),
                    "403": _FORBIDDEN,
                    "413": _TOO_LARGE,
                },
                requestBody={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/DeadLetterRetry"}
                        }
                    },
                },
            )
        },
        "/api/dead-letters/{dead_letter_id}": {
            "get": _op(
                "Admin: one dead letter with payload and traceback",
                {"200": _json("the dead letter"), "403": _FORBIDDEN, "404": _ERROR},
                parameters=[_DEAD_LETTER_ID],
            ),
            "delete": _op(
                "Admin: drop one dead letter",
                {"204": {"description": "deleted"}, "403": _FORBIDDEN, "404": _ERROR},
                parameters=[_DEAD_LETTER_ID],
            ),
        },
        "/api/dead-letters/{dead_letter_id}/retry": {
            "post": _op(
                "Admin: replay one dead letter (its pipeline job goes back to queued)",
                {
                    "202": _json("{id, message_id, job_id}"),
                    "403": _FORBIDDEN,
                    "404": _ERROR,
                    "409": _error("not_replayable: it never decoded as a message"),
                },
                parameters=[_DEAD_LETTER_ID],
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
