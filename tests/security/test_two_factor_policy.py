"""The policy: an account that requires two-factor sign-in of the members who administer it, and
PORTAL_REQUIRE_2FA_SUPERADMIN for superadmins. Every route is walked, as test_route_access does."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import update

from portal.accounts.models import Account
from portal.audit.models import AuditEvent
from portal.auth.models import UserSession
from portal.config import load_settings
from portal.extensions import db
from portal.roles import catalogue
from portal.roles.models import Grant
from portal.security.policy import ADMINISTERING, OWN_PAGES
from portal.web.access import rule_for
from tests.security.two_factor_helpers import enrol_app
from tests.web.test_route_access import _call, _routes, _url

# Account permissions that only let one look: holding them is not administering.
LOOKING = {"members.view", "roles.view", "audit.view", "domains.view", "mailboxes.view", "users.report"}


@pytest.fixture
def world(make):
    """Acme requires two-factor sign-in; its owner, an administrator and a viewer have none."""
    owner = make.user("owner@example.org")
    account = make.account(owner, "Acme")
    account.require_two_factor = True
    make.member(account, make.user("admin@example.org"), roles=(catalogue.ADMINISTRATOR,))
    make.member(account, make.user("viewer@example.org"), permissions=("members.view", "domains.view"))
    other = make.account(make.user("other-owner@example.org"), "Elsewhere")
    from portal.domains.models import ENABLED
    from portal.domains.services import add_domain
    from portal.mailboxes.services import create_mailbox
    from portal.roles.services import create_role

    role = create_role(owner, account, name="Custom", scope="account", description="", permissions={"audit.view"})
    domain = add_domain(owner, account, "acme.example", "local")
    domain.status = ENABLED
    mailbox = create_mailbox(owner, account, domain, "team")
    db.session.commit()
    grant = db.session.execute(db.select(Grant)).scalars().first()
    return {"account_id": account.id, "other_id": other.id, "role_id": role.id, "grant_id": grant.id,
            "domain_id": domain.id, "mailbox_id": mailbox.id,
            "membership_id": grant.membership_id}


def _own_page(rule) -> bool:
    """The person's own pages: their profile, log-out, and their Security pages."""
    return rule.endpoint in OWN_PAGES or (rule.endpoint.startswith("security.") and "account_id" not in rule.arguments)


def _browser_routes(app):
    """Every route a browser session reaches (the JSON API and SCIM take tokens instead)."""
    return [(rule, method) for rule, method in _routes(app) if not rule.rule.startswith(("/api/", "/scim/"))]


def _sent_to_enrolment(response, account_id: int | None) -> bool:
    if response.status_code != 302:
        return False
    location = urlsplit(response.headers["Location"])
    query = parse_qs(location.query)
    return location.path == "/profile/security" and query.get("required_by") == (
        [str(account_id)] if account_id else None)


def test_administering__every_account_permission_is_either_administering_or_looking():
    assert ADMINISTERING <= catalogue.codes(catalogue.ACCOUNT)
    assert ADMINISTERING | LOOKING == catalogue.codes(catalogue.ACCOUNT)
    assert not ADMINISTERING & LOOKING


def test_policy__every_account_route_sends_an_administrator_without_a_second_factor_to_enrolment(
        app, client, auth, world):
    auth.login("owner@example.org")
    walked = 0
    for rule, method in _browser_routes(app):
        if rule_for(rule.endpoint).kind not in ("account", "mailbox"):
            continue
        response = _call(client, method, _url(rule, world))
        assert _sent_to_enrolment(response, world["account_id"]), (rule.endpoint, method, response.status_code,
                                                                    response.headers.get("Location"))
        walked += 1
    assert walked >= 40


def test_policy__the_enrolment_page_says_why_and_comes_back_after_enrolling(client, auth, world):
    auth.login("admin@example.org")
    response = client.get(f"/accounts/{world['account_id']}/members")
    assert _sent_to_enrolment(response, world["account_id"])
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Set up two-factor sign-in to go on." in page
    assert "Acme requires the members who administer it to use two-factor sign-in." in page
    assert "next=/accounts/" in response.headers["Location"]

    enrol_app(client)
    assert client.get(f"/accounts/{world['account_id']}/members").status_code == 200
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Continue where you were going" in page


def test_policy__own_profile_pages_log_out_and_other_accounts_stay_open(client, auth, make, world):
    from portal.auth.services import find_user

    make.member(db.session.get(Account, world["other_id"]), find_user("owner@example.org"),
                roles=(catalogue.ADMINISTRATOR,))
    auth.login("owner@example.org")
    for path in ("/profile", "/profile/security", "/profile/invites", "/accounts", f"/accounts/{world['other_id']}/"):
        assert client.get(path).status_code == 200, path
    assert client.post("/profile/security/app").status_code == 302
    assert client.get("/profile/security/app").status_code == 200
    assert client.post("/logout").headers["Location"].endswith("/login")


def test_policy__a_member_who_only_looks_is_not_asked(client, auth, world):
    auth.login("viewer@example.org")
    assert client.get(f"/accounts/{world['account_id']}/").status_code == 200
    assert client.get(f"/accounts/{world['account_id']}/members").status_code == 200


