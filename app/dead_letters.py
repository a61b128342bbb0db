"""Dead-letter operations shared by the admin HTTP routes and ``phantomchain dlq``.

:class:`broker.dead_letters.DeadLetters` knows messages; this module also knows jobs. Replaying
a pipeline message (``run_stage(job_id, stage)``) puts its job back to ``queued`` with an event
saying where it came from, so the job's story stays true: without that the job would still
read ``failed`` while a worker runs it again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.jobs import reopening
from app.queue import PIPELINE_ACTOR
from broker.dead_letters import DeadLetter, DeadLetters

#: "All" means all: the dead-letter stream is bounded by its max_age, not by a page.
EVERYTHING = 10**9


#: A queue's name, as a ``queue`` filter must give it: words of letters, digits, ``_`` and ``-``
#: joined by dots (``pipeline``, ``pipeline.DQ``). It becomes a NATS subject's last tokens,
#: where ``*`` or ``>`` would mean any queue (a purge of ``*`` dropped every dead letter and
#: said 0) and an empty token, a space or a newline an error.
QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")


class BadQueueName(ValueError):
    def __init__(self) -> None:
        super().__init__(
            "queue must be a queue's name: letters, digits, '_' and '-', in words joined by "
            "'.' (e.g. pipeline)"
        )


def check_queue_name(queue: object) -> None:
    """:raises BadQueueName: a ``queue`` filter that is no queue's name (blank is no filter)."""
    if isinstance(queue, str) and queue and not QUEUE_NAME.fullmatch(queue):
        raise BadQueueName()


class DeadLetterNotFound(LookupError):
    """No dead letter with that id (never was, replayed, deleted, purged or expired)."""

    def __init__(self, dead_letter_id: str) -> None:
        super().__init__(f"no dead letter {dead_letter_id}")


class NotReplayable(ValueError):
    """The dead letter holds bytes that never decoded as a message."""


@dataclass
class Replayed:
    """One replay: the dead letter, the message id it was sent back with, and its job."""

    id: str
    message_id: str
    job_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "message_id": self.message_id, "job_id": self.job_id}


@dataclass
class RetryReport:
    """What a bulk retry did: replayed, unknown ids, and those that cannot be replayed."""

    retried: list[Replayed] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    not_replayable: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "retried": [r.to_dict() for r in self.retried],
            "not_found": self.not_found,
            "not_replayable": self.not_replayable,
        }


def list_letters(
    letters: DeadLetters, *, queue: str | None = None, actor: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Dead letters as JSON-ready dicts, oldest first."""
    check_queue_name(queue)
    return [letter.to_dict() for letter in letters.list(queue=queue, actor=actor, limit=limit)]


def show(letters: DeadLetters, dead_letter_id: str) -> dict[str, Any]:
    """One dead letter with payload and traceback.

    :raises DeadLetterNotFound: no such dead letter.
    """
    letter = letters.get(str(dead_letter_id))
    if letter is None:
        raise DeadLetterNotFound(dead_letter_id)
    return letter.to_dict()


def pipeline_job(letter: DeadLetter) -> tuple[str, str | None] | None:
    """``(job_id, stage)`` when the dead letter is a pipeline stage message, else ``None``."""
    if letter.actor_name != PIPELINE_ACTOR or not letter.payload:
        return None
    args = letter.payload.get("args") or []
    if not args or not isinstance(args[0], str):
        return None
    stage = args[1] if len(args) > 1 and isinstance(args[1], str) else None
    return args[0], stage


def retry(letters: DeadLetters, sessions: sessionmaker[Session], dead_letter_id: str) -> Replayed:
    """Send one dead letter back to its queue (fresh retries) and reopen its job
    (:func:`app.jobs.reopening`).

    :raises DeadLetterNotFound: no such dead letter.
    :raises NotReplayable: it holds bytes that never decoded as a message.
    """
    dead_letter_id = str(dead_letter_id)
    letter = letters.get(dead_letter_id)
    if letter is None:
        raise DeadLetterNotFound(dead_letter_id)
    if letter.payload is None:
        raise NotReplayable(f"dead letter {dead_letter_id} is not a decodable message")
    target = pipeline_job(letter)
    if target is None:
        return Replayed(dead_letter_id, _replay(letters, dead_letter_id))
    job_id, stage = target
    where = f" (stage {stage})" if stage else ""
    why = f"replayed from dead letter {dead_letter_id}{where}"
    with reopening(sessions, job_id, stage, why=why) as found:
        message_id = _replay(letters, dead_letter_id)  # raises: the job stays as it was
    return Replayed(dead_letter_id, message_id, job_id if found else None)


def _replay(letters: DeadLetters, dead_letter_id: str) -> str:
    try:
        return letters.replay(dead_letter_id)
    except KeyError as exc:  # gone between get() and replay(): replayed or deleted meanwhile
        raise DeadLetterNotFound(dead_letter_id) from exc
    except ValueError as exc:
        raise NotReplayable(str(exc)) from exc


def retry_many(
    letters: DeadLetters,
    sessions: sessionmaker[Session],
    *,
    ids: list[str] | None = None,
    queue: str | None = None,
    actor: str | None = None,
) -> RetryReport:
    """Retry the given ids, or (``ids=None``) every dead letter matching queue/actor.

    One unknown or broken id does not stop the others: the report lists each outcome.
    """
    if ids is None:
        check_queue_name(queue)
        ids = [letter.id for letter in letters.list(queue=queue, actor=actor, limit=EVERYTHING)]
    report = RetryReport()
    for dead_letter_id in ids:
        try:
            report.retried.append(retry(letters, sessions, dead_letter_id))
        except DeadLetterNotFound:
            report.not_found.append(str(dead_letter_id))
        except NotReplayable:
            report.not_replayable.append(str(dead_letter_id))
    return report


def delete(letters: DeadLetters, dead_letter_id: str) -> None:
    """Drop one dead letter for good.

    :raises DeadLetterNotFound: no such dead letter.
    """
    if not letters.delete(str(dead_letter_id)):
        raise DeadLetterNotFound(dead_letter_id)


def purge(letters: DeadLetters, *, queue: str | None = None, actor: str | None = None) -> int:
    """Drop every dead letter (of one queue and/or actor); returns how many went."""
    check_queue_name(queue)
    return letters.purge(queue=queue, actor=actor)
