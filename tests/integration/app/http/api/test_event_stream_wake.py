"""A job's event stream tells what the workers commit when they commit it (a PostgreSQL NOTIFY
wakes it, app.http.job_watch), not at its next look. Real Postgres; no workers: the test
writes the job's progress itself, as a worker would."""

from __future__ import annotations

import queue
import threading
from contextlib import nullcontext

from app import jobs
from app.http.api import jobs as jobs_api
from tests.support.app_client import upload

#: Far longer than any wake-up takes; far shorter than the look the stream is given.
WAKE_WITHIN_S = 20.0
WAITING = ": waiting\n\n"


def follow(client, job_id: str) -> queue.Queue:
    """Read the job's event stream in a thread of its own (the request too: Flask's stream
    keeps its contexts in the thread that opened it); each block read goes on the queue, then
    None when the stream has ended."""
    blocks: queue.Queue = queue.Queue()

    def read() -> None:
        try:
            response = client.get(f"/api/jobs/{job_id}/events", buffered=False)
            assert response.status_code == 200
            for chunk in response.response:
                blocks.put(chunk.decode() if isinstance(chunk, bytes) else chunk)
            response.close()
        finally:
            blocks.put(None)

    threading.Thread(target=read, daemon=True).start()
    return blocks


def next_news(blocks: queue.Queue) -> str | None:
    """The next block that is not a ``: waiting`` (a wake-up may find nothing new: the watch
    wakes every stream when it starts listening), None once the stream has ended."""
    while (block := blocks.get(timeout=WAKE_WITHIN_S)) == WAITING:
        pass
    return block


def test_the_stream_tells_each_commit_at_once_not_at_its_next_look(api_only, song, monkeypatch):
    monkeypatch.setattr(jobs_api, "LOOK_S", 600.0)  # only a wake-up can end a wait in time
    job_id = upload(api_only, song).json["job_id"]  # no workers: it stays queued
    sessions = api_only.application.extensions["sessions"]
    blocks = follow(api_only, job_id)
    assert blocks.get(timeout=WAKE_WITHIN_S) == WAITING  # it waits for its next look now

    decision, _ = jobs.begin_stage(sessions, job_id, "transcode", 0, 40)
    assert decision == jobs.RUN
    assert "transcode started" in (next_news(blocks) or "")

    jobs.stage_done(sessions, job_id, "transcode", 40, "transcoded to mp3")
    assert "transcoded to mp3" in (next_news(blocks) or "")

    jobs.job_done(sessions, job_id)
    seen = []
    while (block := next_news(blocks)) is not None:
        seen.append(block)
    assert seen[-1].startswith("event: done\n"), seen


def test_the_stream_still_ends_by_looking_when_nothing_wakes_it(api_only, song, monkeypatch):
    """The listening connection is a hint: a stream whose wake-ups never come (here, it is not
    among those followed) still sees the end at its next look."""
    monkeypatch.setattr(jobs_api, "LOOK_S", 0.05)
    job_id = upload(api_only, song).json["job_id"]
    sessions = api_only.application.extensions["sessions"]
    monkeypatch.setattr(
        "app.http.job_watch.JobWatch.following", lambda self, job_id, wake: nullcontext()
    )
    blocks = follow(api_only, job_id)
    assert blocks.get(timeout=WAKE_WITHIN_S) == WAITING
    jobs.job_done(sessions, job_id)
    seen = []
    while (block := next_news(blocks)) is not None:
        seen.append(block)
    assert seen[-1].startswith("event: done\n"), seen
