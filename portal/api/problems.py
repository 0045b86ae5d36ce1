"""Errors as RFC 9457 problem details (``application/problem+json``), naming each field."""

from __future__ import annotations

import json

from flask import Response
from pydantic import BaseModel, Field, ValidationError

PROBLEM_TYPE = "application/problem+json"
TITLES = {400: "Bad request", 401: "Not authenticated", 403: "Not allowed", 404: "Not found",
          405: "Method not allowed", 409: "Conflict", 410: "Gone", 413: "Too large", 415: "Unsupported media type",
          422: "Invalid request", 429: "Too many requests", 500: "Server error"}


class FieldProblem(BaseModel):
    field: str = Field(description="The field, as a dotted path in the request (``body.name``, ``query.page``).")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    errors: list[FieldProblem] = Field(default_factory=list, description="What is wrong with each field.")


def problem(status: int, detail: str = "", *, errors: dict[str, str] | None = None,
            headers: dict[str, str] | None = None) -> Response:
    body = Problem(title=TITLES.get(status, "Error"), status=status, detail=detail,
                   errors=[FieldProblem(field=key, message=value) for key, value in (errors or {}).items()])
    return Response(json.dumps(body.model_dump()), status=status, mimetype=PROBLEM_TYPE, headers=headers)


def validation_problem(error: ValidationError, where: str) -> Response:
    errors = {}
    for item in error.errors():
        path = ".".join(str(part) for part in (where, *item["loc"]))
        errors.setdefault(path, item["msg"])
    return problem(422, "Some fields are not valid.", errors=errors)
