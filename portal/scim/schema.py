"""The SCIM wire format (RFC 7643): exactly the attributes the portal keeps, as scim2-models models.

The ``/Schemas`` endpoint publishes these models and requests are read with them, so what the
portal declares and what it accepts cannot drift apart. Attributes an identity provider sends that
are not here (``title``, ``phoneNumbers``...) are dropped, as RFC 7644 lets a service provider do:
the policy below ignores them rather than refusing the whole request, which is what Entra ID and
Okta need. The same policy reads PATCH the way Entra ID writes it: a ``remove`` carrying the
values to remove, and an ``add`` on a filter that matches nothing adding the value it describes.

Choices the portal's rules dictate:

- ``userName`` is the login address: required, unique, and immutable (the portal has no way to
  change someone's address), compared without case.
- ``name.givenName`` and ``name.familyName`` are required, as a corporate user's first and last
  names are; ``active`` is required too, since a person is either suspended or not.
- ``emails`` is read-only: one work address, the login address.
- Group members are users only (no nested groups); ``members.display`` and ``members.type`` are
  not kept, so they are not declared.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Field
from scim2_models import (URN, AuthenticationScheme, Bulk, CaseExact, ChangePassword, ComplexAttribute, ETag,
                          Extension, Filter, Mutability, Patch, Reference, Required, Resource, ResourceType,
                          ScimPolicy, ServiceProviderConfig, Sort, Uniqueness)

# The most resources one list answer holds, whatever ``count`` asks.
MAX_RESULTS = 200
DEFAULT_COUNT = 100

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
CONTENT_TYPE = "application/scim+json"


class Name(ComplexAttribute):
    given_name: Annotated[str | None, Required.true] = None
    """The person's first name."""

    family_name: Annotated[str | None, Required.true] = None
    """The person's last name."""


class Email(ComplexAttribute):
    value: Annotated[str | None, Mutability.read_only] = None
    """The login address."""

    type: Annotated[str | None, Mutability.read_only] = None
    """Always ``work``."""

    primary: Annotated[bool | None, Mutability.read_only] = None
    """Always true."""


class User(Resource[Any]):
    """A corporate user of the account."""

    __schema__ = URN("urn:ietf:params:scim:schemas:core:2.0:User")

    user_name: Annotated[str | None, Uniqueness.server, Required.true, Mutability.immutable] = None
    """The login address, on one of the account's enabled domains."""

    name: Annotated[Name | None, Required.true] = None
    """The person's first and last names."""

    display_name: str | None = None
    """The name shown for the person, as the identity provider gives it."""

    active: Annotated[bool | None, Required.true] = None
    """False suspends the person (no sign-in, personal mailboxes disabled, access kept)."""

    emails: Annotated[list[Email] | None, Mutability.read_only] = None
    """The login address, as the person's work address."""

    Name: ClassVar[type[ComplexAttribute]] = Name
    Emails: ClassVar[type[ComplexAttribute]] = Email


class Manager(ComplexAttribute):
    value: Annotated[str | None, Required.true, CaseExact.true] = None
    """The id of the manager's User resource, a user of the same account."""

    ref: Annotated[Reference["User"] | None, Required.true] = Field(  # noqa: F821
        None, serialization_alias="$ref", validation_alias="$ref")
    """The URI of the manager's User resource."""


class EnterpriseUser(Extension):
    """The enterprise extension's attributes the portal keeps."""

    __schema__ = URN("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")

    employee_number: str | None = None
    """The person's employee number."""

    department: str | None = None
    """The person's department."""

    manager: Manager | None = None
    """The person's manager, another user of the account."""


class GroupMember(ComplexAttribute):
    value: Annotated[str | None, Mutability.immutable, CaseExact.true] = None
    """The id of a User resource of the account."""

    ref: Annotated[Reference["User"] | None, Mutability.immutable] = Field(  # noqa: F821
        None, serialization_alias="$ref", validation_alias="$ref")
    """The URI of that User resource."""


class Group(Resource[Any]):
    """One of the account's roles; its members are the users holding it over the account."""

    __schema__ = URN("urn:ietf:params:scim:schemas:core:2.0:Group")

    display_name: Annotated[str | None, Required.true, Uniqueness.server] = None
    """The role's name; system roles cannot be renamed."""

    members: list[GroupMember] | None = None
    """The users who hold the role; adding one grants it, removing one takes it away."""

    Members: ClassVar[type[ComplexAttribute]] = GroupMember


UserResource = User[EnterpriseUser]

# Tolerant of what identity providers send (see the module's docstring), strict on what the
# portal answers.
POLICY = ScimPolicy(unknown=ScimPolicy.Unknown.ignore, remove_value_as_filter=ScimPolicy.RemoveValue.apply,
                    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create)


def service_provider_config() -> ServiceProviderConfig:
    return ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=False),
        authentication_schemes=[AuthenticationScheme(
            type=AuthenticationScheme.Type.oauthbearertoken, name="API token",
            description="An API token with the scim:write scope, made in the account's Settings → API tokens, "
                        "sent as “Authorization: Bearer <token>”.",
            primary=True)],
    )


def resource_types() -> list[ResourceType]:
    users = ResourceType.from_resource(UserResource)
    users.description = "The account's corporate users"
    groups = ResourceType.from_resource(Group)
    groups.description = "The account's roles at account scope"
    return [users, groups]


def schemas() -> list:
    return [User.to_schema(), EnterpriseUser.to_schema(), Group.to_schema()]
