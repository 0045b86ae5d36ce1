"""Our one doorway to htmx on the server.

htmx-flask gives ``request.htmx``; everything else of it (its ``make_response``
has a typo in its list of swap styles) stays unused behind this module.
"""

from __future__ import annotations

from flask import Flask
from htmx_flask import Htmx

_htmx = Htmx()


def init_app(app: Flask) -> None:
    _htmx.init_app(app)


def is_htmx(request) -> bool:
    """True for requests made by htmx that want a fragment: not a boosted page, nor the page htmx
    asks for when the back button returns to an address it pushed (its history keeps no copy:
    ``historyCacheSize`` 0), which replaces the whole body (a walkthrough: after Back, the page was
    only its list, without menus or the announcer)."""
    headers = getattr(request, "htmx", None)
    return bool(headers) and not headers.boosted and not headers.history_restore_request
