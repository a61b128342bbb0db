"""The event stream's format, fed in the pieces a socket may cut it into."""

from __future__ import annotations

import pytest

from app.client.events import SseEvent, SseParser

STREAM = (
    b": waiting\n\n"
    b'id: 7\nevent: progress\ndata: {"id": 7}\n\n'
    b"event: progress\r\ndata: line one\r\ndata: line two\r\n\r\n"
    b"retry: 1000\n: stream time is up\n\n"
    b'event: done\rdata: {"status": "done"}\r\r\n'
)
EXPECTED = [
    SseEvent("progress", '{"id": 7}', "7"),
    SseEvent("progress", "line one\nline two", "7"),  # the last id is kept across events
    SseEvent("done", '{"status": "done"}', "7"),
]


def feed_in_pieces(data: bytes, size: int) -> tuple[SseParser, list[SseEvent]]:
    parser = SseParser()
    events = []
    for start in range(0, len(data), size):
        events += parser.feed(data[start : start + size])
    return parser, events


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_every_cut_gives_the_same_events(size):
    parser, events = feed_in_pieces(STREAM, size)
    assert events == EXPECTED
    assert parser.retry_ms == 1000


def test_an_event_comes_only_with_its_blank_line():
    parser = SseParser()
    assert parser.feed(b"event: done\ndata: x\n") == []
    assert parser.feed(b"\n") == [SseEvent("done", "x", None)]


def test_a_cr_last_waits_for_a_possible_lf():
    parser = SseParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n\r\n") == [SseEvent("message", "a", None)]


def test_utf8_split_between_pieces_and_odd_fields():
    word = "Beyoncé".encode()
    parser = SseParser()
    events = parser.feed(b"data:" + word[:-1]) + parser.feed(word[-1:] + b"\nid: a\0b\nfoo: x\n\n")
    assert events == [SseEvent("message", "Beyoncé", None)]  # no space after the colon: kept
    assert parser.feed(b"retry: soon\n\n") == [] and parser.retry_ms is None
