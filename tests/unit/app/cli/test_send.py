"""The pure parts of ``phantomchain send``/``status``/``fetch``: the results table, the exit
status, the progress lines on a terminal and elsewhere, and the settings' exit statuses."""

from __future__ import annotations

import io
import json
import os
import threading

from click.testing import CliRunner

import app.client
from app.cli import main
from app.cli.progress import Renderer, bar, event_text, size
from app.cli.send import EXIT_UNREACHABLE, EXIT_USAGE, exit_status, record, results_table
from app.client import RetryPolicy


def row(status: str, **values) -> dict:
    made = record("song.flac", "u1", None, status=status) | {"job_id": "j1"}
    return made | values


def test_the_table_shows_figures_when_done_and_the_sentence_otherwise():
    text = results_table(
        [
            row("done", integrated_lufs=-9.84, bpm=None, key="A minor"),
            row("failed", error="the file could not be decoded: " + "x" * 80),
            row("refused", job_id=None, error="not an audio file"),
        ]
    )
    header, done, failed, refused = text.splitlines()
    assert header.split() == ["job", "file", "status", "loudness", "bpm", "key"]
    assert done.split() == ["j1", "song.flac", "done", "-9.8", "LUFS", "A", "minor"]
    assert "the file could not be decoded" in failed and failed.endswith("…")
    assert refused.split()[:3] == ["-", "song.flac", "refused"] and "not an audio" in refused


def test_exit_status():
    assert exit_status([row("done"), row("done")], waited=True) == 0
    assert exit_status([row("done"), row("failed")], waited=True) == 1
    assert exit_status([row("done"), row("canceled")], waited=True) == 1
    assert exit_status([row("queued")], waited=False) == 0
    assert exit_status([row("queued"), row("refused")], waited=False) == 1


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    show = Renderer(out, tty=False)
    for sent in (0, 1000, 2000, 3000):
        show.sending("a.flac", sent, 3000)
    show.step("a.flac", "transcode started")
    show.step("a.flac", "transcode started")  # said once
    show.end("a.flac", "done")
    assert out.getvalue().splitlines() == [
        "a.flac: sending 2.9 KB",
        "a.flac: sent 2.9 KB",
        "a.flac: transcode started",
        "a.flac: done",
    ]


def test_one_line_redrawn_on_a_terminal():
    out = io.StringIO()
    show = Renderer(out, tty=True)
    show.sending("a.flac", 512, 2048)
    show.end("a.flac", "queued")
    text = out.getvalue()
    assert text.count("\n") == 1 and text.count("\r\x1b[2K") == 2
    assert "sending [######------------------]  25% 512 B of 2.0 KB" in text


def test_a_stage_with_the_jobs_percent_is_a_bar_on_a_terminal_only():
    shown = {}
    for tty in (True, False):
        out = io.StringIO()
        Renderer(out, tty=tty).step("a.flac", "loudness -24.3 LUFS", progress=40)
        shown[tty] = out.getvalue()
    assert shown[True] == f"\r\x1b[2Ka.flac: [{'#' * 10}{'-' * 14}]  40% loudness -24.3 LUFS"
    assert shown[False] == "a.flac: loudness -24.3 LUFS\n"


def test_bar_size_and_event_text():
    assert bar(0, 0) == f"[{'#' * 24}] 100%"
    assert size(5 * 2**20) == "5.0 MB"
    assert (
        event_text("loudness", "will retry: database away") == "loudness: will retry: database away"
    )
    assert event_text("transcode", "transcode started") == "transcode started"
    assert event_text(None, "done") == "done"


def test_no_url_is_a_usage_error():
    result = CliRunner().invoke(main, ["status", "j1"], env={"PHANTOMCHAIN_URL": ""})
    assert result.exit_code == EXIT_USAGE
    assert "PHANTOMCHAIN_URL" in result.output


def test_a_server_that_does_not_answer_is_exit_3(monkeypatch):
    monkeypatch.setattr(app.client, "RetryPolicy", lambda: RetryPolicy(max_retries=0))
    result = CliRunner().invoke(main, ["status", "j1", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == EXIT_UNREACHABLE
    assert "cannot reach http://127.0.0.1:9" in result.output


def test_a_file_name_that_is_not_utf8_is_sent_and_told_as_json(tmp_path):
    from tests.unit.app.client.conftest import Scripted

    scripted = Scripted()
    thread = threading.Thread(target=scripted.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        accepted = {"upload_id": "u1", "job_id": "j1", "status": "queued"}
        scripted.answers = [
            (202, {"Content-Type": "application/json"}, json.dumps(accepted).encode())
        ]
        name = os.fsdecode(b"n\xff\xfe.wav")
        (tmp_path / name).write_bytes(b"RIFF")
        result = CliRunner().invoke(
            main, ["send", "--json", "--url", scripted.url, str(tmp_path / name)]
        )
    finally:
        scripted.shutdown()
        scripted.server_close()
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    assert json.loads(line)["job_id"] == "j1"


def test_what_a_server_says_reaches_the_terminal_without_control_characters():
    hostile = "bad\x1b]0;owned\x07\x1b[2J"
    out = io.StringIO()
    show = Renderer(out, tty=True)
    show.step("a.flac", hostile)
    show.end("a.flac", f"failed: {hostile}")
    shown = out.getvalue().replace("\r\x1b[2K", "")  # the renderer's own redraw
    assert "\x1b" not in shown and "\x07" not in shown and "bad?]0;owned?" in shown
    table = results_table([row("failed", error=hostile, file="x\x1b[31m.flac")])
    assert "\x1b" not in table and "\x07" not in table


def test_fetch_names_the_analysis_by_the_upload_only_when_its_name_is_plain(tmp_path):
    from tests.unit.app.client.conftest import Scripted

    scripted = Scripted()
    thread = threading.Thread(target=scripted.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    as_json = {"Content-Type": "application/json"}
    job = {"id": "j1", "upload_id": "u1", "status": "done", "events": []}
    analysis = {"upload_id": "u1", "outputs": {}}
    upload = {"id": "u1", "filename": "a\x00b\x1b]0;x\x07.flac"}
    scripted.answers = [
        (200, as_json, json.dumps(body).encode()) for body in (job, analysis, upload)
    ]
    try:
        result = CliRunner().invoke(
            main, ["fetch", "--url", scripted.url, "--out", str(tmp_path), "j1"]
        )
    finally:
        scripted.shutdown()
        scripted.server_close()
    assert result.exit_code == 0, result.output
    assert [p.name for p in tmp_path.iterdir()] == ["u1.analysis.json"]
