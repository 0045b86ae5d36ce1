"""Pages are sized for 10,000: each list page makes the same number of SQL statements with a
handful of rows as with many (counted with an SQLAlchemy event listener), and shows one page."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from portal.accounts.models import Membership
from portal.domains.models import ENABLED
from portal.domains.services import add_domain
from portal.extensions import db
from portal.roles.services import create_role
from tests.seeding import seed
from tests.sql import on_each_statement


@contextmanager
def counted():
    statements: list[str] = []
    with on_each_statement(statements.append):
        yield statements


@pytest.fixture
def grown(owner, account, client, auth):
    domain = add_domain(owner, account, "example.org", "local")
    domain.status, domain.verified_at = ENABLED, domain.created_at
    role = create_role(owner, account, name="Staff", scope="account", description="", permissions={"members.view"})
    db.session.commit()
    auth.login("owner@example.org")
    state = {"domain": domain, "role": role, "seeded": 0}

    def grow(size: int) -> None:
        seed(account, domain, role, size, state["seeded"])
        state["seeded"] += size

    return grow, state


PAGES = [
    "/accounts/{a}/members", "/accounts/{a}/members?q=person&sort=name&dir=desc",
    "/accounts/{a}/members?role={role}&kind=corporate&mailbox=yes&page=2",
    "/accounts/{a}/mailboxes", "/accounts/{a}/mailboxes?q=box&status=enabled&sort=created&page=2",
    "/accounts/{a}/invitations", "/accounts/{a}/invitations?status=expired&sort=email",
    "/accounts/{a}/domains", "/accounts/{a}/domains/{domain}", "/accounts/{a}/roles", "/accounts/{a}/roles/{role}",
    "/accounts/{a}/audit", "/accounts/{a}/audit?family=user&page=3", "/accounts/{a}/",
    "/accounts/{a}/mailboxes/new", "/accounts/{a}/members/{member}/mailboxes",
]


@pytest.mark.parametrize("path", PAGES)
def test_page__makes_as_many_statements_with_many_rows_as_with_few(client, account, grown, path):
    grow, state = grown
    grow(3)
    member = db.session.execute(db.select(Membership.id).where(Membership.account_id == account.id)
                                .order_by(Membership.id.desc()).limit(1)).scalar_one()
    url = path.format(a=account.id, role=state["role"].id, domain=state["domain"].id, member=member)
    assert client.get(url).status_code == 200
    # The test shares the app's session: forget what it holds, as a new request in production would.
    db.session.expunge_all()
    with counted() as few:
        small = client.get(url)
    grow(150)
    db.session.expunge_all()
    with counted() as many:
        large = client.get(url)
    assert small.status_code == large.status_code == 200
    assert len(many) == len(few), "\n".join(["FEW"] + few + ["MANY"] + many)
    assert len(large.data) < 300_000, "a page shows one page of rows, not the table"


def test_tokens_page__makes_as_many_statements_with_many_makers_as_with_one(client, auth, owner, account, make):
    """Whether each token still works depends on its maker's rights: read for every maker at once,
    not once per maker (a review: 105 statements for 100 makers)."""
    from portal.tokens import services as tokens

    def makers(count: int, start: int) -> None:
        for number in range(start, start + count):
            maker = make.user(f"maker{number:03d}@example.org")
            if number % 2 == 0:  # half of them through a single permission, half through a role
                membership = make.member(account, maker, permissions=("audit.view",))
            else:
                membership = make.member(account, maker, roles=("administrator",))
            assert membership.user_id == maker.id
            tokens.create(maker, account, name=f"token {number}", scopes={"audit:read"}, expires_at=None)
            db.session.commit()

    auth.login(owner.email)
    url = f"/accounts/{account.id}/settings/tokens"
    makers(1, 0)
    assert client.get(url).status_code == 200
    db.session.expunge_all()
    with counted() as few:
        assert client.get(url).status_code == 200
    makers(12, 1)
    db.session.expunge_all()
    with counted() as many:
        page = client.get(url)
    assert page.status_code == 200 and page.get_data(as_text=True).count("token ") >= 13
    assert len(many) == len(few), "\n".join(["FEW"] + few + ["MANY"] + many)


def test_invitation_page__as_many_statements_offering_600_mailboxes_with_aliases_as_3(client, account, grown):
    """A review: each mailbox loaded (for an invitation's offers, a picker) read all its aliases too,
    500 mailboxes a statement: an invitation offering 5,000 mailboxes made 20 statements, not 11,
    and the page took 0.6–1 s."""
    from sqlalchemy import insert

    from portal.invitations.models import Invitation, InvitationGrant
    from portal.mailboxes.models import Mailbox, MailboxAlias
    from portal.roles.services import system_role

    grow, state = grown
    grow(600)
    boxes = db.session.execute(db.select(Mailbox.id, Mailbox.address).where(Mailbox.account_id == account.id)
                               .order_by(Mailbox.id)).all()
    db.session.execute(insert(MailboxAlias.__table__), [
        {"mailbox_id": box_id, "address": f"alias-{address}", "state": "active", "message": ""}
        for box_id, address in boxes])
    delegate = system_role("mailbox_delegate")
    pages = []
    for size in (3, 600):
        invitation = Invitation(account_id=account.id, email=f"offered{size}@elsewhere.example", status="pending",
                                expires_at=state["domain"].created_at.replace(year=2999))
        db.session.add(invitation)
        db.session.flush()
        db.session.execute(insert(InvitationGrant.__table__), [
            {"invitation_id": invitation.id, "role_id": delegate.id, "permission": None, "on_mailbox": True,
             "mailbox_id": box_id, "label": delegate.name} for box_id, _address in boxes[:size]])
        db.session.commit()
        pages.append(f"/accounts/{account.id}/invitations/{invitation.id}")
    assert client.get(pages[0]).status_code == 200
    counts = []
    for url in pages:
        db.session.expunge_all()
        with counted() as statements:
            assert client.get(url).status_code == 200
        counts.append(statements)
    assert len(counts[0]) == len(counts[1]), "\n".join(["FEW"] + counts[0] + ["MANY"] + counts[1])
    assert not any("mailbox_aliases" in statement for statement in counts[1])
