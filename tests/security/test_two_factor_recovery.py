"""When someone lost every second factor: an admin of their account resets those of its corporate
users (and of nobody else), or the operator runs ``flask portal reset-two-factor``."""

from __future__ import annotations

import pytest

from portal.accounts.models import Membership
from portal.audit.models import AuditEvent
from portal.auth.services import find_user
from portal.extensions import db
from portal.roles import catalogue
from portal.roles.services import AccessError
from portal.security import services
from portal.security.models import AuthenticatorApp, RecoveryCode
from portal.users import services as users
from tests.conftest import PASSWORD
from tests.mailboxes.conftest import enabled_domain
from tests.security.two_factor_helpers import enrol_app, make_stale, signed_in

CAROL = "carol@corp.example.org"


def _corporate(owner, account, email: str, domain: str = "corp.example.org"):
    person, _ = users.create_corporate_user(owner, account, first_name="Carol", last_name="Corp", email=email,
                                            personal_mailbox=False)
    from portal.auth.passwords import hash_password

    from portal.timeutil import utcnow

    person.password_hash, person.email_verified_at = hash_password(PASSWORD), utcnow()
    db.session.commit()
    return db.session.execute(db.select(Membership).where(Membership.user_id == person.id)).scalar_one()


@pytest.fixture
def carol(app, make, owner, account):
    """A corporate user of Acme who set up an authenticator app, signed in in a browser of her own."""
    enabled_domain(owner, account, "corp.example.org")
    membership = _corporate(owner, account, CAROL)
    browser = app.test_client()
    browser.post("/login", data={"email": CAROL, "password": PASSWORD})
    enrol_app(browser)
    return membership, browser


@pytest.fixture
def helpdesk(make, account):
    return make.member(account, make.user("helpdesk@example.org"), permissions=("members.view", "users.manage"))


def _reset_url(account, membership) -> str:
    return f"/accounts/{account.id}/members/{membership.id}/two-factor"


def test_admin_reset__removes_every_factor_ends_the_sessions_tells_the_person_and_is_audited(
        client, auth, account, carol, helpdesk, run_jobs, smtp_sink):
    membership, carols_browser = carol
    auth.login("helpdesk@example.org")
    page = client.get(_reset_url(account, membership)).get_data(as_text=True)
    assert "An authenticator app" in page and "10 recovery codes left" in page
    response = client.post(_reset_url(account, membership))
    assert response.status_code == 302
    assert response.headers["Location"] == f"/accounts/{account.id}/members/{membership.id}/settings"
    assert db.session.execute(db.select(AuthenticatorApp)).first() is None
    assert db.session.execute(db.select(RecoveryCode)).first() is None
    assert not signed_in(carols_browser)
    event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "security.reset_by_admin")).scalar_one()
    assert (event.account_id, event.actor_label, event.target_label) == (account.id, "helpdesk@example.org", CAROL)
    assert event.details["removed"] == {"app": 1, "passkeys": 0, "recovery_codes": 10}
    run_jobs()
    [message] = smtp_sink.wait_for(CAROL)
    assert message["Subject"] == "Your two-factor sign-in was reset"
    assert f"helpdesk@example.org, an administrator of Acme, reset the two-factor sign-in of {CAROL}" in \
        smtp_sink.text(message)

    carols_browser.post("/login", data={"email": CAROL, "password": PASSWORD})
    assert signed_in(carols_browser), "her password alone lets her in again, to set it up anew"


def test_admin_reset__an_admin_of_another_account_cannot_reach_the_person(client, auth, make, account, carol):
    membership, _ = carol
    other_owner = make.user("mallory@example.net")
    other = make.account(other_owner, "Elsewhere")
    auth.login("mallory@example.net")
    assert client.get(_reset_url(account, membership)).status_code == 404
    assert client.post(_reset_url(account, membership)).status_code == 404
    assert client.post(f"/accounts/{other.id}/members/{membership.id}/two-factor").status_code == 404
    assert db.session.execute(db.select(AuthenticatorApp)).first() is not None


def test_admin_reset__an_admin_of_account_b_cannot_reset_a_member_of_account_b_who_is_corporate_of_a(
        client, auth, make, owner, account, carol):
    membership, _ = carol
    other_owner = make.user("bob@example.net")
    other = make.account(other_owner, "Elsewhere")
    in_other = make.member(other, membership.user)
    auth.login("bob@example.net")
    response = client.post(f"/accounts/{other.id}/members/{in_other.id}/two-factor")
    assert response.status_code == 404, "she is Acme's corporate user, not Elsewhere's"
    assert db.session.execute(db.select(AuthenticatorApp)).first() is not None


