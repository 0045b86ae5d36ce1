"""What the SCIM endpoint says of itself, and how it answers what it does not offer."""

from __future__ import annotations

import pytest
from scim2_models import Context

from portal.scim import schema
from tests.scim.conftest import ERROR_SCHEMA, GROUP_SCHEMA, USER_SCHEMA, ENTERPRISE


def test_service_provider_config__declares_what_is_implemented(scim):
    response = scim.get("/ServiceProviderConfig")
    assert response.status_code == 200 and response.mimetype == "application/scim+json"
    config = response.get_json()
    assert config["patch"] == {"supported": True}
    assert config["bulk"]["supported"] is False
    assert config["filter"] == {"supported": True, "maxResults": schema.MAX_RESULTS}
    assert (config["sort"], config["etag"], config["changePassword"]) == ({"supported": False},) * 3
    assert [scheme["type"] for scheme in config["authenticationSchemes"]] == ["oauthbearertoken"]


def test_schemas__publish_exactly_the_models_requests_are_read_with(scim):
    response = scim.get("/Schemas")
    published = {item["id"]: item for item in response.get_json()["Resources"]}
    assert set(published) == {USER_SCHEMA, ENTERPRISE, GROUP_SCHEMA}
    for model in (schema.User, schema.EnterpriseUser, schema.Group):
        expected = model.to_schema().model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        got = {key: value for key, value in published[str(model.__schema__)].items() if key != "meta"}
        assert got == expected
    user = {attribute["name"]: attribute for attribute in published[USER_SCHEMA]["attributes"]}
    assert set(user) == {"userName", "name", "displayName", "active", "emails"}
    assert (user["userName"]["uniqueness"], user["userName"]["mutability"], user["userName"]["caseExact"]) == (
        "server", "immutable", False)
    assert user["emails"]["mutability"] == "readOnly"
    enterprise = {attribute["name"] for attribute in published[ENTERPRISE]["attributes"]}
    assert enterprise == {"employeeNumber", "department", "manager"}
    one = scim.get(f"/Schemas/{USER_SCHEMA}")
    assert one.status_code == 200 and one.get_json()["id"] == USER_SCHEMA


def test_resource_types__users_with_the_enterprise_extension_and_groups(scim):
    listed = scim.get("/ResourceTypes").get_json()
    by_name = {item["name"]: item for item in listed["Resources"]}
    assert by_name["User"]["endpoint"] == "/Users"
    assert by_name["User"]["schemaExtensions"] == [{"schema": ENTERPRISE, "required": False}]
    assert by_name["Group"]["endpoint"] == "/Groups"
    assert scim.get("/ResourceTypes/Group").get_json()["schema"] == GROUP_SCHEMA


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/ResourceTypes/Pet", 404),
    ("GET", "/Schemas/urn:example:nothing", 404),
    ("GET", "/NoSuchThing", 404),
    ("GET", "/Users/not-a-number", 404),
    ("GET", "/Users/99999999999999", 404),
    ("GET", "/Groups/0", 404),
    ("POST", "/ServiceProviderConfig", 405),
    ("DELETE", "/Users", 405),
    ("POST", "/Users/1", 405),
    ("GET", "/Users/.search", 405),
    ("POST", "/Bulk", 501),
    ("GET", "/Me", 501),
    ("POST", "/.search", 501),
])
def test_what_is_not_here__is_a_scim_error(scim, method, path, status):
    response = scim.call(method, path, {} if method != "GET" else None)
    assert response.status_code == status
    assert response.mimetype == "application/scim+json"
    document = response.get_json()
    assert document["schemas"] == [ERROR_SCHEMA] and document["status"] == str(status) and document["detail"]
    if status == 405:
        assert response.headers["Allow"]
