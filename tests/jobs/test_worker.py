"""Workers and leases: a job is claimed by one worker at a time, a dead
worker's job is taken over after its lease, and many workers run many jobs
exactly once. Workers here are real threads and real processes."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from portal.extensions import db
from portal.jobs.models import DONE, FAILED, QUEUED, RUNNING, Job
from portal.jobs.services import counts, enqueue
from portal.jobs.worker import Worker
from portal.sealing import QUEUED_MAIL, seal
from portal.timeutil import utcnow
from tests.jobs.conftest import PROJECT_ROOT, clean_environ, wait_until
from tests.jobs.handlers import THIEF, read_lines
from tests.mail.sinks import ScriptedSmtpSink


def fresh(job: Job) -> Job:
    db.session.refresh(job)
    db.session.commit()  # end the read: other processes must not wait on this session
    return job


def enqueue_records(log, number: int) -> list[int]:
    jobs = [enqueue("test.record", {"log": str(log)}) for _ in range(number)]
    db.session.commit()
    return [job.id for job in jobs]


def count_done() -> int:
    done = counts()[DONE]
    db.session.commit()
    return done


def assert_each_ran_exactly_once(log, job_ids: list[int]) -> collections.Counter:
    """Check the handler's effect per job; return how many jobs each process ran."""
    lines = read_lines(log)
    runs = collections.Counter(int(job_id) for job_id, _pid, _attempt in lines)
    assert sorted(runs) == sorted(job_ids)
    assert set(runs.values()) == {1}, [job_id for job_id, n in runs.items() if n > 1]
    attempts = set(db.session.execute(db.select(Job.attempts).where(Job.id.in_(job_ids))).scalars())
    assert attempts == {1}
    return collections.Counter(pid for _job_id, pid, _attempt in lines)


# -- claiming -----------------------------------------------------------------------

def test_worker__due_job_is_claimed_by_one_worker_only(app, tmp_path):
    [job_id] = enqueue_records(tmp_path / "log", 1)
    first, second = Worker(app, name="first"), Worker(app, name="second")

    claimed = first.claim()
    assert claimed is not None and claimed[0] == job_id
    assert second.claim() is None

    job = fresh(db.session.get(Job, job_id))
    assert (job.status, job.attempts, job.locked_by) == (RUNNING, 1, claimed[1])
    assert job.locked_by.startswith("first:")
    assert job.locked_until > utcnow() + timedelta(seconds=first.lease_seconds - 5)


def test_worker__simultaneous_claims_of_one_due_job_have_one_winner(app, tmp_path):
    rounds, contenders = 8, 4
    start, finish = threading.Barrier(contenders + 1), threading.Barrier(contenders + 1)
    results: dict[int, list] = collections.defaultdict(list)
    errors: list[BaseException] = []

    def contend(worker: Worker) -> None:
        with app.app_context():
            try:
                for number in range(rounds):
                    start.wait(timeout=20)
                    try:
                        results[number].append(worker.claim())
                    except BaseException as error:
                        errors.append(error)
                    finish.wait(timeout=20)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=contend, args=(Worker(app, name=f"contender-{n}"),))
               for n in range(contenders)]
    for thread in threads:
        thread.start()
    for number in range(rounds):
        [job_id] = enqueue_records(tmp_path / "log", 1)
        start.wait(timeout=20)
        finish.wait(timeout=20)
        assert not errors, errors
        winners = [claimed for claimed in results[number] if claimed is not None]
        assert [job_id for job_id, _token in winners] == [job_id], results[number]
    for thread in threads:
        thread.join()

    assert db.session.execute(db.select(Job.attempts)).scalars().all() == [1] * rounds


def test_worker__job_whose_lease_ran_out_is_taken_over_and_the_first_worker_cannot_finish_it(app, tmp_path):
    log = tmp_path / "log"
    [job_id] = enqueue_records(log, 1)
    stalled, rescuer = Worker(app, name="stalled", lease_seconds=30), Worker(app, name="rescuer")
    _, stalled_token = stalled.claim()

    assert rescuer.claim(now=utcnow() + timedelta(seconds=29)) is None, "the lease still holds"
    claimed = rescuer.claim(now=utcnow() + timedelta(seconds=31))
    assert claimed is not None and claimed[0] == job_id
    assert stalled.run_job(job_id, stalled_token) == "lost"
    assert read_lines(log) == [], "a worker that lost its lease does not run the handler"

    assert rescuer.run_job(*claimed) == DONE
    job = fresh(db.session.get(Job, job_id))
    assert (job.status, job.attempts) == (DONE, 2)
    assert len(read_lines(log)) == 1


