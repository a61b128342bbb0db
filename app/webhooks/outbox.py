"""Webhooks: a job's or a batch's end told to the URL that asked, each message and attempt kept.

The message is an outbox row. It is written in the transaction that ends the job
(:func:`on_job_end`, called by :func:`app.jobs.job_done` and :func:`app.jobs.job_failed`), so a
job cannot end without its webhook, nor a webhook be sent for a job that did not end. After the
commit the caller sends the webhooks worker a message naming the row (:func:`send`); should NATS
be away then, the sweep finds the row still pending long after it was due (:func:`overdue`) and
sends it again. Each POST is an attempt row; a timeout, a connection refused, a 5xx, a 408 or a
429 is tried again after :data:`RETRY_DELAYS_S` — about a day in all —, any other answer ends
the delivery (``delivered`` for a 2xx, ``failed`` otherwise). Every attempt of a job's webhook is
also one of its events, so the job's story says what its receiver answered.

The same message id (the ``webhook-id`` header) and body go out on every attempt: Standard
Webhooks receivers drop duplicates by id, which is what makes "at least once" safe.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import dramatiq
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.albums import album_dict, set_album_gain
from app.models import (
    ENDED_STATUSES,
    JOB_STATUSES,
    Analysis,
    Batch,
    BatchJob,
    Job,
    JobEvent,
    Output,
    TenantSettings,
    WebhookAttempt,
    WebhookDelivery,
    utcnow,
)
from app.queue import send_webhook
from app.storage import Storage
from app.uploads import analysis_dict

logger = logging.getLogger(__name__)

#: Seconds between a failed attempt and the next (± 10 %): 11 attempts over about a day
#: (24.7 hours), most of them in its first hours.
RETRY_DELAYS_S = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 32400)
#: Answers worth trying again; any other non-2xx is the receiver's final word.
RETRY_STATUSES = frozenset({408, 425, 429, *range(500, 600)})
#: A pending delivery this many seconds past due has lost its message: the sweep sends it again.
OVERDUE_AFTER_S = 300
#: The longest part of a receiver's answer kept with an attempt.
MAX_ERROR_CHARS = 300


# -- making messages (in the transaction that ends a job) -------------------------------------


def message_id() -> str:
    """A new ``webhook-id``."""
    return f"msg_{uuid.uuid4().hex}"


def tenant_callback_url(session: Session, tenant: str) -> str | None:
    """The tenant's default webhook (``phantomchain tokens webhook``), if set."""
    settings = session.get(TenantSettings, tenant)
    return settings.callback_url if settings else None


def set_tenant_callback_url(sessions: sessionmaker[Session], tenant: str, url: str | None) -> None:
    """Set (or, with None, clear) the tenant's default webhook; check the URL first."""
    with sessions.begin() as session:
        settings = session.get(TenantSettings, tenant)
        if settings is None:
            session.add(TenantSettings(tenant=tenant, callback_url=url))
        else:
            settings.callback_url = url
            settings.updated_at = utcnow()


def on_job_end(session: Session, job: Job, storage: Storage | None = None) -> list[str]:
    """The deliveries a job's end makes — its own webhook, and the webhook of each batch it was
    the last of — written in ``session`` (the transaction that ended it); their ids.
    ``storage``: where the tracks' loudness is read for a batch's album gain
    (:mod:`app.albums`; None: the batch gets none)."""
    made = []
    url = job.callback_url or tenant_callback_url(session, job.tenant)
    if url:
        body = job_payload(session, job)
        made.append(_make(session, job.tenant, url, body, job_id=job.id))
    batch_ids = session.scalars(
        select(BatchJob.batch_id).where(BatchJob.job_id == job.id).order_by(BatchJob.batch_id)
    ).all()
    for batch_id in batch_ids:  # in id order: two jobs ending together lock them alike
        made += end_batch_if_done(session, batch_id, storage)
    return made


def end_batch_if_done(session: Session, batch_id: str, storage: Storage | None = None) -> list[str]:
    """If every job of the batch has ended and its end was not told yet: mark it ended, set its
    album gain (:func:`app.albums.set_album_gain`, from ``storage``) and make its webhook (when
    it has one, or its tenant a default); the delivery ids (or none).

    The batch row is locked first, so of two jobs ending at once the second to commit sees the
    first ended: the batch's end is told once, and not never.
    """
    batch = session.get(Batch, batch_id, with_for_update=True)
    if batch is None or batch.ended_at is not None:
        return []
    statuses = session.scalars(
        select(Job.status)
        .join(BatchJob, BatchJob.job_id == Job.id)
        .where(BatchJob.batch_id == batch_id)
    ).all()
    if any(status not in ENDED_STATUSES for status in statuses):
        return []
    batch.ended_at = utcnow()
    set_album_gain(session, batch, storage)
    url = batch.callback_url or tenant_callback_url(session, batch.tenant)
    if not url:
        return []
    body = batch_payload(session, batch)
    return [_make(session, batch.tenant, url, body, batch_id=batch.id)]


