"""JSON and text log lines carry the context they were logged in."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest

from app.logs import configure_logging, log_context, reset_context


@pytest.fixture
def captured():
    # A request served in this thread by an in-process test client (another test, earlier in
    # this worker) leaves its ids bound: start from none, as a worker's task or request does.
    reset_context()
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    configure_logging("INFO", "json", stream=stream)
    yield stream
    for handler in list(root.handlers):
        if getattr(handler, "phantomchain", False):
            root.removeHandler(handler)
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_is_one_json_object_with_the_context(captured):
    log = logging.getLogger("phantomchain.test")
    with log_context(job_id="j1", stage="loudness"):
        with log_context(upload_id="u1"):
            log.info("inner %d", 1)
        log.warning("outer")
    log.info("outside")
    inner, outer, outside = lines(captured)
    assert inner["message"] == "inner 1" and inner["level"] == "info"
    assert (inner["job_id"], inner["upload_id"], inner["stage"]) == ("j1", "u1", "loudness")
    assert outer["job_id"] == "j1" and "upload_id" not in outer
    assert not {"job_id", "stage", "upload_id"} & set(outside)
    assert inner["logger"] == "phantomchain.test" and inner["ts"].endswith("Z")


def test_exceptions_and_extra_fields_are_kept(captured):
    log = logging.getLogger("phantomchain.test")
    try:
        raise ValueError("bad input")
    except ValueError:
        log.exception("failed", extra={"fields": {"status": 500}})
    (entry,) = lines(captured)
    assert entry["status"] == 500
    assert "ValueError: bad input" in entry["exception"]


def test_contexts_do_not_leak_across_threads_or_requests(captured):
    log = logging.getLogger("phantomchain.test")
    reset_context(request_id="r1", job_id="j-old")
    reset_context(request_id="r2")  # a reused thread's next request starts clean
    log.info("second request")

    def other() -> None:
        log.info("other thread")

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    second, elsewhere = lines(captured)
    assert second["request_id"] == "r2" and "job_id" not in second
    assert "request_id" not in elsewhere
    reset_context()


def test_text_format_and_the_web_servers_own_lines_use_our_formatter():
    reset_context()  # what an earlier request in this thread (a test client's) left
    stream = io.StringIO()
    configure_logging("DEBUG", "text", stream=stream)
    try:
        with log_context(job_id="j9"):
            logging.getLogger("phantomchain.test").debug("hello")
        logging.getLogger("waitress.queue").warning("Task queue depth is 3")
    finally:
        configure_logging("INFO", "json", stream=io.StringIO())
    first, second = stream.getvalue().splitlines()
    assert first.endswith("hello  [job_id=j9]")
    assert "WARNING waitress.queue: Task queue depth is 3" in second
