"""Who may call the SCIM endpoint: a live token with the scim scope, on its own account only.
Every refusal is a SCIM error document."""

from __future__ import annotations

import pytest
from werkzeug.routing import IntegerConverter

from portal.extensions import db
from portal.tokens import services as tokens
from tests.scim.conftest import ERROR_SCHEMA, Scim, make_token, new_user


def _scim_routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("scim."):
            values = {argument: 1 if isinstance(rule._converters[argument], IntegerConverter) else "1"
                      for argument in rule.arguments}
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield rule, method, rule.build(values, append_unknown=False)[1].removeprefix("/scim/v2")


def _is_scim_error(response, status: int) -> bool:
    return (response.status_code == status and response.mimetype == "application/scim+json"
            and response.get_json()["schemas"] == [ERROR_SCHEMA] and response.get_json()["status"] == str(status))


def test_every_route__refuses_no_token_a_wrong_one_and_a_revoked_one_with_a_scim_401(app, client, owner, account,
                                                                                    domain):
    revoked, raw = tokens.create(owner, account, name="old", scopes={"scim:write"}, expires_at=None)
    tokens.revoke(owner, account, revoked)
    db.session.commit()
    routes = list(_scim_routes(app))
    assert len(routes) > 40
    for credentials in (None, "mpt_not-a-token", raw):
        caller = Scim(client, credentials)
        for _rule, method, path in routes:
            response = caller.call(method, path, {} if method in ("POST", "PUT", "PATCH") else None)
            assert _is_scim_error(response, 401), (method, path, credentials, response.status_code)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    basic = client.get("/scim/v2/Users", headers={"Authorization": "Basic b3duZXI6eA=="})
    assert _is_scim_error(basic, 401)


def test_a_token_without_the_scim_scope__is_refused_403_where_a_permission_is_needed(app, client, owner, account,
                                                                                   domain):
    caller = Scim(client, make_token(owner, account, scopes=("domains:read",), name="dns script"))
    walked = 0
    for rule, method, path in _scim_routes(app):
        if getattr(app.view_functions[rule.endpoint], "access_rule").permission is None:
            continue
        response = caller.call(method, path, {} if method in ("POST", "PUT", "PATCH") else None)
        assert _is_scim_error(response, 403), (method, path, response.status_code)
        walked += 1
    assert walked >= 12
    assert caller.get("/ServiceProviderConfig").status_code == 200  # describing the service reveals nothing


def test_a_read_only_scim_token__reads_and_changes_nothing(client, owner, account, domain, scim):
    created = scim.post("/Users", new_user()).get_json()
    reader = Scim(client, make_token(owner, account, scopes=("scim:read",), name="auditor"))
    assert reader.get("/Users").get_json()["totalResults"] == 1
    assert reader.get("/Groups").status_code == 200
    for method, path in (("POST", "/Users"), ("PUT", f"/Users/{created['id']}"), ("PATCH", f"/Users/{created['id']}"),
                         ("DELETE", f"/Users/{created['id']}"), ("POST", "/Groups"), ("PATCH", "/Groups/1"),
                         ("PUT", "/Groups/1"), ("DELETE", "/Groups/1")):
        assert _is_scim_error(reader.call(method, path, {} if method != "DELETE" else None), 403), (method, path)


def test_another_accounts_token__sees_and_changes_none_of_this_accounts_people(client, make, owner, account, domain,
                                                                              scim):
    created = scim.post("/Users", new_user()).get_json()
    other_owner = make.user("other-owner@elsewhere.example")
    other = make.account(other_owner, "Other")
    theirs = Scim(client, make_token(other_owner, other, name="their IdP"))
    assert theirs.get("/Users").get_json()["totalResults"] == 0
    assert theirs.get("/Users", filter='userName eq "jane.doe@example.org"').get_json()["totalResults"] == 0
    user_path = f"/Users/{created['id']}"
    assert _is_scim_error(theirs.get(user_path), 404)
    assert _is_scim_error(theirs.patch(user_path, {"op": "replace", "path": "active", "value": False}), 404)
    assert _is_scim_error(theirs.put(user_path, new_user(given="Mallory")), 404)
    assert _is_scim_error(theirs.delete(user_path), 404)
    group = scim.post("/Groups", {"displayName": "Sales"}).get_json()
    assert _is_scim_error(theirs.get(f"/Groups/{group['id']}"), 404)
    add = {"op": "add", "path": "members", "value": [{"value": created["id"]}]}
    administrators = [item for item in theirs.get("/Groups").get_json()["Resources"]
                      if item["displayName"] == "Account Administrator"][0]
    assert _is_scim_error(theirs.patch(f"/Groups/{administrators['id']}", add), 400)  # not one of their users
    after = scim.get(user_path).get_json()
    assert after["active"] is True and after["name"]["givenName"] == "Jane"


def test_a_token_stops_when_its_creator_can_no_longer_provision(client, make, owner, account, domain):
    from portal.roles.services import set_single_permissions

    helper = make.member(account, make.user("helper@elsewhere.example"),
                         permissions=("members.view", "roles.view", "roles.manage", "access.grant", "users.create",
                                      "users.manage"))
    caller = Scim(client, make_token(helper.user, account, name="helper's IdP"))
    assert caller.get("/Users").status_code == 200
    set_single_permissions(owner, account, helper, {"members.view"})
    db.session.commit()
    assert _is_scim_error(caller.get("/Users"), 401)


class TestRateLimit:
    @pytest.fixture
    def app_settings(self):
        return {"API_RATE_LIMIT": 3}

    def test_too_many_requests__a_scim_429_with_retry_after(self, scim):
        statuses = [scim.get("/Users").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        response = scim.get("/Users")
        assert _is_scim_error(response, 429) and int(response.headers["Retry-After"]) >= 1


def test_answers_set_no_session_cookie(scim):
    response = scim.get("/Users")
    assert response.status_code == 200 and "Set-Cookie" not in response.headers


def test_a_read_token_searches_with_post_and_changes_nothing(client, owner, account, domain):
    """SCIM's searches are POSTs that only read (RFC 7644, 3.4.3): a scim:read token was refused them."""
    from tests.scim.conftest import Scim, make_token, new_user

    reader = Scim(client, make_token(owner, account, scopes=("scim:read",), name="reader"))
    search = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}
    assert reader.post("/Users/.search", search).status_code == 200
    assert reader.post("/Groups/.search", search).status_code == 200
    assert reader.post("/Users", new_user()).status_code == 403
