"""Sending the browser to another page from anywhere in a request, htmx or not."""

from __future__ import annotations

from functools import wraps

from flask import Response, redirect, request


def go_to(url: str):
    """A redirect; to an htmx request, the instruction to load ``url`` as a whole page (a plain
    redirect would be followed inside the request and its page swapped into a fragment)."""
    if request.headers.get("HX-Request"):
        return Response("", 200, {"HX-Redirect": url})
    return redirect(url)


def whole_page(view):
    """For pages that run ``static/js/passkeys.js``: the script is loaded by the page itself, and
    htmx runs no script of a page it swaps in, so a page reached through htmx is loaded again whole."""

    @wraps(view)
    def load_whole(*args, **kwargs):
        if request.method == "GET" and request.headers.get("HX-Request"):
            return go_to(request.full_path.rstrip("?"))
        return view(*args, **kwargs)

    return load_whole
