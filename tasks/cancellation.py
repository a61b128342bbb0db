"""A running stage's way to learn that its job was canceled, and what it does then.

The API cancels a job with one write to its row (:func:`app.jobs.cancel_job`) and sends the
workers nothing: a stage in progress finds out by asking. :class:`Cancellation` is the
``should_stop`` check the audio engine calls between two blocks of audio (a block is ~1.5 s of
audio, decoded in milliseconds), so a canceled stage stops within the poll interval plus one
block. The database is asked at most every :data:`POLL_INTERVAL_S`: a stage costs one tiny
query per half second, whatever the number of blocks. A failed poll — PostgreSQL away for a
moment — counts as "not canceled yet": the stage goes on, and the next poll, or the stage's
completion (:func:`app.jobs.stage_done`, ridden out), sees the cancel.

When a stage stops for a cancel, or its completion finds the job canceled, :func:`clean_up`
removes what the job's stages made (rows, then files by their keys) before the message is
acknowledged: a worker dying before it is done leaves the message, and its delivery cleans up
again (:data:`app.jobs.CANCELED`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app import uploads
from app.models import Job, utcnow
from app.storage import Storage

logger = logging.getLogger(__name__)

#: The most often a running stage asks the database whether its job was canceled (seconds).
POLL_INTERVAL_S = 0.5


class Cancellation:
    """``should_stop`` for one stage of one job: true once the job is canceled or gone.

    Called from the stage's own thread between blocks (one object per stage run, so no lock);
    cheap between polls (a clock read), and never raises: a poll that fails is "not yet".
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        job_id: str,
        *,
        interval_s: float = POLL_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._job_id = job_id
        self._interval_s = interval_s
        self._clock = clock
        self._next_poll = clock()  # the first call asks at once
        #: When the cancel was committed (the job's ``finished_at``), once seen; ``None`` for a
        #: job found gone (its upload removed).
        self.canceled_at: datetime | None = None
        self.seen = False
        self.polls = 0

    def __call__(self) -> bool:
        if self.seen:
            return True
        now = self._clock()
        if now < self._next_poll:
            return False
        self._next_poll = now + self._interval_s
        return self.confirmed()

    def confirmed(self) -> bool:
        """Ask the database now (unthrottled): is the job canceled or gone? A failed query
        answers False (the caller goes on; a later question sees it)."""
        if self.seen:
            return True
        self.polls += 1
        try:
            with self._sessions() as session:
                row = session.execute(
                    select(Job.status, Job.finished_at).where(Job.id == self._job_id)
                ).first()
        except Exception as exc:  # PostgreSQL away: not canceled as far as we know
            logger.info("could not ask whether the job was canceled (%s): going on", exc)
            return False
        if row is None or row.status == "canceled":
            self.seen = True
            self.canceled_at = row.finished_at if row is not None else None
        return self.seen

    def delay_s(self) -> float | None:
        """Seconds from the cancel's commit to now (for the log line; None if unknown)."""
        if self.canceled_at is None:
            return None
        return (utcnow() - self.canceled_at).total_seconds()


def clean_up(sessions: sessionmaker[Session], storage: Storage, upload_id: str) -> int:
    """Remove what the pipeline made of ``upload_id`` (:func:`app.uploads.remove_made`: rows,
    then every key a stage may have written); returns the keys asked to be deleted.
    Idempotent. Raises when the database or the storage fails (the caller rides it out; the
    message is not acknowledged until this has succeeded)."""
    keys = uploads.remove_made(sessions, upload_id)
    for key in keys:
        storage.delete(key)
    return len(keys)
