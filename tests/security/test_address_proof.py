"""Who reads an address, not who typed a password for it.

Anyone may register anyone's address with a password of their own, and an administrator who
creates a corporate user may be shown the link that sets its first password. Neither proves who
reads the address: only opening a link mailed to it does (or a sign-on provider vouching for it).
Found by attacker-side reviews; each test here fails without the rule it names.
"""

import re

import pytest

from portal.accounts.models import Membership
from portal.auth.models import User
from portal.extensions import db
from portal.invitations.models import Invitation
from portal.roles.services import system_role
from tests.conftest import PASSWORD, first_link

STRANGER = "a stranger's password"
REAL = "the real person's password"


def _login_status(app, email, password):
    return app.test_client().post("/login", data={"email": email, "password": password}).status_code


def _user(email):
    db.session.expire_all()
    return db.session.execute(db.select(User).where(User.email == email)).scalar_one()


def _verification_path(smtp_sink, email):
    return first_link(smtp_sink.text(smtp_sink.to(email)[-1]), "/verify/").removeprefix("http://localhost")


# -- registration: the confirmation link ----------------------------------------------------------

@pytest.fixture
def registered_by_a_stranger(app, make, client, run_jobs, smtp_sink):
    """A stranger registers bob@ with a password of their own; the link reaches Bob's mailbox."""
    make.user("first@example.org", superadmin=True)
    response = client.post("/register", data={"name": "Bob", "email": "bob@example.net", "password": STRANGER,
                                              "confirm": STRANGER})
    assert response.status_code == 200
    run_jobs()
    return _verification_path(smtp_sink, "bob@example.net")


def test_confirmation_link__opened_elsewhere_does_not_confirm_without_the_registration_password(
        app, registered_by_a_stranger):
    bob = app.test_client()  # the real Bob's browser: he did not register
    page = bob.get(registered_by_a_stranger)
    assert page.status_code == 200 and 'name="password"' in page.get_data(as_text=True)
    refused = bob.post(registered_by_a_stranger, data={"password": "a guess"})
    assert refused.status_code == 422
    assert "not the password chosen when the address was registered" in refused.get_data(as_text=True)
    assert bob.post(registered_by_a_stranger, data={}).status_code == 422
    assert not _user("bob@example.net").is_verified
    assert _login_status(app, "bob@example.net", STRANGER) == 422


def test_confirmation_link__the_reader_chooses_a_new_password_and_the_registrants_goes(
        app, registered_by_a_stranger):
    bob = app.test_client()
    page = bob.get(registered_by_a_stranger).get_data(as_text=True)
    assert 'name="new-name"' in page and 'value="Bob"' in page  # the name the registrant chose, to correct
    answer = bob.post(registered_by_a_stranger, data={"new-password": REAL, "new-confirm": REAL,
                                                      "new-name": " Robert Real "})
    assert answer.status_code == 302
    user = _user("bob@example.net")
    assert user.is_verified and user.address_proven and user.name == "Robert Real"
    assert _login_status(app, "bob@example.net", STRANGER) == 422
    assert _login_status(app, "bob@example.net", REAL) == 302
    assert bob.post(registered_by_a_stranger, data={"new-password": REAL, "new-confirm": REAL}).status_code == 410


def test_confirmation_link__a_weak_new_password_is_refused_and_the_link_still_works(app, registered_by_a_stranger):
    bob = app.test_client()
    answer = bob.post(registered_by_a_stranger, data={"new-password": "short", "new-confirm": "short"})
    assert answer.status_code == 422 and not _user("bob@example.net").is_verified
    assert bob.post(registered_by_a_stranger, data={"new-password": REAL, "new-confirm": REAL}).status_code == 302


def test_confirmation_link__one_click_in_the_browser_that_registered(app, client, registered_by_a_stranger):
    # The person who registered (here: whoever typed the password) confirms in their own browser.
    assert 'name="password"' not in client.get(registered_by_a_stranger).get_data(as_text=True)
    assert client.post(registered_by_a_stranger).status_code == 302
    assert _user("bob@example.net").is_verified
    assert _login_status(app, "bob@example.net", STRANGER) == 302


def test_confirmation_link__elsewhere_with_the_registration_password(app, registered_by_a_stranger):
    phone = app.test_client()
    assert phone.post(registered_by_a_stranger, data={"password": STRANGER}).status_code == 302
    assert _login_status(app, "bob@example.net", STRANGER) == 302


# -- a registration nobody confirmed is not someone ------------------------------------------------

