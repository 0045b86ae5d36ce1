"""Sessions kept on the server, so that they really end.

The browser's (signed) cookie carries only a random session key; the
``user_sessions`` row it points at (stored as a hash) says whose session it
is, when it started, when it was last used and from where. Logging out,
changing or resetting the password, removal from an account and "sign out
everywhere" end rows, and a cookie copied before that opens nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from functools import cache

from flask import current_app, flash, g, has_request_context, request, session
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from sqlalchemy import bindparam, update

from portal.auth.models import User, UserSession
from portal.extensions import db
from portal.timeutil import utcnow
from portal.web import pagecache

SESSION_KEY = "sid"
# Last-seen times are written at most this often, not on every request.
TOUCH_EVERY = timedelta(minutes=1)

LOGOUT = "logged out"
PASSWORD_CHANGED = "password changed"
SIGNED_OUT_ELSEWHERE = "signed out from another session"
REMOVED = "removed from the account"
SUSPENDED = "suspended by the account"
EXPIRED = "expired"


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _limits() -> tuple[timedelta, timedelta]:
    settings = current_app.config["PORTAL"]
    return timedelta(hours=settings["SESSION_HOURS"]), timedelta(hours=settings["SESSION_MAX_HOURS"])


def start(user: User) -> UserSession:
    """Log ``user`` in with a new server-side session (a fresh cookie: no fixation)."""
    session.clear()
    session.permanent = True
    raw = secrets.token_urlsafe(32)
    row = UserSession(user_id=user.id, token_hash=_digest(raw), ip=(request.remote_addr or "")[:64],
                      user_agent=(request.user_agent.string or "")[:300])
    db.session.add(row)
    db.session.flush()
    session[SESSION_KEY] = raw
    login_user(user)
    g.user_session = row
    return row


def _live(row: UserSession | None, now: datetime) -> bool:
    if row is None or row.ended_at is not None:
        return False
    idle, absolute = _limits()
    return now - row.last_seen_at < idle and now - row.created_at < absolute


@cache
def _session_statement(generation_of: str | None = None):
    """The live-session look-up every request makes, built once; with the data generation read in
    the same statement when this process keeps pages (one round trip less for a kept page), on the
    database named by ``generation_of``."""
    columns = (UserSession, User, pagecache.generation_column(generation_of)) if generation_of \
        else (UserSession, User)
    return db.select(*columns).join(User, User.id == UserSession.user_id)\
        .where(UserSession.token_hash == bindparam("token_hash"))


def load_user(user_id: str) -> User | None:
    """Flask-Login's loader: the user of the live session the cookie points at, or nobody."""
    raw = session.get(SESSION_KEY)
    if not raw or not user_id.isdigit():
        return None
    with_generation = pagecache.reads_generation()
    found = db.session.execute(_session_statement(db.engine.dialect.name if with_generation else None),
                               {"token_hash": _digest(str(raw))}).first()
    now = utcnow()
    if found is None or found[1].id != int(user_id) or not _live(found[0], now) or found[1].suspended_at:
        if found is not None and found[0].ended_at is None:
            found[0].ended_at, found[0].end_reason = now, EXPIRED
            db.session.commit()
        session.clear()
        # Translated once the session is cleared: choosing the language asks who is signed in,
        # and the answer is now nobody, so the browser's language is used.
        flash(_("Your session has ended. Please log in again."), "info")
        return None
    row, user = found[0], found[1]
    if with_generation:
        # Read before anything this request runs, so never newer than what its page will show.
        pagecache.note_generation(found[2])
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        row.ip = (request.remote_addr or "")[:64]
        db.session.commit()
    g.user_session = row
    return user


def load_early() -> None:
    """``before_request``: read the session now, while the request has changed nothing, since
    reading it may write (its last use, or its end)."""
    current_user.is_authenticated  # noqa: B018  (the lookup itself is the point)


def current() -> UserSession | None:
    return g.get("user_session") if has_request_context() else None


def end_current(reason: str = LOGOUT) -> None:
    row = current()
    if row is not None and row.ended_at is None:
        row.ended_at, row.end_reason = utcnow(), reason
    logout_user()
    session.clear()


def end_all(user: User, reason: str, *, keep: UserSession | None = None) -> int:
    """End every live session of ``user`` (but ``keep``); return how many ended."""
    query = update(UserSession).where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
    if keep is not None:
        query = query.where(UserSession.id != keep.id)
    return db.session.execute(query.values(ended_at=utcnow(), end_reason=reason)).rowcount


def end_one(user: User, session_id: int) -> bool:
    """End one of ``user``'s own sessions; False when there is no such live session."""
    return db.session.execute(update(UserSession).where(
        UserSession.id == session_id, UserSession.user_id == user.id, UserSession.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=SIGNED_OUT_ELSEWHERE)).rowcount == 1


def live_sessions(user: User) -> list[UserSession]:
    idle, absolute = _limits()
    now = utcnow()
    return list(db.session.execute(db.select(UserSession).where(
        UserSession.user_id == user.id, UserSession.ended_at.is_(None),
        UserSession.last_seen_at > now - idle, UserSession.created_at > now - absolute)
        .order_by(UserSession.last_seen_at.desc()).limit(100)).scalars())


def browser_label(user_agent: str) -> str:
    """A short, readable name for a browser from its user agent."""
    agent = user_agent or ""
    browser = next((name for key, name in (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"),
                                           ("Chrome/", "Chrome"), ("Safari/", "Safari"), ("curl/", "curl"))
                    if key in agent), _("Unknown browser"))
    system = next((name for key, name in (("Windows", "Windows"), ("Android", "Android"), ("iPhone", "iOS"),
                                          ("iPad", "iPadOS"), ("Mac OS X", "macOS"), ("Linux", "Linux"))
                   if key in agent), "")
    return _("%(browser)s on %(system)s", browser=browser, system=system) if system else browser
