"""One-time links: random, stored only as a SHA-256 hash, single-use, expiring."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import update

from portal.auth.models import User, UserToken
from portal.extensions import db
from portal.timeutil import utcnow

VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def retire(user: User, purpose: str) -> None:
    """Every unused link of ``user`` for ``purpose`` stops working."""
    db.session.execute(update(UserToken).where(
        UserToken.user_id == user.id, UserToken.purpose == purpose, UserToken.used_at.is_(None)
    ).values(used_at=utcnow()))


def issue(user: User, purpose: str, hours: int, given_by: int | None = None) -> str:
    """Create a link token, retiring any earlier unused one for the same purpose; ``given_by``:
    whom it is given to when not ``user`` (see ``UserToken.given_by_id``)."""
    now = utcnow()
    retire(user, purpose)
    raw = secrets.token_urlsafe(32)
    db.session.add(UserToken(user_id=user.id, purpose=purpose, token_hash=digest(raw),
                             expires_at=now + timedelta(hours=hours),
                             given_by_id=given_by if given_by != user.id else None))
    return raw


def peek(raw: str, purpose: str) -> UserToken | None:
    """The live token for ``raw``, without using it up."""
    if not raw or len(raw) > 128:
        return None
    token = db.session.execute(
        db.select(UserToken).where(UserToken.token_hash == digest(raw), UserToken.purpose == purpose)
    ).scalar_one_or_none()
    if token is None or token.used_at is not None or token.expires_at <= utcnow():
        return None
    return token


def consume(raw: str, purpose: str) -> User | None:
    """Use the token up and return its user; None when unknown, used or expired.

    The guarded UPDATE makes two concurrent uses of one link succeed once.
    """
    token = peek(raw, purpose)
    if token is None:
        return None
    used = db.session.execute(update(UserToken).where(
        UserToken.id == token.id, UserToken.used_at.is_(None)).values(used_at=utcnow())).rowcount
    return db.session.get(User, token.user_id) if used == 1 else None
