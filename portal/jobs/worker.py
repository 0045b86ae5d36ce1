"""The worker: claims due jobs under a lease and runs their handlers.

Claiming is one short transaction. On PostgreSQL the candidate row is taken
with ``FOR UPDATE SKIP LOCKED`` so workers never queue behind each other; on
SQLite (one writer at a time) the guarded UPDATE alone makes the claim safe.
A job whose lease ran out (its worker died) is claimable again. A handler's
own changes commit in the same transaction that marks the job done, guarded
by the claim token, so a worker that lost its lease cannot commit over the
one that took the job over.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from datetime import datetime, timedelta

from flask_babel import ngettext
from sqlalchemy import or_, update

from portal.extensions import db
from portal.jobs.models import DONE, FAILED, QUEUED, RUNNING, Job, WorkerBeat
from portal.jobs.registry import get_handler, is_permanent
from portal.timeutil import utcnow

log = logging.getLogger("portal.worker")


def _claimable(now: datetime):
    return or_(
        (Job.status == QUEUED) & (Job.run_at <= now),
        (Job.status == RUNNING) & (Job.locked_until < now),
    )


def _error_text(error: BaseException) -> str:
    text = getattr(error, "message", None) or str(error) or error.__class__.__name__
    return text[:2000]


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
        now = now or utcnow()
        token = f"{self.name}:{secrets.token_hex(6)}"[:80]
        session = db.session
        # One statement: slots never race for the same row and come back empty-handed
        # while jobs wait (SQLite has no SKIP LOCKED; there the writer lock orders claims).
        candidate = (db.select(Job.id).where(_claimable(now)).order_by(Job.run_at, Job.id)
                     .limit(1).with_for_update(skip_locked=True).scalar_subquery())
        try:
            claimed = session.execute(
                update(Job).where(Job.id == candidate, _claimable(now)).values(
                    status=RUNNING, locked_by=token,
                    locked_until=now + timedelta(seconds=self.lease_seconds),
                    attempts=Job.attempts + 1, started_at=now,
                ).returning(Job.id)
            ).scalar_one_or_none()
            session.commit()
        except Exception:
            session.rollback()
            raise
        return (claimed, token) if claimed is not None else None

    # -- running ----------------------------------------------------------
    def run_job(self, job_id: int, token: str, now: datetime | None = None) -> str:
        """Run a claimed job to its next state; return that state.

        ``now`` is the worker's clock (``run_due`` may run ahead of the real
        one); a retry waits its backoff from then, not from the real time.
        """
        session = db.session
        job = session.get(Job, job_id)
        if job is None or job.locked_by != token:
            session.rollback()
            return "lost"
        with self._running_lock:
            self._running[job_id] = token
        try:
            if job.attempts > job.max_attempts:
                raise _LeaseExhausted(ngettext("gave up after %(num)d attempt (worker lost the job)",
                                               "gave up after %(num)d attempts (worker lost the job)",
                                               job.max_attempts))
            handler = get_handler(job.kind)
            handler.run(job)
            finished = session.execute(
                update(Job).where(Job.id == job_id, Job.locked_by == token, Job.status == RUNNING)
                .values(status=DONE, finished_at=now or utcnow(), locked_by=None, locked_until=None,
                        last_error=None, payload=job.payload)
            ).rowcount
            if finished != 1:
                session.rollback()
                log.warning("job %s lost its lease while running; its work was rolled back", job_id)
                return "lost"
            session.commit()
            return DONE
        except Exception as error:  # every failure is recorded on the job, never raised
            session.rollback()
            return self._record_failure(job_id, token, error, now or utcnow())
        finally:
            with self._running_lock:
                self._running.pop(job_id, None)

    def _record_failure(self, job_id: int, token: str, error: BaseException, now: datetime) -> str:
        session = db.session
        job = session.get(Job, job_id)
        if job is None or job.locked_by != token:
            session.rollback()
            return "lost"
        message = _error_text(error)
        permanent = is_permanent(error) or isinstance(error, _LeaseExhausted)
        try:
            handler = get_handler(job.kind)
        except LookupError:
            handler, permanent = None, True
        if permanent or job.attempts >= job.max_attempts:
            state, run_at, finished_at = FAILED, job.run_at, now
            log.warning("job %s (%s) failed: %s", job_id, job.kind, message)
            try:
                self._on_failed(job, message)
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
            update(Job).where(Job.id == job_id, Job.locked_by == token, Job.status == RUNNING).values(
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
    def _on_failed(job: Job, message: str) -> None:
        """Let the handler record the final failure (e.g. on the mailbox it concerns)."""
        if _known(job.kind) and get_handler(job.kind).on_failure is not None:
            get_handler(job.kind).on_failure(job, message)

    def run_due(self, now: datetime | None = None, limit: int = 10_000) -> int:
        """Run due jobs one after another in this thread until none is due; return how many ran."""
        done = 0
        with self.app.app_context():
            while done < limit:
                claimed = self.claim(now)
                if claimed is None:
                    break
                self.run_job(*claimed, now=now)
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
            db.session.execute(update(Job).where(Job.id == job_id, Job.locked_by == token)
                               .values(locked_until=until))
        db.session.commit()

    def _slot(self) -> None:
        with self.app.app_context():
            while not self.stop_event.is_set():
                try:
                    claimed = self.claim()
                except Exception:
                    log.exception("could not claim a job; the database may be unavailable")
                    db.session.rollback()
                    claimed = None
                if claimed is None:
                    self.stop_event.wait(self.poll_seconds)
                    continue
                try:
                    self.run_job(*claimed)
                except Exception:
                    # The outcome could not be written (the database went away):
                    # the lease runs out and the job is tried again; the slot lives on.
                    log.exception("could not record the outcome of job %s", claimed[0])
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