def test_admin_reset__only_for_corporate_users_of_the_account(client, auth, make, account, helpdesk):
    guest = make.member(account, make.user("guest@elsewhere.example"))
    auth.login("helpdesk@example.org")
    assert client.get(_reset_url(account, guest)).status_code == 404


def test_admin_reset__refused_for_someone_holding_rights_the_admin_lacks(client, auth, make, account, carol,
                                                                        helpdesk):
    membership, _ = carol
    make.member(account, membership.user, roles=(catalogue.ADMINISTRATOR,))
    auth.login("helpdesk@example.org")
    response = client.post(_reset_url(account, membership))
    assert response.status_code == 403 and "rights you do not hold" in response.get_data(as_text=True)
    assert db.session.execute(db.select(AuthenticatorApp)).first() is not None


def test_admin_reset__refused_without_users_manage(client, auth, make, account, carol):
    membership, _ = carol
    make.member(account, make.user("viewer@example.org"), permissions=("members.view",))
    auth.login("viewer@example.org")
    assert client.post(_reset_url(account, membership)).status_code == 403


def test_admin_reset__never_of_oneself(owner, account, carol):
    membership, _ = carol
    with pytest.raises(AccessError, match="your own"):
        services.reset_by_admin(membership.user, account, membership.user)


def test_admin_reset__needs_a_fresh_confirmation(client, auth, account, carol, helpdesk):
    membership, _ = carol
    auth.login("helpdesk@example.org")
    make_stale()
    response = client.post(_reset_url(account, membership))
    assert response.status_code == 302 and response.headers["Location"].startswith("/profile/confirm?next=")
    assert db.session.execute(db.select(AuthenticatorApp)).first() is not None


# -- the operator ---------------------------------------------------------------------------------

def test_operator_reset__removes_every_factor_and_is_audited_as_the_command_line(app, carol, run_jobs, smtp_sink):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["portal", "reset-two-factor", CAROL.upper(), "--yes"])
    assert result.exit_code == 0, result.output
    assert f"Two-factor sign-in of {CAROL} reset: 1 authenticator app" in result.output
    assert not services.uses_two_factor(find_user(CAROL))
    event = db.session.execute(db.select(AuditEvent).where(
        AuditEvent.action == "security.reset_by_operator")).scalar_one()
    assert event.source == "cli" and event.target_label == CAROL
    run_jobs()
    assert smtp_sink.wait_for(CAROL)[0]["Subject"] == "Your two-factor sign-in was reset"


def test_operator_reset__asks_first_and_names_an_unknown_address(app, carol):
    runner = app.test_cli_runner()
    declined = runner.invoke(args=["portal", "reset-two-factor", CAROL], input="n\n")
    assert declined.exit_code != 0 and services.uses_two_factor(find_user(CAROL))
    unknown = runner.invoke(args=["portal", "reset-two-factor", "nobody@example.org", "--yes"])
    assert unknown.exit_code != 0 and "No profile has the address nobody@example.org" in unknown.output


def test_admin_reset__the_service_refuses_anyone_not_corporate_of_the_account(make, owner, account, carol):
    membership, _ = carol
    other = make.account(make.user("bob@example.net"), "Elsewhere")
    guest = make.member(account, make.user("guest@elsewhere.example"))
    with pytest.raises(AccessError, match="corporate users"):
        services.reset_by_admin(owner, account, guest.user)
    with pytest.raises(AccessError, match="corporate users"):
        services.reset_by_admin(find_user("bob@example.net"), other, membership.user)
    assert services.uses_two_factor(membership.user)


def test_admin_reset__is_reached_from_the_users_settings_and_found_in_the_audit_filter(
        client, auth, account, carol, helpdesk):
    membership, _browser = carol
    auth.login("helpdesk@example.org")
    settings = client.get(f"/accounts/{account.id}/members/{membership.id}/settings").get_data(as_text=True)
    assert f'href="{_reset_url(account, membership)}"' in settings and "Reset two-factor sign-in…" in settings
    assert client.post(_reset_url(account, membership)).status_code == 302
    auth.login("owner@example.org")
    log = client.get(f"/accounts/{account.id}/audit?family=security")
    assert log.status_code == 200
    page = log.get_data(as_text=True)
    assert '<option value="security" selected>Two-factor sign-in</option>' in page
    assert "Second factors reset by an administrator" in page
    assert "Authenticator app added" in page  # Carol's own enrolment, in the same family


def test_profile_tabs__every_tab_of_ones_profile_reaches_security(client, auth, owner):
    auth.login("owner@example.org")
    for path in ("/profile", "/profile/invites", "/profile/security"):
        assert 'href="/profile/security"' in client.get(path).get_data(as_text=True), path