def test_worker__handler_work_is_rolled_back_when_the_job_was_taken_over_meanwhile(app, make, run_jobs):
    user = make.user(name="Before")
    job = enqueue("test.rename_user", {"user_id": user.id, "name": "After", "then": "lose_lease"})
    db.session.commit()

    assert run_jobs() == 1
    db.session.expire_all()
    assert (job.status, job.locked_by) == (RUNNING, THIEF), "the job is the other worker's now"
    assert user.name == "Before"


def test_worker__failure_of_a_job_taken_over_meanwhile_is_not_recorded(app, make, run_jobs):
    user = make.user(name="Before")
    job = enqueue("test.refused", {"user_id": user.id, "take_over_lease": True})
    db.session.commit()

    assert run_jobs() == 1
    db.session.expire_all()
    assert (job.status, job.locked_by, job.last_error) == (RUNNING, THIEF, None)
    assert user.name == "Before", "on_failure's changes roll back with the unrecorded failure"


# -- dead workers ---------------------------------------------------------------------

def test_worker__job_of_a_killed_worker_is_done_after_its_lease(app, tmp_path, worker_processes):
    lease = timedelta(seconds=2)
    log = tmp_path / "log"
    job = enqueue("test.slow_record", {"log": str(log), "sleep": 60})
    db.session.commit()

    process = worker_processes.start("doomed", lease=2, concurrency=1)
    wait_until(lambda: read_lines(log), 30, "the doomed worker starting the job")
    assert (fresh(job).status, job.attempts) == (RUNNING, 1)
    assert job.locked_by.startswith("doomed:")

    rescuer = Worker(app, name="rescuer", lease_seconds=2)
    wait_until(lambda: utcnow() > job.started_at + lease * 1.25, 10, "the first lease running out")
    assert rescuer.claim() is None, "the live worker renews its lease: a job never runs twice at once"
    assert fresh(job).locked_until > job.started_at + lease * 1.25

    process.kill()
    process.wait(timeout=10)
    claimed = wait_until(rescuer.claim, 10, "the lease running out")
    assert rescuer.run_job(*claimed) == DONE

    assert (fresh(job).status, job.attempts) == (DONE, 2)
    assert [line[0] for line in read_lines(log)] == ["started", "started", "done"]
    assert read_lines(log)[-1][1:] == [str(job.id), str(os.getpid()), "2"]


def test_worker__job_whose_worker_died_on_its_last_attempt_fails_saying_so(app, make):
    user = make.user(name="Before")
    job = enqueue("test.refused", {"user_id": user.id}, max_attempts=1)
    db.session.commit()
    dead, rescuer = Worker(app, name="dead", lease_seconds=30), Worker(app, name="rescuer")
    assert dead.claim() is not None  # and then the process died

    claimed = rescuer.claim(now=utcnow() + timedelta(seconds=31))
    assert rescuer.run_job(*claimed) == FAILED
    db.session.expire_all()
    assert (job.status, job.attempts) == (FAILED, 2)
    assert job.last_error == "gave up after 1 attempt (worker lost the job)"
    assert user.name == "failed: gave up after 1 attempt (worker lost the job)"


# -- many workers -----------------------------------------------------------------------

def test_worker__threads_of_two_workers_run_each_job_exactly_once(app, tmp_path):
    log = tmp_path / "log"
    job_ids = enqueue_records(log, 120)
    workers = [Worker(app, name=f"threads-{n}", concurrency=3, poll_seconds=0.02) for n in range(2)]
    for worker in workers:
        worker.start()
    try:
        wait_until(lambda: count_done() == len(job_ids), 60, "all jobs done")
    finally:
        for worker in workers:
            worker.stop()

    assert_each_ran_exactly_once(log, job_ids)


