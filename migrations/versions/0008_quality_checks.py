"""quality checks: what is wrong with a track, ReplayGain, a tempo range

``analyses`` gains the checks a mastering engineer runs (loudness maxima and per channel, peak to
loudness ratio, clipping, DC offset, mono compatibility, bandwidth and lossy origin), the track's
ReplayGain 2.0 values, the sentence saying why each check left a value null (``quality_reasons``)
and the names of the checks the upload fails (``failed_checks``, which the jobs list filters on).
Rows analysed before this revision keep nulls there: the API reads them as "measured before
these checks existed". ``jobs.bpm_range`` is the tempo range a job's BPM is folded into (null:
automatic); ``batches`` gains the album gain and peak of its tracks once it ends.

Revision ID: 0008
Revises: 0007 (0007_cancel)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ANALYSIS_COLUMNS = (
    ("max_momentary_lufs", sa.Float()),
    ("max_short_term_lufs", sa.Float()),
    ("plr_db", sa.Float()),
    ("channel_loudness_lufs", sa.JSON()),
    ("clipping", sa.JSON()),
    ("dc_offset_dbfs", sa.JSON()),
    ("stereo_correlation", sa.Float()),
    ("mono_loss_lu", sa.Float()),
    ("bandwidth_hz", sa.Float()),
    ("lossy_origin", sa.Boolean()),
    ("replaygain_track_gain_db", sa.Float()),
    ("replaygain_track_peak", sa.Float()),
    ("quality_reasons", sa.JSON()),
    ("failed_checks", sa.JSON()),
)
_BATCH_COLUMNS = (
    ("replaygain_album_gain_db", sa.Float()),
    ("replaygain_album_peak", sa.Float()),
)


def upgrade() -> None:
    for name, kind in _ANALYSIS_COLUMNS:
        op.add_column("analyses", sa.Column(name, kind, nullable=True))
    for name, kind in _BATCH_COLUMNS:
        op.add_column("batches", sa.Column(name, kind, nullable=True))
    op.add_column("jobs", sa.Column("bpm_range", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "bpm_range")
    for name, _ in reversed(_BATCH_COLUMNS):
        op.drop_column("batches", name)
    for name, _ in reversed(_ANALYSIS_COLUMNS):
        op.drop_column("analyses", name)
