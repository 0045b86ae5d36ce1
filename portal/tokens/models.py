from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from portal.extensions import db
from portal.search import folded, insert_default
from portal.timeutil import utcnow


class ApiToken(db.Model):
    """A credential for scripts and identity providers, made by a member for one account.

    Only a hash of the token is kept; ``prefix`` (its first characters) lets people tell
    tokens apart. It acts as its creator, never with more than its scopes allow.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list] = mapped_column(JSON, default=list)
    # Networks the token may be used from (CIDR); empty: anywhere.
    allowed_networks: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    last_used_ip: Mapped[str] = mapped_column(String(64), default="")
    revoked_at: Mapped[datetime | None]
    # The current rate-limit window: when it started and how many requests it has seen.
    window_started_at: Mapped[datetime | None]
    window_count: Mapped[int] = mapped_column(default=0)
    # The name and the prefix, case-folded (portal.search): the tokens page finds "Équipe" by
    # "équipe" (SQLite's lower() folds ASCII capitals only).
    search_text: Mapped[str] = mapped_column(Text, default=insert_default("name", "prefix"), server_default="")

    created_by = relationship("User", lazy="joined")

    @validates("name", "prefix")
    def _keep_search_text(self, key: str, value):
        self.search_text = folded(value if key == "name" else self.name, value if key == "prefix" else self.prefix)
        return value


class IdempotentRequest(db.Model):
    """A creating request made with an ``Idempotency-Key``, and the answer it got: the same
    key again gets the same answer instead of a second creation."""

    __tablename__ = "idempotent_requests"
    __table_args__ = (db.UniqueConstraint("token_id", "key", name="uq_idempotent_requests_token_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(default=0)
    body: Mapped[str] = mapped_column(db.Text, default="")
    location: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
