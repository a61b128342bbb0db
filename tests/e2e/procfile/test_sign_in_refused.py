"""A NATS that refuses the processes' credentials stops each at start — the Procfile's web,
worker and webhooks lines and the ``phantomchain`` CLI — with the one line that names the
setting to check: no traceback, no retrying forever."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.embedded.nats_server import NatsServer
from tests.support.deployment import procfile
from tests.support.nats_auth import Operator, configured_server, write_creds
from tests.support.paths import BIN, ROOT

#: Seconds a refused start may take at most: a retried sign-in would hang past it.
BOUND_S = 90


@dataclass(frozen=True)
class Refusing:
    server: NatsServer
    stranger: Path  # creds of an account the server does not trust

    @property
    def line(self) -> str:
        return (
            f"NATS at {self.server.url} refused the sign-in (authorization violation): "
            "check NATS_CREDS (a current user JWT of an account this server trusts)"
        )


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Refusing]:
    folder = tmp_path_factory.mktemp("refusing")
    stranger, jwt = Operator.make().user("stranger")
    creds = write_creds(folder / "stranger.creds", stranger, jwt)
    with configured_server(folder / "server", Operator.make().server_config()) as server:
        yield Refusing(server, creds)


def run(
    command: list[str], refusing: Refusing, tmp_path: Path, **settings: str
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
        "NATS_URL": refusing.server.url,
        "NATS_CREDS": str(refusing.stranger),
        "METRICS_DIR": str(tmp_path / "metrics"),
        "WORKER_METRICS_PORT": "0",
        "WEBHOOK_METRICS_PORT": "0",
        "METRICS_PORT": "0",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        **settings,
    }
    done = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=BOUND_S
    )
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done


def test_the_cli_says_so_in_one_line(refusing, tmp_path):
    done = run([str(BIN / "phantomchain"), "dlq", "list"], refusing, tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"error: {refusing.line}"]


def test_the_web_process_says_so_in_one_line(refusing, tmp_path):
    web = ["bash", "-c", f"cd {ROOT} && exec {procfile()['web']}"]
    done = run(web, refusing, tmp_path)
    assert done.returncode == 2
    # Logged in the log format, as a port taken is; the start's warnings may come before it.
    logged = [json.loads(line) for line in done.stderr.splitlines()]
    errors = [entry["message"] for entry in logged if entry["level"] == "error"]
    assert errors == [refusing.line]


@pytest.mark.parametrize("line", ["worker", "webhooks"])
def test_a_worker_says_so_and_stops(refusing, tmp_path, line):
    done = run(["bash", "-c", f"cd {ROOT} && exec {procfile()[line]}"], refusing, tmp_path)
    output = (done.stdout + done.stderr).splitlines()
    # Each worker process says it once; the dramatiq master only adds that they stopped (as
    # for a bad setting).
    assert refusing.line in output, output
    assert all(said == refusing.line or "exited unexpectedly" in said for said in output), output
