"""A server gone wrong, or hostile, cannot take the sender's memory or time: a body without
end is read only so far, an endless event-stream line is refused, and a ``Retry-After`` or a
``retry:`` asking for years is waited no longer than the retry policy's ``max_wait_s``."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from app.client import Client, RetryPolicy
from app.client.errors import ConnectionFailed, ServerError
from app.client.events import MAX_EVENT_CHARS, SseParser
from app.client.follow import Follower
from app.client.http import MAX_ANSWER_BYTES
from tests.unit.app.client.test_transport import JOB

ENDLESS = 4 * MAX_ANSWER_BYTES  # what the server would send if let: more than any limit


class Endless:
    """Answers one request with ``head`` then bytes of ``A`` until the client stops reading
    (or :data:`ENDLESS` are sent); ``sent`` counts them."""

    def __init__(self, head: bytes) -> None:
        self.head = head
        self.sent = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        try:
            conn.recv(65536)
            conn.sendall(self.head)
            piece = b"A" * 65536
            while self.sent < ENDLESS:
                conn.sendall(piece)
                self.sent += len(piece)
        except OSError:
            pass  # the client closed: what it should do
        finally:
            conn.close()
            self.listener.close()
            self.done.set()


@pytest.fixture
def client_of() -> Iterator:
    made: list[Client] = []

    def make(url: str) -> Client:
        client = Client(url, "tok", retry=RetryPolicy(max_retries=0), timeout=5)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def test_an_error_body_without_end_is_read_only_so_far(client_of):
    server = Endless(b"HTTP/1.1 500 Oops\r\nConnection: close\r\n\r\n")
    with pytest.raises(ServerError) as raised:
        client_of(server.url).job("j1")
    assert raised.value.status == 500 and len(raised.value.message) <= 200
    assert server.done.wait(10)
    assert server.sent < ENDLESS // 2


def test_an_answer_without_end_is_refused_once_past_the_limit(client_of):
    server = Endless(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
    with pytest.raises(ConnectionFailed, match="larger than"):
        client_of(server.url).job("j1")
    assert server.done.wait(10)
    assert server.sent < ENDLESS // 2


@pytest.mark.parametrize(
    "stream",
    [b"data: " + b"A" * 65536, b"data: " + b"A" * 1000 + b"\n"],
    ids=["endless-line", "endless-event"],
)
def test_an_event_stream_line_or_event_without_end_is_refused(stream):
    parser = SseParser()
    with pytest.raises(ConnectionFailed, match="longer than"):
        for _ in range(2 * MAX_EVENT_CHARS // len(stream) + 1):
            parser.feed(stream)


def _sse(body: bytes) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "text/event-stream"}, body


def test_a_retry_after_of_years_is_not_obeyed_by_a_follower(server):
    busy = (
        503,
        {"Content-Type": "application/json", "Retry-After": "999999999"},
        b'{"error": {"code": "queue_unavailable", "message": "away"}}',
    )
    server.answers = [
        busy,
        busy,
        (200, {"Content-Type": "application/json"}, json.dumps(JOB).encode()),
    ]
    slept: list[float] = []
    client = Client(server.url, "tok", retry=RetryPolicy(max_wait_s=30), sleep=slept.append)
    assert client.follow("j1").status == "done"
    assert slept and max(slept) <= 30


def test_a_stream_asking_to_wait_years_before_reconnecting_is_not_obeyed(server):
    done = f"event: done\ndata: {json.dumps(JOB)}\n\n".encode()
    server.answers = [_sse(b"retry: 999999999\n\n"), _sse(done)]
    slept: list[float] = []
    client = Client(server.url, "tok", retry=RetryPolicy(max_wait_s=30), sleep=slept.append)
    assert client.follow("j1").status == "done"
    assert slept == [30]


def test_a_follower_gives_up_on_a_server_that_no_longer_answers_at_all():
    """Connections refused (the server gone) past ``max_wait_s``: ConnectionFailed (the
    sender's exit status 3), not a wait for good. Time is a fake clock moved by the sleeps."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"  # nothing listens there
    now = [0.0]
    client = Client(
        url,
        "tok",
        retry=RetryPolicy(max_wait_s=60, max_retries=0),
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    follower = Follower(client._http, "j1", timeout_s=3600, clock=lambda: now[0])
    with pytest.raises(ConnectionFailed, match="no answer from the server for"):
        list(follower.updates())
    assert 60 < now[0] < 120
