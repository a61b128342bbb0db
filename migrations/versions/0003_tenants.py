"""tenants: every upload and job has one; idempotency keys unique per tenant; api_tokens

Rows made before tenants existed belong to the ``@legacy`` tenant, which only admins see (no
tenant a user names can start with ``@``). ``upload_log`` counts a tenant's uploads of the last
hour, deleted ones too.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("uploads", "jobs"):
        op.add_column(
            table,
            sa.Column("tenant", sa.String(length=64), nullable=False, server_default="@legacy"),
        )
        op.alter_column(table, "tenant", server_default=None)
        op.create_index(f"{table}_tenant_created", table, ["tenant", "created_at"])
    op.create_index("jobs_finished_at", "jobs", ["finished_at"])
    op.drop_constraint("uploads_idempotency_key_key", "uploads", type_="unique")
    op.create_unique_constraint(
        "uploads_tenant_idempotency_key", "uploads", ["tenant", "idempotency_key"]
    )
    op.create_table(
        "upload_log",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("upload_log_tenant_at", "upload_log", ["tenant", "at"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False, unique=True),
        sa.Column("hint", sa.String(length=16), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_index("upload_log_tenant_at", table_name="upload_log")
    op.drop_table("upload_log")
    op.drop_index("jobs_finished_at", table_name="jobs")
    op.drop_constraint("uploads_tenant_idempotency_key", "uploads", type_="unique")
    # Two tenants may have used one key; the oldest upload keeps it (a key is unique again).
    op.execute(
        "UPDATE uploads AS u SET idempotency_key = NULL WHERE idempotency_key IS NOT NULL "
        "AND EXISTS (SELECT 1 FROM uploads AS o WHERE o.idempotency_key = u.idempotency_key "
        "AND (o.created_at, o.id) < (u.created_at, u.id))"
    )
    op.create_unique_constraint("uploads_idempotency_key_key", "uploads", ["idempotency_key"])
    for table in ("uploads", "jobs"):
        op.drop_index(f"{table}_tenant_created", table_name=table)
        op.drop_column(table, "tenant")
