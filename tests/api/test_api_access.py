"""Every API route walked as outsiders: anonymous and dead tokens get 401, a token of another
account 404, a read-only token 403 on every change; answers are problem details."""

from __future__ import annotations

import pytest
from werkzeug.routing import IntegerConverter

from portal.extensions import db
from portal.tokens import services as tokens
from tests.api.conftest import READ_SCOPES, WRITE_SCOPES, bearer

OPEN = {"api.openapi", "api.reference"}


def _api_routes(app, ids: dict):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint not in OPEN:
            values = {arg: ids.get(arg, 1) if isinstance(rule._converters[arg], IntegerConverter) else "x"
                      for arg in rule.arguments}
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield method, rule.build(values, append_unknown=False)[1]


def _call(client, method, url, headers=None):
    return client.open(url, method=method, headers=headers or {}, json={} if method in ("POST", "PUT", "PATCH")
                       else None)


def test_api__every_route_refuses_anonymous_and_dead_tokens_with_401(app, client, world):
    revoked, raw = tokens.create(world["owner"], world["account"], name="old", scopes=set(WRITE_SCOPES),
                                 expires_at=None)
    tokens.revoke(world["owner"], world["account"], revoked)
    db.session.commit()
    routes = list(_api_routes(app, world["ids"]))
    assert len(routes) > 50
    for method, url in routes:
        for headers in ({}, bearer("mpt_not-a-token"), bearer(raw), {"Authorization": "Basic b3duZXI6eA=="}):
            response = _call(client, method, url, headers)
            assert response.status_code == 401, (method, url, headers, response.status_code)
            assert response.mimetype == "application/problem+json"
            assert response.get_json()["status"] == 401


def test_api__a_token_of_another_account_sees_nothing_here(app, client, world, other_token):
    for method, url in _api_routes(app, world["ids"]):
        response = _call(client, method, url, bearer(other_token))
        assert response.status_code == 404, (method, url, response.status_code, response.get_data(as_text=True))


def test_api__a_read_only_token_may_change_nothing(app, client, world):
    _, raw = tokens.create(world["owner"], world["account"], name="reader", scopes=set(READ_SCOPES), expires_at=None)
    db.session.commit()
    for method, url in _api_routes(app, world["ids"]):
        if method == "GET":
            continue
        response = _call(client, method, url, bearer(raw))
        assert response.status_code == 403, (method, url, response.status_code, response.get_data(as_text=True))


def test_api__a_token_stops_working_when_its_creator_leaves_or_loses_permissions(client, world, make):
    from portal.roles.services import set_single_permissions

    helper = make.member(world["account"], make.user("helper@example.org"), permissions=("domains.view",))
    _, raw = tokens.create(helper.user, world["account"], name="helper's", scopes={"domains:read"}, expires_at=None)
    db.session.commit()
    url = f"/api/v1/accounts/{world['account'].id}/domains"
    assert client.get(url, headers=bearer(raw)).status_code == 200
    set_single_permissions(world["owner"], world["account"], helper, set())
    db.session.commit()
    assert client.get(url, headers=bearer(raw)).status_code == 401
    set_single_permissions(world["owner"], world["account"], helper, {"domains.view"})
    db.session.commit()
    assert client.get(url, headers=bearer(raw)).status_code == 200
    from portal.accounts.services import remove_member

    remove_member(world["owner"], world["account"], helper)
    db.session.commit()
    assert client.get(url, headers=bearer(raw)).status_code == 401


def test_api__a_token_cannot_be_made_stronger_than_its_creator(world, make):
    helper = make.member(world["account"], make.user("helper@example.org"), permissions=("domains.view",))
    with pytest.raises(tokens.TokenError, match="cannot hold more than you do"):
        tokens.create(helper.user, world["account"], name="greedy", scopes={"domains:write"}, expires_at=None)


def test_api__allowed_networks_and_expiry(client, world):
    from datetime import timedelta

    from portal.timeutil import utcnow

    _, elsewhere = tokens.create(world["owner"], world["account"], name="office", scopes={"domains:read"},
                                 expires_at=None, networks="192.0.2.0/24")
    soon, expiring = tokens.create(world["owner"], world["account"], name="soon", scopes={"domains:read"},
                                   expires_at=utcnow() + timedelta(minutes=5))
    db.session.commit()
    url = f"/api/v1/accounts/{world['account'].id}/domains"
    assert client.get(url, headers=bearer(elsewhere)).status_code == 401  # the test client comes from 127.0.0.1
    assert client.get(url, headers=bearer(expiring)).status_code == 200
    soon.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert client.get(url, headers=bearer(expiring)).status_code == 401


def test_token__stays_dead_when_its_maker_leaves_the_account_and_comes_back(client, owner, account, make):
    """Found by an attacker-side review: leaving ended the token, and re-joining brought it back."""
    from datetime import timedelta

    from portal.accounts.models import Membership
    from portal.accounts.services import add_member, remove_member
    from portal.roles.models import Grant
    from portal.roles.services import system_role
    from portal.tokens import services as tokens

    bob = make.user("bob@example.net")
    membership = make.member(account, bob, roles=("administrator",))
    token, raw = tokens.create(bob, account, name="bob's script", scopes={"users:write"}, expires_at=None)
    # The membership began before the token was made (a test runs within one clock tick).
    membership.created_at = token.created_at - timedelta(seconds=1)
    db.session.commit()
    url, headers = f"/api/v1/accounts/{account.id}/members", {"Authorization": f"Bearer {raw}"}
    assert client.get(url, headers=headers).status_code == 200
    remove_member(owner, account, membership)
    db.session.commit()
    assert client.get(url, headers=headers).status_code == 401
    back = add_member(account, bob)
    db.session.add(Grant(membership_id=back.id, account_id=account.id, role_id=system_role("administrator").id))
    db.session.commit()
    assert db.session.get(Membership, back.id).created_at >= token.created_at
    assert client.get(url, headers=headers).status_code == 401
