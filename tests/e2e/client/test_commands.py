"""The sender's commands — ``phantomchain send``, ``status``, ``fetch`` — run as a person runs
them (the installed console script, in a process of its own, with only ``PHANTOMCHAIN_URL`` and
``PHANTOMCHAIN_TOKEN`` set) against the Procfile's processes: results, exit statuses, a job
that fails, a file that is refused, and Ctrl-C while waiting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from app.client import Client
from tests.support.deployment import paused
from tests.support.paths import BIN
from tests.support.waiting import wait_until

TOKEN = "sender-token"
NO_JOB = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def api(module_deployment):
    return module_deployment.api(API_TOKENS=f"sender:{TOKEN}")


@pytest.fixture(scope="module")
def worker(module_deployment):
    return module_deployment.workers_without_metrics()


@pytest.fixture(scope="module")
def files(song, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("files")
    made = {
        "song": folder / "song.flac",
        "notes": folder / "notes.txt",
        "broken": folder / "broken.wav",
    }
    made["song"].write_bytes(song)
    made["notes"].write_text("not audio at all\n")
    # a WAV by its first bytes, and nothing after them that decodes: accepted, then failed
    made["broken"].write_bytes(b"RIFF\x00\x10\x00\x00WAVE" + bytes(range(256)) * 16)
    return made


def environment(api) -> dict[str, str]:
    """What a sender's shell holds: the URL, the token — none of the server's settings."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "PHANTOMCHAIN_URL": f"http://127.0.0.1:{api.port}",
        "PHANTOMCHAIN_TOKEN": TOKEN,
    }


def phantomchain(api, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "phantomchain"), *args],
        env=environment(api),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_send_wait_json_with_a_refused_file(api, worker, files, tmp_path):
    out = tmp_path / "out"
    done = phantomchain(
        api,
        "send",
        str(files["song"]),
        str(files["notes"]),
        "--formats",
        "mp3,opus",
        "--wait",
        "--json",
        "--out",
        str(out),
    )
    assert done.returncode == 1, done.stderr  # one file refused
    song, notes = lines(done.stdout)
    assert song["file"] == "song.flac" and song["status"] == "done" and song["error"] is None
    assert song["key"] == "A minor" and song["integrated_lufs"] is not None
    made = sorted(Path(p).name for p in song["outputs"])
    assert made == ["song.analysis.json", "song.mp3", "song.opus"]
    assert all(Path(p).parent == out and Path(p).stat().st_size > 0 for p in song["outputs"])
    assert json.loads((out / "song.analysis.json").read_text())["key"] == "A minor"
    assert notes["status"] == "refused" and notes["job_id"] is None
    assert "not an audio file" in notes["error"]
    assert f"queued as job {song['job_id']}" in done.stderr


def test_a_file_already_in_out_is_kept_unless_overwrite(api, worker, files, tmp_path):
    # A FLAC sent for a FLAC transcode, downloaded beside itself: the transcode has its name.
    source = tmp_path / "song.flac"
    source.write_bytes(files["song"].read_bytes())
    kept = phantomchain(api, "send", str(source), "--formats", "flac", "--out", str(tmp_path))
    assert kept.returncode == 1, kept.stderr
    assert source.read_bytes() == files["song"].read_bytes()
    assert f"{source} exists: not replaced (--overwrite replaces it)" in kept.stderr
    assert (tmp_path / "song.analysis.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.analysis.json", "song.flac"]

    job_id = kept.stdout.splitlines()[1].split()[0]
    refetched = phantomchain(api, "fetch", job_id, "--out", str(tmp_path), "--overwrite")
    assert refetched.returncode == 0, refetched.stderr
    assert source.read_bytes() != files["song"].read_bytes()  # asked for: the transcode's now
    assert refetched.stdout.split() == [str(source), str(tmp_path / "song.analysis.json")]


def test_send_then_status_then_fetch(api, worker, files, tmp_path):
    sent = phantomchain(api, "send", str(files["song"]), "--json")
    assert sent.returncode == 0, sent.stderr
    (queued,) = lines(sent.stdout)
    assert queued["status"] == "queued"
    assert f"phantomchain status --wait {queued['job_id']}" in sent.stderr

    waited = phantomchain(api, "status", "--wait", queued["job_id"])
    assert waited.returncode == 0, waited.stderr
    header, row = waited.stdout.splitlines()
    assert header.split() == ["job", "file", "status", "loudness", "bpm", "key"]
    assert row.split()[:3] == [queued["job_id"], "song.flac", "done"]
    assert "LUFS" in row and row.rstrip().endswith("A minor")

    fetched = phantomchain(api, "fetch", queued["job_id"], "--out", str(tmp_path / "got"))
    assert fetched.returncode == 0, fetched.stderr
    paths = [Path(p) for p in fetched.stdout.split()]
    assert [p.name for p in paths] == ["song.mp3", "song.analysis.json"]
    assert json.loads(paths[1].read_text())["key"] == "A minor"

    unknown = phantomchain(api, "status", "--json", NO_JOB)
    assert unknown.returncode == 1
    assert lines(unknown.stdout)[0]["status"] == "unknown"


def test_a_failed_job_exits_1_with_its_sentence(api, worker, files):
    done = phantomchain(api, "send", str(files["broken"]), "--wait")
    assert done.returncode == 1, done.stderr
    _, row = done.stdout.splitlines()
    assert row.split()[2] == "failed"
    job_id = row.split()[0]
    with Client(f"http://127.0.0.1:{api.port}", TOKEN) as client:
        sentence = client.job(job_id).error
    assert sentence and sentence[:40] in row  # the table says why (cut to the column's width)


def test_a_refused_token_and_a_missing_url_are_exit_2(api, files):
    env = environment(api) | {"PHANTOMCHAIN_TOKEN": "not-a-token"}
    refused = subprocess.run(
        [str(BIN / "phantomchain"), "status", NO_JOB], env=env, capture_output=True, text=True
    )
    assert refused.returncode == 2 and "PHANTOMCHAIN_TOKEN" in refused.stderr
    env.pop("PHANTOMCHAIN_URL")
    missing = subprocess.run(
        [str(BIN / "phantomchain"), "send", str(files["song"])],
        env=env,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "PHANTOMCHAIN_URL" in missing.stderr


def test_a_bad_option_is_exit_2_with_the_servers_sentence(api, files):
    done = phantomchain(api, "send", str(files["song"]), str(files["song"]), "--normalize", "loud")
    assert done.returncode == 2
    assert "normalize" in done.stderr and done.stderr.count("error:") == 1
    assert done.stdout == ""


def test_ctrl_c_while_waiting_leaves_the_job_running(api, worker, files, tmp_path):
    errors = tmp_path / "stderr"
    with paused(worker), errors.open("w") as stderr:  # the job waits: Ctrl-C meets it unended
        process = subprocess.Popen(
            [str(BIN / "phantomchain"), "send", str(files["song"]), "--wait"],
            env=environment(api),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        job_id = wait_until(
            lambda: next(
                (
                    line.rsplit(" ", 1)[1]
                    for line in errors.read_text().splitlines()
                    if "queued as job" in line
                ),
                None,
            ),
            60,
            "the upload",
        )
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 130
        told = errors.read_text()
        assert f"phantomchain status --wait {job_id}" in told and "Traceback" not in told
    with Client(f"http://127.0.0.1:{api.port}", TOKEN) as client:
        assert client.follow(job_id, timeout=120).status == "done"
