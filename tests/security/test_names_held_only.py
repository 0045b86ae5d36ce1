"""What an attacker-side review of mail names found (each test fails without its fix): another
account could end or block links to names it never held, block an account's own addresses with a
registration nobody confirmed or with an invitation, and get round an account's closed
registration through an invitation of its own; a catch-all's local part was not checked."""

from __future__ import annotations

import html

import pytest

from portal.accounts.models import Membership
from portal.auth.models import User
from portal.domains.models import Domain
from portal.domains.services import add_domain
from portal.extensions import db
from portal.invitations import services as invitations
from portal.invitations.models import Invitation
from portal.mailboxes.models import Mailbox
from portal.mailboxes.services import create_mailbox
from portal.users import services as users
from tests.conftest import PASSWORD, first_link
from tests.emulated import emulated
from tests.mailboxes.conftest import enabled_domain
from tests.security.conftest import OWN_B, SHARED, prove, world  # noqa: F401

VICTIM = "victim.example.org"


@pytest.fixture
def backend():
    with emulated("local") as (emulator, environ, connection):
        yield "local", emulator, environ, connection


@pytest.fixture
def app_environ(backend):
    return backend[2]


@pytest.fixture
def two(make):
    owner_a = make.user("alice@a-owners.example")
    owner_b = make.user("mallory@b-owners.example")
    return owner_a, make.account(owner_a, "Victim"), owner_b, make.account(owner_b, "Attacker")


def _register(client, email):
    """Anyone on the Internet: no account, no sign-in, no confirmation."""
    response = client.post("/register", data={"email": email, "name": "Squatter", "password": PASSWORD,
                                              "confirm": PASSWORD})
    assert response.status_code == 200
    user = db.session.execute(db.select(User).where(User.email == email)).scalar_one()
    assert user.email_verified_at is None
    return user.id


def _invite_link(app, smtp_sink, inviter, account, email) -> str:
    from portal.jobs.worker import Worker

    invitation = invitations.start(inviter, account, email)
    invitations.send_invitation(inviter, invitation)
    db.session.commit()
    Worker(app, name="test-worker").run_due()
    [message] = smtp_sink.wait_for(email)
    return first_link(smtp_sink.text(message), "/invitations/").removeprefix("http://localhost")


def test_a_mailbox_on_a_copy_nobody_proved_neither_ends_nor_blocks_links_to_its_address(
        app, two, client, auth, smtp_sink):
    owner_a, account_a, _owner_b, account_b = two
    path = _invite_link(app, smtp_sink, owner_a, account_a, "consultant@gmail.example")
    invitation_id = db.session.execute(db.select(Invitation.id)).scalar_one()
    auth.login("mallory@b-owners.example")
    assert client.post(f"/accounts/{account_b.id}/domains/new",
                       data={"name": "gmail.example", "connection": "local"}).status_code == 302
    copy_b = db.session.execute(db.select(Domain).where(Domain.account_id == account_b.id)).scalar_one()
    assert copy_b.verified_at is None
    assert client.post(f"/accounts/{account_b.id}/mailboxes/new", data={
        "local_part": "consultant", "domain": copy_b.id, "kind": "shared", "owner": "0"}).status_code == 302
    auth.logout()
    landing = app.test_client().get(path, follow_redirects=True)
    assert landing.status_code == 200 and "no longer works" not in landing.get_data(as_text=True)
    auth.login("alice@a-owners.example")
    assert client.post(f"/accounts/{account_a.id}/invitations/{invitation_id}/resend").status_code == 302
    assert client.post(f"/accounts/{account_a.id}/invitations/new",
                       data={"email": "other@gmail.example"}).status_code == 302


def test_a_mailbox_left_on_a_copy_taken_since_does_not_block_the_holder_inviting_there(
        two, client, auth, dns_zone, run_jobs):
    owner_a, account_a, owner_b, account_b = two
    copy_b = add_domain(owner_b, account_b, VICTIM, "local")
    shared_a = add_domain(owner_a, account_a, VICTIM, "local")
    db.session.commit()
    create_mailbox(owner_b, account_b, copy_b, "jane")  # reserved on B's copy, never proven
    db.session.commit()
    assert prove(dns_zone, run_jobs, shared_a).status == "enabled"
    db.session.expire_all()
    assert db.session.get(Domain, copy_b.id).status == "taken"
    auth.login("alice@a-owners.example")
    response = client.post(f"/accounts/{account_a.id}/invitations/new", data={"email": f"jane@{VICTIM}"})
    assert response.status_code == 302, html.unescape(response.get_data(as_text=True))[-2000:]


