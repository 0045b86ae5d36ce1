"""The second step of a log-in, by password or through single sign-on.

A right password (or the provider's word) for someone who uses two-factor sign-in starts no
session: the signed session cookie only remembers "user X passed the first step at T" for ten
minutes, and the session starts once a code, a passkey or a recovery code proves the rest.
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


def begin(user: User, next_path: str | None, *, single_sign_on: bool = False, link: str | None = None):
    """After the first step (a password, else the provider's word when ``single_sign_on``):
    remember it for the second, and go there. ``link``: the single sign-on subject to link to
    ``user`` once the second step is passed."""
    session[PENDING_KEY] = {"user": user.id, "at": int(time.time()), "next": next_path, "link": link,
                            "sso": single_sign_on}
    return redirect(url_for("security.second_step"))


def after_single_sign_on() -> bool:
    """Whether the pending first step was the provider's word rather than a password."""
    pending = session.get(PENDING_KEY)
    return isinstance(pending, dict) and pending.get("sso") is True


def pending_user() -> User | None:
    """Who passed the first step in this browser less than ten minutes ago (and may still log in)."""
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
    pending = session.get(PENDING_KEY, {})
    next_path, subject = pending.get("next"), pending.get("link")
    if isinstance(subject, str) and subject:
        from portal.auth import sso

        sso.link(user, subject)
    start_session(user, WITH_SECOND_FACTOR)  # a new session cookie: the pending marker goes with the old one
    db.session.commit()
    response = redirect(next_path or url_for("web.home"))
    devices.remember(response, user, request.cookies.get(devices.COOKIE))
    return response
