"""Jobs: list and inspect them, follow one live (Server-Sent Events), re-run a failed one."""

from __future__ import annotations

import json
import time

from flask import Blueprint, Response, jsonify, request, stream_with_context
from sqlalchemy import select

from app import job_ops
from app.job_ops import event_dict, job_dict
from app.models import JOB_STATUSES, Job, JobEvent
from app.web import ApiError, int_arg, require_admin, require_token, sessions

jobs = Blueprint("jobs", __name__)
MAX_PAGE = 200


@jobs.get("/api/jobs")
@require_token
def list_jobs():
    status = request.args.get("status")
    if status is not None and status not in JOB_STATUSES:
        raise ApiError(400, "bad_parameter", f"status must be one of {', '.join(JOB_STATUSES)}")
    limit = int_arg("limit", 50, 1, MAX_PAGE)
    offset = int_arg("offset", 0, 0, 10**9)
    rows, total = job_ops.list_jobs(sessions(), status=status, limit=limit, offset=offset)
    return jsonify({"jobs": rows, "total": total, "limit": limit, "offset": offset})


def _job_or_404(session, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise ApiError(404, "not_found", f"no job {job_id}")
    return job


@jobs.get("/api/jobs/<job_id>")
@require_token
def get_job(job_id: str):
    try:
        return jsonify(job_ops.get_job(sessions(), job_id))
    except job_ops.JobNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc


@jobs.get("/api/jobs/<job_id>/events")
@require_token
def job_events(job_id: str):
    """Server-Sent Events: each new event, then the job's state, until it is done or failed."""
    with sessions()() as session:
        _job_or_404(session, job_id)
    factory = sessions()

    def stream():
        last_id = 0
        while True:
            with factory() as session:
                job = session.get(Job, job_id)
                new = session.scalars(
                    select(JobEvent)
                    .where(JobEvent.job_id == job_id, JobEvent.id > last_id)
                    .order_by(JobEvent.id)
                ).all()
                for event in new:
                    last_id = event.id
                    data = json.dumps(event_dict(event))
                    yield f"id: {event.id}\nevent: progress\ndata: {data}\n\n"
                if job.status in ("done", "failed"):
                    yield f"event: {job.status}\ndata: {json.dumps(job_dict(job))}\n\n"
                    return
            yield ": waiting\n\n"
            time.sleep(0.5)

    return Response(stream_with_context(stream()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})  # fmt: skip


@jobs.post("/api/jobs/<job_id>/retry")
@require_admin
def retry_job(job_id: str):
    try:
        job_ops.retry_job(sessions(), job_id)
    except job_ops.JobNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    except job_ops.JobNotFailed as exc:
        raise ApiError(409, "not_failed", str(exc)) from exc
    return jsonify({"id": job_id, "status": "queued"}), 202


@jobs.patch("/api/jobs/<job_id>")
@require_admin
def patch_job(job_id: str):
    """The Go service's PATCH, now admin-only: set ``status`` (and ``error``)."""
    body = request.get_json(silent=True) or {}
    status = body.get("status")
    if status not in JOB_STATUSES:
        raise ApiError(400, "bad_parameter", f"status must be one of {', '.join(JOB_STATUSES)}")
    with sessions().begin() as session:
        job = _job_or_404(session, job_id)
        job.status = status
        if "error" in body:
            job.error = body["error"]
        session.add(
            JobEvent(job_id=job_id, level="warning", message=f"status set to {status} by an admin")
        )
    with sessions()() as session:
        return jsonify(job_dict(session.get(Job, job_id)))
