"""What a token reaches, and hostile bodies and queries (found by an attacker-side review of the
API and SCIM; each test fails without its fix)."""

from __future__ import annotations

import pytest

from portal.accounts.models import Membership
from portal.extensions import db
from portal.roles import catalogue
from portal.roles.models import Grant
from portal.roles.services import system_role
from portal.tokens import services as tokens
from portal.users import services as users
from tests.api.conftest import bearer


def _token(world, *scopes) -> str:
    _, raw = tokens.create(world["owner"], world["account"], name=" ".join(scopes), scopes=set(scopes),
                           expires_at=None)
    db.session.commit()
    return raw


def _co_owner(world, make, corporate: bool) -> Membership:
    account = world["account"]
    if corporate:
        user, _link = users.create_corporate_user(world["owner"], account, first_name="Co", last_name="Owner",
                                                  email="co-owner@example.org", personal_mailbox=False)
        membership = db.session.execute(db.select(Membership).where(Membership.user_id == user.id)).scalar_one()
    else:
        membership = make.member(account, make.user("ext-owner@elsewhere.example"))
    db.session.add(Grant(membership_id=membership.id, account_id=account.id, role_id=system_role(catalogue.OWNER).id))
    db.session.commit()
    return membership


def test_a_scim_token_is_no_key_to_the_json_api(client, world, make):
    """A token scoped scim:write created a user through the JSON API (getting its onboarding link,
    which SCIM never shows), made it an owner and gave it every permission."""
    raw = _token(world, "scim:write")
    base = f"/api/v1/accounts/{world['account'].id}"
    created = client.post(f"{base}/users", headers=bearer(raw), json={
        "first_name": "Eve", "last_name": "Sneak", "email": "eve@example.org", "personal_mailbox": False})
    assert created.status_code == 403
    member = make.member(world["account"], make.user("plain@elsewhere.example"))
    granted = client.post(f"{base}/members/{member.id}/roles", headers=bearer(raw),
                          json={"role_id": system_role(catalogue.OWNER).id})
    assert granted.status_code == 403
    co_owner = _co_owner(world, make, corporate=True)
    assert client.post(f"{base}/users/{co_owner.id}/onboarding", headers=bearer(raw)).status_code == 403
    # On SCIM it still provisions.
    scim = client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {raw}"})
    assert scim.status_code == 200


@pytest.mark.parametrize("corporate", [True, False])
def test_a_users_token_does_not_remove_an_owner(client, world, make, corporate):
    """A users:write token (which may not suspend an owner, nor make one) removed one."""
    membership = _co_owner(world, make, corporate)
    raw = _token(world, "users:write")
    base = f"/api/v1/accounts/{world['account'].id}"
    path = f"{base}/users/{membership.id}" if corporate else f"{base}/members/{membership.id}"
    assert client.delete(path, headers=bearer(raw)).status_code == 403
    assert db.session.get(Membership, membership.id) is not None


def test_a_body_nested_too_deeply_is_a_400(client, world, token):
    deep = "[" * 100_000 + "]" * 100_000
    headers = {**bearer(token), "Content-Type": "application/json"}
    api = client.post(f"/api/v1/accounts/{world['account'].id}/roles", headers=headers, data=deep)
    assert api.status_code == 400 and "nested too deeply" in api.get_data(as_text=True)
    scim_raw = _token(world, "scim:write")
    scim = client.post("/scim/v2/Users", data=deep, headers={"Authorization": f"Bearer {scim_raw}",
                                                               "Content-Type": "application/scim+json"})
    assert scim.status_code == 400


def test_a_scim_group_name_is_a_role_name_at_most_80_characters(client, world):
    raw = _token(world, "scim:write")
    headers = {"Authorization": f"Bearer {raw}", "Content-Type": "application/scim+json"}
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "x" * 81}
    answer = client.post("/scim/v2/Groups", json=body, headers=headers)
    assert 400 <= answer.status_code < 500
    from portal.roles.models import Role

    assert db.session.execute(db.select(Role).where(Role.name == "x" * 81)).first() is None


def test_the_last_day_there_is_and_account_zero(client, world, token):
    base = f"/api/v1/accounts/{world['account'].id}"
    assert client.get(f"{base}/audit?until=9999-12-31", headers=bearer(token)).status_code == 200
    assert client.get("/api/v1/accounts/0/members", headers=bearer(token)).status_code == 404


def test_account_settings_refuse_a_blank_name_and_another_accounts_role(client, world, token, make):
    other_owner = make.user("other-owner@example.org")
    other = make.account(other_owner, "Other")
    from portal.roles.services import create_role

    theirs = create_role(other_owner, other, name="Theirs", scope="mailbox", description="",
                         permissions={"mailbox.view"})
    db.session.commit()
    url = f"/api/v1/accounts/{world['account'].id}"
    blank = client.patch(url, headers=bearer(token), json={"name": "   "})
    assert blank.status_code in (403, 422) and "Give the account a name." in blank.get_data(as_text=True)
    foreign = client.patch(url, headers=bearer(token), json={"personal_mailbox_role_id": theirs.id})
    assert foreign.status_code in (403, 422) and "Choose a mailbox role" in foreign.get_data(as_text=True)
    db.session.expire_all()
    assert world["account"].name and world["account"].personal_mailbox_role_id is None


