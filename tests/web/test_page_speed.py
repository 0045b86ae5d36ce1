"""What keeps pages cheap at 10,000 people: the access check read once per request, permissions
on a list of mailboxes read together, row links built once, long logs counted only so far."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from portal.audit.models import AuditEvent
from portal.domains.models import ENABLED
from portal.domains.services import add_domain
from portal.extensions import db
from portal.mailboxes.models import Mailbox
from portal.roles.models import Grant
from portal.roles.services import system_role
from portal.timeutil import utcnow
from tests.web.test_list_statements import counted


def _failed_mailboxes(owner, account, count: int) -> list[Mailbox]:
    domain = add_domain(owner, account, "example.org", "local")
    domain.status, domain.verified_at = ENABLED, domain.created_at
    db.session.flush()
    boxes = [Mailbox(account_id=account.id, domain_id=domain.id, local_part=f"box{n}", address=f"box{n}@example.org",
                     kind="shared", status="failed", status_reason="The backend refused it.") for n in range(count)]
    db.session.add_all(boxes)
    db.session.commit()
    return boxes


def test_overview__offers_retry_only_where_the_member_may_and_reads_that_at_once(client, auth, make, owner, account):
    boxes = _failed_mailboxes(owner, account, 5)
    helper = make.member(account, make.user("helper@example.org"), permissions=("mailboxes.view",))
    db.session.add(Grant(membership_id=helper.id, account_id=helper.account_id, role_id=system_role("mailbox_owner").id,
                         mailbox_id=boxes[2].id))
    db.session.commit()
    auth.login("helper@example.org")
    url = f"/accounts/{account.id}/"
    client.get(url)
    db.session.expunge_all()
    with counted() as statements:
        page = client.get(url).get_data(as_text=True)
    retries = [line for line in page.splitlines() if "/retry" in line]
    assert len(retries) == 1 and f"/mailboxes/{boxes[2].id}/retry" in retries[0]
    grant_lookups = [sql for sql in statements if "FROM grants" in sql and "mailbox_id IN" in sql]
    assert len(grant_lookups) == 1, "\n".join(statements)


def test_overview__an_administrator_needs_no_look_up_per_mailbox(client, auth, owner, account):
    _failed_mailboxes(owner, account, 5)
    auth.login("owner@example.org")
    url = f"/accounts/{account.id}/"
    client.get(url)
    db.session.expunge_all()
    with counted() as statements:
        page = client.get(url).get_data(as_text=True)
    assert page.count("/retry") == 5
    assert not [sql for sql in statements if "FROM grants" in sql and "mailbox_id IN" in sql]


def test_overview__reads_the_failed_mailboxes_along_an_index_without_sorting_them(owner, account):
    """SQLite's plan for the Overview's most recently changed failed mailboxes: the (account, status,
    updated_at) index, no temporary B-tree sorting every failed mailbox of the account."""
    from portal.accounts.overview import failed_mailboxes

    _failed_mailboxes(owner, account, 3)
    if db.engine.dialect.name != "sqlite":
        pytest.skip("the plan checked is SQLite's; PostgreSQL chooses its own from its statistics")
    compiled = failed_mailboxes(account).compile(db.engine, compile_kwargs={"literal_binds": True})
    plan = [row[3] for row in db.session.execute(db.text(f"EXPLAIN QUERY PLAN {compiled}"))]
    assert any("ix_mailboxes_account_status_updated" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


def test_overview__counts_members_and_corporate_users_from_indexes(make, account):
    """SQLite's plan for the Overview's counts: members from the memberships' index, corporate users
    from theirs alone, and those who need a link among the few in the partial index (not along the
    unique index of sign-on subjects, whose IS NULL holds for nearly everyone), never a member's
    row read for the counts; the counts still say what the people are."""
    from portal.accounts.overview import _statements
    from portal.auth.models import User

    def corporate(email: str, **fields) -> User:
        user = make.user(email)
        user.password_hash, user.is_corporate, user.corporate_account_id = None, True, account.id
        for name, value in fields.items():
            setattr(user, name, value)
        make.member(account, user)
        return user

    corporate("signed-in@example.org", password_hash="x")
    corporate("recovery@example.org", recovery_email="home@example.net")
    corporate("sso@example.org", oidc_subject="subject-1")
    corporate("unlinked@example.org")
    make.member(account, make.user("guest@example.net"))
    db.session.commit()
    statement = _statements()["members"].params(account_id=account.id)
    # The owner, the guest and four corporate users, one of whom no link can reach.
    assert tuple(db.session.execute(statement).one()) == (6, 4, 1)
    if db.engine.dialect.name != "sqlite":
        pytest.skip("the plan checked is SQLite's; PostgreSQL chooses its own from its statistics")
    compiled = statement.compile(db.engine, compile_kwargs={"literal_binds": True})
    plan = [row[3] for row in db.session.execute(db.text(f"EXPLAIN QUERY PLAN {compiled}"))]
    assert any("COVERING INDEX ix_users_corporate " in step for step in plan), plan
    assert any("ix_users_corporate_unlinked" in step for step in plan), plan
    assert not any("SCAN users" in step or "users USING INTEGER PRIMARY KEY" in step for step in plan), plan


def test_account_page__reads_the_account_and_the_access_in_one_statement(client, auth, account):
    auth.login("owner@example.org")
    url = f"/accounts/{account.id}/domains"
    client.get(url)
    db.session.expunge_all()
    with counted() as statements:
        assert client.get(url).status_code == 200
    assert not [sql for sql in statements if "FROM memberships" in sql and "FROM accounts" not in sql], \
        "\n".join(statements)


def test_list_rows__link_where_url_for_would(app, client, auth, account):
    from flask import url_for

    from portal.web.urls import RowLinks

    with app.test_request_context():
        link = RowLinks("mailboxes.show", "mailbox_id", account_id=account.id)
        assert link(7) == url_for("mailboxes.show", account_id=account.id, mailbox_id=7)
        assert link(2**31 - 1) == url_for("mailboxes.show", account_id=account.id, mailbox_id=2**31 - 1)


def test_audit_log__counts_so_far_then_says_more_than(client, auth, account, monkeypatch):
    from portal.audit import views

    monkeypatch.setattr(views, "COUNT_LIMIT", 120)
    now = utcnow()
    db.session.execute(insert(AuditEvent.__table__), [
        {"at": now, "actor_label": "seed@example.org", "account_id": account.id, "action": "user.update",
         "target_type": "user", "target_id": str(n), "target_label": f"someone{n}", "source": "web", "ip": "",
         "user_agent": "", "details": {}} for n in range(200)])
    db.session.commit()
    auth.login("owner@example.org")
    base = f"/accounts/{account.id}/audit"
    page = client.get(base).get_data(as_text=True)
    assert "of more than 120 events" in page and "Next" in page and "Page 1 of" not in page
    # Past the limit the count goes as far as the page asked for, and no further.
    page = client.get(f"{base}?page=4").get_data(as_text=True)
    assert "151–200 of more than 200 events" in page
    page = client.get(f"{base}?page=5").get_data(as_text=True)
    assert "of 201 events" in page and "Next" not in page
    page = client.get(f"{base}?family=account").get_data(as_text=True)
    assert "of 1 events" in page or "1–1 of 1" in page


def test_list_fragment__reads_nothing_for_the_top_bar_it_does_not_show(client, auth, account):
    auth.login("owner@example.org")
    url = f"/accounts/{account.id}/members?q=owner"
    client.get(url)
    db.session.expunge_all()
    with counted() as page_statements:
        page = client.get(url).get_data(as_text=True)
    db.session.expunge_all()
    with counted() as fragment_statements:
        fragment = client.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'class="switcher"' in page and 'class="switcher"' not in fragment
    assert "owner@example.org" in fragment
    switcher = [sql for sql in page_statements if sql not in fragment_statements]
    assert len(switcher) == 1 and "FROM accounts" in switcher[0], "\n".join(page_statements)
    assert len(fragment_statements) == len(page_statements) - 1


def test_overview__statements_built_once_read_each_account_its_own(make, owner, account):
    """The Overview's statements are built once per process with the account and the clock as
    parameters: one account's Overview, read after another's, shows its own rows and nothing of the other's."""
    from datetime import timedelta

    from portal.accounts.overview import build
    from portal.audit.services import record
    from portal.invitations.models import Invitation
    from portal.users.models import ImportRun

    other_owner = make.user("other-owner@example.org")
    other = make.account(other_owner, "Other")
    now = utcnow()
    _failed_mailboxes(owner, account, 2)
    make.member(account, make.user("member@example.org"))
    db.session.add_all([
        Invitation(account_id=account.id, email="soon@example.org", status="pending", sent_at=now,
                   expires_at=now + timedelta(days=1)),
        Invitation(account_id=account.id, email="later@example.org", status="pending", sent_at=now,
                   expires_at=now + timedelta(days=5)),
        Invitation(account_id=account.id, email="gone@example.org", status="pending", sent_at=now,
                   expires_at=now - timedelta(hours=1)),
        Invitation(account_id=other.id, email="theirs@example.org", status="pending", sent_at=now,
                   expires_at=now + timedelta(hours=3)),
        ImportRun(account_id=other.id, filename="theirs.xlsx", status="running", total=10),
    ])
    record("account.settings", account=other, target=other)
    db.session.commit()

    for _ in range(2):  # each read after the other's, twice
        mine, theirs = build(account, lambda permission: True), build(other, lambda permission: True)
        assert (mine.members, theirs.members) == (2, 1)
        assert [invitation.email for invitation in mine.expiring_invitations] == ["soon@example.org"]
        assert (mine.pending_invitations, mine.invitations_sent) == (2, 3)
        assert [invitation.email for invitation in theirs.expiring_invitations] == ["theirs@example.org"]
        assert (theirs.pending_invitations, theirs.invitations_sent) == (1, 1)
        assert mine.mailboxes == {"failed": 2} and len(mine.failed_mailboxes) == 2
        assert theirs.mailboxes == {} and theirs.failed_mailboxes == []
        assert mine.domains == {ENABLED: 1} and theirs.domains == {}
        assert mine.imports_running == [] and [run.filename for run in theirs.imports_running] == ["theirs.xlsx"]
        assert mine.recent and {event.account_id for event in mine.recent} == {account.id}
        assert theirs.recent[0].action == "account.settings"
        assert {event.account_id for event in theirs.recent} == {other.id}
