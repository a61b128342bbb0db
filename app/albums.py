"""A batch's ReplayGain 2.0 album gain: its done tracks measured as one programme.

The loudness stage keeps each upload's 400 ms gating blocks, binned
(:class:`audio.replaygain.GatingHistogram`, a few kB), at :func:`loudness_key`. When a batch
ends (:func:`app.webhooks.outbox.end_batch_if_done`, in the transaction that ends its last job
or makes it), :func:`set_album_gain` pools the blocks of its done jobs' uploads and gates them
once, as libebur128 does for an album; the album peak is the largest of their true peaks. This
runs in whichever process ends the batch — a worker, or the web process for a cancel or a batch
of uploads that had ended already — so it is plain Python: ``audio.replaygain`` loads neither
numpy nor a codec at import.

The album gain is null, with :data:`NO_ALBUM` or :data:`RUNNING` as its reason, while the batch
runs and when there is nothing to pool: no done track with a loudness (silent, under 400 ms,
failed or canceled), a track measured before album gains existed (its blocks were not kept), or
blocks that could not be read from storage when the batch ended.
"""

from __future__ import annotations

import json
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Analysis, Batch, BatchJob, Job
from app.storage import Storage
from audio.replaygain import GatingHistogram, ReplayGainError, album_replaygain

logger = logging.getLogger(__name__)

RUNNING = "The batch is still running: its album gain is measured when every job has ended."
NO_ALBUM = (
    "No album gain: none of the batch's done tracks has a loudness to pool (silent, under "
    "400 ms, failed or canceled), or a track was measured before album gains existed."
)


def loudness_key(upload_id: str) -> str:
    """Where an upload's gating blocks are kept (deleted with the upload's other files)."""
    return f"loudness/{upload_id}.json"


def set_album_gain(session: Session, batch: Batch, storage: Storage | None) -> None:
    """Set the batch's album gain and peak from its done tracks (null when there is none to
    pool, see the module's docstring); ``storage`` None: the blocks cannot be read, null."""
    batch.replaygain_album_gain_db = batch.replaygain_album_peak = None
    rows = session.execute(
        select(Job.upload_id, Analysis.integrated_lufs, Analysis.replaygain_track_peak)
        .join(BatchJob, BatchJob.job_id == Job.id)
        .outerjoin(Analysis, Analysis.upload_id == Job.upload_id)
        .where(BatchJob.batch_id == batch.id, Job.status == "done")
    ).all()
    if storage is None or not any(row.integrated_lufs is not None for row in rows):
        return
    histograms = []
    for row in rows:
        histogram = _histogram(storage, row.upload_id)
        if histogram is None:
            if row.integrated_lufs is not None:  # measured before blocks were kept
                return
            continue
        histograms.append(histogram)
    album = album_replaygain(histograms, [row.replaygain_track_peak for row in rows])
    if album.gain_db is not None:
        batch.replaygain_album_gain_db = round(album.gain_db, 2)
        batch.replaygain_album_peak = None if album.peak is None else round(album.peak, 6)


def _histogram(storage: Storage, upload_id: str) -> GatingHistogram | None:
    """The upload's gating blocks, or None when they are missing or cannot be read (logged:
    the batch then has no album gain, and its end is not held up by storage)."""
    key = loudness_key(upload_id)
    try:
        if not storage.exists(key):
            return None
        return GatingHistogram.from_dict(json.loads(b"".join(storage.read_chunks(key))))
    except (ReplayGainError, ValueError) as exc:
        logger.warning("the gating blocks at %s are unreadable: %s", key, exc)
    except Exception:
        logger.warning("could not read %s: the batch gets no album gain", key, exc_info=True)
    return None


def album_dict(batch: Batch) -> dict:
    """The album gain as the API and the batch's webhook give it, with the reason of a null."""
    reason = None
    if batch.ended_at is None:
        reason = RUNNING
    elif batch.replaygain_album_gain_db is None:
        reason = NO_ALBUM
    return {
        "replaygain_album_gain_db": batch.replaygain_album_gain_db,
        "replaygain_album_peak": batch.replaygain_album_peak,
        "replaygain_album_reason": reason,
    }
