"""Which byte range a download answers (RFC 9110 §14): the edges the API tests do not reach."""

from __future__ import annotations

import pytest
from flask import Flask, request

from app.http import ranges
from app.http.ranges import Span

TAG = '"abc-1"'


def asked(size: int, method: str = "GET", **headers: str) -> Span | None:
    with Flask(__name__).test_request_context("/", method=method, headers=headers):
        return ranges.requested(request, TAG, size)


@pytest.mark.parametrize(
    ("header", "span"),
    [
        ("bytes=0-0", Span(0, 1, 100)),
        ("BYTES = 10 - 19", Span(10, 10, 100)),  # unit case-insensitive, spaces allowed
        ("bytes=99-", Span(99, 1, 100)),
        ("bytes=-100", Span(0, 100, 100)),
        ("bytes=-", None),
        ("bytes=", None),
        ("bytes=1-2,", None),
        ("bytes=0x10-", None),
        ("bytes=+1-2", None),
        ("bytes=1-2 3", None),
        ("pages=1-2", None),
        (f"bytes=5-{'9' * 5000}", Span(5, 95, 100)),  # digits no int() would read: the end
        (f"bytes=-{'9' * 5000}", Span(0, 100, 100)),
    ],
)
def test_one_range_or_the_whole_file(header, span):
    assert asked(100, Range=header) == span


@pytest.mark.parametrize(
    "header", ["bytes=100-", "bytes=-0", "bytes=1000-2000", f"bytes={'9' * 5000}-"]
)
def test_past_the_end_is_unsatisfiable(header):
    with pytest.raises(ranges.Unsatisfiable):
        asked(100, Range=header)


def test_an_empty_file_has_no_range():
    with pytest.raises(ranges.Unsatisfiable):
        asked(0, Range="bytes=-5")
    with pytest.raises(ranges.Unsatisfiable):
        asked(0, Range="bytes=0-")


def test_if_range_keeps_the_range_only_for_the_same_strong_tag():
    assert asked(100, Range="bytes=0-9", **{"If-Range": TAG}) == Span(0, 10, 100)
    assert asked(100, Range="bytes=0-9", **{"If-Range": "W/" + TAG}) is None
    assert asked(100, Range="bytes=0-9", **{"If-Range": '"abc-2"'}) is None


def test_a_range_on_another_method_is_ignored():
    assert asked(100, method="POST", Range="bytes=0-9") is None


def test_content_range_and_tags():
    assert Span(10, 10, 100).content_range == "bytes 10-19/100"
    assert ranges.etag_header('we"ird') == '"weird"'
    with Flask(__name__).test_request_context("/", headers={"If-None-Match": 'W/"x", ' + TAG}):
        assert ranges.not_modified(request, TAG)
        assert not ranges.not_modified(request, '"other"')
