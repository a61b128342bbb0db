"""The database connection: a server that accepts and never answers is an error in bounded
time, never a request (or ``/readyz``) stuck for good."""

from __future__ import annotations

import socket
import threading

from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app.db import CONNECT_TIMEOUT_S, make_sessions


def test_a_server_that_never_answers_is_an_error_after_the_connect_timeout():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections (the kernel does) and never says a word
    port = silent.getsockname()[1]
    sessions = make_sessions(f"postgresql://nobody@127.0.0.1:{port}/db")
    outcome: list[BaseException] = []

    def ask() -> None:
        try:
            with sessions() as session:
                session.execute(text("SELECT 1"))
        except BaseException as exc:  # the outcome is what the test checks
            outcome.append(exc)

    asking = threading.Thread(target=ask, daemon=True)
    asking.start()
    asking.join(CONNECT_TIMEOUT_S * 6)  # a bound, not a measurement: without one, forever
    silent.close()
    assert not asking.is_alive(), "the connection attempt never gave up"
    assert len(outcome) == 1 and isinstance(outcome[0], OperationalError), outcome
