"""job priority: a tenant's urgent jobs first, its batches last

``jobs.priority`` is ``high``, ``normal`` (the default, and every job before) or ``low`` (a
batch's); the queue runs a tenant's most urgent waiting job first.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "jobs",
        sa.Column("priority", sa.String(length=8), nullable=False, server_default="normal"),
    )
    op.create_check_constraint(
        "jobs_priority_valid", "jobs", "priority IN ('high', 'normal', 'low')"
    )


def downgrade() -> None:
    op.drop_constraint("jobs_priority_valid", "jobs", type_="check")
    op.drop_column("jobs", "priority")
