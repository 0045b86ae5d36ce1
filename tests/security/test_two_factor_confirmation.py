"""Fresh confirmation (password or second factor, valid 10 minutes) before the most dangerous
actions: deleting an account, removing an owner, revealing a mailbox password."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from portal.accounts.models import Account, Membership
from portal.extensions import db
from portal.roles import catalogue
from portal.roles.models import Grant
from portal.roles.services import system_role
from portal.users import services as users
from tests.conftest import PASSWORD
from tests.mailboxes.conftest import enabled_domain
from tests.security.two_factor_helpers import make_stale


def _asks_to_confirm(response, coming_back_to: str) -> bool:
    if response.status_code != 302:
        return False
    location = urlsplit(response.headers["Location"])
    return location.path == "/profile/confirm" and parse_qs(location.query).get("next") == [coming_back_to]


def _confirm(client, coming_back_to: str):
    response = client.post(f"/profile/confirm?next={coming_back_to}", data={"password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == coming_back_to
    return response


@pytest.fixture
def second_owner(make, account):
    return make.member(account, make.user("otto@example.org"), roles=(catalogue.OWNER,))


def _owner_grant(membership) -> Grant:
    return db.session.execute(db.select(Grant).where(Grant.membership_id == membership.id,
                                                     Grant.role_id == system_role(catalogue.OWNER).id)).scalar_one()


def test_deleting_an_account__asks_to_confirm_then_comes_back(client, auth, owner, account):
    auth.login(owner.email)
    make_stale()
    url = f"/accounts/{account.id}/delete"
    assert _asks_to_confirm(client.get(url), url)
    assert _asks_to_confirm(client.post(url, data={"confirm": "Acme"}), url)
    assert db.session.get(Account, account.id) is not None
    _confirm(client, url)
    assert client.get(url).status_code == 200
    assert client.post(url, data={"confirm": "Acme"}).status_code == 302
    assert db.session.get(Account, account.id) is None


def test_a_log_in__is_a_confirmation_for_its_first_ten_minutes(client, auth, owner, account):
    auth.login(owner.email)
    assert client.get(f"/accounts/{account.id}/delete").status_code == 200


def test_removing_an_owner__asks_to_confirm_removing_someone_else_does_not(client, auth, make, owner, account,
                                                                          second_owner):
    plain = make.member(account, make.user("plain@example.org"), roles=(catalogue.ADMINISTRATOR,))
    auth.login(owner.email)
    make_stale()
    url = f"/accounts/{account.id}/members/{second_owner.id}/remove"
    assert _asks_to_confirm(client.get(url), url)
    assert _asks_to_confirm(client.post(url), url)
    assert db.session.get(Membership, second_owner.id) is not None
    assert client.get(f"/accounts/{account.id}/members/{plain.id}/remove").status_code == 200
    _confirm(client, url)
    assert client.post(url).status_code == 302
    assert db.session.get(Membership, second_owner.id) is None


def test_taking_the_owner_role_away__asks_to_confirm_other_roles_do_not(client, auth, make, owner, account,
                                                                       second_owner):
    make.member(account, second_owner.user, roles=(catalogue.ADMINISTRATOR,))
    auth.login(owner.email)
    make_stale()
    access_page = f"/accounts/{account.id}/members/{second_owner.id}"
    administrator = db.session.execute(db.select(Grant).where(
        Grant.membership_id == second_owner.id, Grant.role_id == system_role(catalogue.ADMINISTRATOR).id)).scalar_one()
    response = client.post(f"{access_page}/grants/{administrator.id}/revoke")
    assert response.status_code == 302 and response.headers["Location"] == access_page
    owner_grant = _owner_grant(second_owner)
    revoke = f"{access_page}/grants/{owner_grant.id}/revoke"
    assert _asks_to_confirm(client.post(revoke), access_page)
    assert db.session.get(Grant, owner_grant.id) is not None
    _confirm(client, access_page)
    assert client.post(revoke).status_code == 302
    assert db.session.get(Grant, owner_grant.id) is None


def test_removing_a_corporate_user_who_is_an_owner__asks_to_confirm(client, auth, make, owner, account):
    enabled_domain(owner, account, "corp.example.org")
    person, _ = users.create_corporate_user(owner, account, first_name="Cora", last_name="Owner",
                                            email="cora@corp.example.org", personal_mailbox=False)
    db.session.commit()
    membership = make.member(account, person, roles=(catalogue.OWNER,))
    auth.login(owner.email)
    make_stale()
    url = f"/accounts/{account.id}/members/{membership.id}/remove-user"
    assert _asks_to_confirm(client.get(url), url)
    assert _asks_to_confirm(client.post(url, data={"mailboxes": "keep"}), url)
    _confirm(client, url)
    assert client.post(url, data={"mailboxes": "keep"}).status_code == 302
    assert db.session.get(Membership, membership.id) is None


def test_revealing_a_mailbox_password__asks_to_confirm_and_comes_back_to_the_mailbox(client, auth, owner, account):
    from portal.mailboxes.services import create_mailbox

    domain = enabled_domain(owner, account, "corp.example.org")
    mailbox = create_mailbox(owner, account, domain, "team")
    db.session.commit()
    auth.login(owner.email)
    make_stale()
    page = f"/accounts/{account.id}/mailboxes/{mailbox.id}"
    assert _asks_to_confirm(client.post(f"{page}/password/reveal"), page)
    _confirm(client, page)
    assert not _asks_to_confirm(client.post(f"{page}/password/reveal"), page)


def test_an_htmx_request__is_told_to_load_the_confirmation_page(client, auth, owner, account):
    auth.login(owner.email)
    make_stale()
    response = client.get(f"/accounts/{account.id}/delete", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == f"/profile/confirm?next=/accounts/{account.id}/delete"


def test_the_confirmation_page__offers_what_the_person_has(client, auth, owner, account):
    auth.login(owner.email)
    page = client.get("/profile/confirm?next=/accounts").get_data(as_text=True)
    assert "Your password" in page
    assert "/profile/confirm/code" not in page and "data-passkey" not in page, "no app, no passkey: not offered"
