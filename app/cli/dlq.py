"""``phantomchain dlq``: inspect, replay and drop dead letters from a terminal.

The same operations as the admin routes (:mod:`app.dead_letters`, imported inside each
command so ``phantomchain --help`` stays fast), on the NATS and database named by the
environment. Tables for people, ``--json`` for scripts. Exit status: 0 done, 1 something asked
for was not there (unknown id) or a server did not answer, 2 bad settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from broker.dead_letters import DeadLetters


def _queue_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A ``--queue`` that names no queue (``*``, ``a..b``) is refused before anything is done."""
    from app import dead_letters as ops

    try:
        ops.check_queue_name(value)
    except ops.BadQueueName as exc:
        raise click.BadParameter(str(exc)) from exc
    return value


@click.group("dlq")
def dlq() -> None:
    """Dead letters: messages that failed for good (list, show, retry, delete, purge)."""


@dlq.command("list")
@click.option("--queue", callback=_queue_name, help="Only this queue (e.g. pipeline).")
@click.option("--actor", help="Only this actor (e.g. run_stage).")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="A JSON array instead of a table.")
@handle_errors
def list_command(queue: str | None, actor: str | None, limit: int, as_json: bool) -> None:
    """Dead letters, oldest first."""
    from app import dead_letters as ops

    letters = ops.list_letters(_letters(), queue=queue, actor=actor, limit=limit)
    if as_json:
        echo_json(letters)
        return
    if not letters:
        click.echo("no dead letters")
        return
    rows = [
        (
            d["id"],
            d["queue_name"],
            d["actor_name"] or "?",
            short(_args(d), 50),
            d["deliveries"],
            d["failed_at"][:19].replace("T", " "),
            short(d["reason"], 60),
        )
        for d in letters
    ]
    click.echo(table(("id", "queue", "actor", "args", "tries", "failed at (UTC)", "reason"), rows))


@dlq.command("show")
@click.argument("dead_letter_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="The whole record as JSON.")
@handle_errors
def show_command(dead_letter_id: str, as_json: bool) -> None:
    """One dead letter: payload, actor, queue, deliveries, reason and traceback."""
    from app import dead_letters as ops

    try:
        letter = ops.show(_letters(), dead_letter_id)
    except ops.DeadLetterNotFound as exc:
        fail(str(exc))
    if as_json:
        echo_json(letter)
        return
    payload = letter["payload"] or {}
    for label, value in (
        ("id", letter["id"]),
        ("queue", letter["queue_name"]),
        ("actor", letter["actor_name"]),
        ("message id", letter["message_id"]),
        ("args", _args(letter)),
        ("kwargs", payload.get("kwargs") or {}),
        ("deliveries", letter["deliveries"]),
        ("enqueued at", letter["enqueued_at"]),
        ("failed at", letter["failed_at"]),
        ("reason", letter["reason"]),
    ):
        click.echo(f"{label + ':':<13}{value}")
    click.echo("traceback:")
    click.echo(letter["traceback"] or "  (none kept)")


@dlq.command("retry")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "everything", is_flag=True, help="Every dead letter (see the filters).")
@click.option("--queue", callback=_queue_name, help="With --all: only this queue.")
@click.option("--actor", help="With --all: only this actor.")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@handle_errors
def retry_command(
    ids: tuple[str, ...], everything: bool, queue: str | None, actor: str | None, as_json: bool
) -> None:
    """Send dead letters back to their queue with fresh retries (jobs go back to queued)."""
    from app import dead_letters as ops

    if bool(ids) == everything:
        raise click.UsageError("give dead-letter IDs or --all, not both and not neither")
    if ids and (queue or actor):
        raise click.UsageError("--queue and --actor only go with --all")
    config = load_config()
    report = ops.retry_many(
        make_broker(config).dead_letters,
        make_sessions(config),
        ids=list(ids) if ids else None,
        queue=queue,
        actor=actor,
    )
    if as_json:
        echo_json(report.to_dict())
    else:
        for item in report.retried:
            job = f" (job {item.job_id} queued)" if item.job_id else ""
            click.echo(f"retried dead letter {item.id} as message {item.message_id}{job}")
        if everything and not report.retried:
            click.echo("no dead letters to retry")
    for dead_letter_id in report.not_found:
        click.echo(f"error: no dead letter {dead_letter_id}", err=True)
    for dead_letter_id in report.not_replayable:
        click.echo(f"error: dead letter {dead_letter_id} is not a decodable message", err=True)
    if report.not_found or report.not_replayable:
        raise SystemExit(1)


@dlq.command("delete")
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@handle_errors
def delete_command(ids: tuple[str, ...]) -> None:
    """Drop dead letters for good."""
    from app import dead_letters as ops

    letters, missing = _letters(), []
    for dead_letter_id in ids:
        try:
            ops.delete(letters, dead_letter_id)
            click.echo(f"deleted dead letter {dead_letter_id}")
        except ops.DeadLetterNotFound as exc:
            click.echo(f"error: {exc}", err=True)
            missing.append(dead_letter_id)
    if missing:
        raise SystemExit(1)


@dlq.command("purge")
@click.option("--queue", callback=_queue_name, help="Only this queue.")
@click.option("--actor", help="Only this actor.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@handle_errors
def purge_command(queue: str | None, actor: str | None, yes: bool) -> None:
    """Drop every dead letter (of one queue and/or actor)."""
    from app import dead_letters as ops

    letters = _letters()
    what = " and ".join(
        part for part in (queue and f"queue {queue}", actor and f"actor {actor}") if part
    )
    if not yes:
        click.confirm(f"Delete every dead letter{' of ' + what if what else ''}?", abort=True)
    removed = ops.purge(letters, queue=queue, actor=actor)
    click.echo(f"purged {removed} dead letter{'s' if removed != 1 else ''}")


def _letters() -> DeadLetters:
    """The dead letters of the broker the settings name."""
    return make_broker(load_config()).dead_letters


def _args(letter: dict) -> str:
    payload = letter.get("payload") or {}
    return ", ".join(repr(a) for a in payload.get("args") or [])
