"""``phantomchain jobs``: list, inspect, retry and cancel jobs from a terminal.

The same code as ``GET /api/jobs…``, ``POST /api/jobs/<id>/retry`` and ``…/cancel``
(:mod:`app.jobs`, imported
inside each command so ``phantomchain --help`` stays fast), on the database (and, to retry, NATS)
named by the environment. Exit status as ``dlq``'s.
"""

from __future__ import annotations

import click

from app.cli.common import (
    echo_json,
    fail,
    handle_errors,
    load_config,
    make_broker,
    make_sessions,
    short,
    table,
)
from app.failing import FAILING_CHOICES


@click.group("jobs")
def jobs() -> None:
    """Jobs: list them, show one with its events, retry failed ones, cancel live ones."""


@jobs.command("list")
@click.option(
    "--status", help="Only jobs in this state: queued, running, done, failed or canceled."
)
@click.option(
    "--failing",
    type=click.Choice(FAILING_CHOICES),
    help="Only jobs whose upload's analysis fails this quality check (or any check).",
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON ({jobs, total}) instead of a table.")
@handle_errors
def list_command(status: str | None, failing: str | None, limit: int, as_json: bool) -> None:
    """Jobs, newest first."""
    from app import jobs as service

    try:
        service.check_status(status)
    except service.BadStatus as exc:
        raise click.BadParameter(str(exc).removeprefix("status "), param_hint="--status") from exc
    rows, total = service.list_jobs(
        make_sessions(load_config()), status=status, failing=failing, limit=limit
    )
    if as_json:
        echo_json({"jobs": rows, "total": total})
        return
    if not rows:
        click.echo("no jobs")
        return
    headers = ("id", "status", "stage", "progress", "attempts", "created (UTC)", "error")
    click.echo(table(headers, [_row(j) for j in rows]))
    if total > len(rows):
        click.echo(f"({len(rows)} of {total}; use --limit for more)")


@jobs.command("show")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="The job and its events as JSON.")
@handle_errors
def show_command(job_id: str, as_json: bool) -> None:
    """One job and its events, oldest first."""
    from app import jobs as service

    try:
        job = service.get_job(make_sessions(load_config()), job_id)
    except service.JobNotFound as exc:
        fail(str(exc))
    if as_json:
        echo_json(job)
        return
    for key in (
        "id",
        "upload_id",
        "status",
        "stage",
        "progress",
        "attempts",
        "error",
        "created_at",
        "started_at",
        "finished_at",
    ):
        click.echo(f"{key + ':':<13}{'' if job[key] is None else job[key]}")
    click.echo("events:")
    click.echo(
        table(
            ("at (UTC)", "level", "stage", "message"),
            [
                (e["at"][:19].replace("T", " "), e["level"], e["stage"] or "", e["message"])
                for e in job["events"]
            ],
        )
    )


@jobs.command("retry")
@click.argument("job_ids", nargs=-1, required=True, metavar="JOB_ID...")
@handle_errors
def retry_command(job_ids: tuple[str, ...]) -> None:
    """Run failed jobs again from their first stage (as ``POST /api/jobs/<id>/retry``)."""
    from app import jobs as service

    config = load_config()
    sessions, broker = make_sessions(config), make_broker(config)
    problems = 0
    for job_id in job_ids:
        try:
            service.retry_job(sessions, broker, job_id)
        except (service.JobNotFound, service.JobNotFailed) as exc:
            click.echo(f"error: {exc}", err=True)
            problems += 1
            continue
        click.echo(f"job {job_id} queued")
    if problems:
        raise SystemExit(1)


@jobs.command("cancel")
@click.argument("job_ids", nargs=-1, required=True, metavar="JOB_ID...")
@handle_errors
def cancel_command(job_ids: tuple[str, ...]) -> None:
    """Cancel queued or running jobs (as ``POST /api/jobs/<id>/cancel``, as an admin): a
    running stage stops within 2 s and what the job made is removed. One line per job."""
    from app import jobs as service
    from app.storage import storage_of
    from app.webhooks import outbox

    config = load_config()
    sessions = make_sessions(config)
    # Where a batch this cancel ends reads its tracks' loudness (its album gain).
    store = None
    try:
        store = storage_of(config)
    except Exception as exc:  # the cancel needs no storage; only an album gain does
        click.echo(
            f"storage did not answer ({exc}): a batch ended now gets no album gain", err=True
        )
    made: list[str] = []
    problems = 0
    try:
        for job_id in job_ids:
            try:
                made += service.cancel_job(sessions, job_id, by="an admin (CLI)", storage=store)
            except (service.JobNotFound, service.JobEnded) as exc:
                click.echo(f"error: {exc}", err=True)
                problems += 1
                continue
            click.echo(f"job {job_id} canceled")
    finally:
        close = getattr(store, "close", None)  # a NATS bucket's connection
        if close is not None:
            close()
    if made:  # the webhooks of their ends; one not sent now is sent by the workers' sweep
        try:
            broker = make_broker(config)
        except Exception as exc:
            click.echo(f"webhooks left to the sweep: NATS did not answer ({exc})", err=True)
        else:
            outbox.send(broker, made)
            broker.close()
    if problems:
        raise SystemExit(1)


def _row(job: dict) -> tuple:
    created = job["created_at"][:19].replace("T", " ")
    progress = f"{job['progress']}%"
    return (
        job["id"],
        job["status"],
        job["stage"],
        progress,
        job["attempts"],
        created,
        short(job["error"], 50),
    )
