"""Hostile input gets a clear 4xx and loses nothing; never an HTTP 500 (finding 9)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.exc import OperationalError

from portal.domains.models import ENABLED
from portal.domains.services import add_domain
from portal.extensions import db
from portal.mailboxes.services import create_mailbox
from tests.conftest import PASSWORD

HUGE = "9223372036854775808"


@pytest.fixture
def things(owner, account):
    domain = add_domain(owner, account, "example.org", "local")
    domain.status, domain.verified_at = ENABLED, domain.created_at
    mailbox = create_mailbox(owner, account, domain, "team")
    db.session.commit()
    return {"domain": domain, "mailbox": mailbox}


@pytest.mark.parametrize("path", [
    f"/accounts/1/domains/{HUGE}/enable", f"/accounts/{HUGE}/domains/1/check", f"/accounts/1/mailboxes/{HUGE}/retry",
    f"/accounts/1/members/{HUGE}/roles", f"/accounts/1/invitations/{HUGE}/send", "/accounts/1/roles/99999999999/delete",
    f"/profile/sessions/{HUGE}/end", f"/profile/invites/{HUGE}/accept",
])
def test_ids_too_large_for_the_database__are_not_found(client, auth, owner, account, things, path):
    auth.login("owner@example.org")
    assert client.post(path).status_code == 404


@pytest.mark.parametrize("field, value", [("role_id", HUGE), ("role_id", "-1"), ("role_id", "1e9"), ("role_id", "٣")])
def test_ids_too_large_in_forms__are_refused_with_a_message(client, auth, owner, account, things, field, value):
    from portal.invitations.services import start

    invitation = start(owner, account, "guest@elsewhere.example")
    db.session.commit()
    auth.login("owner@example.org")
    response = client.post(f"/accounts/{account.id}/invitations/{invitation.id}/grants",
                           data={field: value, "mailbox_id": HUGE, "scope": "mailbox"})
    assert response.status_code == 409 and "Choose a mailbox" in response.get_data(as_text=True)
    response = client.post(f"/accounts/{account.id}/members/1/roles", data={field: value})
    assert response.status_code == 422


@pytest.mark.parametrize("where", ["form", "query", "path"])
def test_nul_bytes__refuse_the_request_with_a_message(client, auth, owner, account, things, where):
    auth.login("owner@example.org")
    if where == "form":
        response = client.post("/accounts/new", data={"name": "Evil\x00Corp"})
    elif where == "query":
        response = client.get(f"/accounts/{account.id}/mailboxes?owner=a%00b")
    else:
        response = client.get(f"/accounts/{account.id}/mailboxes%00")
    assert response.status_code in (400, 404)
    if response.status_code == 400:
        assert "NUL character" in response.get_data(as_text=True)


def test_nul_bytes__in_the_login_address(client, make):
    make.user("ada@example.org")
    response = client.post("/login", data={"email": "ada\x00@example.org", "password": PASSWORD})
    assert response.status_code == 400


@pytest.mark.parametrize("quota", ["9" * 309, "1" * 30, "-5", "1.5"])
def test_absurd_quotas__are_refused_with_a_message(client, auth, owner, account, things, quota):
    auth.login("owner@example.org")
    mailbox = things["mailbox"]
    response = client.post(f"/accounts/{account.id}/mailboxes/{mailbox.id}/quota", data={"quota": quota,
                                                                                         "quota_unit": "GB"})
    assert response.status_code == 422
    response = client.post(f"/accounts/{account.id}/domains/{things['domain'].id}/settings",
                           data={"max_quota_bytes": quota, "default_quota_bytes": quota})
    assert response.status_code == 422


def test_alias_held_elsewhere__is_refused_not_a_conflict(client, auth, owner, account, things, make, run_jobs):
    other = create_mailbox(owner, account, things["domain"], "other")
    db.session.commit()
    run_jobs()
    auth.login("owner@example.org")
    first = client.post(f"/accounts/{account.id}/mailboxes/{things['mailbox'].id}/aliases",
                        data={"alias": "sales@example.org"})
    assert first.status_code == 302
    second = client.post(f"/accounts/{account.id}/mailboxes/{other.id}/aliases", data={"alias": "sales@example.org"})
    assert second.status_code == 409 and "already used" in second.get_data(as_text=True)


def _race(calls) -> list:
    """Run the calls at the same moment, one thread each; return their results."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index):
        barrier.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _mailed_link(app, smtp_sink, to: str, fragment: str) -> str:
    from portal.jobs.worker import Worker
    from tests.conftest import first_link

    Worker(app, name="test-worker").run_due()
    [message] = smtp_sink.wait_for(to)
    return first_link(smtp_sink.text(message), fragment).removeprefix("http://localhost")


def test_concurrent_registration_from_one_invitation__one_wins_the_other_is_told(app, owner, account, smtp_sink):
    from portal.invitations import services as invitations

    invitation = invitations.start(owner, account, "newcomer@elsewhere.example")
    invitations.send_invitation(owner, invitation)
    db.session.commit()
    path = _mailed_link(app, smtp_sink, "newcomer@elsewhere.example", "/invitations/") + "/register"
    clients = [app.test_client() for _ in range(2)]
    for client in clients:
        client.get(path)
    statuses = _race([lambda c=c: c.post(path, data={"name": "New", "password": PASSWORD,
                                                       "confirm": PASSWORD}).status_code for c in clients])
    assert sorted(statuses) in ([302, 409], [302, 410], [302, 302]), statuses
    from portal.auth.models import User

    assert db.session.execute(db.select(db.func.count()).select_from(User)
                              .where(User.email == "newcomer@elsewhere.example")).scalar_one() == 1


def test_concurrent_onboarding_from_one_link__one_wins_the_other_is_told(app, owner, account, things):
    from portal.users import services as users

    _, link = users.create_corporate_user(owner, account, first_name="New", last_name="Comer",
                                          email="new@example.org", personal_mailbox=False)
    db.session.commit()
    path = link.removeprefix("http://localhost")
    clients = [app.test_client() for _ in range(3)]
    for client in clients:
        client.get(path)
    statuses = _race([lambda c=c: c.post(path, data={"password": PASSWORD, "confirm": PASSWORD}).status_code
                      for c in clients])
    assert statuses.count(302) == 1, statuses
    assert all(status in (302, 410, 422) for status in statuses), statuses


def test_error_page__still_renders_after_a_database_error(app, client, make, auth, monkeypatch):
    make.user("ada@example.org")
    auth.login("ada@example.org")
    from portal.accounts import views

    def broken(*_args, **_kwargs):
        db.session.execute(db.text("SELECT no_such_column FROM users"))

    monkeypatch.setattr(views.services, "accounts_of", broken)
    app.testing = False
    try:
        response = client.get("/accounts")
    finally:
        app.testing = True
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "Something went wrong" in page and "<html" in page
