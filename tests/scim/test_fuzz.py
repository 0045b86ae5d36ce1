"""No input makes the SCIM endpoint fail: hypothesis throws filters, PATCH documents and
resources at it, built from the pieces identity providers use and from noise. Every answer is a
success or a SCIM error; the test app re-raises any unhandled exception, so a 500 fails here."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.scim.conftest import ENTERPRISE, ERROR_SCHEMA, PATCH_SCHEMA, new_user

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

ATTRIBUTES = ["userName", "USERNAME", "externalId", "displayName", "active", "id", "emails", "emails.value",
              "emails.type", "name.givenName", "members", "members.value", "title", f"{ENTERPRISE}:department",
              f"{ENTERPRISE}:manager", f"{ENTERPRISE}:manager.value", "meta.created", "urn:x:y:z", "$ref", "a.b.c"]
OPERATORS = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr", "EQ", "xx", ""]
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                         st.text(max_size=30), st.sampled_from(["False", "True", "1", "jane@example.org", "2"]))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.sampled_from(ATTRIBUTES + ["value", "op", "path"]),
                                                           st.text(max_size=10)), inner, max_size=4)), max_leaves=12)


@st.composite
def filters(draw) -> str:
    def comparison():
        attribute = draw(st.sampled_from(ATTRIBUTES))
        operator = draw(st.sampled_from(OPERATORS))
        value = "" if operator == "pr" else json.dumps(draw(json_scalars))
        return f"{attribute} {operator} {value}".strip()

    terms = [comparison() for _ in range(draw(st.integers(1, 3)))]
    joiners = [draw(st.sampled_from([" and ", " or ", " AND ", " xor "])) for _ in terms[1:]]
    text = terms[0] + "".join(joiner + term for joiner, term in zip(joiners, terms[1:]))
    shape = draw(st.sampled_from(["plain", "not", "bracket", "value_path", "noise"]))
    if shape == "not":
        return f"not ({text})"
    if shape == "bracket":
        return f"({text}"
    if shape == "value_path":
        return f"{draw(st.sampled_from(['emails', 'members', 'name']))}[{text}]"
    if shape == "noise":
        return draw(st.text(max_size=40))
    return text


operations = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "Add", "replace", "Replace", "remove", "Remove", "REPLACE", "move", ""])},
    optional={"path": st.one_of(st.sampled_from(ATTRIBUTES + ['emails[type eq "work"].value', 'members[value eq "2"]',
                                                              'members[value eq "x"].display', "name", "]["]),
                                st.text(max_size=20)),
              "value": json_values})
patch_documents = st.one_of(
    st.fixed_dictionaries({"schemas": st.just([PATCH_SCHEMA]), "Operations": st.lists(operations, max_size=4)}),
    json_values)


def _answered_properly(response) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        document = response.get_json()
        assert document["schemas"] == [ERROR_SCHEMA] and document["status"] == str(response.status_code)


numbers = st.one_of(st.integers(-2**80, 2**80).map(str), st.text(max_size=8))
attribute_lists = st.lists(st.one_of(st.sampled_from(ATTRIBUTES), st.text(max_size=12)), max_size=3).map(",".join)


@FUZZ
@given(expression=filters(), start=numbers, count=numbers, attributes=attribute_lists,
       which=st.sampled_from(["attributes", "excludedAttributes", "sortBy"]))
def test_fuzz__user_and_group_filters_and_paging(scim, expression, start, count, attributes, which):
    for path in ("/Users", "/Groups"):
        response = scim.get(path, filter=expression, startIndex=start, count=count, **{which: attributes})
        _answered_properly(response)
        assert response.status_code in (200, 400)


@FUZZ
@given(document=patch_documents)
def test_fuzz__patching_a_user(scim, document):
    people = scim.get("/Users").get_json()["Resources"] or [scim.post("/Users", new_user()).get_json()]
    _answered_properly(scim.call("PATCH", f"/Users/{people[0]['id']}", document))


@FUZZ
@given(document=patch_documents)
def test_fuzz__patching_a_group(scim, document):
    groups = [item for item in scim.get("/Groups").get_json()["Resources"] if item["displayName"] != "Account Owner"]
    if len(groups) < 2:
        scim.post("/Groups", {"displayName": "Fuzzed"})
        groups = scim.get("/Groups").get_json()["Resources"]
    _answered_properly(scim.call("PATCH", f"/Groups/{groups[-1]['id']}", document))


@FUZZ
@given(body=st.one_of(json_values, st.builds(lambda extra: {**new_user(), **extra},
                                            st.dictionaries(st.sampled_from(ATTRIBUTES), json_values, max_size=3))))
def test_fuzz__creating_and_replacing(scim, body):
    created = scim.post("/Users", body)
    _answered_properly(created)
    if created.status_code == 201:
        _answered_properly(scim.put(f"/Users/{created.get_json()['id']}", body))
        assert scim.delete(f"/Users/{created.get_json()['id']}").status_code == 204
    _answered_properly(scim.post("/Groups", body))
