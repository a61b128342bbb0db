"""Jobs (``/jobs``): the caller's jobs (everyone's for an admin), by status and by a quality
check their upload fails, found by job or upload id, a page at a time, with live counts per
status; Job (``/jobs/<id>``): one job's events as a timeline, followed live while it runs, and a
retry for admins when it failed."""

from __future__ import annotations

import re
from datetime import datetime

from flask import Blueprint, abort, g, jsonify, render_template, request

from app import jobs
from app.failing import CHECK_LABELS, FAILING_CHOICES
from app.http.current import sessions
from app.http.web.session import page
from app.models import JOB_STATUSES

bp = Blueprint("job_pages", __name__)

#: Jobs on one page of the list.
PAGE_SIZE = 25
#: A job or upload id (a UUID), as searched for.
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@bp.app_template_filter("utc_time")
def utc_time(iso: str | None) -> str:
    """An ISO time as ``2026-11-29 23:17:05 UTC`` (empty for none)."""
    if not iso:
        return ""
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S UTC")


@bp.get("/jobs")
@page
def job_list():
    status = request.args.get("status") or None
    if status not in (None, *JOB_STATUSES):
        status = None
    failing = request.args.get("failing") or None
    if failing not in (None, *FAILING_CHOICES):
        failing = None
    query = (request.args.get("q") or "").strip().lower()
    problem = None
    if query and not UUID.match(query):
        problem = "Search by a whole job or upload id, e.g. 0f8c2a1e-…-…-…-… (a UUID)."
    number = _page_number()
    rows: list[dict] = []
    total = 0
    if problem is None:
        rows, total = jobs.list_jobs(
            sessions(),
            status=status,
            failing=failing,
            limit=PAGE_SIZE,
            offset=(number - 1) * PAGE_SIZE,
            tenant=g.caller.scope,
            ident=query or None,
        )
    counts = jobs.count_by_status(sessions(), g.caller.scope)
    return render_template(
        "jobs.html",
        jobs=rows,
        total=total,
        status=status,
        failing=failing,
        failing_choices=FAILING_CHOICES,
        check_labels=CHECK_LABELS,
        query=query,
        problem=problem,
        page=number,
        pages=max(1, -(-total // PAGE_SIZE)),
        page_size=PAGE_SIZE,
        counts=counts,
        statuses=JOB_STATUSES,
    )


@bp.get("/jobs/counts")
@page
def job_counts():
    """The live counts of the list page: ``{"counts": {status: n}, "total": n}``."""
    counts = jobs.count_by_status(sessions(), g.caller.scope)
    return jsonify({"counts": counts, "total": sum(counts.values())})


@bp.get("/jobs/<id:job_id>")
@page
def job_page(job_id: str):
    try:
        job = jobs.get_job(sessions(), job_id, g.caller.scope)
    except jobs.JobNotFound:
        abort(404)
    return render_template("job.html", job=job)


@bp.errorhandler(404)
def not_found(_error):
    return render_template("job.html", job=None), 404


def _page_number() -> int:
    raw = request.args.get("page") or "1"
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 10**6:
        return 1
    return int(raw)
