from __future__ import annotations

import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.timeutil import utcnow


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    email_verified_at: Mapped[datetime | None]
    is_superadmin: Mapped[bool] = mapped_column(default=False)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # A corporate user's address is on an account's active domain; they stay
    # corporate even if that account goes (they then cannot create accounts
    # or delete their profile).
    is_corporate: Mapped[bool] = mapped_column(default=False)
    corporate_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True)
    # Corporate users' details, kept by their account's administrators.
    phone: Mapped[str] = mapped_column(String(40), default="")
    recovery_email: Mapped[str | None] = mapped_column(String(254))
    default_mailbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("mailboxes.id", ondelete="SET NULL", use_alter=True))
    # Single sign-on: the provider's subject, the first key users are matched on.
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    # Part of the session identity: rotating it ends every session of the user.
    session_nonce: Mapped[str] = mapped_column(String(32), default=lambda: secrets.token_hex(16))

    def get_id(self) -> str:
        return f"{self.id}:{self.session_nonce}"

    @property
    def email_domain(self) -> str:
        return self.email.rsplit("@", 1)[-1]

    @property
    def display_name(self) -> str:
        return self.name or self.email

    @property
    def is_verified(self) -> bool:
        return self.email_verified_at is not None

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


class UserToken(db.Model):
    """A one-time link (verification, password reset); only its hash is kept."""

    __tablename__ = "user_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class LoginFailure(db.Model):
    """One failed log-in, counted per address and per IP over a sliding window."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_email_at", "email", "at"),
                      Index("ix_login_failures_ip_at", "ip", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
