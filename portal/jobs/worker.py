"""The worker: claims due jobs under a lease and runs their handlers.

Claiming is one short transaction. On PostgreSQL the candidate row is taken
with ``FOR UPDATE SKIP LOCKED`` so workers never queue behind each other; on
SQLite (one writer at a time) the guarded UPDATE alone makes the claim safe.
A job whose lease ran out (its worker died) is claimable again. A handler's
own changes commit in the same transaction that marks the job done, guarded
by the claim token, so a worker that lost its lease cannot commit over the
one that took the job over.

A slot makes two transactions per job: the claim, which returns everything
the handler is given (``ClaimedJob``), and the handler's work committed with
the job's outcome. The job row is not read again in between.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, or_, update

from portal.extensions import db
from portal.web import pagecache
from portal.i18n import Later, in_language, later_plural, shown
from portal.jobs.models import DONE, FAILED, QUEUED, RUNNING, Job, WorkerBeat
from portal.jobs.registry import get_handler, is_permanent
from portal.timeutil import utcnow

log = logging.getLogger("portal.worker")


def _job_update():
    """An UPDATE of jobs that leaves the session's objects alone: every one of them commits
    (and so expires what the session holds) at once."""
    return update(Job).execution_options(synchronize_session=False)


def _claimable(now):
    return or_(
        (Job.status == QUEUED) & (Job.run_at <= now),
        (Job.status == RUNNING) & (Job.locked_until < now),
    )


_CLAIMED_COLUMNS = (Job.id, Job.kind, Job.payload, Job.attempts, Job.max_attempts, Job.run_at, Job.subject,
                    Job.account_id, Job.locked_by, Job.locked_until)

# The two statements every job makes, built once (a slot runs them thousands of times).
# One statement claims: slots never race for the same row and come back empty-handed while
# jobs wait (SQLite has no SKIP LOCKED; there the writer lock orders claims).
_CLAIM = (
    update(Job.__table__)
    .where(Job.id == (db.select(Job.id).where(_claimable(bindparam("now"))).order_by(Job.run_at, Job.id)
                      .limit(1).with_for_update(skip_locked=True).scalar_subquery()),
           _claimable(bindparam("now")))
    .values(status=RUNNING, locked_by=bindparam("token"), locked_until=bindparam("until"),
            attempts=Job.attempts + 1, started_at=bindparam("now"))
    .returning(*_CLAIMED_COLUMNS)
)
# Done, only while the claim still holds: a worker that lost its lease commits nothing.
_FINISH = (
    update(Job.__table__)
    .where(Job.id == bindparam("job_id"), Job.locked_by == bindparam("token"), Job.status == RUNNING)
    .values(status=DONE, finished_at=bindparam("finished_at"), locked_by=None, locked_until=None, last_error=None,
            payload=bindparam("new_payload", type_=Job.payload.type))
)


@dataclass
class ClaimedJob:
    """A job as its claim returned it: what a handler reads. A handler may replace or change
    ``payload``; it is written back with the job's outcome."""

    id: int
    kind: str
    payload: dict
    attempts: int
    max_attempts: int
    run_at: datetime
    subject: str | None
    account_id: int | None
    locked_by: str
    locked_until: datetime

    @classmethod
    def from_row(cls, row) -> ClaimedJob:
        return cls(*row)


# How long a worker process trusts what it read of an account's language.
ACCOUNT_LANGUAGE_SECONDS = 60.0


def account_language(account_id: int | None) -> str | None:
    """The language an account's work is written in (its default language; None: the portal's).

    The portal's own reasons and messages are stored untranslated (``portal.i18n.later``) and shown
    in each reader's language (refusals raised as ``StoredReason`` too), a bulk run's refusals in
    its author's; what a job still writes as text for nobody in particular is in its account's
    language. A process keeps what it read per account for ``ACCOUNT_LANGUAGE_SECONDS``: one
    statement per account and minute, not one per job; a change of the account's language reaches
    the worker's texts within that time.
    """
    if account_id is None:
        return None
    from portal.accounts.models import Account

    known = current_app.extensions.setdefault("portal_account_languages", {})
    found = known.get(account_id)
    if found is not None and time.monotonic() - found[1] < ACCOUNT_LANGUAGE_SECONDS:
        return found[0]
    code = db.session.execute(db.select(Account.default_locale).where(Account.id == account_id)).scalar_one_or_none()
    known[account_id] = (code, time.monotonic())
    return code


def _error_text(error: BaseException) -> str:
    text = getattr(error, "message", None) or str(error) or error.__class__.__name__
    return text[:2000]


def _kept_text(error: BaseException) -> str:
    """What a failed job hands its ``on_failure``: the ``later`` text the error carries (read in
    each reader's language wherever it is kept), else its text as it reads now."""
    carried = error.args[0] if len(error.args) == 1 else None
    if isinstance(carried, Later):
        return carried
    return _error_text(error)


