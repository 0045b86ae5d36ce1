"""The second step of a password log-in.

A right password for someone who uses two-factor sign-in starts no session: the signed session
cookie only remembers "the password of user X was right at T" for ten minutes, and the session
starts once a code, a passkey or a recovery code proves the rest.
"""

from __future__ import annotations

import time

from flask import redirect, request, session, url_for

from portal.auth import devices
from portal.auth.models import User
from portal.auth.services import WITH_SECOND_FACTOR, start_session
from portal.extensions import db
from portal.security.services import uses_two_factor

PENDING_KEY = "two_factor_pending"
PENDING_SECONDS = 600


def needed_for(user: User) -> bool:
    return uses_two_factor(user)


def begin(user: User, next_path: str | None):
    """After the right password: remember it for the second step, and go there."""
    session[PENDING_KEY] = {"user": user.id, "at": int(time.time()), "next": next_path}
    return redirect(url_for("security.second_step"))


def pending_user() -> User | None:
    """Whose password was right in this browser less than ten minutes ago (and who may still log in)."""
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict) or not isinstance(pending.get("at"), int) \
            or time.time() - pending["at"] > PENDING_SECONDS:
        return None
    user = db.session.get(User, pending.get("user")) if isinstance(pending.get("user"), int) else None
    if user is None or user.suspended_at is not None:
        return None
    return user


def abandon() -> None:
    session.pop(PENDING_KEY, None)


def finish(user: User):
    """The second factor was right: start the session and go where the log-in was headed."""
    next_path = session.get(PENDING_KEY, {}).get("next")
    start_session(user, WITH_SECOND_FACTOR)  # a new session cookie: the pending marker goes with the old one
    db.session.commit()
    response = redirect(next_path or url_for("web.home"))
    devices.remember(response, user, request.cookies.get(devices.COOKIE))
    return response
