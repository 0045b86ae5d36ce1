"""On PostgreSQL a request that only read commits instead of rolling back, so that psycopg keeps
the statements it prepared (it forgets them all on a rollback); anything that may have written is
rolled back as before."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from portal.accounts.models import Account
from portal.extensions import db
from portal.readonly import wrote


@pytest.fixture
def app_settings():
    # One connection, so that each app context below gets the same one back.
    return {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 1, "max_overflow": 0, "pool_pre_ping": True}}


@pytest.mark.parametrize("statement, writes", [
    ("SELECT accounts.id FROM accounts WHERE accounts.id = %(id)s", False),
    ("  select 1", False),
    ("SHOW server_version", False),
    ("SELECT jobs.id FROM jobs WHERE jobs.status = 'queued' LIMIT 1 FOR UPDATE SKIP LOCKED", True),
    ("SELECT id FROM grants FOR  NO KEY UPDATE", True),
    ("WITH gone AS (DELETE FROM jobs RETURNING id) SELECT count(*) FROM gone", True),
    ("INSERT INTO jobs (kind) VALUES ('x')", True),
    ("UPDATE users SET name = 'x'", True),
    ("DELETE FROM users", True),
    ("LOCK TABLE users", True),
    ("SET LOCAL statement_timeout = 1000", True),
    # Reads that are not sure: they change something, or could hide what does.
    ("SELECT set_config('search_path', 'elsewhere', false)", True),
    ("SELECT pg_notify('channel', 'x')", True),
    ("SELECT nextval('jobs_id_seq')", True),
    ("SELECT pg_advisory_lock(1)", True),
    ("SELECT lo_create(0)", True),
    ("SELECT id, name INTO copied FROM accounts", True),
    ("SELECT 1; DELETE FROM users", True),
    ("SELECT id FROM jobs FOR/**/UPDATE", True),
    ("SELECT id FROM jobs FOR--\nUPDATE", True),
])
def test_wrote__only_plain_reads_count_as_reads(statement, writes):
    assert wrote(statement, None) is writes


def _postgres_only(is_postgres):
    if not is_postgres:
        pytest.skip("SQLite prepares nothing on a server; its requests end as before")


def test_read_only_request__commits_and_the_prepared_statements_stay(app, is_postgres):
    _postgres_only(is_postgres)
    ended = []
    db.event.listen(db.engine, "commit", lambda _connection: ended.append("commit"))
    db.event.listen(db.engine, "rollback", lambda _connection: ended.append("rollback"))
    with app.app_context():
        for _ in range(7):  # psycopg prepares a statement run five times
            db.session.execute(select(Account.id).where(Account.id == 0)).all()
        backend = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    assert ended == ["commit"]
    with app.app_context():
        assert db.session.execute(text("SELECT pg_backend_pid()")).scalar_one() == backend
        prepared = db.session.execute(text("SELECT statement FROM pg_prepared_statements")).scalars().all()
    assert any("FROM accounts" in statement for statement in prepared), prepared


def test_request_that_wrote__is_rolled_back(app, make, is_postgres):
    _postgres_only(is_postgres)
    account_id = make.account(make.user("olga@example.org"), "Acme").id
    db.session.commit()
    db.session.close()  # the test's own session gives the one connection back
    ended = []
    db.event.listen(db.engine, "commit", lambda _connection: ended.append("commit"))
    db.event.listen(db.engine, "rollback", lambda _connection: ended.append("rollback"))
    with app.app_context():  # written through the ORM and flushed, never committed
        db.session.get(Account, account_id).name = "Renamed"
        db.session.flush()
    with app.app_context():  # written with a statement, never committed
        db.session.execute(text("UPDATE accounts SET name = 'Also renamed' WHERE id = :id"), {"id": account_id})
    with app.app_context():  # a change not flushed yet
        db.session.execute(select(Account.id)).all()
        db.session.get(Account, account_id).name = "Pending"
    assert ended == ["rollback", "rollback", "rollback"]
    with app.app_context():
        assert db.session.execute(select(Account.name).where(Account.id == account_id)).scalar_one() == "Acme"


def test_request_answered_with_an_error__is_rolled_back(app, is_postgres):
    """A view that catches a failure and answers 4xx itself may have done part of something: its
    transaction is rolled back, even when all it ran counted as reads; below 400 it commits."""
    _postgres_only(is_postgres)
    ended = []
    db.event.listen(db.engine, "commit", lambda _connection: ended.append("commit"))
    db.event.listen(db.engine, "rollback", lambda _connection: ended.append("rollback"))
    for status in (422, 400, 200, 302):
        with app.app_context(), app.test_request_context("/"):
            db.session.execute(select(Account.id)).all()
            app.process_response(app.make_response(("answer", status)))
    assert ended == ["rollback", "rollback", "commit", "commit"]


def test_request_that_raised__is_rolled_back(app, is_postgres):
    _postgres_only(is_postgres)
    ended = []
    db.event.listen(db.engine, "rollback", lambda _connection: ended.append("rollback"))
    with pytest.raises(RuntimeError):
        with app.app_context():
            db.session.execute(select(Account.id)).all()
            raise RuntimeError("the view failed")
    assert ended == ["rollback"]