def test_activation__an_unconfirmed_registration_does_not_join_the_account(owner, account, make):
    from portal.domains import services as domains
    from portal.domains.models import ENABLED

    early = make.user("ceo@corp.example.org", verified=False, password=STRANGER)
    domain = domains.add_domain(owner, account, "corp.example.org", "local")
    domain.verified_at = domain.created_at
    domains.set_status(domain, ENABLED, "test")
    db.session.commit()
    early = _user("ceo@corp.example.org")
    assert not early.is_corporate
    assert db.session.execute(db.select(Membership).where(Membership.user_id == early.id)).first() is None


def test_create__takes_over_an_unconfirmed_registration(app, owner, account, make, client, auth, smtp_sink,
                                                         run_jobs):
    from tests.mailboxes.conftest import enabled_domain

    make.user("first@example.org", superadmin=True)
    client.post("/register", data={"name": "Not the CEO", "email": "ceo@example.net", "password": STRANGER,
                                   "confirm": STRANGER})
    run_jobs()
    stale_link = _verification_path(smtp_sink, "ceo@example.net")
    enabled_domain(owner, account, "example.net")
    other = app.test_client()
    other.post("/login", data={"email": "owner@example.org", "password": PASSWORD})
    answer = other.post(f"/accounts/{account.id}/users/new", data={"first_name": "Cee", "last_name": "Eo",
                                                                  "email": "ceo@example.net"})
    assert answer.status_code == 200 and "/welcome/" in answer.get_data(as_text=True)
    ceo = _user("ceo@example.net")
    assert ceo.name == "Cee Eo" and ceo.password_hash is None and ceo.is_corporate
    assert client.post(stale_link).status_code == 410  # the registrant's one-click link died
    assert _login_status(app, "ceo@example.net", STRANGER) == 422


# -- onboarding links prove nothing about the address --------------------------------------------

@pytest.fixture
def captured(app, owner, account, make, run_jobs, smtp_sink):
    """Someone who may only create users creates bob@ and sets its password through the link shown
    to them; another account then invites bob@ as its administrator."""
    from portal.invitations import services as invitations
    from tests.mailboxes.conftest import enabled_domain

    enabled_domain(owner, account, "corp.example.org")
    make.member(account, make.user("hr@example.org"), permissions=("members.view", "users.create"))
    hr = app.test_client()
    hr.post("/login", data={"email": "hr@example.org", "password": PASSWORD})
    page = hr.post(f"/accounts/{account.id}/users/new", data={"first_name": "Bob", "last_name": "B",
                                                             "email": "bob@corp.example.org"}).get_data(as_text=True)
    welcome = re.search(r"/welcome/[A-Za-z0-9_-]+", page).group(0)
    assert hr.post(welcome, data={"password": STRANGER, "confirm": STRANGER}).status_code == 302
    boss = make.user("boss@partner.example")
    partner = make.account(boss, "Partner")
    invitation = invitations.start(boss, partner, "bob@corp.example.org")
    invitations.add_grant(boss, invitation, role_id=system_role("administrator").id)
    invitations.send_invitation(boss, invitation)
    db.session.commit()
    run_jobs()
    link = first_link(smtp_sink.text(smtp_sink.to("bob@corp.example.org")[-1]), "/invitations/")
    return {"hr": hr, "invitation_id": invitation.id, "link": link.removeprefix("http://localhost"),
            "partner": partner}


def _administrator(account, email):
    from portal.roles.services import account_permissions

    return "users.manage" in account_permissions(_user(email), account)


def test_invitation__a_profile_onboarded_through_a_shown_link_cannot_answer_from_its_page(app, captured):
    as_bob = app.test_client()
    assert as_bob.post("/login", data={"email": "bob@corp.example.org", "password": STRANGER}).status_code == 302
    page = as_bob.get("/profile/invites").get_data(as_text=True)
    assert "Open the link in the invitation e-mailed to bob@corp.example.org" in page
    assert f"/profile/invites/{captured['invitation_id']}/accept" not in page
    answer = as_bob.post(f"/profile/invites/{captured['invitation_id']}/accept", follow_redirects=True)
    assert "Open the link in the invitation" in answer.get_data(as_text=True)
    assert as_bob.post(f"/profile/invites/{captured['invitation_id']}/decline").status_code == 302
    assert db.session.get(Invitation, captured["invitation_id"]).status == "pending"
    assert not _administrator(captured["partner"], "bob@corp.example.org")


