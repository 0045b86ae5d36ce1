"""A savepoint released, then its transaction rolled back, leaves nothing behind, on SQLite as on
PostgreSQL (portal.extensions.savepoint)."""

from __future__ import annotations

from sqlalchemy import select, update

from portal.accounts.models import Account
from portal.extensions import db, savepoint


def test_a_released_savepoint_is_taken_back_by_the_rollback_after_it(app, account):
    db.session.execute(select(Account.id)).all()  # a read first: no change yet in the transaction
    with savepoint():
        db.session.execute(update(Account).where(Account.id == account.id).values(name="Changed"))
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(Account, account.id).name == "Acme"


def test_a_savepoint_in_a_transaction_that_already_changed_something(app, account, make):
    db.session.execute(update(Account).where(Account.id == account.id).values(name="First"))
    with savepoint():
        db.session.execute(update(Account).where(Account.id == account.id).values(name="Second"))
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Account, account.id).name == "Second"
