"""Event stream limits and resumption, without a server (the e2e test drives them over HTTP)."""

from __future__ import annotations

import threading
import time

import pytest
from flask import Flask

from app.http import streams
from app.http.errors import ApiError
from app.http.observability import method_label
from app.http.streams import Live, StreamLimits, close_all, last_event_id, process_cap
from app.server.front_door import BODY_SLACK_BYTES, body_limit


def test_the_process_keeps_threads_free_of_streams():
    assert process_cap(32) == 24  # the default pool: 8 threads always free
    assert process_cap(8) == 4  # a small pool keeps half
    assert process_cap(2) == 1


def test_a_tenant_over_its_share_is_429_and_the_process_over_its_own_is_503():
    limits = StreamLimits(per_tenant=2, total=3)
    first, _ = limits.take("a"), limits.take("a")
    with pytest.raises(ApiError) as refused:
        limits.take("a")
    assert (refused.value.status, refused.value.code) == (429, "too_many_streams")
    assert refused.value.retry_after
    limits.take("b")
    with pytest.raises(ApiError) as busy:
        limits.take("c")
    assert (busy.value.status, busy.value.code) == (503, "server_busy")
    first.release()
    first.release()  # once only, however often the server closes the response
    assert (limits.open, limits.by_tenant) == (2, {"a": 1, "b": 1})
    limits.take("c")


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ({}, "", 0),
        ({"Last-Event-ID": "42"}, "", 42),
        ({}, "?last_event_id=7", 7),
        ({"Last-Event-ID": "9"}, "?last_event_id=7", 9),
        ({"Last-Event-ID": " "}, "", 0),
    ],
)
def test_last_event_id_comes_from_the_header_or_the_query(headers, query, expected):
    with Flask(__name__).test_request_context(f"/events{query}", headers=headers):
        assert last_event_id() == expected


@pytest.mark.parametrize("raw", ["-1", "1e3", "²", "x", str(2**63)])
def test_a_last_event_id_we_never_sent_is_a_400(raw):
    context = Flask(__name__).test_request_context("/events", headers={"Last-Event-ID": raw})
    with context, pytest.raises(ApiError) as bad:
        last_event_id()
    assert (bad.value.status, bad.value.code) == (400, "bad_parameter")


def test_unknown_methods_share_one_label():
    assert [method_label(m) for m in ("GET", "PATCH", "OPTIONS")] == ["GET", "PATCH", "OPTIONS"]
    assert {method_label(m) for m in ("FROB", "PROPFIND", "get", "X" * 200)} == {"other"}


def test_the_server_reads_a_little_more_than_max_upload_mb():
    assert body_limit(1) == 1024 * 1024 + BODY_SLACK_BYTES


def waiting(live: Live) -> tuple[threading.Event, list[bool]]:
    """``live.wait(600)`` in a thread: an event set when it returned, and what it returned."""
    returned, result = threading.Event(), []

    def wait() -> None:
        result.append(live.wait(600))
        returned.set()

    threading.Thread(target=wait, daemon=True).start()
    return returned, result


def test_a_wake_up_ends_a_streams_wait_and_the_stream_goes_on(monkeypatch):
    monkeypatch.setattr(streams, "_closing", threading.Event())
    live = Live(time.monotonic() + 600)
    returned, result = waiting(live)
    live.woken.set()  # what a job's NOTIFY does (app.http.job_watch)
    assert returned.wait(10)
    assert result == [True] and not live.cut
    assert not live.woken.is_set()  # the next wait waits again


def test_stopping_the_server_cuts_every_streams_wait_short(monkeypatch):
    monkeypatch.setattr(streams, "_closing", threading.Event())
    lives = [Live(time.monotonic() + 600) for _ in range(3)]
    waits = [waiting(live) for live in lives]
    close_all()
    for (returned, result), live in zip(waits, lives, strict=True):
        assert returned.wait(10)
        assert result == [False] and live.cut
    assert Live(time.monotonic() + 600).wait(600) is False  # a new one ends at once
