"""The one rule for "a server is away": which errors mean PostgreSQL, NATS or the file storage
could not be reached or did not answer — worth waiting for — rather than a bug or bad input.

Each process applies it in its own way:

* the API answers 503 with ``Retry-After``, naming the server (:mod:`app.http.errors`);
* a worker rides it out, retrying its bookkeeping for a while (:mod:`tasks.outages`);
* the CLI prints one line that says which server and exits 1 (:mod:`app.cli.common`).

The driver's own words go to the logs (:func:`detail`), never to a client.
"""

from __future__ import annotations

from dataclasses import dataclass

from dramatiq.errors import BrokerConnectionError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.storage import StorageUnavailable
from broker.connection import NATS_UNREACHABLE


@dataclass(frozen=True)
class Outage:
    """Which server is away, and how a client is told."""

    server: str  # "the database", "the job queue", "file storage"
    code: str  # the API's error code
    message: str  # the API's message


DATABASE = Outage(
    "the database", "database_unavailable", "the database is unavailable; retry shortly"
)
QUEUE = Outage("the job queue", "queue_unavailable", "the job queue is unreachable; retry shortly")
STORAGE = Outage(
    "file storage", "storage_unavailable", "file storage is unavailable; retry shortly"
)

#: Every error type that can mean an outage: what an error handler is registered for.
#: ``DBAPIError`` counts only when SQLAlchemy says the connection was lost (:func:`outage_of`).
KINDS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeout,
    DBAPIError,
    BrokerConnectionError,
    *NATS_UNREACHABLE,
    StorageUnavailable,
)


def outage_of(exc: BaseException) -> Outage | None:
    """The server ``exc`` says is away, or ``None`` when it is some other error."""
    if isinstance(exc, StorageUnavailable):
        return STORAGE
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        return DATABASE
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return DATABASE
    if isinstance(exc, (BrokerConnectionError, *NATS_UNREACHABLE)):
        return QUEUE
    return None


def is_outage(exc: BaseException) -> bool:
    return outage_of(exc) is not None


def detail(exc: BaseException) -> str:
    """The error's own words on one line (a database driver's span several), for the logs."""
    return " ".join(str(getattr(exc, "orig", None) or exc).split())
