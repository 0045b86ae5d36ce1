import io

import pytest
from openpyxl import load_workbook

from portal.extensions import db
from portal.mailboxes import services as mailboxes
from tests.mailboxes.conftest import enabled_domain


@pytest.fixture
def owner(make):
    return make.user("owner@example.org", name="Olga Owner")


@pytest.fixture
def account(make, owner):
    return make.account(owner, "Acme")


@pytest.fixture
def domain(owner, account):
    return enabled_domain(owner, account)


@pytest.fixture
def shared(owner, account, domain):
    boxes = [mailboxes.create_mailbox(owner, account, domain, name) for name in ("sales", "support")]
    db.session.commit()
    return boxes


def fill(template: bytes, users=(), account_rows=(), mailbox_rows=None, edit=None) -> bytes:
    """The template with rows added: users (first, last, email, Y/N), account (email, role, permission),
    mailbox_rows {address: [(email, role, permission)]}."""
    book = load_workbook(io.BytesIO(template))
    for row in users:
        book["Users"].append(list(row))
    for row in account_rows:
        book["Account"].append(list(row))
    for sheet in book.worksheets:
        if sheet["A1"].value == "Mailbox" and mailbox_rows and sheet["B1"].value in mailbox_rows:
            for row in mailbox_rows[sheet["B1"].value]:
                sheet.append(list(row))
    if edit:
        edit(book)
    output = io.BytesIO()
    book.save(output)
    return output.getvalue()
