"""Batches over real Postgres, NATS, storage and workers: several files (or uploads) under one
id, each job's state and an overall one, all or nothing, tenants apart, and the batch's webhook
made exactly once — checked in the database (the outbox row), not over HTTP."""

from __future__ import annotations

import base64
import io
import json
import shutil
import threading
import time
import uuid

import pytest
from sqlalchemy import func, select, text
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from app import albums, batches, jobs
from app.db import make_sessions
from app.models import Batch, BatchJob, Job, Upload, WebhookDelivery
from audio.replaygain import measure_file, track_replaygain
from tests.support.app_client import upload, wait_done
from tests.support.audio.music import synthesize_track
from tests.support.audio.signals import write_audio
from tests.support.waiting import wait_for

ALPHA = {"Authorization": "Bearer alpha-token"}
BETA = {"Authorization": "Bearer beta-token"}
ADMIN = {"Authorization": "Bearer admin-token"}
TOKENS = {"API_TOKENS": "alpha:alpha-token,beta:beta-token", "ADMIN_TOKEN": "admin-token"}
SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
#: Webhooks on, to a port nothing listens on: the rows are what these tests look at.
WEBHOOKS = {"WEBHOOK_SECRET": SECRET, "WEBHOOK_ALLOW_PRIVATE": "1"}
HOOK = "http://127.0.0.1:9/hook"
#: Audio by its first bytes, broken after them: its job fails at once (no retries).
BROKEN = b"fLaC" + b"\0" * 200


@pytest.fixture(scope="module")
def short(tmp_path_factory) -> bytes:
    """Two seconds of music as FLAC: a job that ends in a few seconds."""
    track = synthesize_track(110.0, "D", "major", seconds=2, sample_rate=22050, seed=8)
    path = tmp_path_factory.mktemp("batches") / "short.flac"
    write_audio(path, track.samples, 22050, "flac")
    return path.read_bytes()


def send_batch(client, files: list[tuple[bytes, str]], headers=None, chunked=False, **form):
    """POST several ``file`` fields (with ``chunked``: no Content-Length, as a client streaming
    its body sends it — the quotas' early check then knows no size)."""
    fields = MultiDict([("file", FileStorage(io.BytesIO(d), n)) for d, n in files])
    for name, value in form.items():
        fields.add(name, value)
    boundary, body = encode_multipart(fields)
    extra = {"Transfer-Encoding": "chunked"} if chunked else {}
    return client.post(
        "/api/batches",
        input_stream=io.BytesIO(body),
        content_type=f"multipart/form-data; boundary={boundary}",
        headers={**(headers or {}), **extra},
        environ_overrides={"wsgi.input_terminated": True} if chunked else {},
    )


