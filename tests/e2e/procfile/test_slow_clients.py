"""Clients that hold connections — half-sent requests, open event streams — against the
Procfile's web line: the API keeps answering, and each kind of hold is bounded.

Before waitress (gunicorn gthread, 2 × 4 threads), 64 sockets that sent half a request made
``/healthz`` time out for as long as they stayed open.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
from collections.abc import Iterator

import pytest

from app.queue import make_broker
from tests.support import http_calls
from tests.support.http_calls import sse_blocks
from tests.support.namespace import SERVICE_NAMESPACE
from tests.support.waiting import wait_for

TOKENS = {"t1": "tok1", "t2": "tok2", "t3": "tok3"}
ADMIN = "admin-tok"
#: Per tenant (the default); three tenants fill the process's share of a 32-thread pool.
PER_TENANT = 8
#: Short, so the test sees the server close idle and dripping connections.
READ_TIMEOUT_S = 5
HALF_OPEN = 64
#: A generous bound for "answers at once" on a busy 2-core machine (the issue's figure).
ANSWER_WITHIN_S = 1.0


SETTINGS = {
    "API_TOKENS": ",".join(f"{tenant}:{token}" for tenant, token in TOKENS.items()),
    "ADMIN_TOKEN": ADMIN,
    "READ_TIMEOUT_S": str(READ_TIMEOUT_S),
    "WEB_THREADS": "32",
    "EVENT_STREAMS_PER_TENANT": str(PER_TENANT),
}


@pytest.fixture(scope="module")
def api(module_deployment):
    """Three tenants and an admin, default threads and stream limits, a short read timeout."""
    return module_deployment.api(**SETTINGS)


@pytest.fixture
def make_idle_api(module_deployment):
    """``make_idle_api(**env)``: a web process of the test's own whose jobs no worker takes
    (they go to a namespace no worker reads), so that they stay queued and their streams stay
    open whatever else the module started. Stopped at the end of the test, and every stream
    and socket it held with it; its namespace's streams are deleted."""
    namespace = f"{SERVICE_NAMESPACE}-idle"
    started = []

    def make(**env: str):
        started.append(module_deployment.api(NATS_NAMESPACE=namespace, **env))
        return started[-1]

    yield make
    for process in started:
        process.stop()
    idle = make_broker(module_deployment.env["NATS_URL"], namespace)
    idle.delete_streams()
    idle.close()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def upload(port: int, data: bytes, token: str) -> dict:
    status, body = http_calls.upload(port, data, token=token)
    assert status == 202, body
    return body


def timed_get(port: int, path: str, token: str | None = None) -> tuple[int, float]:
    """Status of a GET on a new connection, and the seconds from connecting to the answer."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers=auth(token) if token else {})
        response = connection.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    finally:
        connection.close()


class Stream:
    """An event stream opened on its own connection."""

    def __init__(self, port: int, path: str, token: str, headers: dict | None = None) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.connection.request("GET", path, headers={**auth(token), **(headers or {})})
        self.response = self.connection.getresponse()

    @property
    def status(self) -> int:
        return self.response.status

    def json(self) -> dict:
        return json.loads(self.response.read())

    def blocks(self) -> Iterator[list[str]]:
        return sse_blocks(self.response)

    def close(self) -> None:
        self.response.close()  # the response holds the socket open as long as it is open
        self.connection.close()


def half_open(port: int, count: int) -> list[socket.socket]:
    """Connections that sent part of a request's headers, then nothing."""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /api/jobs HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer ")
        sockets.append(sock)
    return sockets


def is_open(sock: socket.socket) -> bool:
    """The server has not closed ``sock`` (nothing to read, no end of stream)."""
    sock.settimeout(0)  # with a timeout, recv() would first wait for data that never comes
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


@contextlib.contextmanager
def closing_all(things) -> Iterator[None]:
    try:
        yield
    finally:
        for thing in things:
            thing.close()


