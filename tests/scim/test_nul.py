"""A NUL character written as ``\\u0000`` in JSON (a body of the API or of SCIM, or a SCIM filter's
quoted value) reaches Python as text: PostgreSQL refuses it in any text column, which was an
unhandled error (a 500, found by the SCIM fuzz test). Half of a surrogate pair (``\\ud800`` alone)
is text no database driver can encode (a 500 as well, found by a review). Each is a 400 that says
why, on SQLite too."""

from __future__ import annotations

import pytest

from tests.scim.conftest import ERROR_SCHEMA, new_user


@pytest.mark.parametrize("expression", ['userName eq "a\\u0000b"', 'displayName co "\\u0000"',
                                        'id eq "\\u0000"', 'emails[value sw "\\u0000"]',
                                        # half of a surrogate pair, which no database driver can encode
                                        'userName eq "a\\ud800b"', 'displayName co "\\udfff"'])
def test_scim_filter__a_nul_in_a_value_is_an_invalid_filter(scim, expression):
    for path in ("/Users", "/Groups"):
        response = scim.get(path, filter=expression)
        assert response.status_code == 400, response.get_data(as_text=True)
        document = response.get_json()
        assert document["schemas"] == [ERROR_SCHEMA] and document["scimType"] == "invalidFilter"
        # Groups have no userName or emails: refused for that before the value is read.
        assert "NUL" in document["detail"] or (path == "/Groups" and "not found" in document["detail"])


@pytest.mark.parametrize("body", [new_user(displayName="Jane\u0000"), new_user(user_name="jane\u0000@example.org"),
                                  new_user(name={"givenName": "Ja\u0000ne"}), {**new_user(), "ext\u0000": 1},
                                  new_user(displayName="Jane\ud800"), {**new_user(), "ext\udc00": 1}])
def test_scim_body__a_nul_anywhere_is_refused(scim, body):
    response = scim.post("/Users", body)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["schemas"] == [ERROR_SCHEMA] and "NUL" in response.get_json()["detail"]
    assert scim.get("/Users", filter='userName sw "jane"').get_json()["totalResults"] == 0


def test_scim_patch__a_nul_in_a_value_is_refused(scim):
    created = scim.post("/Users", new_user()).get_json()
    response = scim.patch(f"/Users/{created['id']}", {"op": "replace", "path": "displayName", "value": "x\u0000"})
    assert response.status_code == 400 and "NUL" in response.get_json()["detail"]
    assert scim.get(f"/Users/{created['id']}").get_json().get("displayName") != "x\u0000"
