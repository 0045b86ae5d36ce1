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
