"""``phantomchain dev`` (what ``make run`` runs): up, an upload completes, Ctrl-C leaves nothing."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid

import psutil
import pytest

from app.embedded.nats_server import free_port
from tests.support.audio.music import synthesize_track
from tests.support.audio.signals import write_audio
from tests.support.receiver import Receiver
from tests.support.waiting import wait_for, wait_until


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def post_file(url: str, name: str, data: bytes, **fields: str) -> dict:
    boundary = uuid.uuid4().hex
    body = (
        "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n{value}\r\n'
            for field, value in fields.items()
        ).encode()
        + (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202
        return json.loads(response.read())


def cli(folder, env: dict, *args: str):
    """``phantomchain ARGS`` run in ``folder``, as an operator's second terminal; its JSON."""
    command = [sys.executable, "-c", "from app.cli import main; main()", *args]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_bad_settings_stop_make_run_before_anything_starts(tmp_path):
    var = tmp_path / "var"
    command = [sys.executable, "-c", "from app.cli import main; main()", "dev", "--var", str(var)]
    bad = {"PORT": "http", "WEB_THREADS": "0", "STORAGE_URL": "ftp://somewhere"}
    done = subprocess.run(
        command, env={**os.environ, **bad}, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    for name in bad:
        assert f"  - {name} must be" in done.stderr, done.stderr
    assert not var.exists()  # no server was started, no data folder made


def as_in_a_terminal() -> None:
    """Ctrl-C reaches ``make run`` in a terminal. A suite started in the background by a shell
    without job control (``make test &``) runs with SIGINT ignored, and a child inherits that:
    the SIGINT below would then never arrive, and the stack would outlive the test."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stopped_output(process: subprocess.Popen, family: list[psutil.Process]) -> str:
    """The stack's output once it has stopped. The bound is the stack's own: up to SHUTDOWN_S
    (20 s) for each of its three processes, then PostgreSQL's and NATS's stops. Past it, the
    stack's threads (it dumps them on SIGUSR1) and what is still running go in the failure."""
    try:
        return process.communicate(timeout=150)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        alive = [(p.pid, p.name(), p.status()) for p in family if p.is_running()]
        process.send_signal(signal.SIGUSR1)
        with contextlib.suppress(subprocess.TimeoutExpired):  # a retry loses no output
            process.communicate(timeout=3)
        process.kill()
        output = process.communicate()[0].decode(errors="replace")
        raise AssertionError(
            f"the stack did not stop; still running: {alive}\n{output[-8000:]}"
        ) from None


@pytest.mark.slow
def test_dev_stack_serves_an_upload_and_stops_cleanly(tmp_path):
    port = free_port()
    var = tmp_path / "var"
    command = [sys.executable, "-c", "from app.cli import main; main()", "dev", "--var", str(var)]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NATS_URL")}
    process = subprocess.Popen(
        command,
        env={**env, "PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=as_in_a_terminal,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: get(f"{base}/readyz")[0] == 200, 90, "/readyz")
        track = synthesize_track(100.0, "G", "major", seconds=5, sample_rate=44100, seed=1)
        path = tmp_path / "song.flac"
        write_audio(path, track.samples, 44100, "flac")
        # make run signs webhooks with a secret of its own and lets them reach this machine.
        receiver = Receiver((var / "webhook-secret").read_text().strip())
        accepted = post_file(
            f"{base}/api/uploads", "song.flac", path.read_bytes(), callback_url=receiver.url("/ok")
        )
        status, analysis = wait_until(
            lambda: (r := get(f"{base}{accepted['links']['analysis']}"))[0] != 202 and r,
            120,
            "the analysis",
        )
        assert status == 200, analysis
        assert analysis["key"] == "G major"
        [told] = receiver.wait_for("/ok")
        receiver.close()
        assert told.verified and told.json["job_id"] == accepted["job_id"]
        # A second terminal, in the same folder and with no settings, reaches the stack.
        listed = cli(tmp_path, env, "jobs", "list", "--json")
        assert [job["id"] for job in listed["jobs"]] == [accepted["job_id"]]
        assert cli(tmp_path, env, "dlq", "list", "--json") == []
        family = psutil.Process(process.pid).children(recursive=True)
        assert len(family) >= 4  # the web process, dramatiq, nats-server, postgres …
    finally:
        process.send_signal(signal.SIGINT)
        output = stopped_output(process, family)
    assert process.returncode == 0, output
    assert "access        OPEN: no API_TOKENS or ADMIN_TOKEN" in output  # and it says so
    assert f"web           http://127.0.0.1:{port}/" in output
    assert "webhooks      signed with WEBHOOK_SECRET from" in output

    def alive() -> list[psutil.Process]:
        return [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    assert wait_for(lambda: not alive(), 30), [p.cmdline() for p in alive()]
    leftovers = [
        p.info["cmdline"]
        for p in psutil.process_iter(["cmdline"])
        if str(var) in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []
    assert not (var / "pg" / "postmaster.pid").exists()
    assert not (var / "dev.env").exists()  # the stack is gone: the CLI must not look for it

    # A second run finds the data of the first.
    again = subprocess.Popen(
        command,
        env={**env, "PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=as_in_a_terminal,
    )
    try:
        wait_until(lambda: get(f"{base}/readyz")[0] == 200, 90, "/readyz after a restart")
        status, listing = get(f"{base}/api/jobs")
        assert status == 200 and [j["id"] for j in listing["jobs"]] == [accepted["job_id"]]
        assert get(f"{base}{accepted['links']['analysis']}")[1]["key"] == "G major"
    finally:
        family = psutil.Process(again.pid).children(recursive=True)
        again.send_signal(signal.SIGINT)
        stopped_output(again, family)
    assert again.returncode == 0
