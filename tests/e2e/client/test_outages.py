"""A client waiting on a job while the server's PostgreSQL or NATS goes away and comes back:
it keeps waiting — the event stream breaks, the API answers 503, the client polls and tries the
stream again after ``Retry-After`` — and gets the job's end once the server is whole again.

The Procfile's processes on a nats-server and a PostgreSQL of their own
(:func:`tests.e2e.faults.test_outages.running_stack`), the job held (its worker paused) until
the outage has been met.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from app.client import Client, Job
from tests.e2e.faults.test_outages import Stack, running_stack
from tests.support.deployment import paused
from tests.support.http_calls import get
from tests.support.songs import song_flac
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("client-outages"), "client", {}, {}) as stack:
        yield stack


@pytest.fixture(scope="module")
def song_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("song")
    song = song_flac(folder, 120.0, "D", "minor", seconds=2, rate=22050, seed=31)
    path = folder / "short.flac"
    path.write_bytes(song)
    return path


def follow_in_thread(client: Client, job_id: str) -> tuple[threading.Thread, list, list]:
    ended: list[Job] = []
    raised: list[BaseException] = []

    def follow() -> None:
        try:
            ended.append(client.follow(job_id, timeout=240))
        except BaseException as exc:  # the test says what, rather than a thread's traceback
            raised.append(exc)

    thread = threading.Thread(target=follow)
    thread.start()
    return thread, ended, raised


def test_postgres_away_while_the_client_waits(stack, song_file):
    proxy = TcpProxy(stack.api.port)
    client = Client(proxy.url, poll_interval_s=0.2)
    try:
        with paused(stack.workers):
            accepted = client.upload(song_file)
            thread, ended, raised = follow_in_thread(client, accepted.job_id)
            wait_until(lambda: proxy.requests_with("/events"), 30, "the event stream")
            stack.postgres.fast_shutdown()
            try:
                wait_until(lambda: get(stack.api.port, "/readyz")[0] == 503, 30, "readyz 503")
                # what the client looks at is away too (its open stream may ride the outage out
                # quietly or break and meet a 503: which, depends on when it looks)
                job_path = f"/api/jobs/{accepted.job_id}"
                wait_until(lambda: get(stack.api.port, job_path)[0] == 503, 30, "the job's 503")
                assert thread.is_alive() and not raised  # still waiting
            finally:
                stack.postgres.start_again()
        thread.join(240)
    finally:
        client.close()
        proxy.close()
    assert not raised, raised
    # (whether the stream was opened again or the job was seen done by a poll first depends
    # on when the database came back against the stream's Retry-After: either is right)
    assert ended and ended[0].status == "done"


def test_nats_away_while_the_client_waits(stack, song_file):
    client = Client(f"http://127.0.0.1:{stack.api.port}", poll_interval_s=0.2)
    try:
        with paused(stack.workers):
            accepted = client.upload(song_file)
            thread, ended, raised = follow_in_thread(client, accepted.job_id)
            stack.nats.stop()
        try:  # the worker goes on without its queue: the job cannot end
            wait_until(lambda: get(stack.api.port, "/readyz")[0] == 503, 30, "readyz 503")
            assert thread.is_alive() and not raised
        finally:
            stack.nats.start()
        thread.join(240)
    finally:
        client.close()
    assert not raised, raised
    assert ended and ended[0].status == "done"
