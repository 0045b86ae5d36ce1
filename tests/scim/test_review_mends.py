"""What an attacker-side review of SCIM found (each test fails without its fix): a fully qualified
members path that changed nothing yet answered 200, names longer than their columns (a 500 on
PostgreSQL), and two grants of the same role made at once, which made the group's member impossible to remove."""

from __future__ import annotations

import pytest

from portal.auth.models import User
from portal.extensions import db
from portal.roles import catalogue
from portal.roles.models import Grant
from portal.roles.services import create_role, membership_of
from portal.scim.models import ScimProfile
from portal.users.services import create_corporate_user
from tests.scim.conftest import new_user

MEMBERS = "urn:ietf:params:scim:schemas:core:2.0:Group:members"


@pytest.fixture
def plain_and_role(owner, account, domain):
    plain, _link = create_corporate_user(owner, account, first_name="Pl", last_name="Ain", email="plain@example.org",
                                         personal_mailbox=False, link_shown=False)
    role = create_role(owner, account, name="Helpdesk", scope=catalogue.ACCOUNT, description="",
                       permissions={"members.view"})
    db.session.commit()
    return plain, role


def _grants(plain, account, role) -> int:
    db.session.expire_all()
    membership = membership_of(plain, account)
    return len(db.session.execute(db.select(Grant).where(Grant.membership_id == membership.id,
                                                         Grant.role_id == role.id)).all())


def test_a_schema_qualified_members_path_adds_and_removes(scim, plain_and_role, account):
    """``urn:...:Group:members`` (RFC 7644 allows fully qualified paths) was answered 200 and
    changed nothing: an identity provider believed it had taken the role away."""
    plain, role = plain_and_role
    assert scim.patch(f"/Groups/{role.id}", {"op": "add", "path": MEMBERS,
                                             "value": [{"value": str(plain.id)}]}).status_code == 200
    assert _grants(plain, account, role) == 1
    assert scim.patch(f"/Groups/{role.id}", {"op": "remove",
                                             "path": f'{MEMBERS}[value eq "{plain.id}"]'}).status_code == 200
    assert _grants(plain, account, role) == 0
    scim.patch(f"/Groups/{role.id}", {"op": "add", "path": "members", "value": [{"value": str(plain.id)}]})
    assert scim.patch(f"/Groups/{role.id}", {"op": "replace", "path": MEMBERS, "value": []}).status_code == 200
    assert _grants(plain, account, role) == 0


def test_first_and_last_names_fit_their_columns_together_and_apart(scim, owner, account, domain):
    """Two names of 100 characters made a full name of 201 in a column of 200 (a 500 on PostgreSQL);
    a part of over 100 characters whose full name was unchanged was kept unchecked in one of 100."""
    answer = scim.post("/Users", new_user("long@example.org", "a" * 100, "b" * 100))
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert "together are at most 199" in answer.get_json()["detail"]
    assert db.session.execute(db.select(User).where(User.email == "long@example.org")).first() is None
    user, _link = create_corporate_user(owner, account, first_name="a" * 100, last_name="x y",
                                        email="split@example.org", personal_mailbox=False, link_shown=False)
    db.session.commit()
    answer = scim.put(f"/Users/{user.id}", new_user("split@example.org", "a" * 100 + " x", "y"))
    assert answer.status_code == 400 and "givenName is at most 100" in answer.get_json()["detail"]
    db.session.expire_all()
    assert db.session.execute(db.select(ScimProfile.given_name).where(ScimProfile.user_id == user.id)).scalar() \
        in (None, "a" * 100)
    answer = scim.put(f"/Users/{user.id}", new_user("split@example.org", "a" * 99, "b" * 100))
    assert answer.status_code == 200 and len(db.session.get(User, user.id).name) == 200