def test_half_open_connections_and_open_streams_leave_the_api_answering(make_idle_api, song):
    api = make_idle_api(**SETTINGS)
    jobs = {tenant: upload(api.port, song, token)["job_id"] for tenant, token in TOKENS.items()}
    streams: list[Stream] = []
    held: list[socket.socket] = []
    with closing_all(streams), closing_all(held):
        for tenant, token in TOKENS.items():  # 24 streams: every tenant's share
            for _ in range(PER_TENANT):
                stream = Stream(api.port, f"/api/jobs/{jobs[tenant]}/events", token)
                streams.append(stream)
                assert stream.status == 200, stream.json()
                assert next(stream.blocks()) == [": waiting"]  # open, and the job has not run
        held += half_open(api.port, HALF_OPEN)

        for path, token in [("/healthz", None), ("/api/jobs", "tok1"), ("/healthz", None)]:
            status, seconds = timed_get(api.port, path, token)
            assert status == 200, path
            assert seconds < ANSWER_WITHIN_S, (path, seconds)
        assert all(map(is_open, held))  # they were all still held while the API answered

        # A tenant's share is full: its next stream is a 429 that says when to come back …
        refused = Stream(api.port, f"/api/jobs/{jobs['t1']}/events", "tok1")
        assert refused.status == 429
        assert refused.response.getheader("Retry-After", "").isdigit()
        assert refused.json()["error"]["code"] == "too_many_streams"
        refused.close()
        # … and the process's share is full: an admin's stream is a 503 (threads stay free).
        busy = Stream(api.port, f"/api/jobs/{jobs['t1']}/events", ADMIN)
        assert busy.status == 503
        assert busy.response.getheader("Retry-After", "").isdigit()
        assert busy.json()["error"]["code"] == "server_busy"
        busy.close()

        # A client that goes away gives its place back.
        streams.pop(0).close()

        def reopened() -> bool:
            stream = Stream(api.port, f"/api/jobs/{jobs['t1']}/events", "tok1")
            streams.append(stream)
            return stream.status == 200

        assert wait_for(reopened, 15, interval=0.5)


def test_connections_that_never_finish_their_headers_are_closed_after_read_timeout(api):
    idle = half_open(api.port, 8)
    dripping = socket.create_connection(("127.0.0.1", api.port), timeout=10)
    with closing_all([*idle, dripping]):
        started = time.monotonic()
        dripping.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
        # One header byte every half second: never idle for READ_TIMEOUT_S, never done.
        while is_open(dripping) and time.monotonic() - started < READ_TIMEOUT_S + 20:
            with contextlib.suppress(OSError):
                dripping.sendall(b"X")
            time.sleep(0.5)
        assert not is_open(dripping)
        assert time.monotonic() - started >= READ_TIMEOUT_S - 0.5  # not cut before its time
        assert wait_for(lambda: not any(map(is_open, idle)), 20)
    assert timed_get(api.port, "/healthz")[0] == 200


def test_a_stream_ends_by_itself_after_event_stream_max_s(make_idle_api, song):
    short = make_idle_api(API_TOKENS="t1:tok1", EVENT_STREAM_MAX_S="2", WEB_THREADS="8")
    job_id = upload(short.port, song, "tok1")["job_id"]  # no worker takes it: it stays queued
    stream = Stream(short.port, f"/api/jobs/{job_id}/events", "tok1")
    blocks, ended = [], False
    with closing_all([stream]):
        started = time.monotonic()
        assert stream.status == 200
        for block in stream.blocks():
            blocks.append(block)
            if time.monotonic() - started > 20:  # generous: it was told to last 2 s
                break
        else:
            ended = True  # the server ended the stream
        lasted = time.monotonic() - started
    assert ended, f"still open after {lasted:.0f} s"
    assert lasted >= 1.5, lasted
    assert blocks[0] == [": waiting"]
    assert blocks[-1][0].startswith("retry: ") and "Last-Event-ID" in blocks[-1][1], blocks[-1]


@pytest.fixture(scope="module")
def worker(module_deployment):
    return module_deployment.workers_without_metrics()


def test_a_stream_resumes_after_last_event_id(api, worker, song):
    job_id = upload(api.port, song, "tok2")["job_id"]
    path = f"/api/jobs/{job_id}/events"

    def read(stream: Stream) -> tuple[list[int], str | None]:
        """Ids of the progress events, and the final event's name."""
        with closing_all([stream]):
            assert stream.status == 200, stream.json()
            ids, final = [], None
            for block in stream.blocks():
                fields = dict(line.split(": ", 1) for line in block if not line.startswith(":"))
                if fields.get("event") == "progress":
                    ids.append(int(fields["id"]))
                elif fields.get("event") in ("done", "failed"):
                    final = fields["event"]
        return ids, final

    everything, final = read(Stream(api.port, path, "tok2"))
    assert final == "done" and len(everything) >= 4, everything
    seen = everything[2]
    resumed, final = read(Stream(api.port, path, "tok2", {"Last-Event-ID": str(seen)}))
    assert (resumed, final) == (everything[3:], "done")
    by_query, _ = read(Stream(api.port, f"{path}?last_event_id={seen}", "tok2"))
    assert by_query == everything[3:]

    bad = Stream(api.port, path, "tok2", {"Last-Event-ID": "yesterday"})
    with closing_all([bad]):
        assert bad.status == 400 and bad.json()["error"]["code"] == "bad_parameter"
