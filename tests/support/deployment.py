"""A real deployment in miniature: the Procfile's own lines — release, web, worker, webhooks —
run by a shell as a Procfile host runs them, on a real Postgres and NATS, each process logging
to its own file."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from app.embedded.nats_server import free_port, port_answers
from tests.support.namespace import SERVICE_NAMESPACE, service_broker
from tests.support.paths import BIN, ROOT
from tests.support.waiting import stop_all, wait_for


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
        done = subprocess.run(
            ["bash", "-c", self.lines["release"]],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr

    def api(self, **env: str) -> Process:
        """The web line (``python -m app.server``) on a free port, its metrics on another
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
                ["bash", "-c", f"exec {self.lines[name]}"],
                env={**self.env, **env},
                cwd=ROOT,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
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
        stop_all([process.popen for process in deployment.processes])  # all at once
        broker.flush_all()
        broker.dead_letters.purge()


class SharedDeployment(Deployment):
    """A :class:`Deployment` for a whole module, with a worker that serves no metrics."""

    def workers_without_metrics(self, **env: str) -> Process:
        """A ``dramatiq`` master (the worker line) with ``WORKER_METRICS_PORT=0``: nothing to
        wait for, it takes jobs once it has booted."""
        process = self._spawn("worker", 0, {"WORKER_METRICS_PORT": "0", **env})
        assert process.popen.poll() is None, process.log.read_text()
        return process


@contextlib.contextmanager
def paused(process) -> Iterator[None]:
    """The worker processes of a dramatiq master stopped (SIGSTOP) for the block: no job moves."""
    master = psutil.Process(process.popen.pid)
    assert wait_for(master.children, 60)  # forked at once, but a worker may have just started
    children = master.children(recursive=True)
    for child in children:
        child.suspend()
    try:
        yield
    finally:
        for child in children:
            child.resume()
