"""``phantomchain send``, ``status`` and ``fetch``: the commands of the people who send audio
to a PhantomChain server — through its HTTP API, with :mod:`app.client`.

They read only ``PHANTOMCHAIN_URL`` and ``PHANTOMCHAIN_TOKEN`` (or ``--url`` and ``--token``):
never the server's own settings. What a person sees goes to stderr (a bar per file, then its
job's stages); the results go to stdout: a table, or JSON Lines with ``--json`` (one object
per file or job). Exit status: 0 when every job is done; 1 when any failed, was canceled or was
refused; 2 for usage and settings (no URL, a token the server refuses); 3 when the server cannot
be reached or keeps answering that it is unavailable; 130 after Ctrl-C (the jobs go on on the
server, and the command says how to follow them).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from app.cli.common import short, table
from app.cli.progress import Renderer, printable

if TYPE_CHECKING:
    from app.client import Client, Job

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130


def _stop(message: str, code: int) -> NoReturn:
    click.echo(f"error: {printable(message)}", err=True)
    sys.exit(code)


def server_options(command: F) -> F:
    """``--url`` and ``--token`` (from ``PHANTOMCHAIN_URL`` / ``PHANTOMCHAIN_TOKEN``), and the
    client's errors as one line and an exit status."""

    @click.option(
        "--url",
        envvar="PHANTOMCHAIN_URL",
        metavar="URL",
        help="The server's address [env: PHANTOMCHAIN_URL].",
    )
    @click.option(
        "--token",
        envvar="PHANTOMCHAIN_TOKEN",
        metavar="TOKEN",
        help="Your tenant's token [env: PHANTOMCHAIN_TOKEN].",
    )
    @wraps(command)
    def run(*args: Any, url: str | None, token: str | None, **kwargs: Any) -> Any:
        from app.client import (
            ApiError,
            Client,
            ConnectionFailed,
            Forbidden,
            PhantomChainError,
            ServerError,
            ServiceUnavailable,
            Unauthorized,
        )

        if not url:
            _stop("set PHANTOMCHAIN_URL (or --url) to the server's address", EXIT_USAGE)
        try:
            with Client(url, token) as client:
                return command(*args, client=client, **kwargs)
        except (Unauthorized, Forbidden) as exc:
            _stop(f"the server refused the token ({exc.message}): check PHANTOMCHAIN_TOKEN", 2)
        except (ConnectionFailed, ServiceUnavailable, ServerError) as exc:
            _stop(f"cannot reach {url}: {exc}", EXIT_UNREACHABLE)
        except ApiError as exc:
            _stop(exc.message, EXIT_FAILED)
        except PhantomChainError as exc:
            _stop(str(exc), EXIT_USAGE)
        except KeyboardInterrupt:
            _stop("interrupted", EXIT_INTERRUPTED)

    return run  # type: ignore[return-value]


# -- what a file or job came to --------------------------------------------------------------


