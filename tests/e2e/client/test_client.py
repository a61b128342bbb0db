"""The Python client (``app.client``) against the Procfile's processes on a socket: upload,
follow, analysis and download of a real song; a batch; a cancel; a download resumed with
``Range``; an event stream resumed with ``Last-Event-ID`` after the connection was cut; real
429s (a tenant's streams, its hourly uploads); an upload whose connection drops midway.

The connections that break do so in a :class:`tests.support.tcp_proxy.TcpProxy` between the
client and the API, cut by the test at a point it chose.
"""

from __future__ import annotations

import http.client
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from app.client import (
    BadRequest,
    Client,
    ConnectionFailed,
    Job,
    JobEvent,
    NotFound,
    NotReady,
    PayloadTooLarge,
    RateLimited,
    RetryPolicy,
)
from tests.support.deployment import paused
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_until

TOKEN, STREAMS_TOKEN, QUOTA_TOKEN = "sender-token", "streams-token", "quota-token"


@pytest.fixture(scope="module")
def api(module_deployment):
    return module_deployment.api(API_TOKENS=f"sender:{TOKEN}", MAX_UPLOAD_MB="1")


@pytest.fixture(scope="module")
def limited_api(module_deployment):
    """A second web process with small limits: one event stream per tenant, one upload an
    hour."""
    tokens = f"streams:{STREAMS_TOKEN},quota:{QUOTA_TOKEN}"
    return module_deployment.api(
        API_TOKENS=tokens, EVENT_STREAMS_PER_TENANT="1", UPLOADS_PER_HOUR="1"
    )


@pytest.fixture(scope="module")
def worker(module_deployment):
    return module_deployment.workers_without_metrics()


