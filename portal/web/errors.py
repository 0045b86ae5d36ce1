"""Error pages. Every failure ends in a page that says what happened, never a bare 500:
the transaction is rolled back first, so the page itself can still read the database,
and a page that cannot be rendered at all falls back to plain markup."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from flask import Flask, current_app, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from portal.extensions import db
from portal.web.render import render

MESSAGES = {
    400: ("Bad request", "The request could not be understood. Go back, reload the page and try again."),
    401: ("Please log in", "You need to log in to do that."),
    403: ("Not allowed", "You do not have the permission this page needs. Ask an administrator of the account."),
    404: ("Not found", "There is nothing here, or it is not yours to see."),
    405: ("Not allowed", "That action is not available this way."),
    409: ("Changed meanwhile", "Someone changed this at the same moment. Reload the page and try again."),
    410: ("No longer available", "This link or item is no longer available."),
    413: ("Too large", "The upload is larger than this portal accepts."),
    429: ("Slow down", "Too many attempts. Wait a moment and try again."),
    500: ("Something went wrong", "The error has been logged. Try again in a moment."),
}


# Blueprints that answer errors in a format of their own (the JSON API: problem details; SCIM:
# its error schema): blueprint name -> renderer(status, detail, headers).
renderers: dict[str, Callable] = {}


def _blueprint_by_path() -> str:
    """For a URL that matched no route: the blueprint with a renderer whose prefix it is under
    (``/api/v1/accounts/1/mailboxes/-3`` is still the API's, and answers as the API does)."""
    for name, blueprint in current_app.blueprints.items():
        prefix = blueprint.url_prefix
        if name in renderers and prefix and (request.path + "/").startswith(prefix.rstrip("/") + "/"):
            return name
    return ""


def _page(code: int, detail: str | None = None, headers: dict[str, str] | None = None):
    renderer = renderers.get(request.blueprint or _blueprint_by_path())
    if renderer is not None:
        db.session.rollback()
        return renderer(code, detail or MESSAGES.get(code, ("Error", ""))[1], headers)
    title, text = MESSAGES.get(code, ("Error", "Something went wrong."))
    try:
        db.session.rollback()
        return render("errors/error.html", status=code, code=code, title=title, text=detail or text)
    except Exception:  # the database or a template is unusable: still answer
        db.session.rollback()
        body = (f"<!doctype html><html lang=\"en\"><title>{escape(title)}</title><main><h1>{escape(title)}</h1>"
                f"<p>{escape(detail or text)}</p><p>Error {code}</p></main></html>")
        return body, code, {"Content-Type": "text/html; charset=utf-8"}


def _detail(error: HTTPException) -> str | None:
    """The description given to ``abort(code, description=...)``, not Werkzeug's generic one."""
    return error.description if error.description and error.description != type(error).description else None


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return _page(400, "The form had expired or was not sent by this portal. Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def http_error(error):
        retry = dict(error.get_headers()).get("Retry-After")
        return _page(error.code or 500, _detail(error), {"Retry-After": retry} if retry else None)

    @app.errorhandler(IntegrityError)
    def conflict(error):
        # Two requests raced for the same row (a double click, two tabs): the loser is told, nothing is half-done.
        app.logger.info("integrity conflict on %s %s: %s", request.method, request.path, error.orig)
        return _page(409)

    @app.errorhandler(Exception)
    def unexpected(error):
        if app.testing:
            raise error
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return _page(500)
