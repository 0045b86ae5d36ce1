"""Our one doorway to htmx on the server.

htmx-flask gives ``request.htmx``; everything else of it (its ``make_response``
has a typo in its list of swap styles) stays unused behind this module.
"""

from __future__ import annotations

from flask import Flask, request
from htmx_flask import Htmx

_htmx = Htmx()


def init_app(app: Flask) -> None:
    _htmx.init_app(app)
    app.after_request(_keep_the_address_of_a_refused_form)


def _keep_the_address_of_a_refused_form(response):
    """A form sent through the page-wide boost (a POST) and answered with a page, not a redirect
    (refused, shown again with its errors), keeps the address bar where it was: htmx would show the
    form's POST address, which reloading, or changing the language, asked for with a GET (a
    walkthrough: 405, and the page lost). A redirect still shows where it led."""
    headers = getattr(request, "htmx", None)
    if headers and headers.boosted and request.method != "GET" and not 300 <= response.status_code < 400 \
            and "HX-Push-Url" not in response.headers:
        response.headers["HX-Push-Url"] = "false"
    return response


def is_htmx(request) -> bool:
    """True for requests made by htmx that want a fragment: not a boosted page, nor the page htmx
    asks for when the back button returns to an address it pushed (its history keeps no copy:
    ``historyCacheSize`` 0), which replaces the whole body (a walkthrough: after Back, the page was
    only its list, without menus or the announcer)."""
    headers = getattr(request, "htmx", None)
    return bool(headers) and not headers.boosted and not headers.history_restore_request
