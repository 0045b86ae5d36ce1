"""Walks every route in the URL map as three outsiders and checks each is kept out.

The expectations come from two places that must agree: the rule each view
declares, and the short lists below of what may be public or open to any
signed-in person. A new route without a rule, or one declared more open than
these lists allow, fails here.
"""

from __future__ import annotations

import re

import pytest
from werkzeug.routing import IntegerConverter

from portal.roles.models import Grant
from portal.extensions import db
from portal.web.access import rule_for

# Routes anyone may reach without logging in.
PUBLIC_ENDPOINTS = {
    "static", "web.home", "web.healthz",
    "auth.setup", "auth.register", "auth.verify", "auth.resend_verification", "auth.login",
    "auth.forgot_password", "auth.reset_password", "invitations.landing", "invitations.register",
    "invitations.decline_by_link",
    "auth.sso_start", "auth.sso_callback", "users.welcome",
    "api.openapi", "api.reference", "web.language", "web.accessibility",
    # The second step of a password log-in: the person has proved their password, not yet
    # their second factor, so is not signed in (portal.security.second_step).
    "security.second_step", "security.second_step_recovery", "security.second_step_passkey",
    "security.second_step_passkey_options",
}
# Blueprints reached with a bearer token, never a session: walked as outsiders by their own
# tests (tests/api, tests/scim), where a session cookie gets 401 and changes use PUT and DELETE.
TOKEN_BLUEPRINTS = ("api.", "scim.")
# Routes any signed-in person may reach, whatever their accounts.
SIGNED_IN_ENDPOINTS = {
    "auth.logout", "auth.profile", "auth.change_password", "auth.end_session", "auth.end_other_sessions",
    "accounts.index", "accounts.create",
    "accounts.delete_profile",
    "invitations.mine", "invitations.accept", "invitations.decline",
    "security.index", "security.app_setup", "security.confirm_app", "security.remove_app",
    "security.passkey_options", "security.add_passkey", "security.remove_passkey", "security.new_recovery_codes",
    "security.confirm", "security.confirm_code", "security.confirm_passkey_options", "security.confirm_passkey",
}


@pytest.fixture
def world(make):
    """Account A with an owner and a member without permissions; account B with its own owner."""
    owner_a = make.user("owner-a@example.org")
    account_a = make.account(owner_a, "Account A")
    nobody = make.user("nobody@example.org")
    nobody_membership = make.member(account_a, nobody)
    owner_b = make.user("owner-b@example.org")
    make.account(owner_b, "Account B")
    from portal.roles.services import create_role

    role = create_role(owner_a, account_a, name="Custom", scope="account", description="", permissions={"audit.view"})
    owner_grant = db.session.execute(db.select(Grant)).scalars().first()
    from portal.domains.models import ENABLED
    from portal.domains.services import add_domain
    from portal.mailboxes.services import create_mailbox

    domain = add_domain(owner_a, account_a, "a.example", "local")
    domain.status = ENABLED
    mailbox = create_mailbox(owner_a, account_a, domain, "team")
    db.session.commit()
    return {
        "account_id": account_a.id, "membership_id": nobody_membership.id, "role_id": role.id,
        "grant_id": owner_grant.id, "domain_id": domain.id, "mailbox_id": mailbox.id,
    }


def _url(rule, ids: dict) -> str:
    values = {}
    for argument in rule.arguments:
        if argument in ids:
            values[argument] = ids[argument]
        elif argument == "filename":
            values[argument] = "css/portal.css"
        elif isinstance(rule._converters[argument], IntegerConverter):
            values[argument] = 1
        else:
            values[argument] = "some-token"
    path = rule.build(values, append_unknown=False)[1]
    return path


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(TOKEN_BLUEPRINTS):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def test_every_route_declares_an_access_rule(app):
    missing = sorted(rule.endpoint for rule in app.url_map.iter_rules() if rule_for(rule.endpoint) is None)
    assert missing == [], f"routes without an access rule: {missing}"


