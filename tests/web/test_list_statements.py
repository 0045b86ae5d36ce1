"""Pages are sized for 10,000: each list page makes the same number of SQL statements with a
handful of rows as with many (counted with an SQLAlchemy event listener), and shows one page."""

from __future__ import annotations

import secrets
from contextlib import contextmanager

import pytest
from sqlalchemy import event, insert

from portal.accounts.models import Membership
from portal.audit.models import AuditEvent
from portal.auth.models import User
from portal.domains.models import ENABLED, Domain
from portal.domains.services import add_domain
from portal.extensions import db
from portal.invitations.models import Invitation, InvitationGrant
from portal.mailboxes.models import Mailbox
from portal.roles.models import Grant
from portal.roles.services import create_role, system_role
from portal.timeutil import utcnow


@contextmanager
def counted():
    statements: list[str] = []

    def count(_connection, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def seed(account, domain, role, size: int, start: int) -> None:
    """``size`` more of everything a list shows: members (corporate, with roles and mailbox
    grants), mailboxes, invitations with offers, audit entries and domains."""
    now = utcnow()
    tag = secrets.token_hex(3)
    users = db.session.execute(insert(User).returning(User.id), [{
        "email": f"person{start + n}-{tag}@{domain.name}", "name": f"Person {start + n}", "is_corporate": n % 2 == 0,
        "corporate_account_id": account.id if n % 2 == 0 else None, "timezone": "UTC", "phone": "",
        "created_at": now, "is_superadmin": False} for n in range(size)]).scalars().all()
    memberships = db.session.execute(insert(Membership).returning(Membership.id), [
        {"account_id": account.id, "user_id": user_id, "created_at": now} for user_id in users]).scalars().all()
    mailboxes = db.session.execute(insert(Mailbox).returning(Mailbox.id), [{
        "account_id": account.id, "domain_id": domain.id, "local_part": f"box{start + n}-{tag}",
        "address": f"box{start + n}-{tag}@{domain.name}", "kind": "personal", "owner_id": users[n],
        "status": "enabled", "status_reason": "", "want_active": True, "backend_admin": False, "password_lost": False,
        "first_name": "", "last_name": "", "display_name": "", "created_at": now, "updated_at": now}
        for n in range(size)]).scalars().all()
    owner_role = system_role("mailbox_owner")
    db.session.execute(insert(Grant.__table__), [
        {"membership_id": memberships[n], "role_id": role.id, "permission": None, "mailbox_id": None,
         "created_at": now} for n in range(size)] + [
        {"membership_id": memberships[n], "role_id": owner_role.id, "permission": None, "mailbox_id": mailboxes[n],
         "created_at": now} for n in range(size)] + [
        {"membership_id": memberships[n], "role_id": None, "permission": "audit.view", "mailbox_id": None,
         "created_at": now} for n in range(size)])
    invitations = db.session.execute(insert(Invitation).returning(Invitation.id), [
        {"account_id": account.id, "email": f"guest{start + n}-{tag}@elsewhere.example", "status": "pending",
         "created_at": now, "sent_at": now, "expires_at": now} for n in range(size)]).scalars().all()
    db.session.execute(insert(InvitationGrant.__table__), [
        {"invitation_id": invitation_id, "role_id": role.id, "permission": None, "on_mailbox": False,
         "mailbox_id": None, "label": role.name} for invitation_id in invitations])
    db.session.execute(insert(AuditEvent.__table__), [
        {"at": now, "actor_id": None, "actor_label": "seed@example.org", "account_id": account.id,
         "action": "user.create_corporate", "target_type": "user", "target_id": str(user_id),
         "target_label": "someone", "source": "web", "ip": "", "user_agent": "", "details": {"row": 1}}
        for user_id in users for _ in range(3)])
    db.session.execute(insert(Domain.__table__), [
        {"account_id": account.id, "name": f"d{start + n}-{tag}.example.org", "connection": "local",
         "status": "pending", "status_reason": "", "challenge": secrets.token_urlsafe(8), "verified_by_hand": False,
         "created_at": now, "failed_checks": 0, "records": [], "backend_checks": [], "settings": {},
         "settings_state": "", "settings_message": "", "settings_hints": {}} for n in range(max(size // 10, 1))])
    db.session.commit()


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
