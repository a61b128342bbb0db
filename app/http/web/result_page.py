"""The result page (``/uploads/<id>``): an upload's waveform (played and zoomed), its short-term
loudness over time, its figures, its quality checks (:mod:`app.http.web.checks_card`), its
downloads and a link to its job.

``/uploads/<id>`` is also the older address of ``GET /api/uploads/<id>`` (kept for clients
written against the service PhantomChain replaced): a client that does not prefer HTML (curl,
scripts) gets exactly the API's JSON; a browser gets the page. Both answers say ``Vary: Accept``.

The figures are rendered here, from the same services as the API (so the page needs few
requests); the page's script (``static/result.js``) fetches only the waveform's peaks and plays
the stored output (by byte ranges: it seeks at once). Opened while the upload's job runs, the
page follows the job's event stream (``static/result_live.js``) and, when it ends, puts this
page as drawn then in its place.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify, make_response, render_template, request

from app import jobs, uploads
from app.http.auth import caller, require_token
from app.http.current import sessions
from app.http.web.checks_card import check_rows
from app.http.web.session import page

bp = Blueprint("result_page", __name__)

#: A job in these is followed live by its result page.
LIVE = ("queued", "running")
#: The loudness targets drawn across the curve: (LUFS, what uses it).
TARGETS = ((-14.0, "streaming"), (-16.0, "podcasts"), (-23.0, "EBU R 128"))


def wants_html() -> bool:
    """The client prefers an HTML page to JSON (a browser); no or any ``Accept`` → JSON."""
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


@bp.get("/uploads/<id:upload_id>")
def result(upload_id: str):
    answer = _page(upload_id) if wants_html() else _upload_json(upload_id)
    response = make_response(answer)
    response.vary.add("Accept")
    return response


@require_token
def _upload_json(upload_id: str):
    """The API's answer to ``GET /api/uploads/<id>``, to the letter."""
    found = uploads.get_upload(sessions(), upload_id, caller().scope)
    return jsonify(uploads.upload_dict(found))


@page
def _page(upload_id: str):
    scope = g.caller.scope
    try:
        upload = uploads.get_upload(sessions(), upload_id, scope)
    except uploads.UploadNotFound:
        return render_template("result.html", upload=None, upload_id=upload_id), 404
    found, _ = jobs.list_jobs(sessions(), tenant=scope, ident=upload_id, limit=5)
    job = next((j for j in found if j["upload_id"] == upload_id), None)
    analysis, error, canceled = None, None, False
    try:
        ready = uploads.analysis(sessions(), upload_id, scope)
    except uploads.AnalysisFailed as failed:
        error = str(failed)
    except uploads.AnalysisCanceled:
        canceled = True
    else:
        if not isinstance(ready, uploads.Pending):
            analysis = uploads.analysis_dict(*ready)
    return render_template(
        "result.html",
        upload=uploads.upload_dict(upload),
        upload_id=upload_id,
        job=job,
        analysis=analysis,
        error=error,
        canceled=canceled,
        play=_playable(analysis),
        targets=TARGETS,
        checks=check_rows(analysis, upload.channels) if analysis else [],
        # Not ended: the page follows the job (static/result_live.js) and shows its end.
        live=analysis is None and error is None and job is not None and job["status"] in LIVE,
    )


def _playable(analysis: dict | None) -> dict | None:
    """The output the waveform plays: the MP3, else the first there is."""
    if not analysis or not analysis["outputs"]:
        return None
    outputs = analysis["outputs"]
    fmt = "mp3" if "mp3" in outputs else next(iter(outputs))
    return {"format": fmt, **outputs[fmt]}
