"""The upload page (``/``): drop or pick several files, choose the output formats, and watch
each file's upload and then its job, live (the page's script, ``static/upload.js``, posts to
``/api/uploads`` and follows ``/api/jobs/<id>/events``)."""

from __future__ import annotations

from flask import Blueprint, render_template

from app.http import current
from app.http.web.session import page
from audio.formats import DEFAULT_FORMATS, FORMATS
from audio.targets import PRESETS

bp = Blueprint("upload_page", __name__)

#: What the pipeline does to every upload, in order: (stage name in job events, label).
STAGES = (
    ("transcode", "Transcode"),
    ("loudness", "Loudness"),
    ("normalize", "Normalize"),
    ("tempo_key", "Tempo & key"),
    ("finalize", "Finalize"),
)


@bp.get("/")
@page
def upload():
    return render_template(
        "upload.html",
        formats=list(FORMATS.values()),
        defaults=DEFAULT_FORMATS,
        stages=STAGES,
        max_upload_mb=current.config().max_upload_mb,
        presets=[
            {"name": name, "label": f"{name} ({t.lufs:g} LUFS, {t.true_peak_dbtp:g} dBTP)"}
            for name, t in PRESETS.items()
        ],
    )
