"""Holes a review found, each shown closed."""

import pytest

from portal.accounts import services as accounts
from portal.accounts.models import Membership
from portal.auth.passwords import hash_password
from portal.extensions import db
from portal.invitations import services as invitations
from portal.mailboxes import services as mailboxes
from portal.roles.services import AccessError, account_permissions, create_role, mailbox_permissions, system_role
from portal.timeutil import utcnow
from portal.users import services as users
from tests.conftest import PASSWORD
from tests.mailboxes.conftest import enabled_domain


@pytest.fixture
def corporate_owner(owner, account):
    """The owner's own address is on the account's domain, so enabling it made them corporate."""
    domain = enabled_domain(owner, account)
    from portal.users import corporate

    corporate.make_corporate(owner, domain)
    db.session.commit()
    return domain


def _membership(user, account):
    return db.session.execute(db.select(Membership).where(Membership.user_id == user.id,
                                                          Membership.account_id == account.id)).scalar_one()


def test_onboarding_link__never_replaces_a_password(corporate_owner, owner, account, make):
    admin = make.member(account, make.user("admin@elsewhere.example"), roles=("administrator",)).user
    with pytest.raises(users.UserError, match="already set a password"):
        users.send_onboarding(admin, account, owner)
    link = users.issue_onboarding_link(owner)
    with pytest.raises(Exception, match="already has a password"):
        users.complete_onboarding(link.rsplit("/", 1)[-1], "a brand new password")
    db.session.refresh(owner)
    from portal.auth.passwords import verify_password

    assert verify_password(owner.password_hash, PASSWORD)


def test_recovery_address__only_changed_by_someone_holding_all_the_users_permissions(corporate_owner, owner, account,
                                                                                  make):
    admin = make.member(account, make.user("admin@elsewhere.example"), roles=("administrator",)).user
    with pytest.raises(AccessError):
        users.update_settings(admin, account, owner, first_name="Olga", last_name="Owner", timezone="UTC", phone="",
                              default_mailbox_id=None, recovery_email="attacker@evil.example")


def test_remove_user__never_removes_the_last_owner(corporate_owner, owner, account, make):
    everything = create_role(owner, account, name="Everything", scope="account", description="",
                             permissions=set(account_permissions(owner, account)))
    deputy = make.member(account, make.user("deputy@elsewhere.example"))
    from portal.roles.services import grant_role

    grant_role(owner, account, deputy, everything)
    db.session.commit()
    with pytest.raises(AccessError, match="last owner"):
        users.remove_corporate_user(deputy.user, account, _membership(owner, account), "keep")


def test_personal_mailbox_role__a_custom_one_is_all_the_owner_gets(owner, account):
    enabled_domain(owner, account)
    reader = create_role(owner, account, name="Reader", scope="mailbox", description="",
                         permissions={"mailbox.view", "mailbox.read"})
    account.personal_mailboxes, account.personal_mailbox_role_id = True, reader.id
    user, _ = users.create_corporate_user(owner, account, first_name="Jane", last_name="Doe",
                                          email="jane@example.org", personal_mailbox=True)
    assert mailbox_permissions(user, account, user.default_mailbox_id) == {"mailbox.view", "mailbox.read"}


def test_mailbox_at_someones_login_address__only_as_their_own_personal_mailbox(owner, account, make):
    domain = enabled_domain(owner, account)
    clerk = make.member(account, make.user("clerk@elsewhere.example"), permissions=("mailboxes.create",)).user
    with pytest.raises(mailboxes.MailboxError, match="login address"):
        mailboxes.create_mailbox(clerk, account, domain, "owner", kind="personal", owner=clerk)
    with pytest.raises(mailboxes.MailboxError, match="login address"):
        mailboxes.create_mailbox(clerk, account, domain, "owner", kind="shared")
    assert mailboxes.create_mailbox(owner, account, domain, "owner", kind="personal", owner=owner).address


def test_deleting_a_mailbox__needs_the_power_to_manage_every_mailbox(owner, account, client, auth, run_jobs):
    enabled_domain(owner, account)
    jane, _ = users.create_corporate_user(owner, account, first_name="Jane", last_name="Doe",
                                          email="jane@example.org", personal_mailbox=True)
    jane.password_hash, jane.email_verified_at = hash_password(PASSWORD), utcnow()
    db.session.commit()
    run_jobs()
    auth.login("jane@example.org")
    assert client.post(f"/accounts/{account.id}/mailboxes/{jane.default_mailbox_id}/delete").status_code == 403


def test_account_deletion__only_by_an_owner(owner, account, make):
    deputy = make.member(account, make.user("deputy@elsewhere.example"), roles=("administrator",),
                         permissions=("account.delete",)).user
    with pytest.raises(accounts.DeletionRefused, match="Only an owner"):
        accounts.delete_account(deputy, account, "Acme", delete_mailboxes=False)


def test_invitation__offers_the_inviter_no_longer_holds_are_not_granted(owner, account, make):
    admin_membership = make.member(account, make.user("admin@elsewhere.example"), roles=("administrator",))
    guest = make.user("guest@elsewhere.example")
    invitation = invitations.start(admin_membership.user, account, "guest@elsewhere.example")
    invitations.add_grant(admin_membership.user, invitation, role_id=system_role("administrator").id)
    invitations.send_invitation(admin_membership.user, invitation)
    db.session.delete(admin_membership)
    db.session.commit()
    gone = invitations.accept(guest, invitation)
    assert gone == ["Account Administrator"] and account_permissions(guest, account) == frozenset()


def test_invitation_registration__goes_through_sso_when_passwords_are_off(owner, account, app, client, run_jobs,
                                                                         smtp_sink):
    invitation = invitations.start(owner, account, "new@elsewhere.example")
    invitations.send_invitation(owner, invitation)
    db.session.commit()
    run_jobs()
    token = smtp_sink.text(smtp_sink.wait_for("new@elsewhere.example")[0]).split("/invitations/")[1].split()[0]
    app.config["PORTAL"] = {**app.config["PORTAL"], "PASSWORD_LOGIN": False}
    response = client.post(f"/invitations/{token}/register", data={"name": "N", "password": PASSWORD,
                                                                   "confirm": PASSWORD})
    assert response.status_code == 302 and "/register" not in response.headers["Location"]