def test_policy__an_account_that_does_not_require_it_asks_nothing(client, auth, world):
    db.session.execute(update(Account).values(require_two_factor=False))
    db.session.commit()
    auth.login("owner@example.org")
    assert client.get(f"/accounts/{world['account_id']}/members").status_code == 200


def test_policy__htmx_requests_are_told_to_load_the_enrolment_page(client, auth, world):
    auth.login("owner@example.org")
    response = client.get(f"/accounts/{world['account_id']}/members", headers={"HX-Request": "true"})
    assert response.status_code == 200 and response.headers["HX-Redirect"].startswith("/profile/security?")


def test_policy__a_single_sign_on_session_relies_on_the_identity_provider(client, auth, world):
    auth.login("owner@example.org")
    db.session.execute(update(UserSession).values(signed_in_with="single_sign_on"))
    db.session.commit()
    assert client.get(f"/accounts/{world['account_id']}/members").status_code == 200


def test_policy__removing_ones_last_factor_closes_the_account_again(client, auth, world):
    auth.login("owner@example.org")
    enrol_app(client)
    assert client.get(f"/accounts/{world['account_id']}/").status_code == 200
    client.post("/profile/security/app/remove")
    assert _sent_to_enrolment(client.get(f"/accounts/{world['account_id']}/"), world["account_id"])


