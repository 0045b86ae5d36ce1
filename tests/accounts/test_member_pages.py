"""The Users list read page by page, in every sort and both directions, shows each member of the
account exactly once and in the right order (the page loads its rows by a deferred join: the sort
and the offset run over the keys, then the page's rows are read); the API pages the same way."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from flask import current_app
from sqlalchemy import insert

from portal.accounts.models import Membership
from portal.auth.models import User
from portal.extensions import db
from portal.tokens import services as tokens

PEOPLE = 124
BASE = datetime(2026, 1, 5, 8, 0)


@pytest.fixture
def crowd(account, make):
    """The account's members (as listed): the owner and 124 people, names with ties and mixed case,
    log-ins and joins with ties; and a stranger account whose members must never be listed."""
    rows = [{"email": f"p{n:03d}@example.org", "name": f"{'nAME' if n % 2 else 'Name'}{n % 30:02d}",
             "last_login_at": BASE + timedelta(minutes=n % 40)} for n in range(PEOPLE)]
    ids = dict(db.session.execute(insert(User.__table__).returning(User.email, User.id), rows).all())
    db.session.execute(insert(Membership.__table__), [
        {"account_id": account.id, "user_id": ids[row["email"]], "email": row["email"],
         "created_at": BASE + timedelta(hours=n % 7)} for n, row in enumerate(rows)])
    stranger = make.account(make.user("zz-stranger@example.org", name="Name00"), "Elsewhere")
    make.member(stranger, make.user("p500@example.org", name="Name01"))
    db.session.commit()
    people = db.session.execute(db.select(Membership, User).join(User, User.id == Membership.user_id)
                                .where(Membership.account_id == account.id)).all()
    return [(membership.id, user, membership.created_at) for membership, user in people]


def _expected(crowd, sort: str, descending: bool) -> list[str]:
    def column(row):
        _membership_id, user, joined = row
        return {"email": user.email, "name": (user.name or "").lower(), "last_login": user.last_login_at,
                "joined": joined}[sort]
    # The list sorts by the column in the direction asked, then by address and membership, ascending
    # (Python's sort is stable: ties keep the order of the first sort).
    ordered = sorted(crowd, key=lambda row: (row[1].email, row[0]))
    ordered.sort(key=column, reverse=descending)
    return [user.email for _, user, _ in ordered]


def _emails_on(html: str) -> list[str]:
    return re.findall(r'aria-label="Select ([^"]+)"', html)


@pytest.mark.parametrize("sort", ["email", "name", "last_login", "joined"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_users_list__pages_show_everyone_once_in_order(client, auth, account, owner, crowd, sort, direction):
    auth.login(owner.email)
    everyone = crowd
    if sort == "last_login":  # the owner's log-in is now, after everyone else's
        everyone = [row for row in everyone if row[1].id != owner.id]
    seen = []
    for page in (1, 2, 3):
        answer = client.get(f"/accounts/{account.id}/members",
                            query_string={"sort": sort, "dir": direction, "page": page})
        assert answer.status_code == 200
        seen += _emails_on(answer.get_data(as_text=True))
    if sort == "last_login":
        seen = [email for email in seen if email != owner.email]
    assert seen == _expected(everyone, sort, direction == "desc")
    assert len(seen) == len(set(seen)) and "p500@example.org" not in seen


def test_users_list__a_page_past_the_end_shows_the_last_one(client, auth, account, owner, crowd):
    auth.login(owner.email)
    last = client.get(f"/accounts/{account.id}/members", query_string={"page": 3}).get_data(as_text=True)
    past = client.get(f"/accounts/{account.id}/members", query_string={"page": 999}).get_data(as_text=True)
    assert _emails_on(past) == _emails_on(last) and len(_emails_on(last)) == PEOPLE + 1 - 100


def test_users_list__search_pages_in_order(client, auth, account, owner, crowd):
    auth.login(owner.email)
    matching = sorted(user.email for _, user, _ in crowd if user.name.lower().startswith("name1"))
    seen = _emails_on(client.get(f"/accounts/{account.id}/members",
                                 query_string={"q": "NAME1", "sort": "email", "dir": "desc"}).get_data(as_text=True))
    assert seen == sorted(matching, reverse=True) and len(seen) == 40


@pytest.mark.parametrize("sort", ["email", "name", "last_login", "joined"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_users_list__a_search_pages_everyone_once_in_order_and_counts_them(client, auth, account, owner, crowd,
                                                                          sort, direction):
    """A search counts its matches and numbers the page's rows in one pass: the same pages, the
    same order and the same count as a list that is not searched, the last page for one past the end."""
    auth.login(owner.email)
    pages = {}
    for page in (1, 2, 3, 99):
        html = client.get(f"/accounts/{account.id}/members", query_string={
            "q": "@EXAMPLE.org", "sort": sort, "dir": direction, "page": page}).get_data(as_text=True)
        assert f"{PEOPLE + 1} people" in html
        pages[page] = _emails_on(html)
    seen = pages[1] + pages[2] + pages[3]
    assert len(seen) == len(set(seen)) == PEOPLE + 1 and "p500@example.org" not in seen
    assert pages[99] == pages[3] and len(pages[3]) == PEOPLE + 1 - 100
    everyone = crowd
    if sort == "last_login":  # the owner's log-in is now, after everyone else's
        everyone = [row for row in crowd if row[1].id != owner.id]
        seen = [email for email in seen if email != owner.email]
    assert seen == _expected(everyone, sort, direction == "desc")
    nobody = client.get(f"/accounts/{account.id}/members", query_string={"q": "no-such-person", "page": 4})
    assert nobody.status_code == 200 and _emails_on(nobody.get_data(as_text=True)) == []
    assert "Nobody matches these filters." in nobody.get_data(as_text=True)


def test_members_api__pages_in_order(client, account, owner, crowd):
    _, raw = tokens.create(owner, account, name="reader", scopes={"users:read"}, expires_at=None)
    db.session.commit()
    seen = []
    for page in (1, 2, 3, 4, 5):
        answer = client.get(f"/api/v1/accounts/{account.id}/members",
                            query_string={"sort": "joined", "dir": "desc", "page": page, "per_page": 30},
                            headers={"Authorization": f"Bearer {raw}"})
        assert answer.status_code == 200, answer.get_data(as_text=True)
        seen += [item["email"] for item in answer.get_json()["items"]]
    assert len(crowd) == PEOPLE + 1
    assert seen == _expected(crowd, "joined", True)
    assert len(seen) == PEOPLE + 1


def test_users_list__the_default_order_reads_the_account_email_index(account, owner, crowd):
    """A page of the whole list in the default order is read from the (account, address) index, not
    by sorting every member (SQLite's plan: no temporary B-tree for the ORDER BY); a filtered or
    searched list is not read by walking that index."""
    from portal.accounts.services import member_query
    from portal.accounts.views import member_listing

    assert all(membership_email == user.email for membership_email, user in db.session.execute(
        db.select(Membership.email, User).join(User, User.id == Membership.user_id)))
    if db.engine.dialect.name != "sqlite":
        pytest.skip("the plans checked are SQLite's; PostgreSQL chooses its own from its statistics")

    def plan(query_string: str) -> list[str]:
        with current_app.test_request_context(f"/accounts/{account.id}/members{query_string}"):
            query = member_query(account, member_listing()).limit(50)
        compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
        return [row[3] for row in db.session.execute(db.text(f"EXPLAIN QUERY PLAN {compiled}"))]

    whole = plan("")
    assert any("uq_memberships_account_email" in step for step in whole), whole
    assert not any("TEMP B-TREE" in step for step in whole), whole
    # Filtered or searched, walking that index would test every member until a page is found:
    # the members the filters keep are sorted instead.
    for query_string in ("?status=suspended", "?q=name0", "?q=name0&sort=email&dir=desc"):
        chosen = plan(query_string)
        assert not any("uq_memberships_account_email" in step for step in chosen), (query_string, chosen)


def test_a_persons_address_does_not_change(make):
    person = make.user("fixed@example.org")
    with pytest.raises(ValueError):
        person.email = "other@example.org"
    person.email = "fixed@example.org"  # the same address again is no change
    assert person.email == "fixed@example.org"


def test_users_list__each_filter_keeps_exactly_the_people_it_names(client, auth, account, owner, make):
    """Every value of every filter of the Users list, alone and with another: the people each keeps,
    no more and no fewer (a corporate user of another account is not "corporate" here; a mailbox
    deleted, or one of another account, is no personal mailbox here; a role held over a mailbox is
    not the account role)."""
    from portal.accounts.services import add_member
    from portal.mailboxes import services as mailboxes
    from portal.roles import catalogue
    from portal.roles.models import Grant
    from portal.roles.services import system_role
    from portal.timeutil import utcnow
    from tests.mailboxes.conftest import enabled_domain

    domain = enabled_domain(owner, account)
    other_account = make.account(make.user("elsewhere-owner@example.net"), "Elsewhere")

    def person(email, *, corporate_of=None, signed_in=True, suspended=False):
        user = make.user(email, name=email.split("@")[0])
        if not signed_in:
            user.password_hash = None
        if corporate_of is not None:
            user.is_corporate, user.corporate_account_id = True, corporate_of.id
        if suspended:
            user.suspended_at = utcnow()
        add_member(account, user)
        db.session.commit()
        return user

    boxed = person("boxed@example.org", corporate_of=account)
    mailboxes.create_mailbox(owner, account, domain, "boxed", kind="personal", owner=boxed)
    unboxed = person("unboxed@example.org", corporate_of=account)
    deleted_box = person("deleted-box@example.org", corporate_of=account)
    gone = mailboxes.create_mailbox(owner, account, domain, "deleted-box", kind="personal", owner=deleted_box)
    gone.status = "deleted"
    new = person("new@example.org", corporate_of=account, signed_in=False)
    held = person("held@example.org", corporate_of=account, suspended=True)
    guest = person("guest@example.net")
    theirs = person("theirs@example.net", corporate_of=other_account)
    admin = make.member(account, make.user("admin@example.net", name="admin"), roles=(catalogue.ADMINISTRATOR,))
    # The Mailbox Owner role over a shared mailbox is no account role.
    shared = mailboxes.create_mailbox(owner, account, domain, "team")
    delegate = person("delegate@example.net")
    db.session.add(Grant(membership_id=db.session.execute(db.select(Membership.id).where(
        Membership.account_id == account.id, Membership.user_id == delegate.id)).scalar_one(),
        account_id=account.id, mailbox_id=shared.id, role_id=system_role(catalogue.MAILBOX_OWNER).id))
    db.session.add(Grant(membership_id=admin.id, account_id=account.id, mailbox_id=shared.id,
                         role_id=system_role(catalogue.MAILBOX_OWNER).id))
    db.session.commit()
    everyone = {owner.email, boxed.email, unboxed.email, deleted_box.email, new.email, held.email, guest.email,
                theirs.email, "admin@example.net", delegate.email}
    corporate = {boxed.email, unboxed.email, deleted_box.email, new.email, held.email}
    expected = {
        (("kind", "corporate"),): corporate,
        (("kind", "other"),): everyone - corporate,
        (("mailbox", "yes"),): {boxed.email},
        (("mailbox", "no"),): everyone - {boxed.email},
        (("status", "suspended"),): {held.email},
        (("status", "never_signed_in"),): {new.email},
        (("status", "active"),): everyone - {held.email, new.email},
        (("role", str(system_role(catalogue.ADMINISTRATOR).id)),): {"admin@example.net"},
        (("role", str(system_role(catalogue.MAILBOX_OWNER).id)),): set(),
        (("role", str(system_role(catalogue.OWNER).id)),): {owner.email},
        (("kind", "corporate"), ("status", "active")): {boxed.email, unboxed.email, deleted_box.email},
        (("kind", "corporate"), ("mailbox", "no")): corporate - {boxed.email},
        (("kind", "other"), ("mailbox", "yes")): set(),
    }
    auth.login(owner.email)
    for filters, people in expected.items():
        html = client.get(f"/accounts/{account.id}/members", query_string=dict(filters)).get_data(as_text=True)
        assert set(_emails_on(html)) == people, filters
    unfiltered = client.get(f"/accounts/{account.id}/members").get_data(as_text=True)
    assert set(_emails_on(unfiltered)) == everyone
