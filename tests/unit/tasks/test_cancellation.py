"""The stop check a running stage hands to the audio engine: the database asked at most every
interval, a failed question is "not yet", and once canceled it stays so."""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

from sqlalchemy.exc import OperationalError

from tasks.cancellation import Cancellation


class FakeSessions:
    """A session factory whose one query answers the next of ``answers`` (a row, ``None`` for
    no job, or an exception to raise)."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.asked = 0

    @contextmanager
    def __call__(self):
        yield self

    def execute(self, _query):
        self.asked += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return SimpleNamespace(first=lambda: answer)


def row(status: str):
    return SimpleNamespace(status=status, finished_at=None)


def test_the_database_is_asked_at_most_once_per_interval():
    now = [100.0]
    sessions = FakeSessions(row("running"), row("running"), row("canceled"))
    stop = Cancellation(sessions, "job", interval_s=0.5, clock=lambda: now[0])
    assert stop() is False and sessions.asked == 1  # the first call asks at once
    for _ in range(60):  # a block every 9 ms for 0.54 s: one more question, no more
        now[0] += 0.009
        assert stop() is False
    assert sessions.asked == 2  # one more once half a second had passed
    now[0] += 0.5
    assert stop() is True and sessions.asked == 3
    assert stop() is True and sessions.asked == 3  # canceled stays canceled, unasked


def test_a_failed_question_is_not_yet_and_a_gone_job_is_a_stop():
    now = [0.0]
    away = OperationalError("SELECT", {}, Exception("connection refused"))
    sessions = FakeSessions(away, None)
    stop = Cancellation(sessions, "job", interval_s=0.5, clock=lambda: now[0])
    assert stop() is False  # PostgreSQL away: the stage goes on
    now[0] += 0.5
    assert stop() is True and stop.canceled_at is None  # the job is gone (upload removed)
    assert stop.delay_s() is None
