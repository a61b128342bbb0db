"""uploads.idempotency_key

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("uploads", sa.Column("idempotency_key", sa.String(length=200), nullable=True))
    op.create_unique_constraint("uploads_idempotency_key_key", "uploads", ["idempotency_key"])


def downgrade() -> None:
    op.drop_constraint("uploads_idempotency_key_key", "uploads", type_="unique")
    op.drop_column("uploads", "idempotency_key")
