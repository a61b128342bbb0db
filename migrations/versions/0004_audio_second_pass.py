"""audio second pass: normalised masters, beats, silence, the reasons behind nulls

``jobs.normalize`` is the target a job's outputs are normalised to (null: as decoded);
``outputs.normalization`` what normalising did to each; ``analyses`` gains the beat grid, the
silence offsets and, for a loudness, tempo or key left null, the sentence saying why.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ANALYSIS_COLUMNS = (
    ("loudness_reason", sa.Text()),
    ("loudness_range_reason", sa.Text()),
    ("bpm_reason", sa.Text()),
    ("key_reason", sa.Text()),
    ("beats", sa.JSON()),
    ("silence", sa.JSON()),
)


def upgrade() -> None:
    op.add_column("jobs", sa.Column("normalize", sa.JSON(), nullable=True))
    op.add_column("outputs", sa.Column("normalization", sa.JSON(), nullable=True))
    for name, kind in _ANALYSIS_COLUMNS:
        op.add_column("analyses", sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    for name, _ in reversed(_ANALYSIS_COLUMNS):
        op.drop_column("analyses", name)
    op.drop_column("outputs", "normalization")
    op.drop_column("jobs", "normalize")