def test_a_registration_nobody_confirmed_gives_way_to_the_domains_mailbox_and_alias(two, client, auth, run_jobs):
    owner_a, account_a, _owner_b, _account_b = two
    domain = enabled_domain(owner_a, account_a, VICTIM)
    inbox = create_mailbox(owner_a, account_a, domain, "inbox")
    db.session.commit()
    run_jobs()
    sales_id, info_id = _register(client, f"sales@{VICTIM}"), _register(client, f"info@{VICTIM}")
    auth.login("alice@a-owners.example")
    made = client.post(f"/accounts/{account_a.id}/mailboxes/new",
                       data={"local_part": "sales", "domain": domain.id, "kind": "shared", "owner": "0"})
    alias = client.post(f"/accounts/{account_a.id}/mailboxes/{inbox.id}/aliases", data={"alias": f"info@{VICTIM}"})
    assert (made.status_code, alias.status_code) == (302, 302)
    # Whoever reads the mailbox cannot confirm the stranger's registration and sign in as a person.
    assert db.session.get(User, sales_id) is None and db.session.get(User, info_id) is None
    from portal.audit.models import AuditEvent

    assert len(db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "user.vacant_removed")
                                  ).all()) == 2


def test_a_registration_nobody_confirmed_does_not_fail_a_waiting_mailbox(two, client, dns_zone, run_jobs):
    owner_a, account_a, _owner_b, _account_b = two
    domain = add_domain(owner_a, account_a, VICTIM, "local")
    db.session.commit()
    waiting = create_mailbox(owner_a, account_a, domain, "contact")
    db.session.commit()
    squatter_id = _register(client, f"contact@{VICTIM}")
    assert prove(dns_zone, run_jobs, domain).status == "enabled"
    run_jobs()
    db.session.expire_all()
    assert db.session.get(Mailbox, waiting.id).status == "enabled"
    assert db.session.get(User, squatter_id) is None


def test_a_registration_nobody_confirmed_is_taken_over_by_the_identity_provider(app, two, client):
    from tests.scim.conftest import Scim, make_token, new_user

    owner_a, account_a, _owner_b, _account_b = two
    enabled_domain(owner_a, account_a, VICTIM)
    squatter_id = _register(client, f"jane.doe@{VICTIM}")
    scim = Scim(app.test_client(), make_token(owner_a, account_a))
    response = scim.post("/Users", new_user(f"jane.doe@{VICTIM}"))
    assert response.status_code == 201, response.get_data(as_text=True)
    jane = db.session.get(User, squatter_id)
    assert jane.is_corporate and jane.corporate_account_id == account_a.id and jane.password_hash is None


def test_a_corporate_user_removed_before_signing_in_leaves_the_address_free(two, client, auth):
    owner_a, account_a, _owner_b, _account_b = two
    domain = enabled_domain(owner_a, account_a, VICTIM)
    users.create_corporate_user(owner_a, account_a, first_name="Sales", last_name="Desk", email=f"sales@{VICTIM}",
                                personal_mailbox=False)
    db.session.commit()
    membership = db.session.execute(db.select(Membership).join(User).where(User.email == f"sales@{VICTIM}")
                                    ).scalar_one()
    auth.login("alice@a-owners.example")
    assert client.post(f"/accounts/{account_a.id}/members/{membership.id}/remove-user",
                       data={"mailboxes": "keep", "confirm": "y"}).status_code == 302
    made = client.post(f"/accounts/{account_a.id}/mailboxes/new",
                       data={"local_part": "sales", "domain": domain.id, "kind": "shared", "owner": "0"})
    assert made.status_code == 302
    assert db.session.execute(db.select(User).where(User.email == f"sales@{VICTIM}")).first() is None


