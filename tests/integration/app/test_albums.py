"""A batch's album gain on a real Postgres and file storage: set once, when its last job ends,
from the gating blocks of its done tracks only; null with a sentence otherwise."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app import albums, batches, jobs
from app.db import make_sessions
from app.models import Analysis, Job, Upload, WebhookDelivery, new_id
from app.storage.local import LocalStorage
from audio.loudness import LoudnessMeter
from audio.replaygain import GatingHistogram, pooled_loudness, track_replaygain
from tests.support.audio import ebu_signals as ebu

HOOK = "https://hooks.example.com/in"


@pytest.fixture
def sessions(migrated_database_url):
    return make_sessions(migrated_database_url)


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path / "store")


def a_track(sessions, storage, dbfs: float | None, seconds: float, keep_blocks: bool = True):
    """A running job whose upload was measured (as the loudness stage does) on a stereo 1 kHz
    sine at ``dbfs`` (``None``: silence); ``(upload_id, job_id, its meter)``."""
    if dbfs is None:
        samples = np.zeros((2, round(seconds * 48000)), np.float32)
    else:
        samples = ebu.stereo(ebu.sine(seconds, 48000, dbfs))
    meter = LoudnessMeter(48000, 2)
    meter.add(samples)
    loudness = meter.result()
    upload_id = new_id()
    with sessions.begin() as session:
        session.add(
            Upload(
                id=upload_id,
                tenant="t",
                filename="a.flac",
                content_type="audio/flac",
                size_bytes=1,
                sha256="0" * 64,
                storage_key="k",
            )
        )
        session.flush()
        session.add(
            Analysis(
                upload_id=upload_id,
                integrated_lufs=loudness.integrated_lufs,
                true_peak_dbtp=loudness.true_peak_dbtp,
                **track_replaygain(loudness).to_dict(),
            )
        )
        job = Job(upload_id=upload_id, tenant="t", formats=[], status="running")
        session.add(job)
        session.flush()
        job_id = job.id
    if keep_blocks:
        blocks = json.dumps(GatingHistogram.from_meter(meter).to_dict()).encode()
        storage.save(albums.loudness_key(upload_id), [blocks])
    return upload_id, job_id, meter


def test_the_album_pools_the_done_tracks_when_the_last_ends(sessions, storage):
    # −10 dBFS for 20 s and −30 for 10 s: gated together, the quiet one falls under the
    # relative gate (20 LU below), so the album is the loud one's −10 LUFS: gain −8 dB. The
    # mean of the two tracks' gains would be 2 dB. A failed track's blocks are not pooled.
    loud = a_track(sessions, storage, -10, 20)
    quiet = a_track(sessions, storage, -30, 10)
    failed = a_track(sessions, storage, -1, 5)
    made = batches.create(sessions, "t", [t[:2] for t in (loud, quiet, failed)], HOOK, storage)
    batch_id = made.batch_id
    assert batches.get_batch(sessions, batch_id)["replaygain_album_reason"] == albums.RUNNING

    jobs.job_done(sessions, loud[1], storage)
    jobs.job_failed(sessions, failed[1], "transcode", "not audio", storage)
    assert batches.get_batch(sessions, batch_id)["replaygain_album_gain_db"] is None  # running
    jobs.job_done(sessions, quiet[1], storage)

    batch = batches.get_batch(sessions, batch_id)
    expected = -18 - pooled_loudness([GatingHistogram.from_meter(loud[2])])
    assert batch["replaygain_album_gain_db"] == pytest.approx(-8.0, abs=0.01)
    assert batch["replaygain_album_gain_db"] == pytest.approx(expected, abs=0.005)
    assert batch["replaygain_album_peak"] == pytest.approx(10 ** (-10 / 20), rel=1e-3)
    assert batch["replaygain_album_reason"] is None
    with sessions() as session:
        body = json.loads(session.query(WebhookDelivery.body).filter_by(batch_id=batch_id).scalar())
    assert {k: body[k] for k in body if k.startswith("replaygain_")} == {
        k: batch[k] for k in batch if k.startswith("replaygain_")
    }


@pytest.mark.parametrize("case", ["silent", "blocks_missing", "no_storage"])
def test_nothing_to_pool_is_null_with_a_sentence(sessions, storage, case):
    level = None if case == "silent" else -20
    track = a_track(sessions, storage, level, 5, keep_blocks=case != "blocks_missing")
    made = batches.create(sessions, "t", [track[:2]], None, storage)
    jobs.job_done(sessions, track[1], None if case == "no_storage" else storage)
    batch = batches.get_batch(sessions, made.batch_id)
    assert batch["ended_at"] is not None
    assert (batch["replaygain_album_gain_db"], batch["replaygain_album_peak"]) == (None, None)
    assert batch["replaygain_album_reason"] == albums.NO_ALBUM