def job_payload(session: Session, job: Job) -> dict:
    """``{type, timestamp, job_id, upload_id, status, error, analysis}`` (the analysis as the
    API gives it, or null for a failed or canceled job): ``job.done``, ``job.failed`` or
    ``job.canceled``."""
    analysis = None
    if job.status == "done":
        found = session.get(Analysis, job.upload_id)
        if found is not None:
            outputs = session.scalars(select(Output).where(Output.upload_id == job.upload_id))
            analysis = analysis_dict(found, list(outputs))
    return {
        "type": f"job.{job.status}",
        "timestamp": utcnow().isoformat(),
        "job_id": job.id,
        "upload_id": job.upload_id,
        "status": job.status,
        "error": job.error,
        "analysis": analysis,
    }


def batch_payload(session: Session, batch: Batch) -> dict:
    """``{type: batch.done | batch.failed | batch.canceled, timestamp, batch_id, status, counts,
    jobs, replaygain_album_gain_db, replaygain_album_peak, replaygain_album_reason}``:
    ``batch.failed`` when any job failed, ``batch.canceled`` when all were canceled, else
    ``batch.done`` (``counts`` tells the canceled apart; each job's status and error say
    which). The rule is :func:`ended_status`, which ``app.batches`` shows too."""
    rows = session.execute(
        select(Job.id, Job.upload_id, Job.status, Job.error)
        .join(BatchJob, BatchJob.job_id == Job.id)
        .where(BatchJob.batch_id == batch.id)
        .order_by(BatchJob.position)
    ).all()
    status = ended_status([row.status for row in rows])
    counts = dict.fromkeys(JOB_STATUSES, 0)
    for row in rows:
        counts[row.status] += 1
    return {
        "type": f"batch.{status}",
        "timestamp": utcnow().isoformat(),
        "batch_id": batch.id,
        "status": status,
        "counts": counts,
        "jobs": [
            {"job_id": r.id, "upload_id": r.upload_id, "status": r.status, "error": r.error}
            for r in rows
        ],
        **album_dict(batch),
    }


def ended_status(statuses: list[str]) -> str:
    """The status of a batch whose jobs have all ended: ``failed`` if any failed, ``canceled``
    if every one was canceled, else ``done`` (some may be canceled: its counts say how many).
    A batch left with no jobs (their uploads removed) is ``done``."""
    if "failed" in statuses:
        return "failed"
    if statuses and all(s == "canceled" for s in statuses):
        return "canceled"
    return "done"


def _make(
    session: Session,
    tenant: str,
    url: str,
    body: dict,
    *,
    job_id: str | None = None,
    batch_id: str | None = None,
) -> str:
    delivery = WebhookDelivery(
        id=message_id(),
        tenant=tenant,
        job_id=job_id,
        batch_id=batch_id,
        event_type=body["type"],
        url=url,
        body=json.dumps(body, separators=(",", ":")),
        status="pending",
        attempts=0,
        next_attempt_at=utcnow(),
    )
    session.add(delivery)
    return delivery.id


def send(broker: dramatiq.Broker, delivery_ids: list[str]) -> None:
    """Hand deliveries to the webhooks worker; never raises: one not sent now is sent by the
    sweep once overdue (:func:`overdue`)."""
    for delivery_id in delivery_ids:
        try:
            send_webhook(broker, delivery_id)
        except Exception:
            logger.warning("could not queue webhook %s: the sweep will", delivery_id, exc_info=True)


# -- delivering (the webhooks worker) ---------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A delivery the worker may attempt now."""

    id: str
    url: str
    body: str
    attempt: int  # this attempt's number, from 1


@dataclass(frozen=True)
class Outcome:
    """What one POST got: a status code, or the reason there was none."""

    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def worth_retrying(self) -> bool:
        """No answer (timeout, refused) or a passing trouble; a refused address is final."""
        if self.status_code is None:
            return not (self.error or "").startswith(REFUSED_ADDRESS)
        return self.status_code in RETRY_STATUSES


#: How an outcome's error starts when the URL resolved to an address webhooks may not reach.
REFUSED_ADDRESS = "not sent:"


def claim(sessions: sessionmaker[Session], delivery_id: str, lease_s: float) -> Claimed | None:
    """Take a pending delivery that is due, for ``lease_s`` seconds (another message for it
    meanwhile finds it not due); None when it is delivered, failed, gone or not due yet.

    The attempt is counted here, before it is made: an attempt whose outcome could not be
    recorded (its worker killed, its database away) still counts, so no delivery is tried
    more than ``len(RETRY_DELAYS_S) + 1`` times whatever happens to its attempts.
    """
    with sessions.begin() as session:
        delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
        now = utcnow()
        if delivery is None or delivery.status != "pending":
            return None
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now + timedelta(
            seconds=1
        ):
            return None
        if delivery.attempts > len(RETRY_DELAYS_S):  # all made; the last outcomes were lost
            delivery.status, delivery.finished_at, delivery.next_attempt_at = "failed", now, None
            if delivery.job_id is not None:
                session.add(
                    JobEvent(
                        job_id=delivery.job_id,
                        stage="webhook",
                        level="error",
                        message=f"webhook {delivery.event_type} to {_shown(delivery.url)}: "
                        f"no answer recorded after {delivery.attempts} attempts; no more attempts",
                    )
                )
            return None
        delivery.attempts += 1
        delivery.next_attempt_at = now + timedelta(seconds=lease_s)
        return Claimed(delivery.id, delivery.url, delivery.body, delivery.attempts)