@pytest.fixture(scope="module")
def song_file(song, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("send") / "song.flac"
    path.write_bytes(song)
    return path


@pytest.fixture
def client(api) -> Iterator[Client]:
    with Client(f"http://127.0.0.1:{api.port}", TOKEN, poll_interval_s=0.2) as made:
        yield made


@pytest.fixture(scope="module")
def finished(api, worker, song_file) -> tuple[str, str]:
    """One song uploaded and done: ``(upload_id, job_id)``."""
    with Client(f"http://127.0.0.1:{api.port}", TOKEN) as client:
        accepted = client.upload(song_file, formats=["mp3", "opus"])
        assert client.follow(accepted.job_id).status == "done"
    return accepted.upload_id, accepted.job_id


@pytest.fixture
def proxy(api) -> Iterator[TcpProxy]:
    made = TcpProxy(api.port)
    yield made
    made.close()


def raw_get(port: int, path: str, token: str = TOKEN) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        assert response.status == 200
        return response.read()
    finally:
        connection.close()


def job_count(module_deployment) -> int:
    with psycopg.connect(module_deployment.env["DATABASE_URL"], autocommit=True) as db:
        return db.execute("SELECT count(*) FROM jobs").fetchone()[0]


def stored_originals(module_deployment) -> list[Path]:
    return sorted(Path(module_deployment.tmp, "store").glob("uploads/*/original.*"))


class Records(logging.Handler):
    """The client's log lines (its retries and fallbacks), from any thread."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def client_log() -> Iterator[Records]:
    records = Records()
    logger = logging.getLogger("app.client")
    logger.addHandler(records)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(records)
    logger.setLevel(level)


# -- the whole path --------------------------------------------------------------------------


def test_upload_follow_analysis_and_download(client, api, worker, song_file, tmp_path):
    sent: list[tuple[int, int]] = []
    with paused(worker):  # so that the analysis is asked for before the job has run
        accepted = client.upload(
            song_file,
            formats="mp3,opus",
            normalize="-16",
            on_progress=lambda s, t: sent.append((s, t)),
        )
        with pytest.raises(NotReady):
            client.analysis(accepted.upload_id)
    size = song_file.stat().st_size
    assert sent[0] == (0, size) and sent[-1] == (size, size)
    seen: list[JobEvent] = []
    job = client.follow(accepted.job_id, seen.append)
    assert job.status == "done" and job.error is None
    logged = client.job(accepted.job_id).events
    assert [e.id for e in seen] == [e.id for e in logged]  # every event once, in order
    assert "done" in [e.message for e in seen]
    # streamed events carry the job's percent as sent: for a bar, never going back
    percents = [e.progress for e in seen if e.progress is not None]
    assert percents and percents == sorted(percents) and percents[-1] == 100
    assert all(e.progress is None for e in logged)

    analysis = client.analysis(accepted.upload_id)
    assert analysis.key == "A minor"
    assert analysis.integrated_lufs is not None and analysis.true_peak_dbtp is not None
    # four seconds are too few for a tempo: an honest null, with the sentence saying why
    assert analysis.bpm is None and "too short" in analysis.raw["bpm_reason"]
    assert set(analysis.outputs) == {"mp3", "opus"}
    upload = client.get_upload(accepted.upload_id)
    assert upload.filename == "song.flac" and upload.duration_s == pytest.approx(4, abs=0.1)

    progress: list[tuple[int, int | None]] = []
    got = client.download(
        accepted.upload_id, "mp3", tmp_path, on_progress=lambda r, t: progress.append((r, t))
    )
    expected = raw_get(api.port, f"/api/uploads/{accepted.upload_id}/outputs/mp3")
    assert Path(got.path) == tmp_path / "song.mp3"
    assert Path(got.path).read_bytes() == expected and got.size == len(expected)
    assert got.resumed_from == 0 and progress[-1] == (len(expected), len(expected))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.mp3"]  # no .part left


def test_a_batch(client, worker, song_file, tmp_path):
    other = tmp_path / "other.flac"
    other.write_bytes(song_file.read_bytes())
    told: dict[str, int] = {}
    batch = client.upload_batch(
        [song_file, other], formats=["mp3"], on_progress=lambda f, s, t: told.update({f.name: s})
    )
    assert told == {"song.flac": song_file.stat().st_size, "other.flac": other.stat().st_size}
    assert len(batch.jobs) == 2
    for member in batch.jobs:
        assert client.follow(member.job_id).status == "done"
    again = client.batch(batch.batch_id)
    assert again.status == "done"
    assert [m.filename for m in again.jobs] == ["song.flac", "other.flac"]


def test_refusals_are_typed_with_the_apis_code(client, tmp_path):
    big = tmp_path / "big.flac"
    big.write_bytes(b"fLaC" + bytes(3 << 20))
    with pytest.raises(PayloadTooLarge) as too_large:  # MAX_UPLOAD_MB=1
        client.upload(big)
    assert "MAX_UPLOAD_MB" in too_large.value.message
    notes = tmp_path / "notes.txt"
    notes.write_text("not audio")
    with pytest.raises(BadRequest) as refused:
        client.upload(notes)
    assert refused.value.code == "not_audio"
    with pytest.raises(NotFound):
        client.job("00000000-0000-4000-8000-000000000000")


def test_cancel(client, worker, song_file):
    with paused(worker):
        accepted = client.upload(song_file)
        canceled = client.cancel(accepted.job_id)
        assert canceled.status == "canceled"
        assert client.follow(accepted.job_id).status == "canceled"
        assert client.cancel(accepted.job_id).status == "canceled"  # ended: left as it is


# -- broken connections ------------------------------------------------------------------------


def test_a_partial_download_is_resumed_with_range(finished, api, proxy, tmp_path):
    upload_id, _ = finished
    whole = raw_get(api.port, f"/api/uploads/{upload_id}/outputs/opus")
    kept = len(whole) // 3
    target = tmp_path / "song.opus"
    Path(f"{target}.part").write_bytes(whole[:kept])  # what a broken download left
    with Client(proxy.url, TOKEN) as client:
        got = client.download(upload_id, "opus", target)
    assert target.read_bytes() == whole
    assert got.resumed_from == kept and got.size == len(whole)
    assert [c.sent.count(f"Range: bytes={kept}-".encode()) for c in proxy.connections] == [1]
    assert proxy.connections[0].received < len(whole) - kept + 2000  # only the rest came
    assert not Path(f"{target}.part").exists()


def test_a_download_into_a_folder_not_made_yet(finished, api, tmp_path):
    upload_id, _ = finished
    with Client(f"http://127.0.0.1:{api.port}", TOKEN) as client:
        got = client.download(upload_id, "mp3", f"{tmp_path}/new/")
    assert Path(got.path) == tmp_path / "new" / "song.mp3"
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["song.mp3"]


def test_a_stale_partial_download_is_started_again(finished, api, tmp_path):
    """A ``.part`` of another version of the file (its ETag no longer the file's): the server
    answers ``If-Range`` with the whole file, which replaces the stale bytes."""
    upload_id, _ = finished
    whole = raw_get(api.port, f"/api/uploads/{upload_id}/outputs/opus")
    target = tmp_path / "song.opus"
    Path(f"{target}.part").write_bytes(b"x" * 1000)
    Path(f"{target}.part.etag").write_text('"another-version"')
    with Client(f"http://127.0.0.1:{api.port}", TOKEN) as client:
        got = client.download(upload_id, "opus", target)
    assert target.read_bytes() == whole and got.resumed_from == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.opus"]


def test_a_download_cut_midway_resumes_by_itself(finished, api, proxy, tmp_path):
    upload_id, _ = finished
    whole = raw_get(api.port, f"/api/uploads/{upload_id}/outputs/mp3")
    target = tmp_path / "song.mp3"
    proxy.cut_next_answer_after(len(whole) // 2)  # headers and about half the file
    with Client(proxy.url, TOKEN, retry=RetryPolicy(backoff_s=0.01)) as client:
        got = client.download(upload_id, "mp3", target)
    assert target.read_bytes() == whole and got.resumed_from == 0
    assert proxy.connections[0].cut
    ranges = proxy.requests_with("Range: bytes=")
    assert len(ranges) == 1 and b"If-Range: " in ranges[0]


def test_the_event_stream_resumes_after_the_last_event_seen(
    module_deployment, api, worker, proxy, song_file
):
    """The stream is cut after a first event; the client asks again with ``Last-Event-ID`` and
    gets every later event once: the events it saw are exactly the job's log."""
    with Client(f"http://127.0.0.1:{api.port}", TOKEN) as direct:
        with paused(worker):
            accepted = direct.upload(song_file)
            seen: list[JobEvent] = []
            ended: list[Job] = []
            follower = Client(proxy.url, TOKEN, poll_interval_s=0.2)
            thread = threading.Thread(
                target=lambda: ended.append(follower.follow(accepted.job_id, seen.append))
            )
            thread.start()
            wait_until(lambda: proxy.requests_with("/events"), 30, "the event stream")
            with psycopg.connect(module_deployment.env["DATABASE_URL"], autocommit=True) as db:
                (marker,) = db.execute(
                    "INSERT INTO job_events (job_id, at, level, message) "
                    "VALUES (%s, now(), 'info', 'a first event') RETURNING id",
                    (accepted.job_id,),
                ).fetchone()
            wait_until(lambda: seen, 30, "the first event")
            proxy.cut_all()  # the job cannot move on: its worker is paused
            wait_until(
                lambda: proxy.requests_with(f"Last-Event-ID: {marker}"), 30, "the stream again"
            )
        thread.join(120)
        assert ended and ended[0].status == "done"
        follower.close()
        resumed = proxy.requests_with(f"Last-Event-ID: {marker}")
        assert resumed and all(b"/events" in r for r in resumed)
        logged = direct.job(accepted.job_id).events
    assert [e.id for e in seen] == [e.id for e in logged]
    assert seen[0].id == marker and seen[0].message == "a first event"


def test_an_upload_cut_midway_keeps_nothing_and_raises(module_deployment, proxy, song_file):
    jobs, files = job_count(module_deployment), stored_originals(module_deployment)
    proxy.cut_next_after(song_file.stat().st_size // 2)
    client = Client(proxy.url, TOKEN, retry=RetryPolicy(max_retries=0))
    with client, pytest.raises(ConnectionFailed):
        client.upload(song_file)
    assert len(proxy.connections) == 1 and proxy.connections[0].cut
    # the server answered nothing and kept nothing (waitress reads a whole body before a
    # request reaches the application)
    assert job_count(module_deployment) == jobs
    assert stored_originals(module_deployment) == files


def test_an_upload_cut_midway_is_sent_again_once(module_deployment, proxy, song_file, worker):
    jobs = job_count(module_deployment)
    proxy.cut_next_after(song_file.stat().st_size // 2)
    with Client(proxy.url, TOKEN, retry=RetryPolicy(backoff_s=0.01)) as client:
        accepted = client.upload(song_file)
        assert client.follow(accepted.job_id).status == "done"
    assert len(proxy.connections) >= 2 and proxy.connections[0].cut
    keys = {
        line
        for c in proxy.connections
        for line in bytes(c.sent).split(b"\r\n")
        if line.startswith(b"Idempotency-Key:")
    }
    assert len(keys) == 1  # the same key both times: never two uploads
    assert job_count(module_deployment) == jobs + 1


# -- 429 --------------------------------------------------------------------------------------


def test_a_refused_stream_is_waited_out_while_the_job_is_polled(
    limited_api, worker, song_file, client_log
):
    """With the tenant's one stream held by someone else, the client's stream is a 429: it
    polls the job meanwhile, and tries the stream again after ``Retry-After``."""
    with Client(f"http://127.0.0.1:{limited_api.port}", STREAMS_TOKEN, poll_interval_s=0.2) as c:
        with paused(worker):
            accepted = c.upload(song_file)
            holder = http.client.HTTPConnection("127.0.0.1", limited_api.port, timeout=60)
            holder.request(
                "GET",
                f"/api/jobs/{accepted.job_id}/events",
                headers={"Authorization": f"Bearer {STREAMS_TOKEN}"},
            )
            assert holder.getresponse().status == 200  # the tenant's one stream, held open
            ended: list[Job] = []
            thread = threading.Thread(target=lambda: ended.append(c.follow(accepted.job_id)))
            thread.start()
            refused = wait_until(
                lambda: [line for line in client_log.lines if "429 too_many_streams" in line],
                30,
                "the 429",
            )
            assert "stream again in 5.0 s" in refused[0]  # the server's Retry-After
            holder.close()
        thread.join(120)
    assert ended and ended[0].status == "done"


def test_over_the_hourly_quota_is_rate_limited(limited_api, song_file):
    slept: list[float] = []
    with Client(f"http://127.0.0.1:{limited_api.port}", QUOTA_TOKEN, sleep=slept.append) as client:
        client.upload(song_file)
        with pytest.raises(RateLimited) as raised:
            client.upload(song_file)
    assert raised.value.code == "quota_exceeded" and "UPLOADS_PER_HOUR" in raised.value.message
    # an hour's wait, past what a call may wait: raised at once, with when to come back
    assert raised.value.retry_after is not None and raised.value.retry_after > 60
    assert slept == []
