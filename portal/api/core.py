"""The JSON API's plumbing: the blueprint, the OpenAPI document, and one decorator for endpoints.

An endpoint declares its access rule (the same ``@rule`` gate as the pages), its query and body
models (pydantic) and its responses; the decorator documents it through spectree, which builds
the OpenAPI 3.1 document from the code, and parses the request with the same models, answering
RFC 9457 problem details for anything invalid. Endpoints then call the same services as the
views: the rules live there, once.
"""

from __future__ import annotations

import json
import re
from functools import wraps
from typing import Any

from flask import Blueprint, Response, g, make_response, request, url_for
from flask_babel import gettext as _
from pydantic import BaseModel, ValidationError
from spectree import Response as Documented
from spectree import SecurityScheme, SpecTree
from spectree.models import SecuritySchemeData

from portal.api import idempotency
from portal.api.documentation import API, BODY_ANSWERS, GENERIC_ANSWERS, IdempotencyHeaders
from portal.api.problems import PROBLEM_TYPE, Problem, problem, validation_problem
from portal.extensions import db
from portal.web.access import Rule
from portal.web.inputs import holds_unstorable
from portal.web.lists import Page

bp = Blueprint("api", __name__, url_prefix="/api/v1")
spec = SpecTree(
    "flask", mode="strict", title="Mail portal API", version="1",
    description=API,
    naming_strategy=lambda model: model.__name__, nested_naming_strategy=lambda _parent, child: child,
    validation_error_model=Problem, annotations=False,
    security_schemes=[SecurityScheme(name="token", data=SecuritySchemeData(type="http", scheme="bearer"))],
    security={"token": []},
)


def endpoint(access: Rule, *, query: type[BaseModel] | None = None, body: type[BaseModel] | None = None,
             responses: dict[int, type[BaseModel] | None], tags: tuple[str, ...] = (), creates: bool = False,
             raw_body: str | None = None):
    """Declare an API endpoint: documented, gated by ``access``, its input parsed into
    ``query=`` and ``body=`` keyword arguments of the view. A creating endpoint (``creates``)
    honours ``Idempotency-Key``. An endpoint that reads its body as a file of some media type
    says which with ``raw_body``."""

    def decorate(view):
        documented = spec.validate(
            query=query, json=body, headers=IdempotencyHeaders if creates else None,
            resp=Documented(**{f"HTTP_{code}": model for code, model in responses.items()}),
            tags=list(tags), skip_validation=True)(view)

        @wraps(documented)
        def run(**kwargs):
            if query is not None:
                try:
                    kwargs["query"] = query.model_validate(_query_values(query))
                except ValidationError as error:
                    return validation_problem(error, "query")
            if body is not None:
                try:
                    data = request.get_json(silent=True)
                except RecursionError:  # nested deeper than the parser goes
                    return problem(400, _("The JSON body is nested too deeply."))
                if data is None:
                    return problem(415 if request.mimetype != "application/json" else 400,
                                   _("Send a JSON object as the body, with Content-Type: application/json."))
                if holds_unstorable(data):
                    return problem(400, _("A value holds a character no text may hold (NUL, or half of a "
                                          "UTF-16 surrogate pair), which is not allowed."))
                try:
                    # Strict: JSON has its own types; true is not the id 1, nor "5" the number 5.
                    kwargs["body"] = body.model_validate(data, strict=True)
                except ValidationError as error:
                    return validation_problem(error, "body")
            def carry_out():
                try:
                    return make_response(view(**kwargs))
                except refusals() as refusal:
                    db.session.rollback()
                    return refusal_problem(refusal)

            return idempotency.once(token(), carry_out) if creates else carry_out()

        run.access_rule = access
        run.raw_body = raw_body
        return run

    return decorate


# The services name form fields; the API's bodies name some of them differently.
BODY_FIELDS = {"domain": "domain_id", "owner": "owner_id", "quota": "quota_bytes"}


