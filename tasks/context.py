"""What a worker process needs — configuration, database sessions, storage — made once.

Workers have no Flask application: the first task in a process builds these from the
environment (:func:`configure` sets them explicitly, for tests and ``phantomchain dev``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from app.config import Config
from app.db import make_engine, make_session_factory
from app.storage import LocalStorage, NatsObjectStorage, open_storage


@dataclass
class WorkerContext:
    config: Config
    sessions: sessionmaker[Session]
    storage: LocalStorage | NatsObjectStorage


_context: WorkerContext | None = None
_lock = threading.Lock()


def configure(config: Config) -> WorkerContext:
    global _context
    with _lock:
        _context = WorkerContext(
            config=config,
            sessions=make_session_factory(make_engine(config.database_url)),
            storage=open_storage(config.storage_url),
        )
        return _context


def get_context() -> WorkerContext:
    if _context is None:
        return configure(Config.from_env())
    return _context
