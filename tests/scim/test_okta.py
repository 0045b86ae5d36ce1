"""Okta's SCIM 2.0 client, request by request as it sends them: profile updates replace the whole
user (PUT, with the id, meta and password it keeps), deactivation is a path-less PATCH, and pushed
groups are renamed and refilled with path-less and whole-list replaces."""

from __future__ import annotations

from portal.auth.models import User
from portal.extensions import db
from tests.scim.conftest import GROUP_SCHEMA, PATCH_SCHEMA, USER_SCHEMA


def _okta_user(user_id: str | None = None, **changes) -> dict:
    body = {"schemas": [USER_SCHEMA], "userName": "kim.lee@example.org",
            "name": {"givenName": "Kim", "familyName": "Lee"},
            "emails": [{"primary": True, "value": "kim.lee@example.org", "type": "work"}],
            "displayName": "Kim Lee", "locale": "en-US", "externalId": "00u1abcd", "groups": [], "active": True,
            "password": "Sup3r-secret!"}
    if user_id:
        body["id"] = user_id
        body["meta"] = {"resourceType": "User"}
    return {**body, **changes}


def test_okta__create_update_by_put_deactivate_and_reactivate(scim):
    created = scim.post("/Users", _okta_user())
    assert created.status_code == 201, created.get_data(as_text=True)
    user_id = created.get_json()["id"]
    user = db.session.get(User, int(user_id))
    assert user.password_hash is None  # a password Okta sends is not the portal's to keep

    replaced = scim.put(f"/Users/{user_id}", _okta_user(user_id, name={"givenName": "Kim", "familyName": "Lee-Park"},
                                                         displayName="Kim Lee-Park"))
    assert replaced.status_code == 200, replaced.get_data(as_text=True)
    assert replaced.get_json()["name"]["familyName"] == "Lee-Park"
    db.session.refresh(user)
    assert user.name == "Kim Lee-Park" and user.password_hash is None

    deactivated = scim.call("PATCH", f"/Users/{user_id}", {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "replace", "value": {"active": False}}]})
    assert deactivated.get_json()["active"] is False
    db.session.refresh(user)
    assert user.suspended_at is not None

    reactivated = scim.put(f"/Users/{user_id}", _okta_user(user_id, active=True))
    assert reactivated.get_json()["active"] is True
    db.session.refresh(user)
    assert user.suspended_at is None


def test_okta__pushed_group_renamed_and_its_members_replaced(scim):
    ids = [scim.post("/Users", _okta_user(userName=f"p{n}@example.org", externalId=f"00u{n}")).get_json()["id"]
           for n in range(3)]
    group = scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Okta Sales", "members": []}).get_json()
    path = f"/Groups/{group['id']}"
    renamed = scim.call("PATCH", path, {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "replace", "value": {"id": group["id"], "displayName": "Okta Sales EMEA"}}]})
    assert renamed.status_code == 200 and renamed.get_json()["displayName"] == "Okta Sales EMEA"
    filled = scim.call("PATCH", path, {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": ids[0], "display": "p0@example.org"},
                                                   {"value": ids[1], "display": "p1@example.org"}]}]})
    assert sorted(member["value"] for member in filled.get_json()["members"]) == sorted(ids[:2])
    swapped = scim.call("PATCH", path, {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "replace", "path": "members", "value": [{"value": ids[2]}]}]})
    assert [member["value"] for member in swapped.get_json()["members"]] == [ids[2]]
    emptied = scim.call("PATCH", path, {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "remove", "path": f'members[value eq "{ids[2]}"]'}]})
    assert "members" not in emptied.get_json()
    assert scim.delete(path).status_code == 204