def test_invitation__the_mailed_link_lets_the_reader_answer_and_proves_the_address(app, captured):
    as_bob = app.test_client()
    landing = as_bob.get(captured["link"])
    assert landing.status_code == 302 and "/login" in landing.location
    login = as_bob.post(landing.location, data={"email": "bob@corp.example.org", "password": STRANGER})
    assert login.status_code == 302
    assert as_bob.get(login.location).status_code == 302  # back through the link: it counts as opened
    page = as_bob.get("/profile/invites").get_data(as_text=True)
    assert f"/profile/invites/{captured['invitation_id']}/accept" in page
    assert as_bob.post(f"/profile/invites/{captured['invitation_id']}/accept").status_code == 302
    assert _administrator(captured["partner"], "bob@corp.example.org")
    assert _user("bob@corp.example.org").address_proven


def test_sso__linking_a_profile_onboarded_through_a_shown_link_drops_its_password(app, captured):
    from portal.auth import sso

    with app.test_request_context():
        user = sso.reconcile({"sub": "corp-bob", "email": "bob@corp.example.org", "email_verified": True})
        db.session.commit()
    assert user.oidc_subject == "corp-bob" and user.address_proven
    assert _login_status(app, "bob@corp.example.org", STRANGER) == 422


def test_create__does_not_take_over_a_corporate_user_waiting_for_their_first_password(owner, account, make, client,
                                                                                      auth, smtp_sink):
    """Found by an attacker-side review of the take-over above: someone who may only create users
    "created" an administrator who had not signed in yet, with their own recovery address, and
    received the onboarding link (a 500 without a recovery address)."""
    from portal.roles.models import Grant
    from portal.users import services as users
    from tests.mailboxes.conftest import enabled_domain

    enabled_domain(owner, account, "corp.example.org")
    cfo, _link = users.create_corporate_user(owner, account, first_name="C", last_name="Fo",
                                             email="cfo@corp.example.org", personal_mailbox=False,
                                             recovery_email="cfo@home.example")
    membership = db.session.execute(db.select(Membership).where(Membership.user_id == cfo.id)).scalar_one()
    db.session.add(Grant(membership_id=membership.id, account_id=account.id, role_id=system_role("administrator").id))
    make.member(account, make.user("hr@example.org"), permissions=("members.view", "users.create"))
    db.session.commit()
    auth.login("hr@example.org")
    for recovery in ("attacker@evil.example", ""):
        answer = client.post(f"/accounts/{account.id}/users/new", data={
            "first_name": "Mal", "last_name": "Lory", "email": "cfo@corp.example.org", "recovery_email": recovery})
        assert answer.status_code == 422 and "already has a profile" in answer.get_data(as_text=True)
    cfo = _user("cfo@corp.example.org")
    assert (cfo.name, cfo.recovery_email) == ("C Fo", "cfo@home.example")
    assert not smtp_sink.to("attacker@evil.example")


@pytest.mark.parametrize("proof", ["confirmation", "reset"])
def test_a_registration_from_before_the_domain_was_enabled_joins_once_proven(app, owner, account, client, run_jobs,
                                                                               smtp_sink, proof):
    """Enabling the domain skips it; proving it later (whatever the account says of self-registration
    now) makes it the corporate user it would have been."""
    from portal.domains import services as domains
    from portal.domains.models import ENABLED

    account.self_registration = False
    db.session.commit()
    client.post("/register", data={"name": "Emp", "email": "emp@corp.example.org", "password": REAL,
                                   "confirm": REAL})
    run_jobs()
    domain = domains.add_domain(owner, account, "corp.example.org", "local")
    domain.verified_at = domain.created_at
    domains.set_status(domain, ENABLED, "test")
    db.session.commit()
    assert not _user("emp@corp.example.org").is_corporate
    if proof == "confirmation":
        assert client.post(_verification_path(smtp_sink, "emp@corp.example.org")).status_code == 302
    else:
        app.test_client().post("/password/forgot", data={"email": "emp@corp.example.org"})
        run_jobs()
        link = first_link(smtp_sink.text(smtp_sink.to("emp@corp.example.org")[-1]), "/password/reset/")
        assert app.test_client().post(link.removeprefix("http://localhost"),
                                      data={"password": REAL, "confirm": REAL}).status_code == 302
    emp = _user("emp@corp.example.org")
    assert emp.is_verified and emp.is_corporate and emp.corporate_account_id == account.id
    assert db.session.execute(db.select(Membership).where(Membership.user_id == emp.id)).scalar_one()
