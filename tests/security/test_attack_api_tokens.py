"""Attacks on API tokens: a token scoped to one area hands on no more than its scopes reach
(no role, permission or means to act as someone beyond them), and an ``Idempotency-Key`` never
answers a request with the answer to another one, nor stays blocked after a server error."""

from __future__ import annotations

import pytest

from portal.accounts.models import Membership
from portal.extensions import db
from portal.roles import catalogue
from portal.roles.models import Grant
from portal.roles.services import account_permissions, system_role
from portal.tokens import services as tokens
from portal.users import services as users
from tests.api.conftest import WRITE_SCOPES, bearer, token, world  # noqa: F401  (fixtures)


def _users_only_token(world) -> str:
    """A token the account's owner made for a script that manages people, and nothing else."""
    _, raw = tokens.create(world["owner"], world["account"], name="people script", scopes={"users:write"},
                           expires_at=None)
    db.session.commit()
    return raw


def _corporate(world, email: str) -> Membership:
    user, _link = users.create_corporate_user(world["owner"], world["account"], first_name="Carol", last_name="Corp",
                                              email=email, personal_mailbox=False)
    db.session.commit()
    return db.session.execute(db.select(Membership).where(Membership.user_id == user.id)).scalar_one()


def test_users_scoped_token__cannot_make_anyone_owner_or_hand_on_permissions_beyond_its_scopes(client, world, make):
    raw = _users_only_token(world)
    account = world["account"]
    pawn = make.member(account, make.user("pawn@elsewhere.example"))
    base = f"/api/v1/accounts/{account.id}/members/{pawn.id}"
    for key in (catalogue.OWNER, catalogue.ADMINISTRATOR):
        response = client.post(f"{base}/roles", headers=bearer(raw), json={"role_id": system_role(key).id})
        assert response.status_code == 403, (key, response.get_data(as_text=True))
    response = client.put(f"{base}/permissions", headers=bearer(raw),
                          json={"permissions": ["api_tokens.manage", "account.delete", "domains.manage"]})
    assert response.status_code == 403, response.get_data(as_text=True)
    assert account_permissions(pawn.user, account) == frozenset()
    # Within its scopes it still grants.
    response = client.put(f"{base}/permissions", headers=bearer(raw), json={"permissions": ["users.manage"]})
    assert response.status_code == 200, response.get_data(as_text=True)


def test_users_scoped_token__a_new_corporate_user_cannot_become_an_owner_through_it(client, world):
    """The whole chain: create a person (the answer carries their onboarding link), then make them owner."""
    raw = _users_only_token(world)
    account = world["account"]
    created = client.post(f"/api/v1/accounts/{account.id}/users", headers=bearer(raw),
                          json={"first_name": "Eve", "last_name": "Sneak", "email": "eve@example.org",
                                "personal_mailbox": False})
    assert created.status_code == 201, created.get_data(as_text=True)
    membership_id = created.get_json()["member"]["id"]
    response = client.post(f"/api/v1/accounts/{account.id}/members/{membership_id}/roles", headers=bearer(raw),
                           json={"role_id": system_role(catalogue.OWNER).id})
    assert response.status_code == 403, response.get_data(as_text=True)


def test_users_scoped_token__gets_no_onboarding_link_of_someone_holding_more_than_its_scopes(client, world):
    raw = _users_only_token(world)
    carol = _corporate(world, "carol@example.org")
    db.session.add(Grant(membership_id=carol.id, account_id=carol.account_id, permission="domains.manage"))
    db.session.commit()
    response = client.post(f"/api/v1/accounts/{world['account'].id}/users/{carol.id}/onboarding", headers=bearer(raw))
    assert response.status_code == 403, response.get_data(as_text=True)
    assert "welcome" not in response.get_data(as_text=True)


def test_invitations_scoped_token__cannot_invite_an_outsider_as_owner(client, world):
    _, raw = tokens.create(world["owner"], world["account"], name="inviter", scopes={"invitations:write"},
                           expires_at=None)
    db.session.commit()
    response = client.post(f"/api/v1/accounts/{world['account'].id}/invitations", headers=bearer(raw),
                           json={"email": "mallory@attacker.example", "send": True,
                                 "offers": [{"role_id": system_role(catalogue.OWNER).id}]})
    assert response.status_code in (403, 409), response.get_data(as_text=True)
    assert "do not hold" in response.get_json()["detail"]


