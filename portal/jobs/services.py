"""Putting work on the queue. ``enqueue`` only adds to the current session:
the job commits with the change that needs it, or not at all."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, insert

from portal.extensions import db
from portal.jobs.models import DONE, FAILED, QUEUED, RUNNING, Job
from portal.jobs.registry import get_handler
from portal.timeutil import utcnow


def enqueue(kind: str, payload: dict | None = None, *, delay_seconds: float = 0,
            run_at: datetime | None = None, subject: str | None = None, account=None,
            max_attempts: int | None = None) -> Job:
    handler = get_handler(kind)
    job = Job(
        kind=kind,
        payload=payload or {},
        status=QUEUED,
        run_at=run_at or (utcnow() + timedelta(seconds=delay_seconds)),
        subject=subject,
        account_id=getattr(account, "id", account),
        max_attempts=max_attempts or handler.max_attempts,
    )
    db.session.add(job)
    return job


def enqueue_many(kind: str, jobs: list[tuple[dict, str | None]], *, account=None, now: datetime | None = None) -> int:
    """Queue one job of ``kind`` per (payload, subject), due ``now`` (default: now), in one statement
    (a Core insert: nothing is read back, and thousands cost one round trip); return how many."""
    if not jobs:
        return 0
    now, max_attempts = now or utcnow(), get_handler(kind).max_attempts
    account_id = getattr(account, "id", account)
    db.session.execute(insert(Job.__table__), [{
        "kind": kind, "payload": payload, "status": QUEUED, "attempts": 0, "max_attempts": max_attempts,
        "run_at": now, "subject": subject, "account_id": account_id, "created_at": now,
    } for payload, subject in jobs])
    return len(jobs)


def enqueue_once(kind: str, payload: dict | None = None, *, subject: str, **options) -> Job:
    """Enqueue unless an unfinished job of this kind and subject is already waiting."""
    waiting = db.session.execute(
        db.select(Job).where(Job.kind == kind, Job.subject == subject,
                             Job.status.in_((QUEUED, RUNNING))).limit(1)
    ).scalar_one_or_none()
    return waiting or enqueue(kind, payload, subject=subject, **options)


def retry(job: Job) -> None:
    """Put a failed job back on the queue for a fresh series of attempts."""
    job.status = QUEUED
    job.run_at = utcnow()
    job.max_attempts = job.attempts + get_handler(job.kind).max_attempts
    job.finished_at = None


def counts() -> dict[str, int]:
    rows = db.session.execute(db.select(Job.status, func.count()).group_by(Job.status)).all()
    found = {status: 0 for status in (QUEUED, RUNNING, DONE, FAILED)}
    found.update({status: number for status, number in rows})
    return found
