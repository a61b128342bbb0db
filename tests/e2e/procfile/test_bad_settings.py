"""A bad setting stops the Procfile's web and worker lines at start, with the one message that
lists every problem — no traceback, nothing served."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support.deployment import procfile
from tests.support.paths import BIN, ROOT

#: One bad value per web setting, and one of the settings every process shares.
BAD_WEB = {
    "PORT": "http",
    "WEB_THREADS": "many",
    "GRACEFUL_TIMEOUT": "-1",
    "READ_TIMEOUT_S": "0",
    "METRICS_PORT": "metrics",
    "EVENT_STREAM_MAX_S": "forever",
}
BAD_SHARED = {"STORAGE_URL": "ftp://somewhere", "LOG_LEVEL": "loud"}


def run_line(name: str, tmp_path, **settings: str) -> str:
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
        "METRICS_DIR": str(tmp_path / "metrics"),
        "WORKER_METRICS_PORT": "0",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        **settings,
    }
    done = subprocess.run(
        ["bash", "-c", f"exec {procfile()[name]}"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Traceback" not in output, output
    return output


BAD_WEBHOOKS = {"WEBHOOK_SECRET": "hunter2", "WEBHOOK_TIMEOUT_S": "0", "WEBHOOK_ALLOW_PRIVATE": "2"}


@pytest.mark.parametrize(
    ("line", "bad"),
    [
        ("web", {**BAD_WEB, **BAD_SHARED}),
        ("worker", BAD_SHARED),
        ("webhooks", {**BAD_SHARED, **BAD_WEBHOOKS}),
    ],
)
def test_a_procfile_line_stops_with_every_problem_listed(tmp_path, line, bad):
    output = run_line(line, tmp_path, **bad)
    assert "invalid configuration:" in output, output
    message = output[output.index("invalid configuration:") :]
    for name in bad:
        assert f"  - {name} must be" in message, (name, output)
