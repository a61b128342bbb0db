"""A real deployment in miniature: the Procfile's own lines — release, web, worker — run by a
shell as a Procfile host runs them, on a real Postgres and NATS, each process logging to its
own file."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest

from app.embedded.nats_server import free_port, port_answers
from tests.helpers import ROOT, SERVICE_NAMESPACE, service_broker, wait_for

BIN = Path(sys.executable).parent


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


@dataclass
class Process:
    popen: subprocess.Popen
    log: Path
    port: int
    #: Where the web line serves ``/metrics`` (``METRICS_PORT``); None for other lines.
    metrics_port: int | None = None

    def log_lines(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if line.strip()]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait()


class Deployment:
    """Starts the Procfile's processes with one environment; stops whatever it started."""

    def __init__(self, tmp: Path, database_url: str, nats_url: str) -> None:
        self.tmp = tmp
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "NATS_URL": nats_url,
            "NATS_NAMESPACE": SERVICE_NAMESPACE,
            "STORAGE_URL": f"file://{tmp}/store",
            "METRICS_DIR": str(tmp / "metrics"),
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            "PYTHONPATH": str(ROOT),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "WORKER_PROCESSES": "1",
            "WORKER_THREADS": "1",
        }
        self.processes: list[Process] = []
        self.lines = procfile()

    def release(self) -> None:
        """The release line (migrations), once, as before every deploy."""
        done = subprocess.run(["bash", "-c", self.lines["release"]], env=self.env, cwd=ROOT,
                              capture_output=True, text=True)  # fmt: skip
        assert done.returncode == 0, done.stderr

    def api(self, **env: str) -> Process:
        """The web line (``python -m app.api.server``) on a free port, its metrics on another
        (``METRICS_PORT`` given in ``env`` wins)."""
        metrics_port = int(env.setdefault("METRICS_PORT", str(free_port())))
        process = self._start("web", "PORT", env)
        process.metrics_port = metrics_port or None
        return process

    def workers(self, **env: str) -> Process:
        """A ``dramatiq`` master (the worker line) with its metrics on a free port."""
        return self._start("worker", "WORKER_METRICS_PORT", env)

    def webhooks(self, **env: str) -> Process:
        """The webhooks line (a ``dramatiq`` master) with its metrics on a free port."""
        return self._start("webhooks", "WEBHOOK_METRICS_PORT", env)

    def _start(self, name: str, port_variable: str, env: dict) -> Process:
        """Run a Procfile line with ``port_variable`` set to a free port; wait until it answers."""
        port = free_port()
        process = self._spawn(name, port, {port_variable: str(port), **env})
        assert wait_for(lambda: port_answers("127.0.0.1", port) or process.popen.poll(), 60)
        assert process.popen.poll() is None, process.log.read_text()
        return process

    def _spawn(self, name: str, port: int, env: dict) -> Process:
        """Run a Procfile line; ``exec`` makes signals reach the server itself, not the shell."""
        log = self.tmp / f"{name}-{len(self.processes)}.log"
        with log.open("wb") as output:  # the child keeps its own copy of the descriptor
            popen = subprocess.Popen(
                ["bash", "-c", f"exec {self.lines[name]}"], env={**self.env, **env}, cwd=ROOT,
                stdout=output, stderr=subprocess.STDOUT,
            )  # fmt: skip
        process = Process(popen, log, port)
        self.processes.append(process)
        return process


@contextlib.contextmanager
def deployed_in_namespace(deployment: Deployment) -> Iterator[Deployment]:
    """Release ``deployment`` on the session's namespace, emptied before and after (the
    namespace is shared by the session's tests); stop whatever it started."""
    broker = service_broker(deployment.env["NATS_URL"])
    broker.flush_all()
    broker.dead_letters.purge()
    deployment.release()
    try:
        yield deployment
    finally:
        for process in deployment.processes:
            if process.popen.poll() is None:
                process.stop(signal.SIGTERM, 30)
        broker.flush_all()
        broker.dead_letters.purge()


@pytest.fixture
def deployment(database_url, service_nats_url, tmp_path):
    """An empty database, migrated by the release line, and the Procfile's processes on it."""
    with deployed_in_namespace(Deployment(tmp_path, database_url, service_nats_url)) as deployed:
        yield deployed


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def get_json(port: int, path: str) -> dict:
    status, body = get(port, path)
    assert status == 200, body
    return json.loads(body)


def multipart(name: str) -> tuple[str, bytes, bytes]:
    """A multipart form with one ``file`` field named ``name``: its content type, and the bytes
    that go before and after the file's."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", head, tail


def upload(port: int, data: bytes, name: str = "song.flac", chunks=None) -> tuple[int, dict]:
    """POST a multipart upload; ``chunks`` (an iterator of the body's pieces) streams it."""
    content_type, head, tail = multipart(name)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": content_type}
    if chunks is None:
        connection.request("POST", "/api/uploads", head + data + tail, headers)
    else:
        headers["Content-Length"] = str(len(head) + len(data) + len(tail))
        connection.putrequest("POST", "/api/uploads")
        for key, value in headers.items():
            connection.putheader(key, value)
        connection.endheaders()
        connection.send(head)
        for piece in chunks(data):
            connection.send(piece)
        connection.send(tail)
    response = connection.getresponse()
    body = json.loads(response.read() or b"{}")
    connection.close()
    return response.status, body


def sse_blocks(response: http.client.HTTPResponse) -> Iterator[list[str]]:
    """The stream's blocks (lines up to a blank line), each as soon as it has arrived."""
    block: list[str] = []
    while line := response.readline():
        line = line.decode().rstrip("\r\n")
        if line:
            block.append(line)
        elif block:
            yield block
            block = []


def wait_job(port: int, job_id: str, timeout: float = 180) -> dict:
    job: dict = {}

    def finished() -> bool:
        nonlocal job
        job = get_json(port, f"/api/jobs/{job_id}")
        return job["status"] in ("done", "failed")

    assert wait_for(finished, timeout, interval=0.2), job
    return job


class SharedDeployment(Deployment):
    """A :class:`Deployment` for a whole module, with a worker that serves no metrics."""

    def workers_without_metrics(self, **env: str) -> Process:
        """A ``dramatiq`` master (the worker line) with ``WORKER_METRICS_PORT=0``: nothing to
        wait for, it takes jobs once it has booted."""
        process = self._spawn("worker", 0, {"WORKER_METRICS_PORT": "0", **env})
        assert process.popen.poll() is None, process.log.read_text()
        return process


def new_database(admin_url: str) -> str:
    """A new, empty database on the server of ``admin_url`` (as the ``database_url`` fixture)."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return urlparse(admin_url)._replace(path=f"/{name}").geturl()


@pytest.fixture(scope="module")
def module_deployment(postgres_admin_url, service_nats_url, tmp_path_factory):
    """As ``deployment``, but one for every test of a module that asks for it: a database of
    its own, migrated by the release line; tests add the processes they need."""
    tmp = tmp_path_factory.mktemp("deployment")
    deployment = SharedDeployment(tmp, new_database(postgres_admin_url), service_nats_url)
    with deployed_in_namespace(deployment) as deployed:
        yield deployed