def test_open_routes_are_only_the_listed_ones(app):
    for rule in app.url_map.iter_rules():
        kind = rule_for(rule.endpoint).kind
        if kind == "public":
            assert rule.endpoint in PUBLIC_ENDPOINTS, f"{rule.endpoint} is public but not listed as such"
        if kind == "signed_in":
            assert rule.endpoint in SIGNED_IN_ENDPOINTS, f"{rule.endpoint} is open to anyone signed in"
    assert PUBLIC_ENDPOINTS | SIGNED_IN_ENDPOINTS <= {rule.endpoint for rule in app.url_map.iter_rules()}


def _call(client, method, url):
    if method == "GET":
        return client.get(url)
    return client.open(url, method=method, data={"csrf_token": client.csrf_token()})


def test_anonymous_visitor__reaches_only_public_routes(app, client, world):
    for rule, method in _routes(app):
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        response = _call(client, method, _url(rule, world))
        if method == "GET":
            assert response.status_code == 302, (rule.endpoint, response.status_code)
            assert "/login" in response.headers["Location"], rule.endpoint
        else:
            assert response.status_code == 401, (rule.endpoint, method, response.status_code)


def test_member_without_permissions__is_refused_every_permission_route(app, client, auth, world):
    auth.login("nobody@example.org")
    reached = []
    for rule, method in _routes(app):
        access = rule_for(rule.endpoint)
        if access.kind not in ("account", "mailbox") or access.permission is None:
            continue
        response = _call(client, method, _url(rule, world))
        assert response.status_code == 403, (rule.endpoint, method, response.status_code)
        reached.append(rule.endpoint)
    assert len(reached) >= 25
    assert client.get(f"/accounts/{world['account_id']}/").status_code == 200


def test_admin_of_another_account__sees_404_on_every_account_route(app, client, auth, world):
    auth.login("owner-b@example.org")
    walked = 0
    for rule, method in _routes(app):
        if rule_for(rule.endpoint).kind not in ("account", "mailbox"):
            continue
        response = _call(client, method, _url(rule, world))
        assert response.status_code == 404, (rule.endpoint, method, response.status_code)
        walked += 1
    assert walked >= 35


def test_superadmin_only_routes__refuse_account_owners(app, client, auth, world):
    auth.login("owner-a@example.org")
    for rule, method in _routes(app):
        if rule_for(rule.endpoint).kind == "superadmin":
            assert _call(client, method, _url(rule, world)).status_code == 403, rule.endpoint


def test_another_accounts_object_ids__answer_404(client, auth, make, world):
    """Ids of account A's objects, used under account B's URL, look unknown."""
    auth.login("owner-b@example.org")
    from portal.accounts.models import Account

    account_b = db.session.execute(db.select(Account).where(Account.name == "Account B")).scalar_one()
    for path in (f"/accounts/{account_b.id}/members/{world['membership_id']}",
                 f"/accounts/{account_b.id}/roles/{world['role_id']}",
                 f"/accounts/{account_b.id}/roles/{world['role_id']}/edit"):
        assert client.get(path).status_code == 404, path
    response = client.post(f"/accounts/{account_b.id}/roles/{world['role_id']}/delete")
    assert response.status_code == 404


def test_post_without_or_with_a_wrong_csrf_token__is_refused(client, auth, world):
    auth.login("owner-a@example.org")
    url = f"/accounts/{world['account_id']}/roles/{world['role_id']}/copy"
    assert client.post(url, csrf=False).status_code == 400
    assert client.post(url, csrf="bad").status_code == 400
    assert client.post(url).status_code == 302


def test_every_mutation_is_a_post(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(TOKEN_BLUEPRINTS):
            continue
        assert not (rule.methods & {"PUT", "PATCH", "DELETE"}), rule.endpoint
        name = rule.endpoint.rsplit(".", 1)[-1]
        if re.search(r"(create|delete|remove|revoke|copy|logout|add_)", name):
            assert "POST" in rule.methods, rule.endpoint