def test_a_mailbox_creator_who_may_not_see_the_users_names_only_themself_as_owner(client, world, make):
    """Naming any member id as a personal mailbox's owner answered with that member's address: someone
    who may create mailboxes but not see the account's users could read every member's address."""
    account, domain = world["account"], world["domain"]
    creator = make.user("creator@example.org")
    make.member(account, creator, permissions=("mailboxes.create", "mailboxes.view", "mailboxes.manage"))
    _, raw = tokens.create(creator, account, name="boxes", scopes={"mailboxes:write"}, expires_at=None)
    db.session.commit()
    member = db.session.get(Membership, world["ids"]["membership_id"])
    url = f"/api/v1/accounts/{account.id}/mailboxes"
    refused = client.post(url, headers=bearer(raw), json={"local_part": "theirs", "domain_id": domain.id,
                                                          "kind": "personal", "owner_id": member.user_id})
    assert refused.status_code == 422 and "member@example.org" not in refused.get_data(as_text=True)
    mine = client.post(url, headers=bearer(raw), json={"local_part": "mine", "domain_id": domain.id,
                                                       "kind": "personal", "owner_id": creator.id})
    assert mine.status_code == 202 and mine.get_json()["owner_email"] == "creator@example.org"
    blind = client.post(url, headers=bearer(_token(world, "mailboxes:write")),
                        json={"local_part": "theirs", "domain_id": domain.id, "kind": "personal",
                              "owner_id": member.user_id})
    assert blind.status_code == 422, "a token that may not read the users names no one else either"
    assert "give it the users scope" in blind.get_json()["detail"]  # its maker may: the token's limit
    assert "give it the users scope" not in refused.get_json()["detail"]  # the maker's own: not said
    allowed = client.post(url, headers=bearer(_token(world, "mailboxes:write", "users:read")),
                          json={"local_part": "theirs", "domain_id": domain.id, "kind": "personal",
                                "owner_id": member.user_id})
    assert allowed.status_code == 202, allowed.get_data(as_text=True)
    assert allowed.get_json()["owner_email"] == "member@example.org"


def test_a_users_token_removes_a_corporate_user_with_a_personal_mailbox(client, world, make):
    """Their own mailbox's rights leave with them: a users:write token (which does not reach
    mailboxes) was refused removing almost every corporate user."""
    account = world["account"]
    user, _link = users.create_corporate_user(world["owner"], account, first_name="Leaving", last_name="Soon",
                                              email="leaving@example.org", personal_mailbox=True)
    db.session.commit()
    membership = db.session.execute(db.select(Membership).where(Membership.user_id == user.id)).scalar_one()
    answer = client.delete(f"/api/v1/accounts/{account.id}/users/{membership.id}",
                           headers=bearer(_token(world, "users:write")))
    assert answer.status_code == 204, answer.get_data(as_text=True)
    assert db.session.get(Membership, membership.id) is None


def test_a_token_whose_scopes_fall_short_is_told_which_scope_it_needs(client, world, make):
    """A mailboxes:write token granting a mailbox role to a member was answered a bare "you do not
    have the permission" though its owner holds every one: the member's page needs seeing the
    members, which only the users scopes reach. It is told which scopes would."""
    ids = world["ids"]
    base = f"/api/v1/accounts/{ids['account_id']}"
    role_id = system_role(catalogue.MAILBOX_DELEGATE).id
    raw = _token(world, "mailboxes:write")
    answer = client.post(f"{base}/members/{ids['membership_id']}/mailboxes/{ids['mailbox_id']}/roles",
                         headers=bearer(raw), json={"role_id": role_id})
    assert answer.status_code == 403
    assert "users:read" in answer.get_json()["detail"] and "users:write" in answer.get_json()["detail"]
    assert not db.session.execute(db.select(Grant).where(Grant.membership_id == ids["membership_id"],
                                                         Grant.mailbox_id == ids["mailbox_id"])).first()
    # An account permission a write needs: only the write scope is named.
    answer = client.post(f"{base}/members/{ids['membership_id']}/roles", headers=bearer(_token(world, "users:read")),
                         json={"role_id": ids["role_id"]})
    assert answer.status_code == 403
    assert "users:write" in answer.get_json()["detail"] and "users:read" not in answer.get_json()["detail"]
    # With the scopes it needs, the same grant is made.
    answer = client.post(f"{base}/members/{ids['membership_id']}/mailboxes/{ids['mailbox_id']}/roles",
                         headers=bearer(_token(world, "mailboxes:write", "users:read")), json={"role_id": role_id})
    assert answer.status_code == 200, answer.get_json()


def test_the_scopes_named_do_not_tell_a_token_what_its_maker_holds(client, world, make):
    """The answer named the scopes only when the maker held the permission: a token learnt, one
    permission at a time, what its maker holds beyond its scopes."""
    account = world["account"]
    viewer = make.member(account, make.user("viewer@example.org"), permissions=("domains.view",))
    answers = []
    for maker in (world["owner"], viewer.user):
        _, raw = tokens.create(maker, account, name="domains", scopes={"domains:read"}, expires_at=None)
        db.session.commit()
        answers.append(client.get(f"/api/v1/accounts/{account.id}/members", headers=bearer(raw)))
    assert [answer.status_code for answer in answers] == [403, 403]
    assert answers[0].get_json()["detail"] == answers[1].get_json()["detail"]
    assert "users:read" in answers[0].get_json()["detail"]