def test_full_token__grants_what_its_change_scopes_reach_and_no_administrator(client, world, token, make):
    """Every scope, scim:write included: on the JSON API the SCIM scopes count for nothing (a
    scim:write token made owners there), so the Administrator role, which holds permissions no
    change scope reaches (the audit log, tokens), is refused; a role within the scopes is granted."""
    from portal.roles.services import create_role

    pawn = make.member(world["account"], make.user("trusted@elsewhere.example"))
    url = f"/api/v1/accounts/{world['account'].id}/members/{pawn.id}/roles"
    refused = client.post(url, headers=bearer(token), json={"role_id": system_role(catalogue.ADMINISTRATOR).id})
    assert refused.status_code == 403, refused.get_data(as_text=True)
    helpdesk = create_role(world["owner"], world["account"], name="Helpdesk", scope="account", description="",
                           permissions={"members.view", "users.manage", "mailboxes.view"})
    db.session.commit()
    granted = client.post(url, headers=bearer(token), json={"role_id": helpdesk.id})
    assert granted.status_code == 200, granted.get_data(as_text=True)


# -- Idempotency-Key ------------------------------------------------------------------------------

def test_idempotency_key__the_same_key_on_another_query_is_refused_not_answered_with_the_first(client, world, token):
    url = f"/api/v1/accounts/{world['account'].id}/roles"
    headers = {**bearer(token), "Idempotency-Key": "same-key"}
    body = {"name": "Auditors", "scope": "account", "permissions": ["roles.view"]}
    assert client.post(url, headers=headers, json=body).status_code == 201
    other = client.post(url, headers=headers, json=body, query_string={"dry": "1"})
    assert other.status_code == 422, other.get_data(as_text=True)
    assert other.headers.get("Idempotent-Replayed") is None


def test_idempotency_key__another_token_or_account_never_gets_the_kept_answer(client, world, token, make):
    url = f"/api/v1/accounts/{world['account'].id}/roles"
    body = {"name": "Auditors", "scope": "account", "permissions": ["roles.view"]}
    first = client.post(url, headers={**bearer(token), "Idempotency-Key": "shared"}, json=body)
    assert first.status_code == 201
    _, second_raw = tokens.create(world["owner"], world["account"], name="second", scopes=set(WRITE_SCOPES),
                                  expires_at=None)
    other_owner = make.user("intruder@elsewhere.example")
    other = make.account(other_owner, "Intruder")
    _, intruder_raw = tokens.create(other_owner, other, name="theirs", scopes=set(WRITE_SCOPES), expires_at=None)
    db.session.commit()
    again = client.post(url, headers={**bearer(second_raw), "Idempotency-Key": "shared"}, json=body)
    assert again.headers.get("Idempotent-Replayed") is None and again.status_code == 403  # the name is taken
    intruder = client.post(url, headers={**bearer(intruder_raw), "Idempotency-Key": "shared"}, json=body)
    assert intruder.status_code == 404 and '"id"' not in intruder.get_data(as_text=True)


def test_idempotency_key__a_request_that_failed_with_a_server_error_can_be_retried(client, world, token,
                                                                                 monkeypatch):
    from portal.roles import services as roles

    url = f"/api/v1/accounts/{world['account'].id}/roles"
    headers = {**bearer(token), "Idempotency-Key": "retry-me"}
    body = {"name": "Auditors", "scope": "account", "permissions": ["roles.view"]}
    real = roles.create_role

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(roles, "create_role", broken)
    with pytest.raises(RuntimeError):
        client.post(url, headers=headers, json=body)
    db.session.rollback()
    monkeypatch.setattr(roles, "create_role", real)
    retried = client.post(url, headers=headers, json=body)
    assert retried.status_code == 201, retried.get_data(as_text=True)


def test_imports_scoped_token__a_workbook_makes_nobody_owner(client, world, run_jobs):
    """An imports-only token uploads a workbook whose Account sheet makes a new person owner, with
    a recovery address of the attacker's: the onboarding link would go there."""
    from portal.auth.models import User
    from portal.users import workbook
    from tests.users.workbooks import fill

    _, raw = tokens.create(world["owner"], world["account"], name="imports only", scopes={"imports:write"},
                           expires_at=None)
    db.session.commit()
    account = world["account"]
    data = fill(workbook.template(account),
                users=[("Eve", "Sneak", "eve@example.org", "N", "eve@attacker.example")],
                account_rows=[("eve@example.org", "Account Owner", None)])
    uploaded = client.post(f"/api/v1/accounts/{account.id}/imports?filename=staff.xlsx", headers=bearer(raw),
                           data=data, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert uploaded.status_code == 202
    run_url = uploaded.headers["Location"].removeprefix("http://localhost")
    run_jobs()
    preview = client.get(run_url, headers=bearer(raw)).get_json()
    assert preview["problem_count"] >= 1 and "Account Owner" in str(preview["problems"]), preview
    if preview["problem_count"] == 0:
        client.post(run_url + "/confirm", headers=bearer(raw))
        run_jobs()
    eve = db.session.execute(db.select(User).where(User.email == "eve@example.org")).scalar_one_or_none()
    assert eve is None or "api_tokens.manage" not in account_permissions(eve, account)
