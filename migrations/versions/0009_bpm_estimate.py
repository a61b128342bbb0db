"""a tempo where there is no steady beat: ``analyses.bpm_estimate`` and its confidence

Where the onsets are too weakly periodic to call a beat (a non-percussive piece, rubato, pads),
``bpm`` stays null with its reason, and people may still hear a tempo: ``bpm_estimate`` is the
analysis' best guess there, with a low ``bpm_estimate_confidence`` (the pulse strength, under
0.12). Where there is a steady beat they equal ``bpm`` and ``bpm_confidence``. Rows analysed
before this revision keep nulls.

Revision ID: 0009
Revises: 0008 (0008_quality_checks)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("analyses", sa.Column("bpm_estimate", sa.Float(), nullable=True))
    op.add_column("analyses", sa.Column("bpm_estimate_confidence", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("analyses", "bpm_estimate_confidence")
    op.drop_column("analyses", "bpm_estimate")
