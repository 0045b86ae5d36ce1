"""Device cookies: a browser that logged in as someone before is recognised, so that failed
log-ins are counted for it alone (OWASP's answer to lock-out by strangers).

The cookie is signed with the portal's secret and names the person and a random device id;
it proves nothing by itself (the password is still checked), it only decides which counter
a failure goes to.
"""

from __future__ import annotations

import secrets

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from portal.auth.models import User

COOKIE = "portal_device"
LIFETIME_DAYS = 365


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="device-cookie")


def device_id_for(cookie: str | None, user: User | None) -> str | None:
    """The device id the cookie carries, when it was issued to ``user``."""
    if not cookie or user is None or len(cookie) > 512:
        return None
    try:
        data = _serializer().loads(cookie, max_age=LIFETIME_DAYS * 86400)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("u") != user.id or not isinstance(data.get("d"), str):
        return None
    return data["d"][:64]


def remember(response, user: User, cookie: str | None) -> None:
    """After a successful log-in: keep this browser's device cookie, or give it one."""
    if device_id_for(cookie, user):
        return
    value = _serializer().dumps({"u": user.id, "d": secrets.token_urlsafe(16)})
    response.set_cookie(COOKIE, value, max_age=LIFETIME_DAYS * 86400, httponly=True, samesite="Lax",
                        secure=current_app.config["SESSION_COOKIE_SECURE"])
