"""Waking a job's event streams when the job has something new, instead of on their next look.

Every transaction that adds a job event announces it on a PostgreSQL channel
(:data:`app.models.JOB_EVENTS_CHANNEL`, delivered at commit). A web process keeps one
connection listening on it — opened by its first event stream, so a process that serves none
holds none — and wakes the streams that follow that job (:meth:`JobWatch.following`); each
then reads the database as it would on its own, so a wake-up is only ever a hint: what a
client is sent still comes from the rows alone.

Nothing is lost when the listening connection is not there (PostgreSQL restarting, a failover):
the streams go on looking every half second as they did without it, and when the connection is
back every stream is woken once, for what it may have missed meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

from sqlalchemy.engine import make_url

from app.models import JOB_EVENTS_CHANNEL

logger = logging.getLogger(__name__)

#: Seconds the listening thread waits for notifications before checking it should go on.
LISTEN_TICK_S = 1.0
#: Seconds between attempts to listen again after the connection failed.
RELISTEN_S = 2.0
#: Seconds to wait for the listening connection (as the app's pool waits for its own).
CONNECT_TIMEOUT_S = 5


def libpq_url(database_url: str) -> str:
    """The settings' SQLAlchemy URL (``postgresql+psycopg://…``) as psycopg takes it."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


class JobWatch:
    """One web process's listening connection, and the streams it wakes."""

    def __init__(self, database_url: str) -> None:
        self._url = libpq_url(database_url)
        self._lock = threading.Lock()
        self._following: dict[str, set[threading.Event]] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        #: Set while the connection listens (cleared while it is away).
        self.listening = threading.Event()

    @contextlib.contextmanager
    def following(self, job_id: str, wake: threading.Event) -> Iterator[None]:
        """While inside, ``wake`` is set whenever ``job_id`` gets an event (and whenever the
        connection starts listening again). Enter it before reading the job: an event
        committed in between then still wakes the reader."""
        with self._lock:
            self._following.setdefault(job_id, set()).add(wake)
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._listen, name="job-watch", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                wakes = self._following.get(job_id)
                if wakes is not None:
                    wakes.discard(wake)
                    if not wakes:
                        del self._following[job_id]

    def close(self) -> None:
        """Stop listening (within :data:`LISTEN_TICK_S`)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(LISTEN_TICK_S + CONNECT_TIMEOUT_S)

    def _wake(self, job_id: str | None = None) -> None:
        with self._lock:
            if job_id is None:
                wakes = [wake for wakes in self._following.values() for wake in wakes]
            else:
                wakes = list(self._following.get(job_id, ()))
        for wake in wakes:
            wake.set()

    def _listen(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
                ) as conn:
                    conn.execute(f"LISTEN {JOB_EVENTS_CHANNEL}")
                    self.listening.set()
                    self._wake()  # whatever was committed before the LISTEN took effect
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=LISTEN_TICK_S):
                            self._wake(note.payload)
            except Exception as exc:  # the streams look every half second meanwhile
                log = logger.warning if self.listening.is_set() else logger.debug
                log("listening for job events failed: %r; retrying", exc)
                self.listening.clear()
                self._stop.wait(RELISTEN_S)
        self.listening.clear()
