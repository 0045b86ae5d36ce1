"""The JSON API: its endpoints (one module per area), its OpenAPI document and its reference page."""

from __future__ import annotations

from flask import Flask, current_app, jsonify

from portal.api import mail, people, users  # noqa: F401  (each registers its endpoints on bp)
from portal.api.auth import load_token
from portal.api.core import bp, openapi_document, spec
from portal.api.problems import problem
from portal.extensions import csrf
from portal.web import errors
from portal.web.access import PUBLIC, rule
from portal.web.render import render

csrf.exempt(bp)  # a bearer token, not a cookie: nothing a third-party page could forge


@bp.get("/openapi.json")
@rule(PUBLIC)
def openapi():
    """The OpenAPI 3.1 document of this API, generated from the code."""
    return jsonify(openapi_document(current_app))


@bp.get("/reference")
@rule(PUBLIC)
def reference():
    """The API reference as a page of the portal, from the same document (no outside script)."""
    return render("api/reference.html", document=openapi_document(current_app))


def init_app(app: Flask) -> None:
    """Before the access gate: requests to the API are authenticated by their token."""
    spec.app = app
    spec.backend.app = app
    app.before_request_funcs.setdefault(None, []).insert(0, load_token)
    errors.renderers["api"] = lambda status, detail, headers: problem(status, detail or "", headers=headers)