def wait_ended(client, batch_id: str, headers=None, timeout=60) -> dict:
    """The batch once its ``ended_at`` is set (every job has ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = client.get(f"/api/batches/{batch_id}", headers=headers or {}).json
        if batch["ended_at"] is not None:
            return batch
        time.sleep(0.2)
    raise AssertionError(f"batch never ended: {batch}")


def batch_deliveries(sessions, batch_id: str) -> list[tuple[str, str]]:
    with sessions() as session:
        rows = session.execute(
            select(WebhookDelivery.event_type, WebhookDelivery.url).where(
                WebhookDelivery.batch_id == batch_id
            )
        )
        return [tuple(row) for row in rows]


def kept_rows(sessions, tenant: str) -> dict[str, int]:
    with sessions() as session:
        return {
            "uploads": session.scalar(
                select(func.count()).select_from(Upload).where(Upload.tenant == tenant)
            ),
            "jobs": session.scalar(select(func.count()).select_from(Job)),
            "batches": session.scalar(select(func.count()).select_from(Batch)),
        }


def stored_files(tmp_path) -> list:
    return sorted(p for p in (tmp_path / "store").rglob("*") if p.is_file())


def test_three_files_run_as_one_batch_that_ends_once(
    make_client, short, migrated_database_url, tmp_path
):
    client = make_client(**WEBHOOKS)
    names = ["one.flac", "two.flac", "three.flac"]
    response = send_batch(client, [(short, n) for n in names], formats="mp3", callback_url=HOOK)
    assert response.status_code == 202, response.json
    body = response.json
    batch_id = body["batch_id"]
    assert body["status"] == "queued" and len(body["jobs"]) == 3
    assert body["links"] == {"batch": f"/api/batches/{batch_id}"}
    assert all(j["status"] == "queued" for j in body["jobs"])
    order = [(j["upload_id"], j["job_id"]) for j in body["jobs"]]
    assert len(set(order)) == 3
    running = client.get(f"/api/batches/{batch_id}").json
    if running["ended_at"] is None:  # no album before the end, and a sentence saying so
        assert running["replaygain_album_gain_db"] is None
        assert running["replaygain_album_reason"] == albums.RUNNING

    ended = wait_ended(client, batch_id)
    assert ended["status"] == "done"
    assert ended["counts"] == {"queued": 0, "running": 0, "done": 3, "failed": 0, "canceled": 0}
    assert ended["callback_url"] == HOOK
    assert [(j["upload_id"], j["job_id"]) for j in ended["jobs"]] == order  # the order sent
    assert [j["filename"] for j in ended["jobs"]] == names
    assert all(j["status"] == "done" and j["progress"] == 100 for j in ended["jobs"])
    for upload_id, job_id in order:  # each is an ordinary upload, with the batch's options
        assert wait_done(client, upload_id).status_code == 200
        job = client.get(f"/api/jobs/{job_id}").json
        assert job["formats"] == ["mp3"]
    # the batch's webhook: one message, made with the last job's end; none of the jobs' own
    sessions = make_sessions(migrated_database_url)
    assert batch_deliveries(sessions, batch_id) == [("batch.done", HOOK)]
    with sessions() as session:
        own = select(func.count()).select_from(WebhookDelivery)
        assert session.scalar(own.where(WebhookDelivery.job_id.is_not(None))) == 0
    shown = client.get(f"/api/batches/{batch_id}").json["deliveries"]
    assert [(d["type"], d["url"]) for d in shown] == [("batch.done", HOOK)]
    check_replaygain(client, sessions, batch_id, ended, [u for u, _ in order], tmp_path)


def check_replaygain(client, sessions, batch_id, ended, upload_ids, folder) -> None:
    """The batch's album gain — three copies of one track pool to that track's own loudness,
    by construction — in the API and the webhook, and each MP3 output tagged with its own gain
    and peak (as our meter and loudgain read the file)."""
    from tests.unit.audio.test_replaygain import loudgain, read_tags

    track = wait_done(client, upload_ids[0]).json
    assert track["replaygain_track_gain_db"] == pytest.approx(
        -18 - track["integrated_lufs"], abs=0.01
    )
    album = {k: v for k, v in ended.items() if k.startswith("replaygain_album_")}
    assert album["replaygain_album_gain_db"] == pytest.approx(
        track["replaygain_track_gain_db"], abs=0.01
    )
    assert album["replaygain_album_peak"] == track["replaygain_track_peak"]
    assert album["replaygain_album_reason"] is None
    with sessions() as session:
        body = session.scalars(
            select(WebhookDelivery.body).where(WebhookDelivery.batch_id == batch_id)
        ).one()
    assert {k: v for k, v in json.loads(body).items() if k.startswith("replaygain_")} == album
    for upload_id in upload_ids:
        mp3 = folder / f"{upload_id}.mp3"
        mp3.write_bytes(client.get(f"/api/uploads/{upload_id}/outputs/mp3").data)
        own = track_replaygain(measure_file(mp3))
        assert read_tags(mp3, "mp3") == {
            "REPLAYGAIN_TRACK_GAIN": own.gain_text,
            "REPLAYGAIN_TRACK_PEAK": own.peak_text,
        }
        if shutil.which("loudgain"):
            oracle = loudgain(mp3)[mp3.name]
            assert abs(own.gain_db - oracle["gain_db"]) <= 0.02


def test_existing_uploads_are_grouped_without_running_again(
    make_client, short, migrated_database_url
):
    client = make_client(**WEBHOOKS)
    good = upload(client, short, name="good.flac").json
    bad = upload(client, BROKEN, name="bad.flac").json
    assert wait_done(client, good["upload_id"]).status_code == 200
    assert wait_done(client, bad["upload_id"]).status_code == 409
    ids = [bad["upload_id"], good["upload_id"]]

    both = client.post("/api/batches", json={"upload_ids": ids, "callback_url": HOOK})
    assert both.status_code == 202, both.json
    assert both.json["status"] == "failed"  # all had ended, one failed
    assert [(j["upload_id"], j["job_id"], j["status"]) for j in both.json["jobs"]] == [
        (bad["upload_id"], bad["job_id"], "failed"),
        (good["upload_id"], good["job_id"], "done"),
    ]
    batch = client.get(both.json["links"]["batch"]).json
    assert batch["ended_at"] is not None  # its end was told as it was made
    # ended in the web process: the album of its one done track is that track's own gain
    good_track = wait_done(client, good["upload_id"]).json
    assert batch["replaygain_album_gain_db"] == pytest.approx(
        good_track["replaygain_track_gain_db"], abs=0.01
    )
    assert batch["replaygain_album_peak"] == good_track["replaygain_track_peak"]
    assert batch["counts"] == {"queued": 0, "running": 0, "done": 1, "failed": 1, "canceled": 0}
    assert batch["jobs"][0]["error"] and batch["jobs"][1]["error"] is None
    sessions = make_sessions(migrated_database_url)
    assert batch_deliveries(sessions, both.json["batch_id"]) == [("batch.failed", HOOK)]
    assert client.get(f"/api/jobs/{good['job_id']}").json["attempts"] == 5  # not run again

    # a batch of an upload still running ends (once) when its job does
    later = upload(client, short, name="later.flac").json
    pending = client.post("/api/batches", json={"upload_ids": [later["upload_id"]]})
    assert pending.status_code == 202 and pending.json["status"] in ("queued", "running")
    assert wait_ended(client, pending.json["batch_id"])["status"] == "done"
    assert batch_deliveries(sessions, pending.json["batch_id"]) == []  # no URL: no webhook

    refused = [
        ({"upload_ids": [good["upload_id"], good["upload_id"]]}, 400, "duplicate_upload"),
        ({"upload_ids": []}, 400, "empty_batch"),
        ({"upload_ids": "nope"}, 400, "bad_body"),
        ({"upload_ids": ids, "formats": "mp3"}, 400, "bad_body"),
        ({"upload_ids": [str(uuid.uuid4())]}, 404, "not_found"),
        ({"upload_ids": ["../etc"]}, 404, "not_found"),
        ({"upload_ids": ids, "callback_url": "ftp://example.com/"}, 400, "bad_callback_url"),
    ]
    for sent, status, code in refused:
        answer = client.post("/api/batches", json=sent)
        assert (answer.status_code, answer.json["error"]["code"]) == (status, code), sent
    hostile = [
        ("[" * 100_000 + "]" * 100_000, 400, "bad_body"),  # past Python's recursion limit
        ('{"upload_ids": [' + ",".join(['"x"'] * 80_000) + "]}", 413, "too_large"),
    ]
    for body, status, code in hostile:
        answer = client.post("/api/batches", data=body, content_type="application/json")
        assert (answer.status_code, answer.json["error"]["code"]) == (status, code)
    assert kept_rows(sessions, "@open")["batches"] == 2


def test_a_refused_batch_keeps_nothing(make_client, short, tmp_path, migrated_database_url):
    """Not audio, over a quota, too many, none: a 400 or 429, and no row, file or job kept."""
    client = make_client(**TOKENS, STORAGE_QUOTA_MB="1")
    sessions = make_sessions(migrated_database_url)
    nothing = {"uploads": 0, "jobs": 0, "batches": 0}

    files = [(short, "one.flac"), (b"just some notes\n" * 100, "notes.txt"), (short, "3.flac")]
    not_audio = send_batch(client, files, headers=ALPHA)
    assert not_audio.status_code == 400
    error = not_audio.json["error"]
    assert error["code"] == "not_audio"
    assert "file 2" in error["message"] and "notes.txt" in error["message"]
    assert kept_rows(sessions, "alpha") == nothing and stored_files(tmp_path) == []

    # Sent without Content-Length, the quotas' early check knows no size: the two first files
    # are stored and recorded before the third passes the quota, then undone.
    big = short + b"\0" * (1 << 20)  # audio by its first bytes, over 1 MB
    files = [(short, "one.flac"), (short, "two.flac"), (big, "big.flac")]
    over = send_batch(client, files, headers=ALPHA, chunked=True)
    assert over.status_code == 429, over.json
    assert "STORAGE_QUOTA_MB" in over.json["error"]["message"]
    assert kept_rows(sessions, "alpha") == nothing and stored_files(tmp_path) == []

    many = send_batch(client, [(BROKEN, f"{n}.flac") for n in range(101)], headers=ALPHA)
    assert (many.status_code, many.json["error"]["code"]) == (400, "too_many")
    ids = [str(uuid.uuid4()) for _ in range(101)]
    many = client.post("/api/batches", json={"upload_ids": ids}, headers=ALPHA)
    assert (many.status_code, many.json["error"]["code"]) == (400, "too_many")
    hundred = client.post("/api/batches", json={"upload_ids": ids[:100]}, headers=ALPHA)
    assert hundred.status_code == 404  # 100 is not too many: the ids are looked up
    none = send_batch(client, [], headers=ALPHA, formats="mp3")
    assert (none.status_code, none.json["error"]["code"]) == (400, "empty_batch")
    assert kept_rows(sessions, "alpha") == nothing and stored_files(tmp_path) == []

    accepted = send_batch(
        client,
        [(BROKEN, "one.flac"), (BROKEN, "two.flac")],
        headers=ALPHA,
        chunked=True,
        formats="opus",
        normalize="podcast",
    )
    assert accepted.status_code == 202, accepted.json  # nothing refused counts in the quota
    with sessions() as session:  # the request's options, on every job
        asked = session.execute(select(Job.formats, Job.normalize)).all()
    assert [(f, n["name"]) for f, n in asked] == [(["opus"], "podcast")] * 2
    assert wait_ended(client, accepted.json["batch_id"], headers=ALPHA)["status"] == "failed"


def test_another_tenants_batch_is_not_found(make_client):
    client = make_client(workers=False, **TOKENS)
    mine = send_batch(client, [(BROKEN, "a.flac"), (BROKEN, "b.flac")], headers=ALPHA)
    assert mine.status_code == 202, mine.json
    batch_id = mine.json["batch_id"]
    assert client.get(f"/api/batches/{batch_id}", headers=ALPHA).status_code == 200
    assert client.get(f"/api/batches/{batch_id}", headers=ADMIN).status_code == 200
    theirs = client.get(f"/api/batches/{batch_id}", headers=BETA)
    assert theirs.status_code == 404
    unknown = str(uuid.uuid4())
    never = client.get(f"/api/batches/{unknown}", headers=BETA)
    assert json.dumps(theirs.json) == json.dumps(never.json).replace(unknown, batch_id)
    upload_id = mine.json["jobs"][0]["upload_id"]
    grouped = client.post("/api/batches", json={"upload_ids": [upload_id]}, headers=BETA)
    assert grouped.status_code == 404 and grouped.json["error"]["code"] == "not_found"
    assert (
        client.post("/api/batches", json={"upload_ids": [upload_id]}, headers=ALPHA).status_code
        == 202
    )


def test_jobs_ending_in_the_same_instant_make_one_batch_webhook(migrated_database_url):
    """Two jobs of a batch end at once, ten times over: each time one webhook, not none or
    two. The jobs' rows are held locked until both threads wait on them, then let go together,
    so their ending transactions overlap."""
    sessions = make_sessions(migrated_database_url)
    for _ in range(10):
        with sessions.begin() as session:
            batch = Batch(tenant="t", callback_url=HOOK)
            session.add(batch)
            job_ids = []
            for position in range(2):
                up = Upload(
                    tenant="t",
                    filename="x.flac",
                    content_type="audio/flac",
                    size_bytes=1,
                    sha256="0" * 64,
                    storage_key="k",
                )
                session.add(up)
                session.flush()
                job = Job(tenant="t", upload_id=up.id, status="running", formats=[])
                session.add(job)
                session.flush()
                session.add(BatchJob(batch_id=batch.id, job_id=job.id, position=position))
                job_ids.append(job.id)
        made: list[list[str]] = []
        gate = sessions()
        gate.scalars(select(Job).where(Job.id.in_(job_ids)).with_for_update()).all()
        threads = [
            threading.Thread(target=_end, args=(sessions, job_id, made)) for job_id in job_ids
        ]
        for thread in threads:
            thread.start()
        assert wait_for(lambda: waiting_on_a_lock(sessions) == 2)  # both wait on their job's row
        gate.commit()
        gate.close()
        for thread in threads:
            thread.join(10)
        assert len(made) == 2
        assert batch_deliveries(sessions, batch.id) == [("batch.done", HOOK)]
        assert sum(len(m) for m in made) == 1


def waiting_on_a_lock(sessions) -> int:
    """Sessions of this database that wait for a lock (PostgreSQL's own view of them)."""
    with sessions() as session:
        return session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )


