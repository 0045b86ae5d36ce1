"""What every request's input must be before any view sees it.

Ids in paths and forms are whole numbers the database can hold: anything
else is "not found" (paths) or "nothing chosen" (forms), never an overflow
in the database driver. No value may carry a NUL character, which
PostgreSQL refuses in text: such a request is refused whole, with a message.
JSON documents are also refused when a text holds half of a UTF-16 surrogate
pair (``"\\ud800"`` alone decodes to a string no database driver can encode);
forms and query strings cannot hold one (undecodable bytes become U+FFFD).
"""

from __future__ import annotations

import re

from flask import abort, request
from flask_babel import gettext as _
from werkzeug.routing import IntegerConverter

# Characters no text column can hold: NUL (PostgreSQL refuses it) and lone UTF-16 surrogates
# (neither driver can encode them).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

# Primary keys are 32-bit signed integers on every database we run on.
MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """``<int:...>`` in routes: a positive id the database can hold; otherwise the route does not match."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("min", 0)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def parse_id(value) -> int | None:
    """An id from a form or query value, or None when it is not one the database can hold."""
    if value is None:
        return None
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def form_id(name: str) -> int | None:
    return parse_id(request.form.get(name))


def arg_id(name: str) -> int | None:
    return parse_id(request.args.get(name))


def arg_page() -> int:
    """The page number asked for in the query, 1 when absent or absurd."""
    text = request.args.get("page", "1").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 7:
        return 1
    return max(int(text), 1)


def _has_nul(values) -> bool:
    return any("\x00" in key or any("\x00" in value for value in values.getlist(key)) for key in values)


def unstorable(text: str) -> bool:
    """Whether ``text`` holds a character no database text can hold (see ``UNSTORABLE``)."""
    return UNSTORABLE.search(text) is not None


def holds_unstorable(document) -> bool:
    """Whether a decoded JSON document holds, in any key or text, a NUL character (``\\u0000`` in
    JSON) or half of a surrogate pair (``\\ud800`` alone); walked without recursion, so no depth of
    nesting can exhaust the stack."""
    waiting = [document]
    while waiting:
        item = waiting.pop()
        if isinstance(item, str):
            if unstorable(item):
                return True
        elif isinstance(item, dict):
            if any(isinstance(key, str) and unstorable(key) for key in item):
                return True
            waiting.extend(item.values())
        elif isinstance(item, list):
            waiting.extend(item)
    return False


# The only form fields that take a file: everywhere else a field is text, and a file part sent in
# its place reached the forms' checks as a file (a review: a log-in with the address sent as a file
# answered 500, before anyone signed in).
UPLOAD_FIELDS = frozenset({"workbook"})


def refuse_nul_bytes():
    """``before_request``: a NUL anywhere in the path, the query, a header or a form field refuses
    the request (a header's is stored with a session or an audit entry: PostgreSQL refuses it); so
    does a file sent in a field that takes text."""
    if "\x00" in request.path or _has_nul(request.args):
        abort(400, description=_("The address contains a NUL character, which is not allowed."))
    if any("\x00" in value for value in request.headers.values()):
        abort(400, description=_("A header contains a NUL character, which is not allowed."))
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype in (
            "application/x-www-form-urlencoded", "multipart/form-data") and (
            _has_nul(request.form) or any("\x00" in (upload.filename or "") for upload in request.files.values())):
        abort(400, description=_("A field contains a NUL character, which is not allowed. Remove it and try again."))
    if request.mimetype == "multipart/form-data" and request.method in ("POST", "PUT", "PATCH") \
            and not UPLOAD_FIELDS.issuperset(request.files):
        abort(400, description=_("A field that takes text was sent as a file. Fill the form in again and send it."))
    return None
