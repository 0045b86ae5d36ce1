from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, validates

from portal.extensions import db
from portal.search import folded, holding, insert_default, one_line
from portal.timeutil import utcnow


# No password and no recovery address: the condition of the partial index of corporate users who
# may need a link (queries spell it out in the same words to use it; see accounts.services.needs_link).
UNLINKED = "password_hash IS NULL AND recovery_email IS NULL"


def search_text(email: str | None, name: str | None) -> str:
    """What people are searched in: their address and name (see ``portal.search``)."""
    return folded(email, name)


def people_matching(text: str):
    """The condition on ``User`` for people whose address or name holds ``text``, in any case."""
    return holding(User.search_text, text)


class User(UserMixin, db.Model):
    __tablename__ = "users"
    # Searching people by any part of their address or name (LIKE '%text%' on search_text): a
    # trigram index on PostgreSQL, where the pg_trgm extension could be installed (migrations
    # 0017, 0019); elsewhere one short column is scanned rather than two through lower().
    __table_args__ = (
        Index("ix_users_search_trgm", "search_text", postgresql_using="gin",
              postgresql_ops={"search_text": "gin_trgm_ops"}).ddl_if(dialect="postgresql"),
        # An account's corporate users counted from the index alone, and those of them no link can
        # reach yet found among those without a password or a recovery address (the Overview,
        # the Users list's "Needs a link from you"; migration 0041).
        Index("ix_users_corporate", "corporate_account_id", "is_corporate"),
        Index("ix_users_corporate_unlinked", "corporate_account_id", "is_corporate",
              sqlite_where=text(UNLINKED), postgresql_where=text(UNLINKED)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    email_verified_at: Mapped[datetime | None]
    # When a link mailed to the address itself was opened (confirmation, reset, invitation) or a
    # sign-on provider vouched for it. An onboarding link (shown to an administrator, or mailed to
    # a recovery address) lets the profile sign in but proves nothing about who reads the address.
    address_proven_at: Mapped[datetime | None]
    is_superadmin: Mapped[bool] = mapped_column(default=False)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # The language the person chose ("en", "fr"); None: the browser's, else the portal's default.
    locale: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # A corporate user's address is on an account's active domain; they stay
    # corporate even if that account goes (they then cannot create accounts
    # or delete their profile).
    is_corporate: Mapped[bool] = mapped_column(default=False)
    corporate_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"))
    # Corporate users' details, kept by their account's administrators.
    phone: Mapped[str] = mapped_column(String(40), default="")
    recovery_email: Mapped[str | None] = mapped_column(String(254))
    # Who chose the recovery address (None: the person, or set before this was recorded). Not a
    # foreign key: a deleted chooser counts as one who no longer holds the person's rights.
    recovery_set_by_id: Mapped[int | None]
    recovery_set_at: Mapped[datetime | None]
    default_mailbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("mailboxes.id", ondelete="SET NULL", use_alter=True), index=True)
    # A corporate user their account suspended: no log-in, personal mailboxes disabled, access kept.
    suspended_at: Mapped[datetime | None]
    # Single sign-on: the provider's subject, the first key users are matched on.
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    # search_text(email, name), kept by the ORM (below) and by the insert default. Text, not a
    # bounded string: case-folding lengthens some names (ß -> ss; some letters to three).
    search_text: Mapped[str] = mapped_column(Text, default=insert_default("email", "name"), server_default="")

    @validates("email", "name")
    def _keep_search_text(self, key: str, value):
        if key == "email" and self.email is not None and value != self.email:
            # Memberships keep a copy of the address (the Users list's order): it is set once.
            raise ValueError("A person's address does not change once they exist.")
        if key == "name" and value is not None:
            # One line, whatever path it came by (a form, single sign-on, SCIM): see one_line.
            value = one_line(value)
        self.search_text = search_text(value if key == "email" else self.email,
                                       value if key == "name" else self.name)
        return value

    @property
    def email_domain(self) -> str:
        return self.email.rsplit("@", 1)[-1]

    @property
    def display_name(self) -> str:
        return self.name or self.email

    @property
    def is_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def address_proven(self) -> bool:
        return self.address_proven_at is not None

    def prove_address(self) -> None:
        """A link mailed to the address was opened (or a provider vouched for it)."""
        now = utcnow()
        self.email_verified_at = self.email_verified_at or now
        self.address_proven_at = self.address_proven_at or now

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
    # Whom the link was shown, or who chose the address it was mailed to, when not its person: it
    # works only while they hold every right its person holds. Not a foreign key (see above).
    given_by_id: Mapped[int | None]


class UserSession(db.Model):
    """One signed-in browser. The cookie holds a random key; only its hash is kept here."""

    __tablename__ = "user_sessions"
    __table_args__ = (Index("ix_user_sessions_user_ended", "user_id", "ended_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str] = mapped_column(String(40), default="")
    # How the person proved who they were: "password", "second_factor" or "single_sign_on".
    signed_in_with: Mapped[str] = mapped_column(String(20), default="password")
    # When they last proved it (log-in, or the confirmation page): the most dangerous actions
    # need this to be recent (portal.security.confirmation).
    confirmed_at: Mapped[datetime | None]


class LoginFailure(db.Model):
    """One failed log-in, counted per address and per IP over a sliding window."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_email_at", "email", "at"),
                      Index("ix_login_failures_ip_at", "ip", "at"),
                      Index("ix_login_failures_device_at", "device", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    ip: Mapped[str] = mapped_column(String(64))
    # A browser the person logged in from before (its device cookie): counted on its own, so a
    # stranger's guesses never lock the owner's own browser out.
    device: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)