def test_a_profile_someone_signed_into_keeps_its_address(two, client, auth):
    """Removed from the account after signing in, the person keeps their profile and its address."""
    from portal.auth.passwords import hash_password
    from portal.timeutil import utcnow

    owner_a, account_a, _owner_b, _account_b = two
    domain = enabled_domain(owner_a, account_a, VICTIM)
    user, _link = users.create_corporate_user(owner_a, account_a, first_name="Sales", last_name="Desk",
                                              email=f"sales@{VICTIM}", personal_mailbox=False)
    user.password_hash, user.email_verified_at = hash_password(PASSWORD), utcnow()  # as their onboarding does
    db.session.commit()
    membership = db.session.execute(db.select(Membership).where(Membership.user_id == user.id)).scalar_one()
    auth.login("alice@a-owners.example")
    assert client.post(f"/accounts/{account_a.id}/members/{membership.id}/remove-user",
                       data={"mailboxes": "keep", "confirm": "y"}).status_code == 302
    made = client.post(f"/accounts/{account_a.id}/mailboxes/new",
                       data={"local_part": "sales", "domain": domain.id, "kind": "shared", "owner": "0"})
    assert made.status_code == 422 and "login address" in html.unescape(made.get_data(as_text=True))


def test_another_accounts_invitation_does_not_stop_the_domains_account_creating_its_person(
        app, two, client, auth, smtp_sink):
    owner_a, account_a, owner_b, account_b = two
    enabled_domain(owner_a, account_a, VICTIM)
    _invite_link(app, smtp_sink, owner_b, account_b, f"jane@{VICTIM}")
    auth.login("alice@a-owners.example")
    response = client.post(f"/accounts/{account_a.id}/users/new",
                           data={"first_name": "Jane", "last_name": "Doe", "email": f"jane@{VICTIM}"})
    assert response.status_code == 200 and "/welcome/" in response.get_data(as_text=True)


def _register_from_invitation(app, smtp_sink, inviter, account, email):
    """The invited person registers from the link mailed to them, in a browser of their own."""
    path = _invite_link(app, smtp_sink, inviter, account, email)
    return app.test_client().post(path + "/register", data={"name": "Jane", "password": PASSWORD,
                                                            "confirm": PASSWORD})


@pytest.mark.parametrize("status", ["closed", "disabled"])
def test_registering_through_another_accounts_invitation_follows_the_domains_rules(
        app, two, client, smtp_sink, status):
    from portal.domains.models import DISABLED

    owner_a, account_a, owner_b, account_b = two
    domain = enabled_domain(owner_a, account_a, VICTIM)
    if status == "closed":
        account_a.self_registration = False
    else:
        domain.status = DISABLED
    db.session.commit()
    response = _register_from_invitation(app, smtp_sink, owner_b, account_b, f"jane@{VICTIM}")
    assert response.status_code == 409
    assert ("does not accept self-registration" if status == "closed" else "the domain is disabled") in \
        html.unescape(response.get_data(as_text=True))
    assert db.session.execute(db.select(User).where(User.email == f"jane@{VICTIM}")).first() is None


def test_registering_through_another_accounts_invitation_makes_the_domains_corporate_user(
        app, two, client, smtp_sink):
    owner_a, account_a, owner_b, account_b = two
    enabled_domain(owner_a, account_a, VICTIM)
    account_a.self_registration = True
    db.session.commit()
    response = _register_from_invitation(app, smtp_sink, owner_b, account_b, f"jane@{VICTIM}")
    assert response.status_code == 302
    jane = db.session.execute(db.select(User).where(User.email == f"jane@{VICTIM}")).scalar_one()
    assert jane.is_corporate and jane.corporate_account_id == account_a.id
    assert set(db.session.execute(db.select(Membership.account_id).where(Membership.user_id == jane.id)).scalars()
               ) == {account_a.id, account_b.id}


@pytest.mark.parametrize("target", [f"ceo%{SHARED}@{OWN_B}", f"{SHARED}!ceo@{OWN_B}"])
def test_a_catch_all_whose_local_part_names_another_domain_is_refused(world, client, auth, target):  # noqa: F811
    auth.login("mallory@b-owners.example")
    b, own_b = world["b"], world["own_b"]
    response = client.post(f"/accounts/{b.id}/domains/{own_b.id}/settings", data={"catch_all": target})
    assert response.status_code == 422
    assert "Use lower-case letters, digits" in html.unescape(response.get_data(as_text=True))
    assert not (db.session.get(Domain, own_b.id).settings or {}).get("catch_all")