class Worker:
    def __init__(self, app, *, concurrency: int | None = None, lease_seconds: int | None = None,
                 poll_seconds: float | None = None, name: str | None = None):
        settings = app.config["PORTAL"]
        self.app = app
        self.concurrency = concurrency or settings["WORKER_CONCURRENCY"]
        self.lease_seconds = lease_seconds or settings["JOB_LEASE_SECONDS"]
        self.poll_seconds = poll_seconds or settings["WORKER_POLL_SECONDS"]
        self.name = name or f"{socket.gethostname()}:{threading.get_native_id()}"
        self._running: dict[int, str] = {}
        self._running_lock = threading.Lock()
        self.stop_event = threading.Event()
        self.last_beat: datetime | None = None

    # -- claiming ---------------------------------------------------------
    def claim(self, now: datetime | None = None) -> tuple[int, str] | None:
        """Take one due job; return (job id, claim token) or None."""
        claimed = self.claim_job(now)
        return (claimed.id, claimed.locked_by) if claimed is not None else None

    def claim_job(self, now: datetime | None = None) -> ClaimedJob | None:
        """Take one due job; return it as claimed, or None."""
        now = now or utcnow()
        token = f"{self.name}:{secrets.token_hex(6)}"[:80]
        if db.session().in_transaction():
            db.session.commit()  # what the caller wrote commits first, as it would with the claim
        # The claim is one statement, atomic on its own: run on a connection of its own without a
        # transaction around it, it costs one round trip to the database instead of three (BEGIN, the
        # claim, COMMIT), and none of the session's bookkeeping.
        with db.engine.connect() as connection:
            row = connection.execution_options(isolation_level="AUTOCOMMIT").execute(_CLAIM, {
                "now": now, "token": token, "until": now + timedelta(seconds=self.lease_seconds)}).one_or_none()
            if row is not None:  # a job now shows as running: kept pages are stale
                pagecache.raise_now(connection)
        return ClaimedJob.from_row(row) if row is not None else None

    # -- running ----------------------------------------------------------
    def run_job(self, job_id: int, token: str, now: datetime | None = None) -> str:
        """Run a job claimed under ``token`` to its next state; return that state ("lost" when
        the job is no longer held under that token)."""
        return self._run(self._still_held(job_id, token), now)

    @staticmethod
    def _still_held(job_id: int, token: str) -> ClaimedJob | None:
        row = db.session.execute(db.select(*_CLAIMED_COLUMNS).where(
            Job.id == job_id, Job.locked_by == token, Job.status == RUNNING)).one_or_none()
        return ClaimedJob.from_row(row) if row is not None else None

    def _run(self, job: ClaimedJob | None, now: datetime | None = None) -> str:
        """Run a claimed job to its next state; return that state.

        ``now`` is the worker's clock (``run_due`` may run ahead of the real
        one); a retry waits its backoff from then, not from the real time.
        A claim whose lease has run out by the real clock is checked again
        in the database first: another worker may hold the job now.
        """
        session = db.session
        if job is not None and utcnow() >= job.locked_until:
            job = self._still_held(job.id, job.locked_by)
        if job is None:
            session.rollback()
            return "lost"
        job_id, token = job.id, job.locked_by
        with self._running_lock:
            self._running[job_id] = token
        try:
            language = account_language(job.account_id)
        except Exception:
            session.rollback()
            language = None
        with in_language(language):
            return self._run_held(job, now)

    def _run_held(self, job: ClaimedJob, now: datetime | None) -> str:
        session = db.session
        job_id, token = job.id, job.locked_by
        try:
            if job.attempts > job.max_attempts:
                raise _LeaseExhausted(later_plural("gave up after %(num)d attempt (worker lost the job)",
                                                   "gave up after %(num)d attempts (worker lost the job)",
                                                   job.max_attempts))
            handler = get_handler(job.kind)
            handler.run(job)
            session.flush()
            finished = session.connection().execute(_FINISH, {
                "job_id": job_id, "token": token, "finished_at": now or utcnow(), "new_payload": job.payload,
            }).rowcount
            if finished != 1:
                session.rollback()
                log.warning("job %s lost its lease while running; its work was rolled back", job_id)
                return "lost"
            session.commit()
            return DONE
        except Exception as error:  # every failure is recorded on the job, never raised
            session.rollback()
            return self._record_failure(job, error, now or utcnow())
        finally:
            with self._running_lock:
                self._running.pop(job_id, None)

    def _record_failure(self, job: ClaimedJob, error: BaseException, now: datetime) -> str:
        """Record a failed attempt: retry later, or fail for good (then ``on_failure`` runs in the
        same transaction). Nothing commits unless the job is still held under this claim."""
        session = db.session
        job_id, token = job.id, job.locked_by
        kept = _kept_text(error)
        message = shown(kept)[:2000] if isinstance(kept, Later) else kept  # the log's and the job's: as it reads now
        permanent = is_permanent(error) or isinstance(error, _LeaseExhausted)
        try:
            handler = get_handler(job.kind)
        except LookupError:
            handler, permanent = None, True
        if permanent or job.attempts >= job.max_attempts:
            state, run_at, finished_at = FAILED, job.run_at, now
            log.warning("job %s (%s) failed: %s", job_id, job.kind, message)
            try:
                self._on_failed(job, kept)
            except Exception as hook_error:
                # The job still fails for good (or it would come back after every
                # lease); the hook's partial changes are dropped with the rollback.
                log.exception("job %s (%s): on_failure raised", job_id, job.kind)
                session.rollback()
                hook_problem = f"{hook_error.__class__.__name__}: {_error_text(hook_error)}"
                message = f"{message} (on_failure raised {hook_problem})"[:2000]
        else:
            state, finished_at = QUEUED, None
            run_at = now + timedelta(seconds=handler.delay_after(job.attempts))
            log.info("job %s (%s) attempt %s failed, retrying at %s: %s",
                     job_id, job.kind, job.attempts, run_at, message)
        recorded = session.execute(
            _job_update().where(Job.id == job_id, Job.locked_by == token, Job.status == RUNNING).values(
                status=state, run_at=run_at, last_error=message, finished_at=finished_at,
                locked_by=None, locked_until=None)
        ).rowcount
        if recorded != 1:
            # Another worker took the job over meanwhile: its outcome counts, and
            # on_failure's changes must not commit on behalf of this attempt.
            session.rollback()
            log.warning("job %s lost its lease while failing; its failure was not recorded", job_id)
            return "lost"
        session.commit()
        return state

    @staticmethod
    def _on_failed(job: ClaimedJob, message: str) -> None:
        """Let the handler record the final failure (e.g. on the mailbox it concerns)."""
        if _known(job.kind) and get_handler(job.kind).on_failure is not None:
            get_handler(job.kind).on_failure(job, message)

    def run_due(self, now: datetime | None = None, limit: int = 10_000) -> int:
        """Run due jobs one after another in this thread until none is due; return how many ran."""
        done = 0
        with self.app.app_context():
            while done < limit:
                claimed = self.claim_job(now)
                if claimed is None:
                    break
                self._run(claimed, now=now)
                done += 1
        return done

    # -- long-running loop ------------------------------------------------
    def renew_leases(self) -> None:
        with self._running_lock:
            running = dict(self._running)
        self.last_beat = utcnow()
        if not running:
            return
        until = utcnow() + timedelta(seconds=self.lease_seconds)
        for job_id, token in running.items():
            db.session.execute(_job_update().where(Job.id == job_id, Job.locked_by == token)
                               .values(locked_until=until))
        db.session.commit()

    def _slot(self) -> None:
        with self.app.app_context():
            while not self.stop_event.is_set():
                try:
                    claimed = self.claim_job()
                except Exception:
                    log.exception("could not claim a job; the database may be unavailable")
                    db.session.rollback()
                    claimed = None
                if claimed is None:
                    self.stop_event.wait(self.poll_seconds)
                    continue
                try:
                    self._run(claimed)
                except Exception:
                    # The outcome could not be written (the database went away):
                    # the lease runs out and the job is tried again; the slot lives on.
                    log.exception("could not record the outcome of job %s", claimed.id)
                    db.session.rollback()
            db.session.remove()

    def _heartbeat(self) -> None:
        with self.app.app_context():
            while not self.stop_event.wait(min(self.lease_seconds / 3, 30)):
                try:
                    self.renew_leases()
                    _publish_heartbeat(self)
                except Exception:
                    log.exception("could not renew job leases")
                    db.session.rollback()
            db.session.remove()

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._slot, name=f"worker-slot-{i}", daemon=True)
                   for i in range(self.concurrency)]
        threads.append(threading.Thread(target=self._heartbeat, name="worker-heartbeat", daemon=True))
        with self.app.app_context():
            _publish_heartbeat(self)
        for thread in threads:
            thread.start()
        log.info("worker %s started with %s slots", self.name, self.concurrency)
        return threads

    def run_forever(self) -> None:
        threads = self.start()
        try:
            while not self.stop_event.is_set():
                time.sleep(0.5)
        finally:
            self.stop()
            for thread in threads:
                thread.join(timeout=self.lease_seconds)

    def stop(self) -> None:
        self.stop_event.set()


class _LeaseExhausted(Exception):
    pass


def _known(kind: str) -> bool:
    try:
        get_handler(kind)
        return True
    except LookupError:
        return False


def _publish_heartbeat(worker: Worker) -> None:
    beat = db.session.get(WorkerBeat, worker.name)
    if beat is None:
        beat = WorkerBeat(name=worker.name)
        db.session.add(beat)
    beat.seen_at = utcnow()
    beat.concurrency = worker.concurrency
    db.session.commit()
