"""SCIM Groups: the account's roles at account scope. Membership grants the role through the
roles service (nobody grants more than they hold); system roles keep their names."""

from __future__ import annotations

import pytest

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.roles import catalogue
from portal.roles.models import Role
from portal.roles.services import account_permissions, system_role
from tests.scim.conftest import ERROR_SCHEMA, GROUP_SCHEMA, new_user


def _status(response, status: int, scim_type: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    document = response.get_json() or {}
    if status >= 400:
        assert document["schemas"] == [ERROR_SCHEMA] and document.get("scimType") == scim_type, document
    return document


@pytest.fixture
def people(scim) -> dict[str, str]:
    return {given: scim.post("/Users", new_user(user_name=f"{given.lower()}@example.org", given=given,
                                                family="Example")).get_json()["id"]
            for given in ("Ann", "Bob", "Cid")}


def _group_named(scim, name: str) -> dict:
    found = scim.get("/Groups", filter=f'displayName eq "{name}"').get_json()["Resources"]
    assert len(found) == 1, found
    return found[0]


def test_groups__are_the_account_roles_system_ones_included(scim, owner, account):
    listed = scim.get("/Groups").get_json()
    assert [item["displayName"] for item in listed["Resources"]] == ["Account Owner", "Account Administrator"]
    owners = listed["Resources"][0]
    # The owner signs in with an outside address: not a corporate user, so not a SCIM member.
    assert owners["schemas"] == [GROUP_SCHEMA] and "members" not in owners


def test_a_group_named_like_a_system_role__membership_grants_that_role(scim, people, account):
    administrators = _group_named(scim, "account administrator")  # displayName compares without case
    response = scim.patch(f"/Groups/{administrators['id']}",
                          {"op": "Add", "path": "members",
                           "value": [{"value": people["Ann"]}, {"value": people["Bob"]}]})
    members = _status(response, 200)["members"]
    assert sorted(member["value"] for member in members) == sorted([people["Ann"], people["Bob"]])
    role = system_role(catalogue.ADMINISTRATOR)
    from portal.auth.models import User

    ann = db.session.get(User, int(people["Ann"]))
    assert account_permissions(ann, account) == role.permissions
    grant = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "access.grant_role")).scalars().all()
    assert len(grant) == 2 and grant[0].source == "api" and grant[0].details["token"] == "Entra ID"
    # Entra ID removes a member with the value to remove; Okta with a filter path.
    scim.patch(f"/Groups/{administrators['id']}",
               {"op": "Remove", "path": "members", "value": [{"value": people["Ann"]}]})
    after = scim.patch(f"/Groups/{administrators['id']}",
                       {"op": "remove", "path": f'members[value eq "{people["Bob"]}"]'}).get_json()
    assert "members" not in after
    assert account_permissions(ann, account) == frozenset()


def test_system_groups__cannot_be_renamed_or_deleted(scim):
    owners = _group_named(scim, "Account Owner")
    _status(scim.patch(f"/Groups/{owners['id']}", {"op": "replace", "path": "displayName", "value": "Bosses"}), 403)
    _status(scim.put(f"/Groups/{owners['id']}", {"schemas": [GROUP_SCHEMA], "displayName": "Bosses"}), 403)
    _status(scim.delete(f"/Groups/{owners['id']}"), 403)
    assert _group_named(scim, "Account Owner")["id"] == owners["id"]
    # The same name in another case is no rename.
    _status(scim.patch(f"/Groups/{owners['id']}", {"op": "replace", "value": {"displayName": "account owner"}}), 200)


def test_custom_groups__created_renamed_and_deleted_as_roles(scim, people, account):
    response = scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Sales team", "externalId": "grp-1",
                                     "members": [{"value": people["Cid"]}]})
    created = _status(response, 201)
    assert response.headers["Location"] == created["meta"]["location"]
    assert created["externalId"] == "grp-1" and [m["value"] for m in created["members"]] == [people["Cid"]]
    role = db.session.get(Role, int(created["id"]))
    assert (role.account_id, role.scope, role.permissions) == (account.id, catalogue.ACCOUNT, frozenset())
    assert "grants nothing" in role.description
    _status(scim.post("/Groups", {"displayName": "SALES TEAM"}), 409, "uniqueness")
    _status(scim.post("/Groups", {"displayName": "Account Owner"}), 409, "uniqueness")
    renamed = scim.patch(f"/Groups/{created['id']}", {"op": "Replace", "path": "displayName", "value": "Sales"})
    assert _status(renamed, 200)["displayName"] == "Sales"
    db.session.refresh(role)
    assert role.name == "Sales"
    replaced = scim.put(f"/Groups/{created['id']}", {"schemas": [GROUP_SCHEMA], "displayName": "Sales",
                                                      "members": [{"value": people["Ann"]}, {"value": people["Bob"]}]})
    assert sorted(m["value"] for m in _status(replaced, 200)["members"]) == sorted([people["Ann"], people["Bob"]])
    assert _status(scim.delete(f"/Groups/{created['id']}"), 204) == {}
    assert db.session.get(Role, int(created["id"])) is None
    _status(scim.get(f"/Groups/{created['id']}"), 404)


def test_members__must_be_users_of_the_account(scim, people, make, account):
    group = _status(scim.post("/Groups", {"displayName": "Team"}), 201)
    guest = make.member(account, make.user("guest@elsewhere.example"))
    for value in (str(guest.user_id), "999999", "not-an-id"):
        response = scim.patch(f"/Groups/{group['id']}", {"op": "add", "path": "members", "value": [{"value": value}]})
        _status(response, 400, "invalidValue")