def test_worker__four_worker_processes_run_500_jobs_exactly_once(app, tmp_path, worker_processes, is_postgres):
    if not is_postgres:
        pytest.skip("SQLite allows one writer at a time, so competing worker processes are a "
                    "PostgreSQL deployment; the threaded test above covers SQLite")
    log = tmp_path / "log"
    names = [f"process-{n}" for n in range(4)]
    for name in names:
        worker_processes.start(name, concurrency=2)
    worker_processes.wait_ready(*names)

    job_ids = enqueue_records(log, 500)
    wait_until(lambda: count_done() == 500, 90, "all 500 jobs done", interval=0.2)
    assert worker_processes.stop(*names) == [0, 0, 0, 0]

    runs_per_process = assert_each_ran_exactly_once(log, job_ids)
    assert len(runs_per_process) >= 2, f"the workers competed for jobs: {runs_per_process}"
    assert counts()[QUEUED] == counts()[RUNNING] == 0


# -- the command ---------------------------------------------------------------------------

def test_worker_command__sigterm_finishes_the_running_job_and_takes_no_new_one(app, database_url, tmp_path):
    slow_server = ScriptedSmtpSink(data_delay=1.5).start()
    try:
        body = seal(QUEUED_MAIL, json.dumps({"text": "Hello", "html": "<p>Hello</p>"})).decode()
        first, second = (enqueue("mail.send", {"to": f"{name}@example.org", "subject": name, "sealed": body})
                         for name in ("first", "second"))
        db.session.commit()
        env = clean_environ() | {
            "PORTAL_DATABASE_URL": database_url,
            "PORTAL_SECRET_KEY": "test-secret-key-not-for-production",
            "PORTAL_SMTP_URL": slow_server.url,
            "PORTAL_PASSWORD_HASHING": "fast",
            "PORTAL_WORKER_CONCURRENCY": "1",
            "PORTAL_WORKER_POLL_SECONDS": "0.05",
            "PORTAL_TEST_INSTANCE_PATH": str(tmp_path / "instance"),
        }
        command = [str(Path(sys.executable).parent / "flask"), "--app", "app", "portal", "worker"]
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        try:
            def first_job_running() -> bool:
                if process.poll() is not None:
                    raise AssertionError(f"the worker exited early:\n{process.stdout.read()}")
                return fresh(first).status == RUNNING

            wait_until(first_job_running, 30, "the worker taking the first job")
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

        assert process.returncode == 0, output
        assert "1 slots" in output
        assert fresh(first).status == DONE
        assert (fresh(second).status, second.attempts) == (QUEUED, 0)
        assert [str(message["To"]) for message in slow_server.messages] == ["first@example.org"]
    finally:
        slow_server.stop()


def test_worker__a_long_stored_failure_is_read_for_the_log_and_the_jobs_record(owner, account, run_jobs, caplog):
    """A stored text over 2,000 characters (a domain's 17 settings refused at once) reached the
    log and the job's record in its stored form ("\\x1f[...")."""
    import logging

    from portal.domains import settings as domain_settings
    from portal.domains.models import TAKEN
    from portal.i18n import LATER
    from portal.jobs.services import enqueue_once
    from tests.mailboxes.conftest import enabled_domain

    domain = enabled_domain(owner, account, "a-company-with-a-fairly-ordinary-name.example.org")
    domain.settings = {spec.key: None for spec in domain_settings.specs(domain)}
    domain.status, domain.settings_state = TAKEN, "pending"  # another account proved the name since
    enqueue_once(domain_settings.SETTINGS_KIND, {"domain_id": domain.id}, subject=f"domain-settings:{domain.id}",
                 account=account.id)
    db.session.execute(db.delete(Job).where(Job.kind == "domain.check"))
    db.session.commit()
    with caplog.at_level(logging.INFO, logger="portal.worker"):
        run_jobs()
    job = db.session.execute(db.select(Job).where(Job.kind == domain_settings.SETTINGS_KIND)).scalar_one()
    logged = [record.getMessage() for record in caplog.records if "failed" in record.getMessage()]
    assert job.status == FAILED and len(job.last_error) > 1000 and LATER not in job.last_error
    assert logged and not any(LATER in line for line in logged)
