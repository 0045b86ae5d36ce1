import re

import pytest

from portal.accounts.models import Membership
from portal.auth.models import User
from portal.auth.passwords import hash_password
from portal.timeutil import utcnow
from portal.extensions import db
from portal.mailboxes.models import Mailbox
from portal.users import services
from tests.conftest import PASSWORD, first_link


def test_create__user_mailbox_and_onboarding_mail_to_the_recovery_address(owner, account, domain, run_jobs,
                                                                         smtp_sink, client):
    user, link = services.create_corporate_user(owner, account, first_name=" Jane ", last_name="Doe",
                                                email="Jane.Doe@example.org", personal_mailbox=True,
                                                recovery_email="jane@home.example")
    db.session.commit()
    assert link is None
    assert user.is_corporate and user.corporate_account_id == account.id and user.password_hash is None
    mailbox = db.session.execute(db.select(Mailbox).where(Mailbox.address == "jane.doe@example.org")).scalar_one()
    assert user.default_mailbox_id == mailbox.id and mailbox.owner_id == user.id
    run_jobs()
    db.session.refresh(mailbox)
    assert mailbox.status == "enabled"
    message = smtp_sink.wait_for("jane@home.example")[0]
    path = first_link(smtp_sink.text(message), "/welcome/").removeprefix("http://localhost")
    response = client.post(path, data={"password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 302
    db.session.refresh(user)
    assert user.password_hash and user.is_verified
    assert client.get(path).status_code == 410


def test_create__without_recovery_address_the_admin_gets_the_link_once(owner, account, domain, client, auth):
    auth.login("owner@example.org")
    response = client.post(f"/accounts/{account.id}/users/new", data={
        "first_name": "Jane", "last_name": "Doe", "email": "jane@example.org"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "/welcome/" in page and "shown this once" in page
    assert db.session.execute(db.select(Mailbox)).first() is None  # the checkbox was not ticked
    # Shown, not sent (a walkthrough: the log said "Onboarding link sent").
    from portal.audit.models import AuditEvent
    assert [event.action for event in db.session.execute(db.select(AuditEvent).where(
        AuditEvent.action.like("user.%onboarding%"))).scalars()] == ["user.onboarding_shown"]
    # The form's box starts as the account's setting for new corporate users has it.
    def box() -> str:
        return re.search(r'<input[^>]*name="personal_mailbox"[^>]*>', client.get(
            f"/accounts/{account.id}/users/new").get_data(as_text=True)).group(0)

    assert "checked" not in box()
    account.personal_mailboxes = True
    db.session.commit()
    assert "checked" in box()


@pytest.mark.parametrize("email, message", [
    ("jane@elsewhere.example", "active domains"),
    ("not an address", "An address needs an @ sign."),
    ("owner@example.org", "already has a profile"),
])
def test_create__refuses_addresses_off_the_active_domains(owner, account, domain, email, message):
    with pytest.raises(services.UserError, match=message):
        services.create_corporate_user(owner, account, first_name="J", last_name="D", email=email,
                                       personal_mailbox=False)


def test_create__refused_on_a_domain_that_is_not_enabled(owner, account, domain):
    domain.status = "disabled"
    with pytest.raises(services.UserError, match="disabled"):
        services.create_corporate_user(owner, account, first_name="J", last_name="D", email="j@example.org",
                                       personal_mailbox=False)


def test_create_form__keeps_what_was_typed(owner, account, domain, client, auth):
    auth.login("owner@example.org")
    response = client.post(f"/accounts/{account.id}/users/new", data={
        "first_name": "", "last_name": "Doe", "email": "jane@nowhere.example", "recovery_email": "r@x.example"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'value="Doe"' in page and 'value="jane@nowhere.example"' in page and "Enter the first name" in page
    # The hint names the domains an address may be on (a walkthrough: the refusal named none).
    assert "On one of the account&#39;s active domains: example.org." in page or \
        "On one of the account's active domains: example.org." in page


def test_settings_tab__only_for_corporate_users_and_saves(owner, account, domain, client, auth, make, app):
    app.config["PORTAL"] = {**app.config["PORTAL"], "USER_PHONES": True}
    user, _ = services.create_corporate_user(owner, account, first_name="Jane", last_name="Doe",
                                             email="jane@example.org", personal_mailbox=True)
    outsider = make.member(account, make.user("guest@elsewhere.example"))
    db.session.commit()
    membership = db.session.execute(db.select(Membership).where(Membership.user_id == user.id)).scalar_one()
    auth.login("owner@example.org")
    assert client.get(f"/accounts/{account.id}/members/{outsider.id}/settings").status_code == 404
    url = f"/accounts/{account.id}/members/{membership.id}/settings"
    response = client.post(url, data={"first_name": "Janet", "last_name": "Doe", "timezone": "Europe/Paris",
                                      "phone": "+33 1 23 45 67 89", "default_mailbox_id": user.default_mailbox_id,
                                      "recovery_email": ""})
    assert response.status_code == 302
    db.session.refresh(user)
    assert (user.name, user.timezone, user.phone) == ("Janet Doe", "Europe/Paris", "+33 1 23 45 67 89")
    response = client.post(url, data={"first_name": "Janet", "last_name": "Doe", "timezone": "UTC",
                                      "phone": "call me maybe", "default_mailbox_id": 0, "recovery_email": ""})
    assert response.status_code == 422 and "digits" in response.get_data(as_text=True)


def test_remove__revokes_access_at_once_and_disables_the_mailbox(owner, account, domain, run_jobs, app):
    user, _ = services.create_corporate_user(owner, account, first_name="Jane", last_name="Doe",
                                             email="jane@example.org", personal_mailbox=True)
    db.session.commit()
    run_jobs()
    other_client = app.test_client()
    user.password_hash = hash_password(PASSWORD)
    user.email_verified_at = utcnow()
    db.session.commit()
    assert other_client.post("/login", data={"email": "jane@example.org", "password": PASSWORD}).status_code == 302
    membership = db.session.execute(db.select(Membership).where(Membership.user_id == user.id)).scalar_one()
    outcome = services.remove_corporate_user(owner, account, membership, "disable")
    db.session.commit()
    assert outcome == ["jane@example.org: being disabled"]
    assert other_client.get(f"/accounts/{account.id}/").status_code == 302  # session ended
    run_jobs()
    mailbox = db.session.execute(db.select(Mailbox)).scalar_one()
    assert mailbox.status == "disabled"
    db.session.refresh(user)
    assert not user.is_corporate
    from portal.audit.models import AuditEvent

    assert db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "user.remove_corporate")).scalar_one()


def test_create__not_at_an_address_this_account_invited(client, auth, owner, account, make, run_jobs):
    """Found by an attacker-side review: someone who may only create users created one at an invited
    address, set its password through the link shown to them, and accepted the invitation."""
    from portal.invitations import services as invitations
    from portal.roles.services import system_role
    from tests.mailboxes.conftest import enabled_domain

    enabled_domain(owner, account, "corp.example.org")
    invitation = invitations.start(owner, account, "cto@corp.example.org")
    invitations.add_grant(owner, invitation, role_id=system_role("administrator").id)
    invitations.send_invitation(owner, invitation)
    db.session.commit()
    make.member(account, make.user("hr@example.org"), permissions=("members.view", "users.create"))
    auth.login("hr@example.org")
    answer = client.post(f"/accounts/{account.id}/users/new", data={"first_name": "C", "last_name": "To",
                                                                    "email": "CTO@corp.example.org"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "An invitation is waiting for cto@corp.example.org" in page
    assert "/welcome/" not in page
    assert db.session.execute(db.select(User).where(User.email == "cto@corp.example.org")).first() is None


def test_create__another_accounts_invitation_does_not_block_it_nor_can_the_profile_answer_it(
        client, auth, owner, account, make, run_jobs):
    """Another account's pending invitation to an address on this account's own domain stopped this
    account from creating its own person (an attacker-side review: any account could block any
    other's onboarding). It no longer does; and the profile, signed in through the onboarding link
    shown to whoever created it, cannot answer that invitation without the invitation's own link."""
    from portal.invitations import services as invitations
    from portal.invitations.models import Invitation
    from portal.roles.services import system_role
    from tests.mailboxes.conftest import enabled_domain

    enabled_domain(owner, account, "corp.example.org")
    partner_owner = make.user("boss@partner.example")
    partner = make.account(partner_owner, "Partner")
    invitation = invitations.start(partner_owner, partner, "cto@corp.example.org")
    invitations.add_grant(partner_owner, invitation, role_id=system_role("administrator").id)
    invitations.send_invitation(partner_owner, invitation)
    db.session.commit()
    invitation_id = invitation.id
    make.member(account, make.user("hr@example.org"), permissions=("members.view", "users.create"))
    auth.login("hr@example.org")
    answer = client.post(f"/accounts/{account.id}/users/new", data={"first_name": "C", "last_name": "To",
                                                                    "email": "CTO@corp.example.org"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "/welcome/" in page
    welcome = re.search(r"/welcome/[\w-]+", page).group(0)
    auth.logout()
    assert client.post(welcome, data={"password": "a brand new password", "confirm": "a brand new password"}
                       ).status_code == 302  # signed in as the new profile
    accepted = client.post(f"/profile/invites/{invitation_id}/accept", follow_redirects=True)
    assert "Open the link in the invitation" in accepted.get_data(as_text=True)
    assert db.session.get(Invitation, invitation_id).status == "pending"
    assert not db.session.execute(db.select(Membership).where(Membership.account_id == partner.id,
                                                              Membership.user_id != partner_owner.id)).first()


def test_settings__renaming_someone_needs_every_right_they_hold(owner, account, domain, make, client, auth):
    """Found by an attacker-side review: someone with only users.manage renamed an administrator (the name
    their colleagues see in mails, lists and the audit log)."""
    admin, _link = services.create_corporate_user(owner, account, first_name="Ada", last_name="Admin",
                                                  email="ada@example.org", personal_mailbox=False)
    plain, _link = services.create_corporate_user(owner, account, first_name="Pat", last_name="Plain",
                                                  email="pat@example.org", personal_mailbox=False)
    from portal.roles.models import Grant
    from portal.roles.services import system_role

    memberships = {m.user_id: m for m in db.session.execute(db.select(Membership)).scalars()}
    db.session.add(Grant(membership_id=memberships[admin.id].id, account_id=account.id,
                         role_id=system_role("administrator").id))
    make.member(account, make.user("hr@elsewhere.example"), permissions=("members.view", "users.manage"))
    db.session.commit()
    auth.login("hr@elsewhere.example")

    def rename(user, first):
        return client.post(f"/accounts/{account.id}/members/{memberships[user.id].id}/settings", data={
            "first_name": first, "last_name": "Renamed", "timezone": "UTC", "default_mailbox_id": 0})

    refused = rename(admin, "Mallory")
    assert refused.status_code == 422 and "rights you do not hold" in refused.get_data(as_text=True)
    assert rename(plain, "Pat").status_code == 302
    db.session.expire_all()
    assert db.session.get(User, admin.id).name == "Ada Admin"
    assert db.session.get(User, plain.id).name == "Pat Renamed"


def test_remove__needs_what_removing_a_member_needs(owner, account, domain, make):
    """Removing a corporate user (page, bulk, API, SCIM) skipped the checks of removing a member: a
    deputy holding every permission one by one removed a corporate co-owner, and someone who may
    manage users but held nothing on the CEO's mailbox removed its assistant."""
    from portal.mailboxes import services as mailboxes
    from portal.roles import catalogue
    from portal.roles.services import AccessError, grant_mailbox_role, owner_memberships, system_role

    co_owner, _ = services.create_corporate_user(owner, account, first_name="Co", last_name="Owner",
                                                 email="co@example.org", personal_mailbox=False)
    assistant, _ = services.create_corporate_user(owner, account, first_name="As", last_name="Sistant",
                                                  email="assistant@example.org", personal_mailbox=False)
    db.session.commit()
    co_membership, assistant_membership = (
        db.session.execute(db.select(Membership).where(Membership.user_id == user.id)).scalar_one()
        for user in (co_owner, assistant))
    from portal.roles.services import grant_role

    grant_role(owner, account, co_membership, system_role(catalogue.OWNER))
    ceo = mailboxes.create_mailbox(owner, account, domain, "ceo")
    grant_mailbox_role(owner, account, assistant_membership, ceo.id, system_role(catalogue.MAILBOX_OWNER))
    db.session.commit()
    deputy = make.member(account, make.user("deputy@example.net"),
                         permissions=tuple(sorted(catalogue.codes(catalogue.ACCOUNT))))
    with pytest.raises(AccessError, match="Only an owner"):
        services.remove_corporate_user(deputy.user, account, co_membership, "keep")
    db.session.rollback()
    junior = make.member(account, make.user("junior@example.net"), permissions=("members.view", "users.manage"))
    with pytest.raises(AccessError, match="permissions on a mailbox"):
        services.remove_corporate_user(junior.user, account, assistant_membership, "keep")
    db.session.rollback()
    assert co_membership.id in owner_memberships(account)
    assert db.session.get(Membership, assistant_membership.id) is not None
    services.remove_corporate_user(owner, account, co_membership, "keep")
    services.remove_corporate_user(owner, account, assistant_membership, "keep")
    db.session.commit()
    assert db.session.get(Membership, co_membership.id) is None


def test_settings__a_name_kept_before_names_were_checked_together_does_not_block_the_rest(owner, account, domain):
    """First and last names are at most 199 characters together now; someone whose name was kept
    longer before keeps it while their other settings are changed."""
    from portal.users import services as users_services

    user, _link = users_services.create_corporate_user(owner, account, first_name="A", last_name="B",
                                                       email="longname@example.org", personal_mailbox=False)
    if db.engine.dialect.name != "sqlite":
        pytest.skip("only SQLite kept such names: PostgreSQL refused them")
    user.name = "a" * 100 + " " + "b" * 100
    db.session.commit()
    users_services.update_settings(owner, account, user, first_name="a" * 100, last_name="b" * 100,
                                   timezone="Europe/Paris", phone="", default_mailbox_id=None, recovery_email="")
    assert user.timezone == "Europe/Paris"
    with pytest.raises(users_services.UserError, match="together are at most 199"):
        users_services.update_settings(owner, account, user, first_name="a" * 100, last_name="c" * 100,
                                       timezone="UTC", phone="", default_mailbox_id=None, recovery_email="")


@pytest.mark.parametrize("permissions, lands_on", [
    (("users.create",), "/users/new"),
    (("users.report",), "/users/reports"),
    (("members.view", "users.create"), "/members"),
])
def test_menu__whoever_may_only_create_users_or_ask_for_the_report_reaches_those_pages(
        account, make, client, auth, permissions, lands_on):
    """The Users entry of the menu needed 'See members': someone who may only create users (or only
    ask for the users report) had no way to their pages but typing the address (a walkthrough)."""
    make.member(account, make.user("clerk@example.org"), permissions=permissions)
    auth.login("clerk@example.org")
    overview = client.get(f"/accounts/{account.id}/").get_data(as_text=True)
    entry = re.search(r'<a href="([^"]+)"[^>]*>Users</a></li>', overview)
    assert entry is not None and entry.group(1) == f"/accounts/{account.id}{lands_on}"
    landed = client.get(entry.group(1))
    assert landed.status_code == 200
    page = landed.get_data(as_text=True)
    # The crumbs link the Users list only for whoever may see it (a link to a refusal otherwise).
    assert (f'href="/accounts/{account.id}/members"' in page) == ("members.view" in permissions)
    if "users.create" in permissions:
        upload = client.get(f"/accounts/{account.id}/users/import").get_data(as_text=True)
        assert f'href="/accounts/{account.id}/users/import"' in client.get(
            f"/accounts/{account.id}/users/new").get_data(as_text=True)
        assert f'href="/accounts/{account.id}/users/new"' in upload
        assert (f'href="/accounts/{account.id}/members"' in upload) == ("members.view" in permissions)


def test_recovery_address__one_a_mailbox_of_the_account_receives_is_refused_at_creation_and_in_settings(
        owner, account, domain, client, auth, run_jobs):
    """A review of the import found a shared mailbox taken as someone's recovery address: its readers
    would get their links. Refused on the form as in the workbook, at the field; an address only
    the person reads (another account's mailboxes are that account's to know) is kept."""
    from portal.mailboxes import services as mailboxes
    from tests.mailboxes.conftest import enabled_domain

    team = enabled_domain(owner, account, "team.example")
    mailboxes.create_mailbox(owner, account, team, "desk")
    db.session.commit()
    with pytest.raises(services.UserError) as refused:
        services.create_corporate_user(owner, account, first_name="Jane", last_name="Doe", email="jane@example.org",
                                       personal_mailbox=False, recovery_email="Desk@Team.example")
    assert refused.value.field == "recovery_email" and "received by a mailbox of this account" in str(refused.value)
    db.session.rollback()
    assert db.session.execute(db.select(User).where(User.email == "jane@example.org")).first() is None
    user, _ = services.create_corporate_user(owner, account, first_name="Jane", last_name="Doe",
                                             email="jane@example.org", personal_mailbox=False,
                                             recovery_email="jane@home.example")
    db.session.commit()
    membership = db.session.execute(db.select(Membership).where(Membership.user_id == user.id)).scalar_one()
    auth.login("owner@example.org")
    url = f"/accounts/{account.id}/members/{membership.id}/settings"
    response = client.post(url, data={"first_name": "Jane", "last_name": "Doe", "timezone": "UTC", "phone": "",
                                      "default_mailbox_id": 0, "recovery_email": "desk@team.example"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "received by a mailbox of this account" in page
    db.session.refresh(user)
    assert user.recovery_email == "jane@home.example"
    # name+tag@ reaches name@ where nothing has the tagged name, as mail servers deliver it (a
    # review: desk+x@ was accepted where desk@ was refused); a person's own tagged address too.
    for tagged in ("desk+x@team.example", "Desk+a+b@Team.example"):
        response = client.post(url, data={"first_name": "Jane", "last_name": "Doe", "timezone": "UTC", "phone": "",
                                          "default_mailbox_id": 0, "recovery_email": tagged})
        assert response.status_code == 422 and "received by a mailbox of this account" in response.get_data(
            as_text=True), tagged
    with pytest.raises(services.UserError) as refused:
        services.create_corporate_user(owner, account, first_name="Desk", last_name="Tagged",
                                       email="desk+new@team.example", personal_mailbox=False)
    assert refused.value.field == "email" and "is a mailbox" in str(refused.value)
    db.session.rollback()
