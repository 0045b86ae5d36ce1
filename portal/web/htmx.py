"""Our one doorway to htmx on the server.

htmx-flask gives ``request.htmx``; its ``make_response`` validates ``reswap``
against a list with a typo in it, so responses that set htmx headers are
built here instead, against the values htmx 2 documents.
"""

from __future__ import annotations

import json

from flask import Flask, Response
from htmx_flask import Htmx

SWAP_STYLES = frozenset(
    {"innerHTML", "outerHTML", "textContent", "beforebegin", "afterbegin",
     "beforeend", "afterend", "delete", "none"}
)

_htmx = Htmx()


def init_app(app: Flask) -> None:
    _htmx.init_app(app)


def is_htmx(request) -> bool:
    """True for requests made by htmx that want a fragment, not a boosted page."""
    headers = getattr(request, "htmx", None)
    return bool(headers) and not headers.boosted


def hx_headers(response: Response, *, redirect: str | None = None, trigger: dict | str | None = None,
               reswap: str | None = None, retarget: str | None = None,
               push_url: str | None = None) -> Response:
    if reswap is not None and reswap.split(" ", 1)[0] not in SWAP_STYLES:
        raise ValueError(f"{reswap!r} is not an htmx 2 swap style")
    if redirect:
        response.headers["HX-Redirect"] = redirect
    if trigger:
        response.headers["HX-Trigger"] = trigger if isinstance(trigger, str) else json.dumps(trigger)
    if reswap:
        response.headers["HX-Reswap"] = reswap
    if retarget:
        response.headers["HX-Retarget"] = retarget
    if push_url:
        response.headers["HX-Push-Url"] = push_url
    return response
