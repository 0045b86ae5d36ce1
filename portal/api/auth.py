"""Who calls the API: the bearer token decides, never a session cookie.

``load_token`` runs before the access gate on every request to a token-authenticated blueprint
(the JSON API and SCIM): a live token makes its creator the current user for this request only
(no session is written), anything else leaves nobody signed in, so the gate answers 401.
"""

from __future__ import annotations

from flask import g, request
from flask_babel import gettext as _
from flask_login import AnonymousUserMixin
from werkzeug.exceptions import TooManyRequests

from portal.tokens import services as tokens

# Blueprints reached with a token; their errors are answered in their own format.
TOKEN_BLUEPRINTS = ("api", "scim")


def uses_token() -> bool:
    return request.blueprint in TOKEN_BLUEPRINTS


def load_token():
    if not uses_token():
        return None
    scheme, _space, raw = request.headers.get("Authorization", "").partition(" ")
    try:
        token = tokens.authenticate(raw.strip(), request.remote_addr or "") if scheme.lower() == "bearer" else None
    except tokens.RateLimited as limited:
        raise TooManyRequests(_("This token made too many requests; wait and try again."),
                              retry_after=limited.retry_after) from None
    g.api_token = token
    # Flask-Login reads the request's user from g: the token's creator, or nobody.
    g._login_user = token.created_by if token is not None else AnonymousUserMixin()
    return None
