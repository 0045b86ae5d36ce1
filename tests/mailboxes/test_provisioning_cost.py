"""What one mailbox creation costs the worker in SQL: the same statements for every job, however many
run, with nothing read again that the claim already returned."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import event

from portal.extensions import db
from portal.mailboxes import services
from portal.mailboxes.models import ENABLED, Mailbox, ProvisioningAttempt
from tests.mailboxes.conftest import enabled_domain

# The claim; the mailbox with its domain; its one-time password kept; the mailbox, its attempt and the
# job written with the outcome.
STATEMENTS_PER_CREATION = Counter({"UPDATE jobs": 2, "SELECT mailboxes": 1, "DELETE mailbox_secrets": 1,
                                   "INSERT mailbox_secrets": 1, "UPDATE mailboxes": 1,
                                   "INSERT provisioning_attempts": 1})


@pytest.fixture
def statements(app):
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    yield seen
    event.remove(db.engine, "before_cursor_execute", count)


def _kind(statement: str) -> str:
    words = statement.split()
    verb = words[0].upper()
    table = words[words.index("FROM") + 1] if verb in ("SELECT", "DELETE") else words[2 if verb == "INSERT" else 1]
    return f"{verb} {table}"


def _create_and_provision(owner, account, domain, run_jobs, statements, names: list[str]) -> Counter:
    for name in names:
        services.create_mailbox(owner, account, domain, name)
    db.session.commit()
    statements.clear()
    assert run_jobs() == len(names)
    # The claim that found nothing left ends the run.
    return Counter(_kind(statement) for statement in statements) - Counter({"UPDATE jobs": 1})


def test_mailbox_creation__costs_the_same_statements_per_job_at_any_number(owner, account, run_jobs, statements):
    domain = enabled_domain(owner, account)
    run_jobs()  # the domain's own check
    _create_and_provision(owner, account, domain, run_jobs, statements, ["warm"])  # reads the backend's state once

    few = _create_and_provision(owner, account, domain, run_jobs, statements, [f"few{n}" for n in range(3)])
    many = _create_and_provision(owner, account, domain, run_jobs, statements, [f"many{n}" for n in range(12)])

    assert few == Counter({kind: 3 * number for kind, number in STATEMENTS_PER_CREATION.items()})
    assert many == Counter({kind: 12 * number for kind, number in STATEMENTS_PER_CREATION.items()})
    assert set(db.session.execute(db.select(Mailbox.status)).scalars()) == {ENABLED}
    assert db.session.execute(db.select(db.func.count()).select_from(ProvisioningAttempt)).scalar_one() == 16
