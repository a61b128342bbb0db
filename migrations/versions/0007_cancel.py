"""cancel: a job may end ``canceled``

A canceled job keeps its upload and its events, and none of what its stages made. Going back
below this revision turns canceled jobs into failed ones, with the reason "canceled", so the
older check constraint holds again.

Revision ID: 0007
Revises: 0006 (0006_priority)
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_NAME = "jobs_status_valid"


def upgrade() -> None:
    op.drop_constraint(_NAME, "jobs", type_="check")
    op.create_check_constraint(
        _NAME, "jobs", "status IN ('queued', 'running', 'done', 'failed', 'canceled')"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE jobs SET status = 'failed', error = coalesce(error, 'canceled') "
        "WHERE status = 'canceled'"
    )
    op.drop_constraint(_NAME, "jobs", type_="check")
    op.create_check_constraint(_NAME, "jobs", "status IN ('queued', 'running', 'done', 'failed')")
