"""The condition behind the jobs list's ``failing`` filter (:mod:`app.failing`).

A job matches when its upload's analysis names the check in ``failed_checks`` (a JSON list,
written by the loudness stage from :func:`audio.verdicts.failed_checks`). The list is read as
JSONB and asked for a whole element (``?``; ``?|`` for any), so a name never matches as a
prefix of another; rows analysed before the checks existed (``failed_checks`` null) match no
filter.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Text, cast, exists, literal, select
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from app.failing import ANY
from app.models import Analysis, Job
from audio.verdicts import CHECK_NAMES


def failing_clause(name: str) -> ColumnElement[bool]:
    """A condition on :class:`~app.models.Job`: its upload's analysis fails ``name`` (a check,
    or any check for :data:`ANY`)."""
    failed = cast(Analysis.failed_checks, JSONB)
    if name == ANY:
        matches = failed.has_any(literal(list(CHECK_NAMES), ARRAY(Text)))
    else:
        matches = failed.has_key(name)
    return exists(select(Analysis.upload_id).where(Analysis.upload_id == Job.upload_id, matches))