def _end(sessions, job_id: str, made: list[list[str]]) -> None:
    made.append(jobs.job_done(sessions, job_id))


def test_a_batch_made_as_its_job_ends_still_ends_once(migrated_database_url):
    """A batch of an upload whose job ends while the batch is being made: the batch ends once
    (its making sees the job ended, or the job's end sees the batch), never zero times."""
    sessions = make_sessions(migrated_database_url)
    for attempt in range(30):
        with sessions.begin() as session:
            up = Upload(
                tenant="t",
                filename="x.flac",
                content_type="audio/flac",
                size_bytes=1,
                sha256="0" * 64,
                storage_key="k",
            )
            session.add(up)
            session.flush()
            job = Job(tenant="t", upload_id=up.id, status="running", formats=[])
            session.add(job)
        start = threading.Barrier(2)
        made: list[batches.Created] = []
        # from together to 9 ms apart: about how long the making's steps take
        delay = attempt % 10 / 1000
        threads = [
            threading.Thread(target=_make_batch, args=(sessions, start, up.id, made)),
            threading.Thread(target=_end_after, args=(sessions, start, job.id, delay)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert batch_deliveries(sessions, made[0].batch_id) == [("batch.done", HOOK)], attempt


def _make_batch(sessions, start: threading.Barrier, upload_id: str, made: list) -> None:
    start.wait()
    made.append(batches.create_from_uploads(sessions, "t", [upload_id], HOOK, "t"))


def _end_after(sessions, start: threading.Barrier, job_id: str, delay: float) -> None:
    start.wait()
    time.sleep(delay)
    jobs.job_done(sessions, job_id)


def test_a_batch_waits_behind_later_uploads_of_another_tenant_and_of_its_own(make_client, short):
    """The batch's eight jobs are queued first; another tenant's upload, then the batch
    tenant's own single upload, are sent after it. First come, first served would finish both
    after all eight; shared fairly (another tenant) and by priority (a single upload is
    ``normal``, a batch's jobs ``low``), each overtakes most of the batch."""
    client = make_client(**TOKENS)
    made = send_batch(client, [(short, f"b{i}.flac") for i in range(8)], headers=ALPHA)
    assert made.status_code == 202, made.json
    theirs = upload(client, short, headers=BETA).json["job_id"]
    mine = upload(client, short, headers=ALPHA).json["job_id"]
    wait_ended(client, made.json["batch_id"], headers=ALPHA, timeout=180)
    for job_id in (theirs, mine):
        wait_for(lambda j=job_id: client.get(f"/api/jobs/{j}", headers=ADMIN).json["finished_at"])

    def job(job_id: str) -> dict:
        return client.get(f"/api/jobs/{job_id}", headers=ADMIN).json

    batch_jobs = [job(each["job_id"]) for each in made.json["jobs"]]
    assert {each["priority"] for each in batch_jobs} == {"low"}
    assert job(mine)["priority"] == job(theirs)["priority"] == "normal"
    for late in (theirs, mine):
        finished = job(late)["finished_at"]
        before = [each for each in batch_jobs if each["finished_at"] < finished]
        assert len(before) <= 4, (late, [each["finished_at"] for each in batch_jobs], finished)


def test_an_upload_may_say_its_priority(make_client, short):
    client = make_client(workers=False, **TOKENS)
    urgent = upload(client, short, headers=ALPHA, priority="high")
    assert urgent.status_code == 202, urgent.json
    assert client.get(f"/api/jobs/{urgent.json['job_id']}", headers=ALPHA).json["priority"] == (
        "high"
    )
    wrong = upload(client, short, headers=ALPHA, priority="urgent")
    assert wrong.status_code == 400
    assert wrong.json["error"] == {
        "code": "bad_priority",
        "message": "priority must be high, normal or low",
    }
    made = send_batch(client, [(short, "a.flac")], headers=ALPHA, priority="high")
    assert made.status_code == 202, made.json
    job_id = made.json["jobs"][0]["job_id"]
    assert client.get(f"/api/jobs/{job_id}", headers=ALPHA).json["priority"] == "high"


def test_an_upload_may_say_its_bpm_range(make_client, short, migrated_database_url):
    """``bpm_range`` of an upload and of a batch's files: kept in ``jobs.bpm_range`` as
    ``[low, high]``, shown in the job's JSON (null when not asked); a bad one a 400
    ``bad_bpm_range`` with a sentence, and nothing stored."""
    client = make_client(workers=False, **TOKENS)
    ranged = upload(client, short, headers=ALPHA, bpm_range=" 120 - 200 ")
    assert ranged.status_code == 202, ranged.json
    job_id = ranged.json["job_id"]
    assert client.get(f"/api/jobs/{job_id}", headers=ALPHA).json["bpm_range"] == [120, 200]
    with make_sessions(migrated_database_url)() as session:
        assert session.get(Job, job_id).bpm_range == [120.0, 200.0]
        uploads_before = session.scalar(select(func.count()).select_from(Upload))
    plain = upload(client, short, headers=ALPHA).json["job_id"]
    assert client.get(f"/api/jobs/{plain}", headers=ALPHA).json["bpm_range"] is None
    made = send_batch(
        client, [(short, "a.flac"), (short, "b.flac")], headers=ALPHA, bpm_range="70-140"
    )
    assert made.status_code == 202, made.json
    for each in made.json["jobs"]:
        job = client.get(f"/api/jobs/{each['job_id']}", headers=ALPHA).json
        assert job["bpm_range"] == [70, 140]
    for wrong, says in [
        ("fast", "bpm_range must be LOW-HIGH in BPM, e.g. 120-200 (got 'fast')"),
        ("200-120", "bpm_range must go from low to high, e.g. 120-200 (got 200-120)"),
        ("10-100", "bpm_range must lie within 30–300 BPM (got 10)"),
    ]:
        for refused in (
            upload(client, short, headers=ALPHA, bpm_range=wrong),
            send_batch(client, [(short, "a.flac")], headers=ALPHA, bpm_range=wrong),
        ):
            assert refused.status_code == 400, refused.json
            assert refused.json["error"] == {"code": "bad_bpm_range", "message": says}
    with make_sessions(migrated_database_url)() as session:
        assert session.scalar(select(func.count()).select_from(Upload)) == uploads_before + 3


def test_a_cancel_is_the_tenants_or_an_admins_and_the_batch_counts_it_apart(
    make_client, short, tmp_path, migrated_database_url
):
    """No worker runs: the jobs stay queued until canceled. A tenant cancels its own (another
    tenant's is a 404 like any unknown id), an admin anyone's, an ended job is a 409 with a
    sentence; a queued upload removed is canceled first. Each end is written with its webhook
    (``job.canceled``), and the batch, all canceled, ends ``canceled`` with its counts."""
    client = make_client(workers=False, **TOKENS, **WEBHOOKS)
    names = ["one.flac", "two.flac", "three.flac"]
    sent = send_batch(client, [(short, n) for n in names], headers=ALPHA, callback_url=HOOK)
    assert sent.status_code == 202, sent.json
    batch_id = sent.json["batch_id"]
    (up0, job0), (up1, job1), (up2, job2) = [
        (j["upload_id"], j["job_id"]) for j in sent.json["jobs"]
    ]

    theirs = client.post(f"/api/jobs/{job0}/cancel", headers=BETA)
    unknown = str(uuid.uuid4())
    never = client.post(f"/api/jobs/{unknown}/cancel", headers=BETA)
    assert theirs.status_code == 404 and never.status_code == 404
    assert json.dumps(theirs.json) == json.dumps(never.json).replace(unknown, job0)

    mine = client.post(f"/api/jobs/{job0}/cancel", headers=ALPHA)
    assert mine.status_code == 202 and mine.json == {"id": job0, "status": "canceled"}
    job = client.get(f"/api/jobs/{job0}", headers=ALPHA).json
    assert job["status"] == "canceled" and job["finished_at"] is not None
    assert job["events"][-1]["message"] == "canceled by alpha"
    again = client.post(f"/api/jobs/{job0}/cancel", headers=ALPHA)
    assert again.status_code == 409 and again.json["error"] == {
        "code": "already_ended",
        "message": f"job {job0} has already ended (canceled): there is nothing to cancel",
    }
    analysis = client.get(f"/api/uploads/{up0}/analysis", headers=ALPHA)
    assert analysis.status_code == 409 and analysis.json["error"]["code"] == "job_canceled"
    assert client.get(f"/api/batches/{batch_id}", headers=ALPHA).json["status"] == "running"

    by_admin = client.post(f"/api/jobs/{job1}/cancel", headers=ADMIN)
    assert by_admin.status_code == 202
    events = client.get(f"/api/jobs/{job1}", headers=ALPHA).json["events"]
    assert events[-1]["message"] == "canceled by an admin"

    # the last one's upload removed while queued: its job is canceled first, then removed
    assert client.delete(f"/api/uploads/{up2}", headers=ALPHA).status_code == 204
    assert client.get(f"/api/jobs/{job2}", headers=ALPHA).status_code == 404
    assert client.get(f"/api/uploads/{up0}", headers=ALPHA).status_code == 200  # kept
    assert [p.parent.name for p in stored_files(tmp_path)] == sorted([up0, up1])  # originals

    batch = client.get(f"/api/batches/{batch_id}", headers=ALPHA).json
    assert batch["ended_at"] is not None and batch["status"] == "canceled"
    assert batch["counts"] == {"queued": 0, "running": 0, "done": 0, "failed": 0, "canceled": 2}
    assert batch["replaygain_album_gain_db"] is None  # no done track: nothing to pool
    assert batch["replaygain_album_reason"] == albums.NO_ALBUM
    sessions = make_sessions(migrated_database_url)
    assert batch_deliveries(sessions, batch_id) == [("batch.canceled", HOOK)]
    with sessions() as session:
        batch_body = session.scalar(
            select(WebhookDelivery.body).where(WebhookDelivery.batch_id == batch_id)
        )
    assert json.loads(batch_body)["counts"]["canceled"] == 3  # made as the last was canceled

    # a job's own webhook says it was canceled
    alone = upload(client, short, headers=ALPHA, callback_url=HOOK).json
    assert client.post(f"/api/jobs/{alone['job_id']}/cancel", headers=ALPHA).status_code == 202
    with sessions() as session:
        told = session.execute(
            select(WebhookDelivery.event_type, WebhookDelivery.body).where(
                WebhookDelivery.job_id == alone["job_id"]
            )
        ).all()
    assert [t for t, _ in told] == ["job.canceled"]
    body = json.loads(told[0][1])
    assert body["status"] == "canceled" and body["analysis"] is None
