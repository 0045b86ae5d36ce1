"""Nobody obtains the means to act as a person who holds more rights than they do (finding 3):
not an onboarding link, not the password of the mailbox their log-in mail arrives in."""

from __future__ import annotations

import pytest

from portal.accounts.models import Membership
from portal.auth.passwords import hash_password
from portal.domains.models import ENABLED
from portal.domains.services import add_domain
from portal.extensions import db
from portal.mailboxes.models import Mailbox
from portal.mailboxes.services import create_mailbox
from portal.users import services as users
from tests.conftest import PASSWORD


@pytest.fixture
def corp(owner, account):
    domain = add_domain(owner, account, "corp.example.org", "local")
    domain.status, domain.verified_at = ENABLED, domain.created_at
    db.session.commit()
    return domain


@pytest.fixture
def helpdesk(make, account):
    """A member who may manage corporate users, and nothing about mailboxes."""
    return make.member(account, make.user("helpdesk@example.org"), permissions=("members.view", "users.manage"))


def _membership(user, account):
    return db.session.execute(db.select(Membership).where(Membership.user_id == user.id,
                                                          Membership.account_id == account.id)).scalar_one()


def test_onboarding__a_link_is_never_shown_for_someone_with_mailbox_rights_the_actor_lacks(
        client, auth, owner, account, corp, helpdesk, run_jobs, smtp_sink):
    ceo, link = users.create_corporate_user(owner, account, first_name="Chief", last_name="Exec",
                                            email="ceo@corp.example.org", personal_mailbox=False)
    db.session.commit()
    shared = create_mailbox(owner, account, corp, "board")
    from portal.roles.services import grant_mailbox_role, system_role

    grant_mailbox_role(owner, account, _membership(ceo, account), shared.id, system_role("mailbox_owner"))
    db.session.commit()

    auth.login("helpdesk@example.org")
    response = client.post(f"/accounts/{account.id}/members/{_membership(ceo, account).id}/onboarding")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "/welcome/" not in page and "holds rights you do not hold" in page
    run_jobs()
    assert smtp_sink.messages == [] or all("/welcome/" not in smtp_sink.text(m) for m in smtp_sink.messages)


def test_onboarding__with_a_personal_mailbox_the_link_goes_to_the_mailbox_not_the_admin(
        client, auth, owner, account, corp, helpdesk, run_jobs, smtp_sink):
    ceo, link = users.create_corporate_user(owner, account, first_name="Chief", last_name="Exec",
                                            email="ceo@corp.example.org", personal_mailbox=True)
    db.session.commit()
    assert link is None, "the creator is not shown a link for someone who gets a mailbox"
    run_jobs()
    run_jobs()
    [message] = smtp_sink.wait_for("ceo@corp.example.org")
    assert "/welcome/" in smtp_sink.text(message)
    auth.login("helpdesk@example.org")
    response = client.post(f"/accounts/{account.id}/members/{_membership(ceo, account).id}/onboarding")
    assert response.status_code == 302
    assert "/welcome/" not in client.get(response.headers["Location"]).get_data(as_text=True)


def test_onboarding__an_admin_who_holds_everything_the_person_holds_may_see_the_link(
        client, auth, owner, account, corp, make):
    newcomer, link = users.create_corporate_user(owner, account, first_name="New", last_name="Comer",
                                                 email="new@corp.example.org", personal_mailbox=False)
    db.session.commit()
    assert link and "/welcome/" in link
    auth.login("owner@example.org")
    response = client.post(f"/accounts/{account.id}/members/{_membership(newcomer, account).id}/onboarding")
    assert response.status_code == 200 and "/welcome/" in response.get_data(as_text=True)


def test_onboarding__never_for_someone_with_rights_in_another_account(client, auth, owner, account, corp, make):
    person, _ = users.create_corporate_user(owner, account, first_name="Dual", last_name="Role",
                                            email="dual@corp.example.org", personal_mailbox=False)
    elsewhere = make.account(make.user("other-owner@example.org"), "Elsewhere")
    make.member(elsewhere, person, roles=("administrator",))
    auth.login("owner@example.org")
    response = client.post(f"/accounts/{account.id}/members/{_membership(person, account).id}/onboarding")
    assert response.status_code == 302
    assert "/welcome/" not in client.get(response.headers["Location"]).get_data(as_text=True)


def test_mailbox_password__of_a_login_address_needs_every_right_its_person_holds(
        client, auth, owner, account, corp, make, run_jobs):
    """Resetting the password of someone's login mailbox would let a mail admin reset their profile too."""
    boss, _ = users.create_corporate_user(owner, account, first_name="Big", last_name="Boss",
                                          email="boss@corp.example.org", personal_mailbox=True)
    boss.password_hash, boss.email_verified_at = hash_password(PASSWORD), boss.created_at
    db.session.commit()
    run_jobs()
    mailbox = db.session.execute(db.select(Mailbox).where(Mailbox.address == "boss@corp.example.org")).scalar_one()
    make.member(account, make.user("mailadmin@example.org"), permissions=("mailboxes.view", "mailboxes.manage"))
    from portal.roles.services import grant_role, system_role

    grant_role(owner, account, _membership(boss, account), system_role("administrator"))
    db.session.commit()
    auth.login("mailadmin@example.org")
    response = client.post(f"/accounts/{account.id}/mailboxes/{mailbox.id}/password")
    assert response.status_code == 409 and "login address" in response.get_data(as_text=True)
    response = client.post(f"/accounts/{account.id}/mailboxes/{mailbox.id}/password/reveal")
    assert response.status_code == 403
    auth.logout()
    auth.login("boss@corp.example.org")
    assert client.post(f"/accounts/{account.id}/mailboxes/{mailbox.id}/password").status_code == 302