def record(
    file: str | None,
    upload_id: str | None,
    job: Job | None,
    *,
    status: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """One line of the results (a table row, or a JSON object)."""
    return {
        "file": file,
        "upload_id": upload_id or (job.upload_id if job else None),
        "job_id": job.id if job else None,
        "status": status or (job.status if job else None),
        "error": error or (job.error if job else None),
        "integrated_lufs": None,
        "true_peak_dbtp": None,
        "bpm": None,
        "key": None,
        "outputs": [],
        "not_replaced": [],
    }


def with_analysis(client: Client, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its job's figures, once the job is done."""
    if row["status"] == "done" and row["upload_id"]:
        analysis = client.analysis(row["upload_id"])
        row.update(
            integrated_lufs=analysis.integrated_lufs,
            true_peak_dbtp=analysis.true_peak_dbtp,
            bpm=analysis.bpm,
            key=analysis.key,
        )
    return row


def _number(value: float | None, unit: str) -> str:
    return "" if value is None else f"{value:.1f} {unit}"


def results_table(rows: Sequence[dict[str, Any]]) -> str:
    """The table a person reads at the end: the figures of a done job, the sentence of any
    other."""
    lines = []
    for row in rows:
        if row["status"] == "done":
            figures = [
                _number(row["integrated_lufs"], "LUFS"),
                _number(row["bpm"], "BPM"),
                row["key"] or "",
            ]
        else:
            figures = [short(row["error"] or "", 60), "", ""]
        lines.append([row["job_id"] or "-", row["file"] or "", row["status"], *figures])
    shown = [[printable(c) if isinstance(c, str) else c for c in line] for line in lines]
    return table(["job", "file", "status", "loudness", "bpm", "key"], shown)


def emit(rows: Sequence[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
    else:
        click.echo(results_table(rows))


def exit_status(rows: Sequence[dict[str, Any]], waited: bool) -> int:
    """1 when any job failed, was canceled or refused (or, having waited, did not end done)."""
    ok = {"done"} if waited else {"done", "queued", "running"}
    whole = all(row["status"] in ok and not row["not_replaced"] for row in rows)
    return 0 if whole else EXIT_FAILED


def _renderer() -> Renderer:
    return Renderer(sys.stderr, sys.stderr.isatty())


def follow_all(client: Client, rows: list[dict[str, Any]], show: Renderer) -> None:
    """Wait for the job of each row (in turn: they run at once on the server), showing its
    stages; Ctrl-C — or a server gone away — ends the command with how to follow them."""
    from app.client import PhantomChainError

    try:
        for row in rows:
            if row["job_id"] is None or row["status"] in ("done", "failed", "canceled"):
                continue
            name = row["file"] or row["job_id"]
            job = client.follow(row["job_id"], show.stepper(name))
            row.update(status=job.status, error=job.error)
            show.end(name, job.status if job.error is None else f"{job.status}: {job.error}")
    except PhantomChainError:  # the server unreachable: said by the caller, exit status 3
        show.close()
        click.echo(f"follow them with: phantomchain status --wait {_waiting(rows)}", err=True)
        raise
    except KeyboardInterrupt:
        show.close()
        click.echo(
            "\nstopped waiting; the jobs go on on the server. Follow them with:\n"
            f"  phantomchain status --wait {_waiting(rows)}",
            err=True,
        )
        sys.exit(EXIT_INTERRUPTED)


def _waiting(rows: Sequence[dict[str, Any]]) -> str:
    """The ids of the jobs not known to have ended."""
    return " ".join(
        r["job_id"] for r in rows if r["job_id"] and r["status"] in ("queued", "running")
    )


def download_outputs(
    client: Client, row: dict[str, Any], out: Path, show: Renderer, overwrite: bool
) -> None:
    """Every output of a done job, and its analysis as JSON, into ``out``; a file already
    there is left as it is (unless ``overwrite``) and named in the row's ``not_replaced``."""
    from app.client import FileExists

    if row["status"] != "done" or not row["upload_id"]:
        return
    analysis = client.analysis(row["upload_id"])
    out.mkdir(parents=True, exist_ok=True)
    name = row["file"] or row["job_id"]
    for fmt in analysis.outputs:
        try:
            got = client.download(
                row["upload_id"],
                fmt,
                out,
                overwrite=overwrite,
                on_progress=show.receiving(f"{name} ({fmt})"),
            )
        except FileExists as exc:
            show.end(f"{name} ({fmt})", f"{exc} (--overwrite replaces it)")
            row["not_replaced"].append(exc.path)
            continue
        row["outputs"].append(got.path)
    stem = Path(row["file"]).stem if row["file"] else row["upload_id"]
    try:
        row["outputs"].append(
            str(write_analysis(analysis.raw, out / f"{stem}.analysis.json", overwrite))
        )
    except FileExists as exc:
        show.end(f"{name} (analysis)", f"{exc} (--overwrite replaces it)")
        row["not_replaced"].append(exc.path)
    show.close()


def _plain_name(name: str) -> bool:
    """Whether ``name`` (from the server) may name a file in --out as it is."""
    return (
        bool(name)
        and name not in (".", "..")
        and printable(name) == name
        and not any(c in name for c in "/\\")
    )


def write_analysis(analysis: dict[str, Any], path: Path, overwrite: bool) -> Path:
    """``analysis`` as indented JSON at ``path``.

    :raises FileExists: ``path`` is there and not ``overwrite``.
    """
    from app.client import FileExists

    try:
        with open(path, "w" if overwrite else "x") as file:
            file.write(json.dumps(analysis, indent=2) + "\n")
    except FileExistsError:
        raise FileExists(str(path)) from None
    return path


#: ``--overwrite`` of the commands that write files.
overwrite_option = click.option(
    "--overwrite",
    is_flag=True,
    help="Replace files already in --out (by default they are kept and named).",
)


# -- the commands ------------------------------------------------------------------------------


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--formats",
    "--format",
    "formats",
    metavar="LIST",
    help="Transcodes to make, e.g. mp3,opus (the server's default: mp3).",
)
@click.option("--normalize", metavar="TARGET", help="Normalise to a platform (spotify…) or LUFS.")
@click.option("--true-peak", type=float, metavar="DBTP", help="The ceiling with --normalize.")
@click.option(
    "--bpm-range", metavar="LOW-HIGH", help="Fold the tempo into this range, e.g. 70-140."
)
@click.option("--priority", type=click.Choice(["high", "normal", "low"]), help="Among your work.")
@click.option("--wait", is_flag=True, help="Wait for the jobs to end, showing their stages.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Download each done job's transcodes here (implies --wait).",
)
@overwrite_option
@click.option("--json", "as_json", is_flag=True, help="JSON Lines on stdout, one per file.")
@server_options
def send(
    client: Client,
    files: tuple[str, ...],
    formats: str | None,
    normalize: str | None,
    true_peak: float | None,
    bpm_range: str | None,
    priority: str | None,
    wait: bool,
    out: Path | None,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Send audio FILES to a PhantomChain server, each as an upload with its own job.

    With --wait, follow each job to its end; then a table (or --json) of each file's job, its
    status and its loudness, tempo and key — or the sentence saying why it failed. Exit status
    1 when any file was refused or its job failed.
    """
    from app.client import (
        BadRequest,
        Conflict,
        FileUnreadable,
        PayloadTooLarge,
        PhantomChainError,
        RateLimited,
    )

    show = _renderer()
    rows: list[dict[str, Any]] = []
    try:
        for file in files:
            name = Path(file).name
            try:
                accepted = client.upload(
                    file,
                    formats=formats,
                    normalize=normalize,
                    true_peak=true_peak,
                    bpm_range=bpm_range,
                    priority=priority,
                    on_progress=show.sender(name),
                )
            except BadRequest as exc:
                if exc.code in OPTION_ERRORS:  # every file would be refused the same
                    show.close()
                    _told_so_far(rows)
                    _stop(exc.message, EXIT_USAGE)
                show.end(name, f"refused: {exc.message}")
                rows.append(record(name, None, None, status="refused", error=exc.message))
                continue
            except (PayloadTooLarge, RateLimited, Conflict) as exc:
                show.end(name, f"refused: {exc.message}")
                rows.append(record(name, None, None, status="refused", error=exc.message))
                continue
            except FileUnreadable as exc:  # this file only: the others are still sent
                show.end(name, f"not sent: {exc}")
                rows.append(record(name, None, None, status="refused", error=str(exc)))
                continue
            show.end(name, f"queued as job {accepted.job_id}")
            rows.append(
                record(name, accepted.upload_id, None, status=accepted.status)
                | {"job_id": accepted.job_id}
            )
    except (PhantomChainError, KeyboardInterrupt):
        show.close()
        _told_so_far(rows)
        raise
    waited = wait or out is not None
    if waited:
        follow_all(client, rows, show)
        for row in rows:
            with_analysis(client, row)
            if out is not None:
                download_outputs(client, row, out, show, overwrite)
    emit(rows, as_json)
    if not waited and any(r["job_id"] for r in rows):
        ids = " ".join(r["job_id"] for r in rows if r["job_id"])
        click.echo(f"follow them with: phantomchain status --wait {ids}", err=True)
    sys.exit(exit_status(rows, waited))


#: A refusal of the options, not of the file: the command stops (exit status 2).
OPTION_ERRORS = frozenset(
    {"unknown_format", "bad_normalize", "bad_bpm_range", "bad_priority", "bad_callback_url"}
)


def _told_so_far(rows: Sequence[dict[str, Any]]) -> None:
    """Stopped midway: the jobs already started, and how to follow them."""
    ids = " ".join(row["job_id"] for row in rows if row["job_id"])
    if ids:
        click.echo(f"jobs already started: phantomchain status --wait {ids}", err=True)


@click.command()
@click.argument("job_ids", nargs=-1, required=True)
@click.option("--wait", is_flag=True, help="Wait for the jobs to end, showing their stages.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines on stdout, one per job.")
@server_options
def status(client: Client, job_ids: tuple[str, ...], wait: bool, as_json: bool) -> None:
    """Show jobs by JOB_IDS: status, and loudness, tempo and key once done (or why they
    failed). Exit status 1 when any failed, was canceled or is unknown."""
    from app.client import NotFound

    show = _renderer()
    rows = []
    for job_id in job_ids:
        try:
            job = client.job(job_id)
        except NotFound:
            rows.append(
                record(None, None, None, status="unknown", error="no such job") | {"job_id": job_id}
            )
            continue
        rows.append(record(client.get_upload(job.upload_id).filename, job.upload_id, job))
    if wait:
        follow_all(client, rows, show)
    for row in rows:
        with_analysis(client, row)
    emit(rows, as_json)
    sys.exit(exit_status(rows, waited=True) if wait else _status_exit(rows))


def _status_exit(rows: Sequence[dict[str, Any]]) -> int:
    bad = {"failed", "canceled", "unknown"}
    return EXIT_FAILED if any(row["status"] in bad for row in rows) else 0


@click.command()
@click.argument("job_id")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The folder to write into (made if missing).",
)
@click.option("--format", "formats", multiple=True, help="Only this format (repeatable).")
@overwrite_option
@server_options
def fetch(
    client: Client, job_id: str, out: Path, formats: tuple[str, ...], overwrite: bool
) -> None:
    """Download what the done job JOB_ID made into --out: its transcodes (a partial file left
    by a broken download is resumed) and its analysis as JSON. Prints the paths. Files already
    in --out are kept (exit status 1, naming them) unless --overwrite."""
    from app.client import FileExists, NotFound

    try:
        job = client.job(job_id)
    except NotFound:
        _stop(f"no such job {job_id}", EXIT_FAILED)
    if job.status != "done":
        why = f": {job.error}" if job.error else ""
        _stop(f"job {job_id} is {job.status}{why}", EXIT_FAILED)
    analysis = client.analysis(job.upload_id)
    out.mkdir(parents=True, exist_ok=True)
    show = _renderer()
    wanted = [f for f in analysis.outputs if not formats or f in formats]
    missing = sorted(set(formats) - set(analysis.outputs))
    if missing:
        _stop(
            f"job {job_id} made no {', '.join(missing)} (it made {', '.join(analysis.outputs)})", 1
        )
    stem = Path(client.get_upload(job.upload_id).filename).stem  # the server's: checked
    if not _plain_name(stem):
        stem = job.upload_id if _plain_name(job.upload_id) else "upload"
    kept = []
    for fmt in wanted:
        try:
            got = client.download(
                job.upload_id, fmt, out, overwrite=overwrite, on_progress=show.receiving(fmt)
            )
        except FileExists as exc:
            kept.append(exc.path)
            continue
        finally:
            show.close()
        click.echo(got.path)
    try:
        click.echo(str(write_analysis(analysis.raw, out / f"{stem}.analysis.json", overwrite)))
    except FileExists as exc:
        kept.append(exc.path)
    if kept:
        _stop(f"not replaced (--overwrite replaces them): {', '.join(kept)}", EXIT_FAILED)
