"""The SCIM 2.0 endpoint (RFC 7644) at /scim/v2, for identity providers.

A request is authenticated by an API token with the ``scim`` scope (``portal.api.auth``) and
concerns the token's account: SCIM URLs name no account. Each view declares the permission it
needs, as the pages do, so a token acts within its creator's permissions and its scopes. Every
answer, errors included, is SCIM's JSON (``application/scim+json``).
"""

from __future__ import annotations

import json

from flask import Blueprint, Flask, Response, current_app, g, request
from flask_login import current_user
from pydantic import ValidationError
from scim2_models import (Context, Error, InvalidSyntaxException, InvalidValueException, ListResponse,
                          NotFoundException, PatchOp, ResourceType, ResponseParameters, SCIMException, Schema)
from sqlalchemy.exc import IntegrityError

from portal.extensions import csrf, db
from portal.roles.services import AccessError
from portal.scim import schema, services
from portal.users.services import UserError
from portal.web import errors
from portal.web.access import member, rule
from portal.web.inputs import holds_unstorable
from portal.web.urls import external_url

bp = Blueprint("scim", __name__, url_prefix="/scim/v2")
csrf.exempt(bp)  # a bearer token, not a cookie: nothing a third-party page could forge

EVERY_METHOD = ("GET", "POST", "PUT", "PATCH", "DELETE")
ANY_MEMBER = member()


# -- answers --------------------------------------------------------------------------------

def _answer(payload: dict, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(payload), status=status, headers=headers or {}, mimetype=schema.CONTENT_TYPE)


def _error(status: int, detail: str, scim_type: str | None = None, headers: dict | None = None) -> Response:
    document = Error(status=status, scim_type=scim_type, detail=detail).model_dump(scim_ctx=Context.DEFAULT)
    return _answer(document, status, headers)


# The portal's page texts speak to people in a browser; these speak to a provisioning client.
DETAILS = {
    401: "Send an API token with the scim:write scope as “Authorization: Bearer <token>”.",
    403: "The token's creator or its scopes do not allow this.",
    404: "There is no such resource or endpoint here.",
    405: "This endpoint does not accept that method.",
}


def render_error(status: int, detail: str, headers: dict | None) -> Response:
    """Every HTTP error on this blueprint (401, 403, 404, 405, 429...) as a SCIM error."""
    generic = errors.MESSAGES.get(status, (None, None))[1]
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="scim"'
    return _error(status, DETAILS.get(status, detail) if detail == generic else detail,
                  "invalidValue" if status == 400 else None, headers)


@bp.errorhandler(SCIMException)
def scim_refusal(refusal: SCIMException):
    db.session.rollback()
    error = refusal.to_error()
    return _answer(error.model_dump(scim_ctx=Context.DEFAULT), error.status or 400)


@bp.errorhandler(ValidationError)
def invalid_document(invalid: ValidationError):
    db.session.rollback()
    error = Error.from_validation_errors(invalid)[0]
    return _answer(error.model_dump(scim_ctx=Context.DEFAULT), error.status or 400)


@bp.errorhandler(UserError)
def refused_by_portal(refusal: UserError):
    """The portal's rules refused the change (an address off the account's enabled domains, a
    last name missing...): the request's values are at fault."""
    db.session.rollback()
    return _error(400, str(refusal), "invalidValue")


@bp.errorhandler(AccessError)
def not_permitted(refusal: AccessError):
    """Nobody grants more than they hold, the last owner stays, system roles stay as they are."""
    db.session.rollback()
    return _error(403, str(refusal))


@bp.errorhandler(IntegrityError)
def raced(_conflict: IntegrityError):
    # Two requests created the same person or role at once; the second one is told.
    db.session.rollback()
    return _error(409, "Someone created the same resource at the same moment.", "uniqueness")


def _body() -> dict:
    try:
        payload = request.get_json(force=True, silent=True)
    except RecursionError:  # nested deeper than the parser goes
        raise InvalidSyntaxException(detail="The JSON body is nested too deeply.") from None
    if not isinstance(payload, dict):
        raise InvalidSyntaxException(detail="Send a JSON object as the body.")
    if holds_unstorable(payload):
        raise InvalidValueException(detail="A value holds a character no text may hold (NUL, or half of a "
                                           "UTF-16 surrogate pair), which is not allowed.")
    return payload


def _response_parameters(model) -> ResponseParameters:
    """``attributes`` or ``excludedAttributes``, which every answer holding a resource honours."""
    wanted = ("attributes", "excludedAttributes")
    return ResponseParameters[model].model_validate({name: request.args[name] for name in wanted
                                                     if name in request.args})


def _resource(resource, context: Context, status: int = 200,
              parameters: ResponseParameters | None = None) -> Response:
    payload = resource.model_dump(scim_ctx=context, response_parameters=parameters)
    return _answer(payload, status, {"Location": resource.meta.location})


