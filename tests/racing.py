"""A worker committing from another thread in the middle of a request, between two of its statements:
what PostgreSQL's read committed lets a page see (each statement sees what has committed by then)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tests.sql import on_each_statement


@contextmanager
def jobs_finishing_midway(app, after: Callable[[str], bool] | None = None) -> Iterator[list]:
    """Run every due job, from another thread, once: just before the first statement that follows one
    ``after`` accepts (without ``after``: before the first statement). Yields a list that holds True
    once the jobs have run."""
    finished, seen = [], []

    def finish(statement: str) -> None:
        if finished:
            return
        if after is None or seen:
            finished.append(True)
            from portal.jobs.worker import Worker

            worker = threading.Thread(target=Worker(app, name="racing-worker").run_due)
            worker.start()
            worker.join()
        elif after(statement):
            seen.append(True)

    with on_each_statement(finish):
        yield finished


@contextmanager
def same_grant_made_first(membership_id: int, account_id: int, role_id: int) -> Iterator[list]:
    """Another request grants the role to the membership, and commits, just before the first
    ``INSERT INTO grants`` sent inside (after the check that found no such grant). Yields a list
    that holds True once it has."""
    from sqlalchemy import text

    from portal.extensions import db

    raced: list = []

    def grant_first(statement: str) -> None:
        if raced or not statement.lstrip().upper().startswith("INSERT INTO GRANTS"):
            return
        raced.append(True)
        with db.engine.connect() as other:
            other.execute(text("INSERT INTO grants (membership_id, account_id, role_id, created_at) "
                               "VALUES (:membership, :account, :role, CURRENT_TIMESTAMP)"),
                          {"membership": membership_id, "account": account_id, "role": role_id})
            other.commit()

    with on_each_statement(grant_first):
        yield raced


class OtherRequest:
    """Another request run by ``another_request_before``: what it returned (or the error it raised),
    and whether it was still waiting when this request went on."""

    def __init__(self) -> None:
        self.outcome: list = []
        self.thread: threading.Thread | None = None
        self.was_waiting: bool | None = None


@contextmanager
def another_request_before(app, statement_start: str, work: Callable[[], object],
                           wait: float) -> Iterator[OtherRequest]:
    """Run ``work`` as another request (its own app context and session, committed at its end) from
    another thread, started just before this request's first statement that begins with
    ``statement_start``; this request waits ``wait`` seconds for it, then goes on. On leaving, the
    other request is given time to finish."""
    from portal.extensions import db

    other = OtherRequest()

    def run() -> None:
        with app.app_context():
            try:
                result = work()
                db.session.commit()
                other.outcome.append(result)
            except Exception as error:  # noqa: BLE001 (what happened is what the test checks)
                db.session.rollback()
                other.outcome.append(error)
            finally:
                db.session.remove()

    def start(statement: str) -> None:
        if other.thread is not None or not statement.lstrip().upper().startswith(statement_start.upper()):
            return
        other.thread = threading.Thread(target=run)
        other.thread.start()
        other.thread.join(timeout=wait)
        other.was_waiting = other.thread.is_alive()

    with on_each_statement(start):
        yield other
    if other.thread is not None:
        other.thread.join(timeout=30)
