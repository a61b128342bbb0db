"""``phantomchain analyze``: the service's audio code on local files, no servers.

With ``--json`` each file gives one JSON object on its own line (JSON Lines), in the order the
files were given; a file that cannot be analysed gives ``error`` set and the other fields null,
and the run goes on. Without ``--json`` a person gets a progress bar and a table. The exit
status is 1 if any file failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import click

from app.cli.common import table
from audio.formats import UnknownFormat, parse_formats
from audio.verdicts import REASON_KEYS, VALUE_KEYS, failed_checks
from audio.work_thread import spare_cores

#: The keys of a record, in order (DESIGN.md's list, then extras).
FIELDS = (
    "path",
    "duration_s",
    "sample_rate",
    "channels",
    "codec",
    "integrated_lufs",
    "loudness_range_lu",
    "true_peak_dbtp",
    "sample_peak_dbfs",
    "replaygain_track_gain_db",
    "replaygain_track_peak",
    "bpm",
    "bpm_confidence",
    "key",
    "key_confidence",
    "camelot",
    "loudness_reason",
    "loudness_range_reason",
    "bpm_reason",
    "key_reason",
    "beats",
    "audio_start_s",
    "audio_end_s",
    "leading_silence_s",
    "trailing_silence_s",
    *VALUE_KEYS,
    *REASON_KEYS,
    "normalize",
    "bpm_estimate",
    "bpm_estimate_confidence",
    "error",
)


def analyze_one(
    path: str,
    formats: tuple[str, ...],
    out_dir: str | None,
    normalize: dict | None = None,
    bpm_range: list[float] | None = None,
    threaded: bool = True,
) -> dict:
    """One file's record; never raises for a bad file (the message goes in ``error``).

    :param normalize: the loudness target of the transcodes (``Target.to_dict``), if any.
    :param bpm_range: ``[low, high]`` the BPM is folded into, if any.
    :param threaded: encoders on threads of their own (when the processes leave a core).
    """
    from audio.analyze import analyze_file  # the audio stack: only when a file is analysed
    from audio.bpm_range import BpmRange
    from audio.errors import AudioError
    from audio.targets import Target

    target = Target.from_dict(normalize) if normalize else None
    tempo_range = BpmRange.from_list(bpm_range) if bpm_range else None
    try:
        return analyze_file(
            path,
            formats=formats,
            out_dir=out_dir,
            normalize=target,
            bpm_range=tempo_range,
            threaded=threaded,
        ).to_dict()
    except AudioError as exc:
        return failed(path, str(exc))
    except (OSError, ValueError) as exc:
        return failed(path, f"cannot read the file: {exc}")


def failed(path: str, message: str) -> dict:
    record = dict.fromkeys(FIELDS)
    record.update(path=path, error=message, outputs=[])
    return record


def wanted_formats(value: str | None) -> tuple[str, ...]:
    """``--formats``: none unless asked for."""
    try:
        return parse_formats(value, default=())
    except UnknownFormat as exc:
        raise click.BadParameter(str(exc)) from exc


def wanted_target(normalize: str | None, true_peak: str | None, formats) -> dict | None:
    """``--normalize`` (a platform or LUFS) and ``--true-peak``, checked before any file."""
    from audio.errors import BadTargetError
    from audio.targets import parse_target

    if normalize is None:
        if true_peak is not None:
            raise click.BadParameter("needs --normalize", param_hint="--true-peak")
        return None
    if not formats:
        raise click.BadParameter(
            "the normalised masters are the transcodes: add --formats (e.g. wav or mp3)",
            param_hint="--normalize",
        )
    try:
        return parse_target(normalize, true_peak).to_dict()
    except BadTargetError as exc:
        option = "--true-peak" if str(exc).startswith("true_peak") else "--normalize"
        raise click.BadParameter(str(exc), param_hint=option) from exc


def wanted_bpm_range(value: str | None) -> list[float] | None:
    """``--bpm-range LOW-HIGH``, checked before any file: ``[low, high]``."""
    if value is None:
        return None
    from audio.bpm_range import BadBpmRangeError, parse_bpm_range

    try:
        return parse_bpm_range(value).to_list()
    except BadBpmRangeError as exc:
        raise click.BadParameter(str(exc), param_hint="--bpm-range") from exc


@click.command("analyze")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file per line.")
@click.option("--formats", help="Also transcode, e.g. mp3,opus (mp3, opus, aac, flac, wav).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Where transcodes go.")
@click.option(
    "--normalize",
    help="Normalise the transcodes: spotify, apple, youtube, ebu, podcast, or LUFS like -18.",
)
@click.option("--true-peak", help="The true-peak ceiling in dBTP with --normalize (default -1).")
@click.option(
    "--bpm-range",
    help="Fold the BPM by octaves into LOW-HIGH, e.g. 120-200 (default: octave chosen "
    "automatically).",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=lambda: os.cpu_count() or 1,
    show_default="number of cores",
    help="Files analysed at once, in separate processes.",
)
def analyze(
    files: tuple[str, ...],
    as_json: bool,
    formats: str | None,
    out_dir: str | None,
    normalize: str | None,
    true_peak: str | None,
    bpm_range: str | None,
    jobs: int,
) -> None:
    """Measure loudness (EBU R128), tempo, key, silence and waveform of FILES."""
    wanted = wanted_formats(formats)
    target = wanted_target(normalize, true_peak, wanted)
    tempo_range = wanted_bpm_range(bpm_range)
    if wanted and out_dir is None:
        out_dir = "."
    _check_distinct_outputs(files, wanted, out_dir)
    records = _run(
        list(files), wanted, out_dir, target, jobs, show_progress=not as_json, bpm_range=tempo_range
    )
    for record in records:
        if as_json:
            click.echo(json.dumps(record, allow_nan=False))
    if not as_json:
        click.echo(_table(records))
    if any(r["error"] for r in records):
        sys.exit(1)


def _check_distinct_outputs(files: tuple[str, ...], formats, out_dir: str | None) -> None:
    """Refuse files whose transcodes would land on the same path (``x/a.wav`` and ``y/a.flac``
    into one ``--out``): one would overwrite the other, or both fail half-way."""
    if not formats:
        return
    from audio.analyze import output_path

    writers: dict[Path, str] = {}
    for name in files:
        for fmt in formats:
            path = output_path(Path(name), Path(out_dir or "."), fmt).resolve()
            if path in writers and writers[path] != name:
                raise click.UsageError(
                    f"{writers[path]} and {name} would both write {path}: "
                    "give them different names or --out folders"
                )
            writers[path] = name


def _run(
    files: list[str],
    formats,
    out_dir,
    target: dict | None,
    jobs: int,
    show_progress: bool,
    bpm_range: list[float] | None = None,
) -> list[dict]:
    """Records in input order; with ``jobs > 1`` files are spread over processes."""
    bar = (
        click.progressbar(length=len(files), label="analysing", file=sys.stderr)
        if show_progress
        else None
    )
    records: list[dict] = []
    processes = 1 if jobs == 1 or len(files) == 1 else min(jobs, len(files))
    threaded = spare_cores(processes)
    with bar if bar is not None else contextlib.nullcontext():
        if processes == 1:
            results = (analyze_one(p, formats, out_dir, target, bpm_range, threaded) for p in files)
            for record in results:
                records.append(record)
                if bar is not None:
                    bar.update(1)
        else:
            with ProcessPoolExecutor(max_workers=processes) as pool:
                futures = [
                    pool.submit(analyze_one, p, formats, out_dir, target, bpm_range, threaded)
                    for p in files
                ]
                for future in futures:
                    records.append(future.result())
                    if bar is not None:
                        bar.update(1)
    return records


def _table(records: list[dict]) -> str:
    headers = ("file", "length", "LUFS", "LRA", "dBTP", "BPM", "key", "camelot", "fails", "error")
    rows = []
    for r in records:
        minutes, seconds = divmod(r["duration_s"] or 0, 60)
        rows.append(
            (
                Path(r["path"]).name,
                f"{int(minutes)}:{seconds:04.1f}" if r["duration_s"] else "",
                _number(r["integrated_lufs"]),
                _number(r["loudness_range_lu"]),
                _number(r["true_peak_dbtp"]),
                _number(r["bpm"]),
                r["key"] or "",
                r["camelot"] or "",
                "" if r["error"] else ", ".join(failed_checks(r)) or "none",
                r["error"] or "",
            )
        )
    return table(headers, rows)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"