def _listed(page: services.Page, model, parameters: ResponseParameters) -> Response:
    payload = page.to_list_response(model).model_dump(scim_ctx=Context.SEARCH_RESPONSE,
                                                      response_parameters=parameters)
    keys = services.member_keys(parameters)
    for document, member_ids in zip(payload.get("Resources") or [], page.members or []):
        if member_ids:
            document["members"] = services.member_documents(member_ids, keys)
    return _answer(payload)


def _search_values() -> dict:
    wanted = ("filter", "startIndex", "count", "attributes", "excludedAttributes")
    return {name: request.args[name] for name in wanted if name in request.args}


# -- discovery ------------------------------------------------------------------------------

def _discovered(resources: list, model) -> Response:
    listing = ListResponse[model](total_results=len(resources), start_index=1, items_per_page=len(resources),
                                  resources=resources)
    return _answer(listing.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))


def _located(items: list, endpoint: str, resource_type: str) -> list:
    for item in items:
        item.meta = {"resourceType": resource_type, "location": external_url(endpoint, item_id=item.id)}
    return items


@bp.get("/ServiceProviderConfig")
@rule(ANY_MEMBER)
def service_provider_config():
    config = schema.service_provider_config()
    config.meta = {"resourceType": "ServiceProviderConfig",
                   "location": external_url("scim.service_provider_config")}
    return _answer(config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))


@bp.get("/ResourceTypes")
@rule(ANY_MEMBER)
def resource_types():
    return _discovered(_located(schema.resource_types(), "scim.resource_type", "ResourceType"), ResourceType)


