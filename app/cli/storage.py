"""``phantomchain storage sweep``: remove stored originals no upload row refers to.

The same code as the workers' periodic sweep (:func:`app.storage.orphans.remove_orphans`), on the
database and ``STORAGE_URL`` named by the environment, for cron. Exit status as ``dlq``'s.
"""

from __future__ import annotations

import click

from app.cli.common import echo_json, handle_errors, load_config, make_sessions


@click.group("storage")
def storage() -> None:
    """Stored files: sweep originals left behind by a crash."""


@storage.command("sweep")
@click.option(
    "--older-than",
    type=click.IntRange(min=60),
    default=3600,
    show_default=True,
    metavar="SECONDS",
    help="Only originals written at least this long ago.",
)
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option("--json", "as_json", is_flag=True, help='JSON: {"removed": [...], "dry_run"}.')
@handle_errors
def sweep_command(older_than: int, dry_run: bool, as_json: bool) -> None:
    """Remove stored originals with no upload row, older than --older-than.

    An upload's file is stored a moment before its row is written; only a process that dies
    in between leaves one behind. The cutoff keeps uploads in progress out of reach.
    """
    from app.storage import storage_of
    from app.storage.orphans import remove_orphans

    config = load_config()
    store = storage_of(config)
    try:
        keys = remove_orphans(make_sessions(config), store, older_than, dry_run=dry_run)
    finally:
        close = getattr(store, "close", None)  # a NATS bucket's connection
        if close is not None:
            close()
    if as_json:
        echo_json({"removed": keys, "dry_run": dry_run})
        return
    verb = "would remove" if dry_run else "removed"
    for key in keys:
        click.echo(f"{verb} {key}")
    click.echo(f"{verb} {len(keys)} orphaned original{'' if len(keys) == 1 else 's'}")
