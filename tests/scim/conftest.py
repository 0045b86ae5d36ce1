"""An account with an enabled domain, a SCIM token made by its owner, and a client that speaks SCIM."""

from __future__ import annotations

import json

import pytest

from portal.extensions import db
from portal.tokens import services as tokens
from tests.mailboxes.conftest import enabled_domain

SCIM = "/scim/v2"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


def make_token(owner, account, scopes=("scim:write",), name="Entra ID") -> str:
    _, raw = tokens.create(owner, account, name=name, scopes=set(scopes), expires_at=None)
    db.session.commit()
    return raw


class Scim:
    """Requests to the SCIM endpoint with a bearer token, as an identity provider sends them."""

    def __init__(self, client, raw: str | None):
        self.client = client
        self.raw = raw

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.raw}"} if self.raw else {}

    def call(self, method: str, path: str, body=None, **query):
        data = json.dumps(body) if body is not None else None
        return self.client.open(SCIM + path, method=method, headers=self.headers(), data=data, query_string=query,
                                content_type="application/scim+json" if body is not None else None)

    def get(self, path, **query):
        return self.call("GET", path, **query)

    def post(self, path, body):
        return self.call("POST", path, body)

    def put(self, path, body):
        return self.call("PUT", path, body)

    def patch(self, path, *operations):
        return self.call("PATCH", path, {"schemas": [PATCH_SCHEMA], "Operations": list(operations)})

    def delete(self, path):
        return self.call("DELETE", path)


def new_user(user_name="jane.doe@example.org", given="Jane", family="Doe", **extra) -> dict:
    return {"schemas": [USER_SCHEMA], "userName": user_name, "name": {"givenName": given, "familyName": family},
            "active": True, **extra}


@pytest.fixture
def domain(owner, account):
    return enabled_domain(owner, account)


@pytest.fixture
def token(owner, account, domain):
    return make_token(owner, account)


@pytest.fixture
def scim(client, token) -> Scim:
    return Scim(client, token)
