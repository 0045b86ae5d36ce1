"""The queue's promises: jobs commit with the change that needs them, handler
work commits with DONE, failures are retried with backoff or failed for good."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portal.extensions import db
from portal.jobs.models import DONE, FAILED, QUEUED, Job
from portal.jobs.registry import Handler, get_handler
from portal.jobs.services import counts, enqueue, enqueue_once, retry
from portal.timeutil import utcnow


def all_jobs() -> list[Job]:
    return list(db.session.execute(db.select(Job).order_by(Job.id)).scalars())


def reloaded(obj):
    db.session.refresh(obj)
    return obj


def delay_bounds(handler: Handler, attempt: int) -> tuple[timedelta, timedelta]:
    """The promised range of the wait after failed attempt number ``attempt``."""
    base = min(handler.backoff_seconds * 2 ** (attempt - 1), handler.backoff_cap_seconds)
    upper = min(base + handler.backoff_seconds / 2, handler.backoff_cap_seconds)
    return timedelta(seconds=base / 2), timedelta(seconds=upper)


# -- enqueue ------------------------------------------------------------------------

def test_enqueue__rolled_back_change_leaves_no_job(app, make):
    user = make.user(name="Ada")
    user.name = "Ada Lovelace"
    enqueue("test.rename_user", {"user_id": user.id, "name": "Countess"})
    db.session.rollback()

    assert all_jobs() == []
    assert reloaded(user).name == "Ada"


def test_enqueue__job_commits_with_the_change_that_needs_it(app, make):
    user = make.user(name="Ada")
    user.name = "Ada Lovelace"
    enqueue("test.rename_user", {"user_id": user.id, "name": "Countess"}, subject=f"user:{user.id}")
    db.session.commit()

    [job] = all_jobs()
    assert (job.kind, job.status, job.attempts, job.subject) == ("test.rename_user", QUEUED, 0, f"user:{user.id}")
    assert job.payload == {"user_id": user.id, "name": "Countess"}
    assert job.max_attempts == get_handler("test.rename_user").max_attempts
    assert reloaded(user).name == "Ada Lovelace"


def test_enqueue__unknown_kind_is_refused_before_anything_is_written(app):
    with pytest.raises(LookupError, match="test.nothing-handles-this"):
        enqueue("test.nothing-handles-this")
    db.session.commit()
    assert all_jobs() == []


def test_enqueue_once__waiting_job_of_the_same_subject_is_reused(app, tmp_path, run_jobs):
    first = enqueue_once("test.record", {"log": str(tmp_path / "log")}, subject="mailbox:1")
    second = enqueue_once("test.record", {"log": str(tmp_path / "log")}, subject="mailbox:1")
    other = enqueue_once("test.record", {"log": str(tmp_path / "log")}, subject="mailbox:2")
    db.session.commit()
    assert first is second and other is not first

    run_jobs()
    again = enqueue_once("test.record", {"log": str(tmp_path / "log")}, subject="mailbox:1")
    db.session.commit()
    assert again.id not in (first.id, other.id)


def test_delayed_job__waits_until_its_time(app, tmp_path, run_jobs):
    job = enqueue("test.record", {"log": str(tmp_path / "log")}, delay_seconds=60)
    db.session.commit()

    assert run_jobs() == 0
    assert run_jobs(now=utcnow() + timedelta(seconds=61)) == 1
    assert reloaded(job).status == DONE


# -- success ------------------------------------------------------------------------

def test_worker__handler_writes_commit_together_with_done(app, make, run_jobs):
    user = make.user(name="Before")
    job = enqueue("test.rename_user", {"user_id": user.id, "name": "After"})
    db.session.commit()

    assert run_jobs() == 1
    db.session.expire_all()
    assert (job.status, job.attempts, job.last_error) == (DONE, 1, None)
    assert job.locked_by is None and job.locked_until is None
    assert job.started_at <= job.finished_at
    assert user.name == "After"
    assert run_jobs() == 0


def test_worker__failed_attempt_rolls_back_the_handlers_writes(app, make, run_jobs):
    user = make.user(name="Before")
    job = enqueue("test.rename_user", {"user_id": user.id, "name": "After", "then": "fail"})
    db.session.commit()

    assert run_jobs() == 1
    db.session.expire_all()
    assert (job.status, job.attempts, job.last_error) == (QUEUED, 1, "the backend timed out")
    assert user.name == "Before"


# -- transient failures ---------------------------------------------------------------

def test_worker__transient_failure_is_requeued_with_growing_backoff(app, make, run_jobs):
    handler = get_handler("test.flaky")
    user = make.user(name="Before")
    job = enqueue("test.flaky", {"succeed_on": 3, "user_id": user.id})
    db.session.commit()

    before = utcnow()
    assert run_jobs() == 1
    after = utcnow()
    reloaded(job)
    assert (job.status, job.attempts) == (QUEUED, 1)
    assert job.last_error == "backend unreachable on attempt 1"
    lower, upper = delay_bounds(handler, 1)
    assert before + lower <= job.run_at <= after + upper
    assert job.locked_by is None and job.finished_at is None
    assert run_jobs() == 0, "a requeued job waits for its backoff"

    # An hour later in the worker's time: one attempt, which fails again and
    # waits longer, counted from that time.
    now = utcnow() + timedelta(hours=1)
    assert run_jobs(now=now) == 1
    reloaded(job)
    assert (job.status, job.attempts) == (QUEUED, 2)
    assert job.last_error == "backend unreachable on attempt 2"
    lower, upper = delay_bounds(handler, 2)
    assert now + lower <= job.run_at <= now + upper

    assert run_jobs(now=job.run_at) == 1
    db.session.expire_all()
    assert (job.status, job.attempts, job.last_error) == (DONE, 3, None)
    assert user.name == "done on attempt 3"


def test_backoff__grows_exponentially_with_jitter_and_never_exceeds_the_cap():
    handler = Handler("test.backoff", run=lambda job: None, max_attempts=20,
                      backoff_seconds=10, backoff_cap_seconds=100)
    samples = {attempt: [handler.delay_after(attempt) for _ in range(300)] for attempt in range(1, 9)}

    for attempt, delays in samples.items():
        lower, upper = delay_bounds(handler, attempt)
        assert all(lower.total_seconds() <= delay <= upper.total_seconds() for delay in delays), attempt
        assert len(set(delays)) > 0.9 * len(delays), "jitter spreads retries out"
    assert max(samples[1]) < min(samples[3]) and max(samples[2]) < min(samples[4])
    assert max(delay for delays in samples.values() for delay in delays) <= 100
    assert min(samples[8]) < 75, "capped delays are still jittered"


# -- permanent failures ----------------------------------------------------------------

@pytest.mark.parametrize("kind, message", [
    ("test.refused", "the backend refused: no such domain"),  # PermanentJobError
    ("test.over_quota", "mailbox quota exceeded"),  # a type registered with treat_as_permanent
])
def test_worker__permanent_error_fails_the_job_at_once_with_its_message(app, make, run_jobs, kind, message):
    user = make.user(name="Before")
    job = enqueue(kind, {"user_id": user.id})
    db.session.commit()

    assert run_jobs() == 1
    db.session.expire_all()
    assert (job.status, job.attempts, job.last_error) == (FAILED, 1, message)
    assert job.finished_at is not None and job.locked_by is None
    assert user.name == f"failed: {message}", "on_failure runs with the final state"
    assert run_jobs(now=utcnow() + timedelta(days=1)) == 0


def test_worker__job_fails_after_its_last_attempt_keeping_the_error(app, make, run_jobs):
    user = make.user(name="Before")
    job = enqueue("test.flaky", {"user_id": user.id}, max_attempts=3)
    db.session.commit()

    now = utcnow()
    for attempt in (1, 2, 3):
        assert run_jobs(now=now) == 1
        reloaded(job)
        assert job.attempts == attempt
        now = job.run_at + timedelta(seconds=1)
    db.session.expire_all()
    assert job.status == FAILED
    assert job.last_error == "backend unreachable on attempt 3"
    assert user.name == "failed: backend unreachable on attempt 3"
    assert run_jobs(now=utcnow() + timedelta(days=30)) == 0
    assert counts() == {QUEUED: 0, "running": 0, DONE: 0, FAILED: 1}


def test_retry__failed_job_gets_a_fresh_series_of_attempts(app, run_jobs):
    job = enqueue("test.flaky", {"succeed_on": 2}, max_attempts=1)
    db.session.commit()
    run_jobs()
    assert reloaded(job).status == FAILED

    retry(job)
    db.session.commit()
    assert run_jobs() == 1
    db.session.expire_all()
    assert (job.status, job.attempts, job.last_error) == (DONE, 2, None)


def test_worker__job_whose_kind_has_no_handler_fails_saying_so(app, run_jobs):
    job = Job(kind="test.removed-in-an-upgrade", payload={})
    db.session.add(job)
    db.session.commit()

    assert run_jobs() == 1
    db.session.expire_all()
    assert job.status == FAILED
    assert job.last_error == "no handler is registered for job kind 'test.removed-in-an-upgrade'"


def test_worker__job_is_failed_even_when_its_on_failure_hook_raises(app, run_jobs, caplog):
    job = enqueue("test.refused_about_a_gone_user", {"user_id": 999_999})
    db.session.commit()

    assert run_jobs() == 1
    db.session.expire_all()
    assert (job.status, job.locked_by) == (FAILED, None)
    assert job.last_error.startswith("the backend refused: no such domain")
    assert "AttributeError" in job.last_error
    assert "on_failure" in caplog.text
    assert run_jobs(now=utcnow() + timedelta(days=1)) == 0
