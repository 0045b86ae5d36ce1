"""Error pages. Every failure ends in a page that says what happened, never a bare 500:
the transaction is rolled back first, so the page itself can still read the database,
and a page that cannot be rendered at all falls back to plain markup."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from urllib.parse import quote

from flask import Flask, current_app, redirect, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from portal.extensions import db
from portal.i18n import _l, current_language
from portal.web.render import render

MESSAGES = {
    400: (_l("Bad request"), _l("The request could not be understood. Go back, reload the page and try again.")),
    401: (_l("Please log in"), _l("You need to log in to do that.")),
    403: (_l("Not allowed"),
          _l("You do not have the permission this page needs. Ask an administrator of the account.")),
    404: (_l("Not found"), _l("There is nothing here, or it is not yours to see.")),
    405: (_l("Not allowed"), _l("That action is not available this way.")),
    409: (_l("Changed meanwhile"), _l("Someone changed this at the same moment. Reload the page and try again.")),
    410: (_l("No longer available"), _l("This link or item is no longer available.")),
    413: (_l("Too large"), _l("The upload is larger than this portal accepts.")),
    429: (_l("Slow down"), _l("Too many attempts. Wait a moment and try again.")),
    500: (_l("Something went wrong"), _l("The error has been logged. Try again in a moment.")),
}
OTHER = (_l("Error"), _l("Something went wrong."))


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
        return renderer(code, str(detail or (MESSAGES[code][1] if code in MESSAGES else "")), headers)
    title, text = (str(part) for part in MESSAGES.get(code, OTHER))
    try:
        db.session.rollback()
        return render("errors/error.html", status=code, code=code, title=title, text=detail or text)
    except Exception:  # the database or a template is unusable: still answer
        db.session.rollback()
        body = (f"<!doctype html><html lang=\"{escape(current_language())}\"><title>{escape(title)}</title><main>"
                f"<h1>{escape(title)}</h1><p>{escape(str(detail or text))}</p>"
                f"<p>{escape(_('Error %(code)s', code=code))}</p></main></html>")
        return body, code, {"Content-Type": "text/html; charset=utf-8"}


def _detail(error: HTTPException) -> str | None:
    """The description given to ``abort(code, description=...)``, not Werkzeug's generic one."""
    return error.description if error.description and error.description != type(error).description else None


def _page_above(path: str) -> str | None:
    """For a GET on an address that only takes a form (a POST): the nearest address above it that
    is a page. A form sent through the page-wide boost and answered with a page (refused, shown
    again with its errors; a confirmation) leaves its POST address in the address bar, and
    reloading, or changing the language, asked for it with a GET (a walkthrough: a 405 page, the
    form lost); it now leads back to the page the form belongs to (/domains/new -> /domains).
    Not for the API and SCIM, which answer in their own formats."""
    if renderers.get(request.blueprint or _blueprint_by_path()) is not None:
        return None
    if any(ord(character) < 32 or ord(character) == 127 for character in path):
        return None  # a line break in a token's place cannot go in a Location header (a review: a 500)
    adapter = current_app.url_map.bind_to_environ(request.environ)
    parts = path.rstrip("/").split("/")
    while len(parts) > 1:
        parts.pop()
        candidate = "/".join(parts) or "/"
        for above in (candidate, candidate + "/"):
            try:
                adapter.match(above, method="GET")
            except HTTPException:
                continue
            return request.script_root + quote(above, safe="/")
    return None


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return _page(400, _("The form had expired or was not sent by this portal. Reload the page and try again."))

    @app.errorhandler(HTTPException)
    def http_error(error):
        if error.code == 405 and request.method == "GET":
            page = _page_above(request.path)
            if page is not None:
                return redirect(page)
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