def test_setting__those_who_hold_account_settings_turn_it_on_and_off_and_it_is_audited(client, auth, make):
    owner = make.user("owner@example.org")
    account = make.account(owner, "Acme")
    auth.login("owner@example.org")
    enrol_app(client)
    url = f"/accounts/{account.id}/settings"
    assert "Members who administer this account must use two-factor sign-in" in client.get(url).get_data(as_text=True)
    from portal.roles.services import system_role

    form = {"name": "Acme", "self_registration": "y", "personal_mailbox_role_id": system_role("mailbox_owner").id,
            "deprovisioned_mailboxes": "disable"}
    assert client.post(url, data={**form, "require_two_factor": "y"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Account, account.id).require_two_factor is True
    assert client.post(url, data=form).status_code == 302
    db.session.expire_all()
    assert db.session.get(Account, account.id).require_two_factor is False
    changes = db.session.execute(db.select(AuditEvent.details).where(
        AuditEvent.action == "account.two_factor_policy").order_by(AuditEvent.id)).scalars().all()
    assert changes == [{"required": True}, {"required": False}]


def test_setting__only_an_owner_turns_it_off(client, auth, make, world):
    """A review: someone holding only the right to change the account's settings (and a second
    factor, which the requirement made them set up) turned the requirement off for every
    administrator, the owners among them."""
    from portal.roles.services import system_role

    account = db.session.get(Account, world["account_id"])
    make.member(account, make.user("settings@example.org"), permissions=("account.settings",))
    auth.login("settings@example.org")
    enrol_app(client)
    url = f"/accounts/{account.id}/settings"
    page = client.get(url).get_data(as_text=True)
    assert "Only an owner of the account may stop requiring it." in page
    box = re.search(r'<input[^>]*id="require_two_factor"[^>]*>', page).group(0)
    assert " disabled" in box and " checked" in box
    form = {"name": "Acme renamed", "self_registration": "y",
            "personal_mailbox_role_id": system_role("mailbox_owner").id, "deprovisioned_mailboxes": "disable"}
    assert client.post(url, data=form).status_code == 302, "the rest of the settings are saved"
    db.session.expire_all()
    account = db.session.get(Account, account.id)
    assert account.name == "Acme renamed" and account.require_two_factor is True
    auth.logout()

    auth.login("owner@example.org")
    enrol_app(client)
    page = client.get(url).get_data(as_text=True)
    assert "Only an owner may turn it off." not in page
    assert client.post(url, data=form).status_code == 302
    db.session.expire_all()
    assert db.session.get(Account, account.id).require_two_factor is False


def test_setting__is_refused_to_those_without_account_settings(client, auth, make, world):
    auth.login("viewer@example.org")
    assert client.post(f"/accounts/{world['account_id']}/settings", data={"name": "x"}).status_code == 403


class TestSuperadmins:
    @pytest.fixture
    def app_settings(self):
        return {"REQUIRE_2FA_SUPERADMIN": True}

    def test_every_signed_in_route_but_their_own_pages_sends_them_to_enrolment(self, app, client, auth, make,
                                                                                world):
        make.user("root@example.org", superadmin=True)
        db.session.execute(update(Account).values(require_two_factor=False))
        db.session.commit()
        auth.login("root@example.org")
        walked = 0
        for rule, method in _browser_routes(app):
            access = rule_for(rule.endpoint)
            if access.kind == "public" or _own_page(rule):
                continue
            response = _call(client, method, _url(rule, world))
            assert _sent_to_enrolment(response, None), (rule.endpoint, method, response.status_code)
            walked += 1
        assert walked >= 45
        assert "This portal requires its superadmins to use two-factor sign-in." in \
            client.get("/profile/security").get_data(as_text=True)
        assert client.get("/profile").status_code == 200

        enrol_app(client)
        assert client.get("/accounts").status_code == 200

    def test_those_who_are_not_superadmins_are_not_concerned(self, client, auth, world):
        db.session.execute(update(Account).values(require_two_factor=False))
        db.session.commit()
        auth.login("owner@example.org")
        assert client.get("/accounts").status_code == 200


def test_superadmin_setting__is_on_by_default_for_an_https_address_only():
    assert load_settings({})["REQUIRE_2FA_SUPERADMIN"] is False
    assert load_settings({"PORTAL_BASE_URL": "https://mail.example.org"})["REQUIRE_2FA_SUPERADMIN"] is True
    assert load_settings({"PORTAL_BASE_URL": "https://mail.example.org",
                          "PORTAL_REQUIRE_2FA_SUPERADMIN": "off"})["REQUIRE_2FA_SUPERADMIN"] is False
    assert load_settings({"PORTAL_REQUIRE_2FA_SUPERADMIN": "yes"})["REQUIRE_2FA_SUPERADMIN"] is True


def test_superadmin_setting__off_lets_a_superadmin_without_a_factor_in(client, auth, make):
    make.user("root@example.org", superadmin=True)
    auth.login("root@example.org")
    assert client.get("/accounts").status_code == 200


class TestSingleSignOn:
    CALLBACK = "http://localhost/login/sso/callback"

    @pytest.fixture(scope="class")
    def provider(self):
        from tests.servers.oidc import OidcProvider

        with OidcProvider() as running:
            running.register_client("portal", "portal-client-secret", [self.CALLBACK])
            yield running

    @pytest.fixture
    def app_settings(self, provider):
        provider.reset()
        return {"OIDC_ISSUER": provider.issuer, "OIDC_CLIENT_ID": "portal", "OIDC_CLIENT_SECRET": "portal-client-secret"}

    def _sso(self, client, start: str = "/login/sso"):
        import requests

        begun = client.get(start)
        authorize = requests.get(begun.headers["Location"], allow_redirects=False, timeout=5)
        back = urlsplit(authorize.headers["Location"])
        return client.get(f"{back.path}?{back.query}")

    def test_is_not_sent_to_enrol_but_is_asked_for_a_factor_set_up(self, app, client, auth, provider, world):
        """The account's requirement is the provider's business for a session it opened; a second
        factor the person set up is asked for all the same (a review: the provider's word for the
        address skipped it)."""
        from portal.auth.services import find_user

        find_user("owner@example.org").oidc_subject = "corp-owner"
        db.session.commit()
        provider.login_as(sub="corp-owner", email="owner@example.org")
        response = self._sso(client)
        assert response.status_code == 302 and "/two-factor" not in response.headers["Location"]
        session_row = db.session.execute(db.select(UserSession).order_by(UserSession.id.desc())).scalars().first()
        assert session_row.signed_in_with == "single_sign_on"
        assert client.get(f"/accounts/{world['account_id']}/members").status_code == 200, "not sent to enrol"

        enrol_app(client)
        auth.logout()
        provider.login_as(sub="corp-owner", email="owner@example.org")
        response = self._sso(client)
        assert response.status_code == 302 and response.headers["Location"].endswith("/login/two-factor")
        assert client.get(f"/accounts/{world['account_id']}/members").status_code == 302

    def test_signing_in_again_confirms_and_comes_back(self, client, provider, make):
        make.user("sso@example.org")
        provider.login_as(sub="corp-sso", email="sso@example.org")
        self._sso(client)
        page = client.get("/profile/confirm?next=/profile/security").get_data(as_text=True)
        assert "Sign in again with" in page and "/login/sso?next=/profile/security" in page
        provider.login_as(sub="corp-sso", email="sso@example.org")
        response = self._sso(client, "/login/sso?next=/profile/security")
        assert response.status_code == 302 and response.headers["Location"] == "/profile/security"


def test_open_routes__the_only_two_factor_pages_open_without_an_account_rule_are_these(app):
    """The second step is public (no session yet); the person's own Security pages need a session;
    the reset of someone else's factors is an account page."""
    kinds = {rule.endpoint: rule_for(rule.endpoint).kind for rule in app.url_map.iter_rules()
             if rule.endpoint.startswith("security.")}
    assert {endpoint for endpoint, kind in kinds.items() if kind == "public"} == {
        "security.second_step", "security.second_step_recovery", "security.second_step_passkey_options",
        "security.second_step_passkey"}
    assert {endpoint for endpoint, kind in kinds.items() if kind == "signed_in"} == {
        "security.index", "security.app_setup", "security.confirm_app", "security.remove_app",
        "security.passkey_options", "security.add_passkey", "security.remove_passkey", "security.new_recovery_codes",
        "security.confirm", "security.confirm_code", "security.confirm_passkey_options", "security.confirm_passkey"}
    assert kinds["security.admin_reset"] == "account"
    assert rule_for("security.admin_reset").permission == "users.manage"
