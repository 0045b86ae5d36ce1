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


def _previewed(owner, account, users) -> ImportRun:
    run = imports.receive(owner, account, "users.xlsx", fill(workbook.template(account), users=users))
    db.session.commit()
    Worker(current_app._get_current_object(), name="test-worker").run_due()
    db.session.expire_all()
    return db.session.get(ImportRun, run.id)


def test_not_by_hand(owner, account, board):
    with pytest.raises(UserError) as refused:
        create_corporate_user(owner, account, first_name="Bo", last_name="Ard", email="board@corp.example.org",
                              personal_mailbox=False)
    assert str(refused.value).startswith("board@corp.example.org is a mailbox: whoever reads it would get")
    assert refused.value.field == "email"


def test_not_by_import(owner, account, board):
    run = _previewed(owner, account, [("Bo", "Ard", "board@corp.example.org", "Y"),
                                      ("Ann", "Able", "ann@corp.example.org", "N")])
    assert (run.status, run.to_create, run.to_skip) == ("previewed", 1, 1), (shown(run.fatal), run.problems)


def test_once_the_mailbox_is_deleted_the_address_is_free(owner, account, board, run_jobs):
    mailboxes.delete(owner, board)
    db.session.commit()
    run_jobs()
    user, _link = create_corporate_user(owner, account, first_name="Bo", last_name="Ard",
                                        email="board@corp.example.org", personal_mailbox=False)
    assert user.email == "board@corp.example.org"


@pytest.fixture
def squatted(owner, account, make, run_jobs):
    """Another account added corp.example.org (never proven) and reserved ceo@ on its copy before
    this account proved and enabled the name."""
    from portal.domains.services import add_domain

    squatter = make.user("mallory@b-owners.example")
    elsewhere = make.account(squatter, "Squatter")
    copy = add_domain(squatter, elsewhere, "corp.example.org", "local")
    db.session.commit()
    assert mailboxes.create_mailbox(squatter, elsewhere, copy, "ceo").status == "pending"
    db.session.commit()
    domain = enabled_domain(owner, account, "corp.example.org")
    run_jobs()
    return domain


def test_another_accounts_mailboxes_neither_block_nor_show(owner, account, squatted, client):
    """By hand, by import and through SCIM: another account's mailbox at the name (on its copy of
    the domain, never proven) is that account's to know, and blocks nothing here."""
    from tests.scim.conftest import Scim, make_token, new_user

    run = _previewed(owner, account, [("Cee", "Eo", "ceo@corp.example.org", "N")])
    assert (run.to_create, run.to_skip) == (1, 0)
    answer = Scim(client, make_token(owner, account)).post("/Users", new_user("ceo@corp.example.org", "Cee", "Eo"))
    assert answer.status_code == 201, answer.get_data(as_text=True)


def test_nor_at_an_address_a_domain_alias_brings_to_a_mailbox(owner, account, run_jobs):
    """board@alias reaches board@corp (corp's settings alias alias.example.org onto it)."""
    corp = enabled_domain(owner, account, "corp.example.org")
    enabled_domain(owner, account, "alias.example.org")
    box = mailboxes.create_mailbox(owner, account, corp, "board")
    corp.settings = {"domain_aliases": ["alias.example.org"]}
    db.session.commit()
    run_jobs()
    assert "board@alias.example.org" in mailboxes.received_addresses(box)
    with pytest.raises(UserError):
        create_corporate_user(owner, account, first_name="Bo", last_name="Ard", email="board@alias.example.org",
                              personal_mailbox=False)
    run = _previewed(owner, account, [("Bo", "Ard", "board@alias.example.org", "N")])
    assert (run.to_create, run.to_skip) == (0, 1)


def test_a_retried_import_counts_the_people_it_made_as_updated_not_skipped(owner, account, run_jobs):
    """A run retried after its worker died past its last chunk finds the people it made (and their
    new personal mailboxes, which are theirs) and updates them."""
    import io

    from openpyxl import load_workbook

    enabled_domain(owner, account, "corp.example.org")
    run = _previewed(owner, account, [("Ann", "Able", "ann@corp.example.org", "Y")])
    imports.confirm(owner, run)
    db.session.commit()
    run_jobs()
    db.session.expire_all()
    run = db.session.get(ImportRun, run.id)
    assert (run.status, run.created) == ("done", 1)
    run.status = "running"  # the retry: the same plan, the person and her mailbox already written
    db.session.commit()
    imports._run(run)
    db.session.commit()
    db.session.expire_all()
    run = db.session.get(ImportRun, run.id)
    rows = [row for row in load_workbook(io.BytesIO(run.result)).worksheets[0].iter_rows(min_row=2, values_only=True)
            if row[2]]
    assert (run.created, run.updated, run.skipped) == (0, 1, 0), rows