def refusals() -> tuple[type[Exception], ...]:
    """The services' refusals: each says what is wrong, for a person to read."""
    from portal.accounts.services import DeletionRefused
    from portal.auth.services import AuthError
    from portal.bulk.services import BulkError
    from portal.domains.ownership import NameRefused
    from portal.domains.services import DomainError
    from portal.domains.settings import SettingsInvalid
    from portal.invitations.services import InvitationError
    from portal.mailboxes.services import MailboxError
    from portal.roles.services import AccessError
    from portal.users.imports import ImportError_
    from portal.users.services import UserError
    from portal.users.workbook import WorkbookRefused

    return (AccessError, MailboxError, UserError, NameRefused, DomainError, InvitationError, ImportError_,
            WorkbookRefused, BulkError, SettingsInvalid, DeletionRefused, AuthError)


def refusal_problem(refusal: Exception) -> Response:
    """403 for what the caller may not do, 422 naming the field when the refusal concerns one,
    409 for an action the object's state refuses."""
    from portal.domains.settings import SettingsInvalid
    from portal.roles.services import AccessError

    if isinstance(refusal, AccessError):
        return problem(403, str(refusal))
    if isinstance(refusal, SettingsInvalid):
        return problem(422, str(refusal), errors={f"body.values.{key}": message
                                                  for key, message in refusal.problems.items()})
    field = getattr(refusal, "field", None)
    if field:
        return problem(422, str(refusal), errors={f"body.{BODY_FIELDS.get(field, field)}": str(refusal)})
    return problem(409, str(refusal))


def _query_values(model: type[BaseModel]) -> dict[str, Any]:
    """Query arguments as the model wants them: lists where it declares lists."""
    values: dict[str, Any] = {}
    for name in request.args:
        field = model.model_fields.get(name)
        wants_list = field is not None and getattr(field.annotation, "__origin__", None) is list
        values[name] = request.args.getlist(name) if wants_list else request.args.get(name)
    return values


def json_response(data: BaseModel | dict | list, status: int = 200, headers: dict[str, str] | None = None):
    payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
    return Response(json.dumps(payload), status=status, mimetype="application/json", headers=headers)


def accepted(status_url: str, data: BaseModel) -> Response:
    """202: the work goes on in the background; its state is at ``status_url``."""
    return json_response(data, 202, {"Location": status_url})


def created(location: str, data: BaseModel) -> Response:
    return json_response(data, 201, {"Location": location})


def listed(page: Page, items: list, endpoint_name: str, **values) -> Response:
    """A page of a list, with its total and RFC 8288 ``Link`` headers to the other pages."""
    links = []
    arguments = {key: value for key, value in request.args.items() if key != "page"}
    for rel, number in (("first", 1), ("prev", page.page - 1), ("next", page.page + 1), ("last", page.pages)):
        if 1 <= number <= page.pages and not (rel in ("prev", "next") and number == page.page):
            links.append(f'<{url_for(endpoint_name, _external=True, **values, **arguments, page=number)}>; '
                         f'rel="{rel}"')
    body = {"items": items, "total": page.total, "page": page.page, "per_page": page.per_page}
    return json_response(body, headers={"Link": ", ".join(links), "X-Total-Count": str(page.total)})


def openapi_document(app) -> dict:
    """The OpenAPI 3.1 document spectree builds from the endpoints, with errors described as
    the problem details they are."""
    document = spec.spec
    for url_rule in app.url_map.iter_rules():
        media = getattr(app.view_functions.get(url_rule.endpoint), "raw_body", None)
        if media:
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", url_rule.rule)
            for method in url_rule.methods - {"HEAD", "OPTIONS"}:
                document["paths"][path][method.lower()]["requestBody"] = {
                    "required": True, "content": {media: {"schema": {"type": "string", "format": "binary"}}}}
    for path in document.get("paths", {}).values():
        for operation in path.values():
            for code, answer in operation.get("responses", {}).items():
                content = answer.get("content", {})
                if code.startswith(("4", "5")) and "application/json" in content:
                    answer["content"] = {PROBLEM_TYPE: content["application/json"]}
            answers = operation["responses"]
            generic = dict(GENERIC_ANSWERS)
            if "requestBody" in operation:
                generic.update(BODY_ANSWERS)
            for code, description in generic.items():
                answers.setdefault(code, {"description": description,
                                          "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}})
    return document


def token():
    """The API token of this request."""
    return g.get("api_token")
