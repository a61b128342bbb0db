"""Stored originals no upload row refers to: find them, remove them.

The API stores an upload's original (``uploads/<upload id>/original.<ext>``) before it writes
the upload's row, and removes the file itself when anything fails after that. Only a process
that dies in between (killed, the machine lost) leaves a file behind; :func:`remove_orphans`
deletes those once they are older than a cutoff (an hour by default, far longer than any
upload takes from its file to its row), so an upload in progress is never taken for one.
Run from ``phantomchain storage sweep`` (cron) and the workers' periodic sweep.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.models import Upload, utcnow
from app.storage import Storage

#: Where the API stores an upload's original (``app.http.api.uploads``).
ORIGINALS_PREFIX = "uploads/"
_ORIGINAL = re.compile(r"^uploads/(?P<upload_id>[^/]+)/original\.[A-Za-z0-9]+$")
#: Upload ids asked about in one query.
_BATCH = 500


def find_orphans(
    sessions: sessionmaker[Session],
    storage: Storage,
    older_than_s: float,
    *,
    now: datetime | None = None,
) -> list[str]:
    """Keys of stored originals written more than ``older_than_s`` seconds before ``now``
    whose upload has no row, sorted."""
    cutoff = (now or utcnow()) - timedelta(seconds=older_than_s)
    candidates: dict[str, str] = {}  # key -> upload id
    for found in storage.list_objects(ORIGINALS_PREFIX):
        match = _ORIGINAL.match(found.key)
        if match and found.modified < cutoff:
            candidates[found.key] = match["upload_id"]
    known = _existing_uploads(sessions, set(candidates.values()))
    return sorted(key for key, upload_id in candidates.items() if upload_id not in known)


def remove_orphans(
    sessions: sessionmaker[Session],
    storage: Storage,
    older_than_s: float,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
) -> list[str]:
    """Delete what :func:`find_orphans` finds (nothing with ``dry_run``); returns the keys.

    :raises sqlalchemy.exc.SQLAlchemyError: the database did not answer — nothing is deleted.
    """
    orphans = find_orphans(sessions, storage, older_than_s, now=now)
    if not dry_run:
        for key in orphans:
            storage.delete(key)
    return orphans


def _existing_uploads(sessions: sessionmaker[Session], upload_ids: Iterable[str]) -> set[str]:
    """Which of ``upload_ids`` have a row (asked by primary key, a few hundred at a time)."""
    ids = sorted(upload_ids)
    known: set[str] = set()
    with sessions() as session:
        for start in range(0, len(ids), _BATCH):
            batch = ids[start : start + _BATCH]
            known.update(session.scalars(select(Upload.id).where(Upload.id.in_(batch))))
    return known
