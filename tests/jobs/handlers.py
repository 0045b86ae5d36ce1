"""Job handlers for the tests, under ``test.*`` kinds.

A module of its own so that worker processes started by the tests register
the same handlers (``tests.jobs.worker_process`` imports it). Effects that
must be counted across processes go to files opened with ``O_APPEND`` for
each line: the kernel appends every write whole, so concurrent workers never
interleave, and no test-only table upsets the migrations-vs-models check.
"""

from __future__ import annotations

import os
import time

from sqlalchemy import update

from portal.auth.models import User
from portal.extensions import db
from portal.i18n import shown
from portal.jobs.models import Job
from portal.jobs.registry import PermanentJobError, handler, treat_as_permanent

THIEF = "another-worker:took-over"


class QuotaExceeded(Exception):
    """Stands for an adapter's own permanent error type."""


treat_as_permanent(QuotaExceeded)


def append_line(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


def read_lines(path) -> list[list[str]]:
    try:
        with open(path) as handle:
            return [line.split() for line in handle if line.strip()]
    except FileNotFoundError:
        return []


def take_over_lease(job: Job) -> None:
    """What another worker does once this one's lease has run out: claim the job
    on a connection of its own, committed before this worker finishes."""
    with db.engine.begin() as connection:
        connection.execute(update(Job).where(Job.id == job.id).values(locked_by=THIEF))


def note_failure(job: Job, message: str) -> None:
    """on_failure hook: write the final error on the user the payload names."""
    if job.payload.get("take_over_lease"):
        take_over_lease(job)
    if "user_id" in job.payload:
        db.session.get(User, job.payload["user_id"]).name = f"failed: {shown(message)}"


@handler("test.record")
def record(job: Job) -> None:
    """Append ``<job id> <pid> <attempt>`` to the payload's log file."""
    append_line(job.payload["log"], f"{job.id} {os.getpid()} {job.attempts}")


@handler("test.slow_record")
def slow_record(job: Job) -> None:
    """Log ``started``, sleep on the first attempt only, then log ``done``."""
    log = job.payload["log"]
    append_line(log, f"started {job.id} {os.getpid()} {job.attempts}")
    if job.attempts == 1:
        time.sleep(job.payload["sleep"])
    append_line(log, f"done {job.id} {os.getpid()} {job.attempts}")


@handler("test.rename_user")
def rename_user(job: Job) -> None:
    """Rename a user; then, as the payload asks, fail or lose the lease."""
    then = job.payload.get("then")
    if then == "lose_lease":
        take_over_lease(job)
    db.session.get(User, job.payload["user_id"]).name = job.payload["name"]
    if then == "fail":
        raise ConnectionError("the backend timed out")


@handler("test.flaky", max_attempts=5, backoff_seconds=2, backoff_cap_seconds=60, on_failure=note_failure)
def flaky(job: Job) -> None:
    """Fails with a transient error until attempt ``succeed_on``."""
    if job.attempts < job.payload.get("succeed_on", 1_000_000):
        raise ConnectionError(f"backend unreachable on attempt {job.attempts}")
    if "user_id" in job.payload:
        db.session.get(User, job.payload["user_id"]).name = f"done on attempt {job.attempts}"


@handler("test.refused", on_failure=note_failure)
def refused(job: Job) -> None:
    raise PermanentJobError("the backend refused: no such domain")


@handler("test.over_quota", on_failure=note_failure)
def over_quota(job: Job) -> None:
    raise QuotaExceeded("mailbox quota exceeded")


def note_failure_on_a_gone_row(job: Job, message: str) -> None:
    """An on_failure hook whose row was deleted meanwhile: it raises."""
    db.session.get(User, job.payload["user_id"]).name = f"failed: {shown(message)}"


@handler("test.refused_about_a_gone_user", on_failure=note_failure_on_a_gone_row)
def refused_about_a_gone_user(job: Job) -> None:
    raise PermanentJobError("the backend refused: no such domain")
