"""Jobs: list and inspect them, follow one live (Server-Sent Events), re-run a failed one,
cancel a queued or running one."""

from __future__ import annotations

import json

from flask import Blueprint, jsonify, request

from app import jobs
from app.failing import check_failing
from app.http import streams
from app.http.auth import caller, require_admin, require_token
from app.http.current import broker, job_watch, sessions, storage
from app.http.errors import ApiError
from app.http.params import int_arg, json_body
from app.models import ENDED_STATUSES
from app.webhooks import outbox

bp = Blueprint("jobs", __name__)
MAX_PAGE = 200
#: Seconds an event stream waits before it looks at its job again, unless woken sooner.
LOOK_S = 0.5


@bp.get("/api/jobs")
@require_token
def list_jobs():
    """A page of jobs, newest first: by ``status``, and by a quality check their upload fails
    (``failing``: a check's name or ``any``)."""
    status = jobs.check_status(request.args.get("status"))
    failing = check_failing(request.args.get("failing"))
    limit = int_arg("limit", 50, 1, MAX_PAGE)
    offset = int_arg("offset", 0, 0, 10**9)
    rows, total = jobs.list_jobs(
        sessions(),
        status=status,
        failing=failing,
        limit=limit,
        offset=offset,
        tenant=caller().scope,
    )
    return jsonify({"jobs": rows, "total": total, "limit": limit, "offset": offset})


@bp.get("/api/jobs/<id:job_id>")
@require_token
def get_job(job_id: str):
    return jsonify(jobs.get_job(sessions(), job_id, caller().scope))


@bp.get("/api/jobs/<id:job_id>/deliveries")
@require_token
def job_deliveries(job_id: str):
    """The webhooks the job's end made (its own), each with every attempt and its answer."""
    jobs.job_status(sessions(), job_id, caller().scope)  # 404 for another tenant's job
    return jsonify({"deliveries": outbox.deliveries_of(sessions(), job_id=job_id)})


@bp.get("/api/jobs/<id:job_id>/events")
@require_token
def job_events(job_id: str):
    """Server-Sent Events: each new event (with the job's ``progress`` percent when sent), then
    the job's state, until it has ended (an event named after its status: ``done``,
    ``failed``, ``canceled``).

    Resumes after ``Last-Event-ID``; ends after ``EVENT_STREAM_MAX_S`` (the client reconnects);
    limited per tenant and per process (:mod:`app.http.streams`).
    """
    factory = sessions()
    jobs.job_status(factory, job_id, caller().scope)  # 404 now, before the stream starts
    after = streams.last_event_id()
    watch = job_watch()

    def stream(live: streams.Live):
        last_id = after
        # Woken as soon as the job has a new event (a NOTIFY, see app.http.job_watch); the
        # look every LOOK_S is what remains while that connection is away.
        with watch.following(job_id, live.woken):
            while True:
                job, new = jobs.events_after(factory, job_id, last_id)
                for event in new:
                    last_id = event["id"]
                    # with the job's percent as it is now, for a sender's bar
                    data = json.dumps({**event, "progress": job["progress"]})
                    yield f"id: {event['id']}\nevent: progress\ndata: {data}\n\n"
                if job["status"] in ENDED_STATUSES:
                    yield f"event: {job['status']}\ndata: {json.dumps(job)}\n\n"
                    return
                yield ": waiting\n\n"
                if not live.wait(LOOK_S):
                    return

    return streams.respond(caller().tenant, stream)


@bp.post("/api/jobs/<id:job_id>/retry")
@require_admin
def retry_job(job_id: str):
    jobs.retry_job(sessions(), broker(), job_id)
    return jsonify({"id": job_id, "status": "queued"}), 202


@bp.post("/api/jobs/<id:job_id>/cancel")
@require_token
def cancel_job(job_id: str):
    """End a queued or running job ``canceled`` (its tenant or an admin): 202 at once; the
    worker running its stage stops within 2 s and removes what the job made. 409 once ended."""
    who = caller()
    by = "an admin" if who.admin else who.tenant
    made = jobs.cancel_job(sessions(), job_id, by=by, tenant=who.scope, storage=storage())
    outbox.send(broker(), made)
    return jsonify({"id": job_id, "status": "canceled"}), 202


@bp.patch("/api/jobs/<id:job_id>")
@require_admin
def patch_job(job_id: str):
    """The Go service's PATCH, now admin-only: set ``status`` (and ``error``)."""
    body = json_body()
    if not isinstance(body, dict):
        raise ApiError(400, "bad_body", 'send a JSON object, e.g. {"status": "failed"}')
    error = body.get("error")
    if error is not None and not (
        isinstance(error, str) and len(error) <= 2000 and "\0" not in error
    ):
        raise ApiError(400, "bad_body", "error must be a text of at most 2000 characters")
    return jsonify(
        jobs.set_status(
            sessions(),
            job_id,
            body.get("status", ""),  # missing: refused as a bad status, like any non-status
            body.get("error"),
            set_error="error" in body,
        )
    )
