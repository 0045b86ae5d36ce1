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