def test_replacing_members__never_touches_holders_who_are_not_scim_users(scim, people, owner, account):
    owners = _group_named(scim, "Account Owner")
    response = scim.put(f"/Groups/{owners['id']}", {"schemas": [GROUP_SCHEMA], "displayName": "Account Owner",
                                                     "members": []})
    _status(response, 200)
    assert account_permissions(owner, account) == catalogue.codes(catalogue.ACCOUNT)


def test_nobody_grants_more_than_they_hold(client, make, scim, people, account):
    from tests.scim.conftest import Scim, make_token

    helper = make.member(account, make.user("helper@elsewhere.example"),
                         permissions=("members.view", "roles.view", "roles.manage", "access.grant", "users.create",
                                      "users.manage"))
    limited = Scim(client, make_token(helper.user, account, name="helper's IdP"))
    administrators = _group_named(scim, "Account Administrator")
    response = limited.patch(f"/Groups/{administrators['id']}",
                             {"op": "add", "path": "members", "value": [{"value": people["Ann"]}]})
    assert "do not hold" in _status(response, 403)["detail"]
    assert "members" not in scim.get(f"/Groups/{administrators['id']}").get_json()


def test_filters_paging_and_leaving_members_out(scim, people):
    group = _status(scim.post("/Groups", {"displayName": "Team", "members": [{"value": people["Ann"]}]}), 201)
    with_ann = scim.get("/Groups", filter=f'members[value eq "{people["Ann"]}"]').get_json()["Resources"]
    assert [item["displayName"] for item in with_ann] == ["Team"]
    by_id = scim.get("/Groups", filter=f'id eq "{group["id"]}" and displayName sw "te"').get_json()
    assert by_id["totalResults"] == 1
    light = scim.get(f"/Groups/{group['id']}", excludedAttributes="members").get_json()
    assert "members" not in light and light["displayName"] == "Team"
    page = scim.get("/Groups", startIndex=2, count=1).get_json()
    assert (page["totalResults"], page["itemsPerPage"], page["Resources"][0]["displayName"]) == (
        3, 1, "Account Administrator")
    _status(scim.get("/Groups", filter='members.display eq "Ann"'), 400, "invalidFilter")


def test_members__read_as_value_and_ref_in_lists_and_alone_and_left_out_when_asked(scim, people):
    """A group's members are written as JSON directly (through the models a role held by 5,000
    people took 170 ms a read): the same value and $ref as before, in a list and alone, in the
    order of the people; none when asked, and an empty group lists none."""
    group = _status(scim.post("/Groups", {"displayName": "Team", "members": [
        {"value": people["Cid"]}, {"value": people["Ann"]}]}), 201)
    expected = sorted((people["Ann"], people["Cid"]), key=int)
    alone = scim.get(f"/Groups/{group['id']}").get_json()
    assert [member["value"] for member in alone["members"]] == expected
    assert all(member["$ref"].endswith(f"/scim/v2/Users/{member['value']}") and set(member) == {"value", "$ref"}
               for member in alone["members"])
    assert group["members"] == alone["members"]
    listed = {item["displayName"]: item for item in scim.get("/Groups").get_json()["Resources"]}
    assert listed["Team"]["members"] == alone["members"]
    light = scim.get("/Groups", excludedAttributes="members").get_json()["Resources"]
    assert not [item for item in light if "members" in item]
    only = scim.get("/Groups", attributes="members", filter='displayName eq "Team"').get_json()["Resources"]
    assert only[0]["members"] == alone["members"] and "displayName" not in only[0]
    # A part of the members named alone is what they hold (a review: $ref came with value).
    for asked, keys in (("members.value", {"value"}), ("members.$ref", {"$ref"}),
                        ("urn:ietf:params:scim:schemas:core:2.0:Group:members.value", {"value"})):
        single = scim.get(f"/Groups/{group['id']}", attributes=asked).get_json()
        assert [set(member) for member in single["members"]] == [keys, keys], (asked, single)
        listed = scim.get("/Groups", attributes=asked, filter='displayName eq "Team"').get_json()["Resources"]
        assert [set(member) for member in listed[0]["members"]] == [keys, keys], (asked, listed)
    assert "members" not in scim.get(f"/Groups/{group['id']}", attributes="members.display").get_json()
    empty = _status(scim.post("/Groups", {"displayName": "Empty"}), 201)
    assert "members" not in scim.get(f"/Groups/{empty['id']}").get_json()


def test_renaming_needs_the_permission_to_manage_roles(client, make, scim, people, account):
    from tests.scim.conftest import Scim, make_token

    group = _status(scim.post("/Groups", {"displayName": "Team"}), 201)
    granter = make.member(account, make.user("granter@elsewhere.example"),
                          permissions=("members.view", "members.remove", "roles.view", "access.grant", "users.create",
                                       "users.manage"))
    raw = make_token(granter.user, account, scopes=("users:write", "roles:read"), name="granter")
    caller = Scim(client, raw)
    add = {"op": "add", "path": "members", "value": [{"value": people["Bob"]}]}
    _status(caller.patch(f"/Groups/{group['id']}", add), 200)
    _status(caller.patch(f"/Groups/{group['id']}", {"op": "replace", "path": "displayName", "value": "Renamed"}), 403)
    _status(caller.post("/Groups", {"displayName": "Another"}), 403)
