"""What a worker process works with — its settings, database sessions, storage — made once.

The settings are read (and checked) once per process, when :mod:`tasks.pipeline` is imported
by the ``dramatiq`` CLI: a bad one stops the worker at start with the message that lists them
all. The first task builds the rest; :func:`configure` sets it explicitly (tests).
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass
from typing import NoReturn

from sqlalchemy.orm import Session, sessionmaker

from app.config import Config, ConfigError
from app.db import make_sessions
from app.nats_sign_in import check_at_start
from app.storage import Storage, storage_of
from broker import NatsBroker


@dataclass
class WorkerContext:
    config: Config
    sessions: sessionmaker[Session]
    storage: Storage


_context: WorkerContext | None = None
_lock = threading.Lock()


@functools.cache
def worker_config() -> Config:
    """This process's settings from the environment; a bad one ends the process with the
    message (dramatiq's worker process would otherwise print a traceback around it)."""
    try:
        return Config.from_env()
    except ConfigError as error:
        stop_with(str(error))


def stop_with(message: str) -> NoReturn:
    """End this worker process with ``message`` on its stderr.

    Written straight to file descriptor 2: dramatiq points a worker process's ``sys.stderr`` at
    a pipe its main process reads, and that process stops reading once a worker has died — a
    message carried by ``SystemExit`` was lost now and then on a busy machine.
    """
    os.write(2, (message.rstrip("\n") + "\n").encode())
    raise SystemExit(1)


def refuse_at_start(broker: NatsBroker, config: Config) -> None:
    """End the process with one line when NATS refuses the sign-in settings (``NATS_CREDS``,
    ``NATS_NKEY_SEED``, ``NATS_TLS_*``): a worker would otherwise retry them forever. A NATS
    that does not answer yet is ridden out, as ever."""
    line = check_at_start(broker, config.nats_sign_in, config.nats_url)
    if line is not None:
        broker.close()
        stop_with(line)


def configure(config: Config) -> WorkerContext:
    global _context
    with _lock:
        _context = WorkerContext(
            config=config,
            sessions=make_sessions(config.database_url),
            storage=storage_of(config),
        )
        return _context


def get_context() -> WorkerContext:
    if _context is None:
        return configure(worker_config())
    return _context
