"""Sized for 10,000: a SCIM list or look-up makes as many SQL statements for an account of many
people as for one of a few (the filter and the paging are SQL, members come in one statement)."""

from __future__ import annotations

import pytest

from portal.extensions import db
from portal.roles.services import create_role
from tests.scim.conftest import ENTERPRISE, new_user
from tests.seeding import seed
from tests.web.test_list_statements import counted


@pytest.fixture
def grow(owner, account, domain, scim):
    role = create_role(owner, account, name="Staff", scope="account", description="", permissions={"members.view"})
    db.session.commit()
    state = {"seeded": 0, "role_id": role.id}
    manager = scim.post("/Users", new_user(user_name="boss@example.org", given="Big", family="Boss")).get_json()
    scim.post("/Users", new_user(**{ENTERPRISE: {"department": "Sales", "manager": {"value": manager["id"]}}}))

    ids = (type(account), account.id), (type(domain), domain.id), (type(role), role.id)

    def more(size: int) -> None:
        # The test expunges the session between requests: fetch the rows afresh.
        seed(*(db.session.get(model, row_id) for model, row_id in ids), size, state["seeded"])
        state["seeded"] += size
        db.session.commit()

    return more, state


QUERIES = [
    ("/Users", {}),
    ("/Users", {"count": "100", "startIndex": "20"}),
    ("/Users", {"filter": 'userName sw "person" and active eq true', "count": "50"}),
    ("/Users", {"filter": f'{ENTERPRISE}:department eq "Sales"'}),
    ("/Groups", {}),
    ("/Groups", {"excludedAttributes": "members"}),
    ("/Groups/{role}", {}),
    ("/Groups", {"filter": 'members[value eq "1"]'}),
]


@pytest.mark.parametrize("path, query", QUERIES)
def test_lists__make_as_many_statements_with_many_people_as_with_few(scim, grow, path, query):
    more, state = grow
    more(4)
    url = path.format(role=state["role_id"])
    assert scim.get(url, **query).status_code == 200
    db.session.expunge_all()
    with counted() as few:
        small = scim.get(url, **query)
    more(300)
    db.session.expunge_all()
    with counted() as many:
        large = scim.get(url, **query)
    assert small.status_code == large.status_code == 200
    assert len(many) == len(few), "\n".join(["FEW"] + few + ["MANY"] + many)
    if path == "/Users":
        assert len(large.get_json()["Resources"]) <= int(query.get("count", 100))


def test_group_changes__make_as_many_statements_for_many_members_as_for_few(scim, grow):
    """A directory pushing a group of thousands: adding members, replacing them all, or making the
    group with them, reads and writes them together (a review: six statements per member added,
    and one more per thousand for the members already there, with 5,000 members over a second)."""
    more, state = grow
    more(260)
    people = sorted(int(resource["id"]) for resource in scim.get("/Users", count="300").get_json()["Resources"])
    made = scim.post("/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Team"})
    group = f"/Groups/{made.get_json()['id']}"

    def add(ids):
        return scim.patch(group, {"op": "add", "path": "members", "value": [{"value": str(i)} for i in ids]})

    assert add(people[:2]).status_code == 200  # (the group's link to the provider made once)
    db.session.expunge_all()
    with counted() as few:
        assert add(people[2:4]).status_code == 200
    db.session.expunge_all()
    with counted() as many:
        assert add(people[4:204]).status_code == 200
    assert len(many) == len(few), "\n".join(["FEW"] + few + ["MANY"] + many)
    everyone = scim.get(group).get_json()["members"]
    assert [int(member["value"]) for member in everyone] == people[:204]
    assert all(member["$ref"].endswith(f"/Users/{member['value']}") for member in everyone)
    with counted() as made:
        answer = scim.post("/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                       "displayName": "Everyone", "members": [{"value": str(i)} for i in people]})
    assert answer.status_code == 201 and len(answer.get_json()["members"]) == len(people)
    assert len(made) < 40, "\n".join(made)