def record(sessions: sessionmaker[Session], claimed: Claimed, outcome: Outcome) -> float | None:
    """Keep the attempt, settle or reschedule the delivery, tell the job's events; the seconds
    until the next attempt (None: no more attempts)."""
    delay = None
    if not outcome.delivered and outcome.worth_retrying and claimed.attempt <= len(RETRY_DELAYS_S):
        delay = RETRY_DELAYS_S[claimed.attempt - 1] * random.uniform(0.9, 1.1)
    with sessions.begin() as session:
        delivery = session.get(WebhookDelivery, claimed.id, with_for_update=True)
        if delivery is None:
            return None
        now = utcnow()
        session.add(
            WebhookAttempt(
                delivery_id=claimed.id,
                at=now,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
            )
        )
        delivery.attempts = claimed.attempt
        if delay is None:
            delivery.status = "delivered" if outcome.delivered else "failed"
            delivery.finished_at, delivery.next_attempt_at = now, None
        else:
            delivery.next_attempt_at = now + timedelta(seconds=delay)
        if delivery.job_id is not None:
            level = "info" if outcome.delivered else ("warning" if delay else "error")
            message = attempt_sentence(delivery, outcome, delay)
            session.add(
                JobEvent(job_id=delivery.job_id, stage="webhook", level=level, message=message)
            )
    return delay


def attempt_sentence(delivery: WebhookDelivery, outcome: Outcome, delay: float | None) -> str:
    """``webhook job.done to https://example.com/hook: answered 503 (attempt 2); next attempt
    in 2 min``."""
    answer = (
        f"answered {outcome.status_code}"
        if outcome.status_code is not None
        else f"{outcome.error}"  # without a status code, the error says what happened
    )
    if outcome.status_code is not None and 300 <= outcome.status_code < 400 and outcome.error:
        answer += f": {outcome.error}"  # "redirects are not followed (…)"
    said = (
        f"webhook {delivery.event_type} to {_shown(delivery.url)}: {answer} "
        f"(attempt {delivery.attempts})"
    )
    if outcome.delivered:
        return said
    if delay is not None:
        return f"{said}; next attempt in {_duration(delay)}"
    return f"{said}; no more attempts"


def _shown(url: str) -> str:
    """The URL without its query (which may carry the receiver's token)."""
    return url.split("?", 1)[0][:200]


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def overdue(sessions: sessionmaker[Session], after_s: float = OVERDUE_AFTER_S) -> list[str]:
    """Pending deliveries due more than ``after_s`` seconds ago: their message was lost."""
    cutoff = utcnow() - timedelta(seconds=after_s)
    with sessions() as session:
        return list(
            session.scalars(
                select(WebhookDelivery.id)
                .where(
                    WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at < cutoff
                )
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(1000)
            )
        )


# -- reading (API) ----------------------------------------------------------------------------


def deliveries_of(
    sessions: sessionmaker[Session], *, job_id: str | None = None, batch_id: str | None = None
) -> list[dict]:
    """A job's (or a batch's) deliveries, oldest first, each with its attempts."""
    query = select(WebhookDelivery).order_by(WebhookDelivery.created_at, WebhookDelivery.id)
    if job_id is not None:
        query = query.where(WebhookDelivery.job_id == job_id)
    if batch_id is not None:
        query = query.where(WebhookDelivery.batch_id == batch_id)
    with sessions() as session:
        found = []
        for delivery in session.scalars(query):
            attempts = session.scalars(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id == delivery.id)
                .order_by(WebhookAttempt.id)
            )
            found.append(delivery_dict(delivery, list(attempts)))
        return found


def delivery_dict(delivery: WebhookDelivery, attempts: list[WebhookAttempt]) -> dict:
    return {
        "id": delivery.id,
        "type": delivery.event_type,
        "url": delivery.url,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "created_at": _iso(delivery.created_at),
        "next_attempt_at": _iso(delivery.next_attempt_at) if delivery.status == "pending" else None,
        "finished_at": _iso(delivery.finished_at),
        "tries": [attempt_dict(a) for a in attempts],
    }


def attempt_dict(attempt: WebhookAttempt) -> dict:
    return {
        "at": _iso(attempt.at),
        "status_code": attempt.status_code,
        "error": attempt.error,
        "duration_ms": attempt.duration_ms,
    }


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None