def test_two_adds_at_once_make_one_grant_and_the_second_is_told(scim, plain_and_role, account):
    """Two adds at once could each find no grant and both insert one (nothing in the database
    stopped it), and removing the member then failed. Now the database keeps one grant: the request
    that loses the race is answered 409, and removing the member takes the role away."""
    from tests.racing import same_grant_made_first

    plain, role = plain_and_role
    membership = membership_of(plain, account)
    # Just after the request looked for the grant and found none: another one makes it and commits.
    with same_grant_made_first(membership.id, account.id, role.id) as raced:
        answer = scim.patch(f"/Groups/{role.id}", {"op": "add", "path": "members",
                                                   "value": [{"value": str(plain.id)}]})
    assert raced and answer.status_code == 409, answer.get_data(as_text=True)
    assert answer.get_json()["scimType"] == "uniqueness"
    assert _grants(plain, account, role) == 1
    # The provider tries again: the member holds the role, once.
    assert scim.patch(f"/Groups/{role.id}", {"op": "add", "path": "members",
                                             "value": [{"value": str(plain.id)}]}).status_code == 200
    assert _grants(plain, account, role) == 1
    answer = scim.patch(f"/Groups/{role.id}", {"op": "remove", "path": f'members[value eq "{plain.id}"]'})
    assert answer.status_code == 200 and _grants(plain, account, role) == 0


def test_a_portal_name_split_oddly_does_not_stop_deactivating(scim, owner, account, domain):
    """A first name with a space ("Ana Maria") made SCIM's family name part of it: a PATCH of
    ``active`` alone was refused for a family name over 100 characters, so the person stayed active."""
    user, _link = create_corporate_user(owner, account, first_name="Ana Maria", last_name="b" * 95,
                                        email="ana@example.org", personal_mailbox=False, link_shown=False)
    db.session.commit()
    answer = scim.patch(f"/Users/{user.id}", {"op": "replace", "path": "active", "value": False})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, user.id).suspended_at is not None
    assert db.session.get(User, user.id).name == "Ana Maria " + "b" * 95


def test_a_scim_token_short_of_scopes_is_told_the_scim_scope(client, owner, account, domain):
    from tests.scim.conftest import Scim, make_token

    answer = Scim(client, make_token(owner, account, scopes=("scim:read",))).post(
        "/Users", new_user("x@example.org", "X", "Y"))
    assert answer.status_code == 403
    assert answer.get_json()["detail"].endswith("it needs one of these: scim:write.")


def test_an_administrators_token_leaves_an_owners_profile_as_it_is(client, owner, account, domain, make):
    """An Administrator's token rewrote a corporate Owner's externalId, displayName, department and
    manager, which the Administrator's own pages refuse (they change someone's name only when they
    hold every right that person holds). Sent unchanged, the same values are still accepted."""
    from portal.roles.services import grant_role, system_role
    from tests.scim.conftest import ENTERPRISE, Scim, make_token

    boss, _link = create_corporate_user(owner, account, first_name="Big", last_name="Boss", email="boss@example.org",
                                        personal_mailbox=False, link_shown=False)
    grant_role(owner, account, membership_of(boss, account), system_role("owner"))
    plain, _link = create_corporate_user(owner, account, first_name="Pl", last_name="Ain", email="plain@example.org",
                                         personal_mailbox=False, link_shown=False)
    admin = make.user("admin@elsewhere.example")
    make.member(account, admin, roles=("administrator",))
    db.session.commit()
    theirs = Scim(client, make_token(admin, account))
    before = theirs.get(f"/Users/{boss.id}").get_json()
    for operation in ({"op": "replace", "path": "externalId", "value": "admin-chosen"},
                      {"op": "replace", "path": "displayName", "value": "Not the boss"},
                      {"op": "replace", "path": f"{ENTERPRISE}:department", "value": "Nowhere"},
                      {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": {"value": str(plain.id)}}):
        answer = theirs.patch(f"/Users/{boss.id}", operation)
        assert answer.status_code == 403 and "do not hold" in answer.get_json()["detail"], (operation, answer.json)
    db.session.expire_all()
    assert db.session.execute(db.select(ScimProfile).where(ScimProfile.user_id == boss.id)).scalar_one_or_none() is None
    replaced = {key: value for key, value in before.items() if key not in ("meta", "groups")}
    assert theirs.put(f"/Users/{boss.id}", replaced).status_code == 200
    # The plain user, whose rights the Administrator holds, is theirs to describe.
    answer = theirs.patch(f"/Users/{plain.id}", {"op": "replace", "path": "externalId", "value": "hr-42"})
    assert answer.status_code == 200 and answer.get_json()["externalId"] == "hr-42"
    # The Owner's own token does it.
    mine = Scim(client, make_token(owner, account, name="Owner's"))
    answer = mine.patch(f"/Users/{boss.id}", {"op": "replace", "path": "externalId", "value": "boss-1"})
    assert answer.status_code == 200 and answer.get_json()["externalId"] == "boss-1"
