"""A profile made at an address a mailbox already has would have its mail, a password reset among
it, read by whoever reads that mailbox: a corporate user is not made there, by hand, by import or
by an identity provider (a review); the mirror of a mailbox refused at someone's login address."""

from __future__ import annotations

import pytest
from flask import current_app

from portal.extensions import db
from portal.i18n import shown
from portal.jobs.worker import Worker
from portal.mailboxes import services as mailboxes
from portal.users import imports, workbook
from portal.users.models import ImportRun
from portal.users.services import UserError, create_corporate_user
from tests.mailboxes.conftest import enabled_domain
from tests.users.workbooks import fill


@pytest.fixture
def board(owner, account, run_jobs):
    domain = enabled_domain(owner, account, "corp.example.org")
    box = mailboxes.create_mailbox(owner, account, domain, "board")
    db.session.commit()
    run_jobs()
    return box


def test_not_by_hand(owner, account, board):
    with pytest.raises(UserError) as refused:
        create_corporate_user(owner, account, first_name="Bo", last_name="Ard", email="board@corp.example.org",
                              personal_mailbox=False)
    assert str(refused.value).startswith("board@corp.example.org is a mailbox: whoever reads it would get")
    assert refused.value.field == "email"


def test_not_by_import(owner, account, board):
    data = fill(workbook.template(account), users=[("Bo", "Ard", "board@corp.example.org", "Y"),
                                                    ("Ann", "Able", "ann@corp.example.org", "N")],
                account_rows=[("board@corp.example.org", "Account Administrator", None)])
    run = imports.receive(owner, account, "users.xlsx", data)
    db.session.commit()
    Worker(current_app._get_current_object(), name="test-worker").run_due()
    db.session.expire_all()
    run = db.session.get(ImportRun, run.id)
    assert (run.status, run.to_create, run.to_skip) == ("previewed", 1, 1), (shown(run.fatal), run.problems)


def test_once_the_mailbox_is_deleted_the_address_is_free(owner, account, board, run_jobs):
    mailboxes.delete(owner, board)
    db.session.commit()
    run_jobs()
    user, _link = create_corporate_user(owner, account, first_name="Bo", last_name="Ard",
                                        email="board@corp.example.org", personal_mailbox=False)
    assert user.email == "board@corp.example.org"
