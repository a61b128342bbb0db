"""Per-tenant limits on uploads: how many an hour (``UPLOADS_PER_HOUR``) and how many bytes
kept — originals and outputs — (``STORAGE_QUOTA_MB``). Admins have none.

Checked twice: cheaply before an upload's body is read (refuse early, store nothing), and
again in the transaction that records it, under a per-tenant lock, so uploads racing each
other cannot pass a limit together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from app.models import Output, Upload, UploadLog, utcnow

WINDOW = timedelta(hours=1)
#: What a client over its storage quota is told to wait: the quota frees only when files go.
STORAGE_RETRY_AFTER_S = 3600


@dataclass(frozen=True)
class Quotas:
    """A tenant's limits; 0 means none."""

    uploads_per_hour: int = 0
    storage_bytes: int = 0


class QuotaExceeded(Exception):
    """Answered 429 with ``Retry-After: retry_after``."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def check(
    session: Session, tenant: str, quotas: Quotas, adding_bytes: int = 0, adding_uploads: int = 1
) -> None:
    """:raises QuotaExceeded: ``adding_uploads`` more uploads (a batch's files) of
    ``adding_bytes`` in all would pass a limit."""
    if quotas.uploads_per_hour:
        since = utcnow() - WINDOW
        count, oldest = session.execute(
            select(func.count(), func.min(UploadLog.at)).where(
                UploadLog.tenant == tenant, UploadLog.at > since
            )
        ).one()
        if count + adding_uploads > quotas.uploads_per_hour:
            # None: no upload yet, a batch larger than the limit itself
            wait = (oldest + WINDOW - utcnow()).total_seconds() if oldest else WINDOW.seconds
            batch = f" and this batch has {adding_uploads} files" if adding_uploads > 1 else ""
            raise QuotaExceeded(
                f"this tenant has made {count} uploads in the last hour{batch}, the limit "
                f"(UPLOADS_PER_HOUR) is {quotas.uploads_per_hour}; retry later",
                max(1, math.ceil(wait)),
            )
    if quotas.storage_bytes:
        used = stored_bytes(session, tenant)
        if used + adding_bytes > quotas.storage_bytes:
            raise QuotaExceeded(
                f"this tenant keeps {used / 2**20:.1f} MB; with this upload it would pass its "
                f"storage quota (STORAGE_QUOTA_MB = {quotas.storage_bytes >> 20}); remove "
                "uploads or ask an admin",
                STORAGE_RETRY_AFTER_S,
            )


def stored_bytes(session: Session, tenant: str) -> int:
    """Bytes a tenant keeps: its originals and every output made from them."""
    originals = select(func.coalesce(func.sum(Upload.size_bytes), 0)).where(Upload.tenant == tenant)
    outputs = (
        select(func.coalesce(func.sum(Output.size_bytes), 0))
        .join(Upload, Upload.id == Output.upload_id)
        .where(Upload.tenant == tenant)
    )
    return int(session.scalar(originals) or 0) + int(session.scalar(outputs) or 0)


def log_upload(session: Session, tenant: str) -> None:
    """Count an accepted upload (and forget the tenant's uploads older than the window)."""
    session.execute(
        delete(UploadLog).where(UploadLog.tenant == tenant, UploadLog.at <= utcnow() - WINDOW)
    )
    session.add(UploadLog(tenant=tenant))


def lock_tenant(session: Session, tenant: str) -> None:
    """Serialise this transaction with the tenant's other uploads (released at its end)."""
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"quota:{tenant}"}
    )