@bp.get("/ResourceTypes/<item_id>")
@rule(ANY_MEMBER)
def resource_type(item_id):
    for item in _located(schema.resource_types(), "scim.resource_type", "ResourceType"):
        if item.id == item_id:
            return _answer(item.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
    raise NotFoundException(detail=f"No resource type {item_id[:60]}.")


@bp.get("/Schemas")
@rule(ANY_MEMBER)
def schemas():
    return _discovered(_located(schema.schemas(), "scim.schema_by_id", "Schema"), Schema)


@bp.get("/Schemas/<item_id>")
@rule(ANY_MEMBER)
def schema_by_id(item_id):
    for item in _located(schema.schemas(), "scim.schema_by_id", "Schema"):
        if item.id == item_id:
            return _answer(item.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
    raise NotFoundException(detail=f"No schema {item_id[:120]}.")


# -- users ----------------------------------------------------------------------------------

@bp.get("/Users")
@rule(member("members.view"))
def users():
    search = services.search_request(schema.UserResource, _search_values())
    return _listed(services.search_users(g.account, search), schema.UserResource, search)


@bp.post("/Users/.search")
@rule(member("members.view"))
def users_search():
    search = services.search_request(schema.UserResource, _body())
    return _listed(services.search_users(g.account, search), schema.UserResource, search)


@bp.post("/Users")
@rule(member("users.create"))
def user_create():
    wanted = services.read(schema.UserResource, _body(), Context.RESOURCE_CREATION_REQUEST)
    parameters = _response_parameters(schema.UserResource)
    user = services.create_user(current_user, g.account, wanted)
    db.session.commit()
    return _resource(services.user_by_id(g.account, str(user.id)),
                     Context.RESOURCE_CREATION_RESPONSE, 201, parameters)


@bp.get("/Users/<user_id>")
@rule(member("members.view"))
def user(user_id):
    return _resource(services.user_by_id(g.account, user_id), Context.RESOURCE_QUERY_RESPONSE,
                     parameters=_response_parameters(schema.UserResource))


@bp.put("/Users/<user_id>")
@rule(member("users.manage"))
def user_replace(user_id):
    found, profile = services.user_in_account(g.account, user_id)
    wanted = services.read(schema.UserResource, _body(), Context.RESOURCE_REPLACEMENT_REQUEST)
    parameters = _response_parameters(schema.UserResource)
    services.replace_user(current_user, g.account, found, profile, wanted)
    db.session.commit()
    return _resource(services.user_by_id(g.account, user_id),
                     Context.RESOURCE_REPLACEMENT_RESPONSE, parameters=parameters)


@bp.patch("/Users/<user_id>")
@rule(member("users.manage"))
def user_patch(user_id):
    found, profile = services.user_in_account(g.account, user_id)
    patch = services.read_user_patch(_body(), found)
    parameters = _response_parameters(schema.UserResource)
    if patch is not None:
        services.patch_user(current_user, g.account, found, profile, patch)
        db.session.commit()
    return _resource(services.user_by_id(g.account, user_id),
                     Context.RESOURCE_PATCH_RESPONSE, parameters=parameters)


@bp.delete("/Users/<user_id>")
@rule(member("users.manage"))
def user_delete(user_id):
    found, _profile = services.user_in_account(g.account, user_id)
    services.delete_user(current_user, g.account, found)
    db.session.commit()
    return Response(status=204)


# -- groups ---------------------------------------------------------------------------------

@bp.get("/Groups")
@rule(member("roles.view"))
def groups():
    search = services.search_request(schema.Group, _search_values())
    page = services.search_groups(g.account, search, services.members_wanted(search))
    return _listed(page, schema.Group, search)


@bp.post("/Groups/.search")
@rule(member("roles.view"))
def groups_search():
    search = services.search_request(schema.Group, _body())
    page = services.search_groups(g.account, search, services.members_wanted(search))
    return _listed(page, schema.Group, search)


def _group(role_id: str, parameters: ResponseParameters, context: Context, status: int = 200) -> Response:
    role, link = services.group_in_account(g.account, role_id)
    resource = services.group_resource(role, link, None)
    payload = resource.model_dump(scim_ctx=context, response_parameters=parameters)
    keys = services.member_keys(parameters)
    member_ids = services.member_ids(g.account, role) if keys else None
    if member_ids:
        payload["members"] = services.member_documents(member_ids, keys)
    return _answer(payload, status, {"Location": resource.meta.location})


@bp.post("/Groups")
@rule(member("roles.manage"))
def group_create():
    wanted = services.read(schema.Group, _body(), Context.RESOURCE_CREATION_REQUEST)
    parameters = _response_parameters(schema.Group)
    role = services.create_group(current_user, g.account, wanted)
    db.session.commit()
    return _group(str(role.id), parameters, Context.RESOURCE_CREATION_RESPONSE, 201)


@bp.get("/Groups/<role_id>")
@rule(member("roles.view"))
def group(role_id):
    return _group(role_id, _response_parameters(schema.Group), Context.RESOURCE_QUERY_RESPONSE)


@bp.put("/Groups/<role_id>")
@rule(member("access.grant", also="members.view"))
def group_replace(role_id):
    role, link = services.group_in_account(g.account, role_id)
    wanted = services.read(schema.Group, _body(), Context.RESOURCE_REPLACEMENT_REQUEST)
    parameters = _response_parameters(schema.Group)
    services.replace_group(current_user, g.account, role, link, wanted, services.member_ids(g.account, role))
    db.session.commit()
    return _group(role_id, parameters, Context.RESOURCE_REPLACEMENT_RESPONSE)


@bp.patch("/Groups/<role_id>")
@rule(member("access.grant", also="members.view"))
def group_patch(role_id):
    role, link = services.group_in_account(g.account, role_id)
    patch = services.read(PatchOp[schema.Group], _body(), Context.RESOURCE_PATCH_REQUEST)
    parameters = _response_parameters(schema.Group)
    services.patch_group(current_user, g.account, role, link, patch)
    db.session.commit()
    return _group(role_id, parameters, Context.RESOURCE_PATCH_RESPONSE)


@bp.delete("/Groups/<role_id>")
@rule(member("roles.manage"))
def group_delete(role_id):
    role, _link = services.group_in_account(g.account, role_id)
    services.delete_group(current_user, g.account, role)
    db.session.commit()
    return Response(status=204)


# -- what is not offered --------------------------------------------------------------------

@rule(ANY_MEMBER)
def method_not_allowed(**_ignored):
    offered = {method for other in current_app.url_map.iter_rules()
               if other.rule == request.url_rule.rule and other.endpoint != request.endpoint
               for method in other.methods - {"HEAD", "OPTIONS"}}
    return _error(405, DETAILS[405], headers={"Allow": ", ".join(sorted(offered))})


@rule(ANY_MEMBER)
def not_implemented(**_ignored):
    return _error(501, "This service provider does not offer this (see /ServiceProviderConfig).")


@rule(ANY_MEMBER)
def unknown(**_ignored):
    return _error(404, DETAILS[404])


def _refuse_other_methods() -> None:
    """Each path answers the methods it does not take with a SCIM 405, not a page."""
    offered = {"/ServiceProviderConfig": ("GET",), "/ResourceTypes": ("GET",), "/ResourceTypes/<item_id>": ("GET",),
               "/Schemas": ("GET",), "/Schemas/<item_id>": ("GET",), "/Users": ("GET", "POST"),
               "/Users/.search": ("POST",), "/Users/<user_id>": ("GET", "PUT", "PATCH", "DELETE"),
               "/Groups": ("GET", "POST"), "/Groups/.search": ("POST",),
               "/Groups/<role_id>": ("GET", "PUT", "PATCH", "DELETE")}
    for number, (path, methods) in enumerate(offered.items()):
        bp.add_url_rule(path, f"not_allowed_{number}", method_not_allowed,
                        methods=[method for method in EVERY_METHOD if method not in methods])
    # Bulk operations, /Me and searching every resource type at once are not offered.
    for number, path in enumerate(("/Bulk", "/Me", "/Me/<path:rest>", "/.search")):
        bp.add_url_rule(path, f"not_implemented_{number}", not_implemented, methods=EVERY_METHOD)
    bp.add_url_rule("/<path:rest>", "unknown", unknown, methods=EVERY_METHOD)


_refuse_other_methods()


def init_app(app: Flask) -> None:
    """Errors on this blueprint are answered as SCIM errors (the token itself is read by the API's hook)."""
    errors.renderers["scim"] = render_error
