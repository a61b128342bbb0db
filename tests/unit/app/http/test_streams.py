"""Event stream limits and resumption, without a server (the e2e test drives them over HTTP)."""

from __future__ import annotations

import pytest
from flask import Flask

from app.http.errors import ApiError
from app.http.observability import method_label
from app.http.streams import StreamLimits, last_event_id, process_cap
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
