"""Errors as RFC 9457 problem details (``application/problem+json``), naming each field."""

from __future__ import annotations

import json

from flask import Response
from flask_babel import gettext as _
from pydantic import BaseModel, Field, ValidationError

from portal.api.documentation import PROBLEM_ERRORS, PROBLEM_FIELD
from portal.i18n import _l

PROBLEM_TYPE = "application/problem+json"
# Titles and details are in the caller's language (Accept-Language, or its maker's profile).
TITLES = {400: _l("Bad request"), 401: _l("Not authenticated"), 403: _l("Not allowed"), 404: _l("Not found"),
          405: _l("Method not allowed"), 409: _l("Conflict"), 410: _l("Gone"), 413: _l("Too large"),
          415: _l("Unsupported media type"), 422: _l("Invalid request"), 429: _l("Too many requests"),
          500: _l("Server error")}


class FieldProblem(BaseModel):
    field: str = Field(description=PROBLEM_FIELD)
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    errors: list[FieldProblem] = Field(default_factory=list, description=PROBLEM_ERRORS)


def problem(status: int, detail: str = "", *, errors: dict[str, str] | None = None,
            headers: dict[str, str] | None = None) -> Response:
    body = Problem(title=str(TITLES[status]) if status in TITLES else _("Error"), status=status, detail=str(detail),
                   errors=[FieldProblem(field=key, message=str(value)) for key, value in (errors or {}).items()])
    return Response(json.dumps(body.model_dump()), status=status, mimetype=PROBLEM_TYPE, headers=headers)


# What is wrong with a field, by pydantic's kind of error, in the caller's language (pydantic's
# own words, in English, for the others).
FIELD_MESSAGES = {
    "missing": _l("Required."),
    "extra_forbidden": _l("Not a field this request takes."),
    "string_type": _l("Must be text."),
    "string_too_short": _l("At least %(min_length)s characters."),
    "string_too_long": _l("At most %(max_length)s characters."),
    "string_pattern_mismatch": _l("Not in the expected form."),
    "int_type": _l("Must be a whole number."),
    "int_parsing": _l("Must be a whole number."),
    "int_from_float": _l("Must be a whole number."),
    "bool_type": _l("Must be true or false."),
    "bool_parsing": _l("Must be true or false."),
    "greater_than_equal": _l("Must be at least %(ge)s."),
    "less_than_equal": _l("Must be at most %(le)s."),
    "greater_than": _l("Must be more than %(gt)s."),
    "less_than": _l("Must be less than %(lt)s."),
    "literal_error": _l("Must be one of %(expected)s."),
    "enum": _l("Must be one of %(expected)s."),
    "list_type": _l("Must be a list."),
    "too_long": _l("At most %(max_length)s items."),
    "dict_type": _l("Must be an object."),
    "model_type": _l("Must be an object."),
}


def _field_message(item: dict) -> str:
    text = FIELD_MESSAGES.get(item.get("type", ""))
    if text is None:
        return item["msg"]
    try:
        return str(text) % dict(item.get("ctx") or {})
    except (KeyError, TypeError, ValueError):
        return item["msg"]


def validation_problem(error: ValidationError, where: str) -> Response:
    errors = {}
    for item in error.errors():
        path = ".".join(str(part) for part in (where, *item["loc"]))
        errors.setdefault(path, _field_message(item))
    return problem(422, _("Some fields are not valid."), errors=errors)
