from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from portal.auth.models import User
from portal.extensions import db
from portal.search import folded, insert_default
from portal.timeutil import utcnow


class Account(db.Model):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # People registering with an address on one of the account's active
    # domains join it as corporate users (reference 004).
    self_registration: Mapped[bool] = mapped_column(default=True)
    # New corporate users get a personal mailbox, with this mailbox role.
    personal_mailboxes: Mapped[bool] = mapped_column(default=False)
    personal_mailbox_role_id: Mapped[int | None] = mapped_column(
        ForeignKey("roles.id", ondelete="SET NULL", use_alter=True), index=True)
    # Members who administer the account must use two-factor sign-in (portal.security.policy).
    require_two_factor: Mapped[bool] = mapped_column(default=False)
    # The language of what the account sends to people without a profile (invitations); None:
    # the portal's default.
    default_locale: Mapped[str | None] = mapped_column(String(8))
    # What happens to the personal mailboxes of someone the account's identity provider removes
    # (SCIM): keep, disable or delete, as when an admin removes a corporate user by hand.
    deprovisioned_mailboxes: Mapped[str] = mapped_column(String(8), default="disable")

    # The name, case-folded (portal.search): the accounts page searches it in any case.
    search_text: Mapped[str] = mapped_column(Text, default=insert_default("name"), server_default="")

    memberships: Mapped[list["Membership"]] = relationship(
        back_populates="account", cascade="all, delete-orphan", passive_deletes=True)

    @validates("name")
    def _keep_search_text(self, _key: str, value):
        self.search_text = folded(value)
        return value

    def __repr__(self) -> str:
        return f"<Account {self.id} {self.name}>"


class Membership(db.Model):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("account_id", "user_id", name="uq_memberships_account_user"),
                      # What grants refer to: a grant's account is its membership's (see Grant).
                      Index("uq_memberships_id_account", "id", "account_id", unique=True),
                      # The Users list in its default order, read 50 entries at a time.
                      Index("uq_memberships_account_email", "account_id", "email", unique=True))

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The member's address, a copy of users.email (which never changes once a person exists): the
    # Users list sorts by it, and with it beside the account in one index a page of the list is
    # 50 entries of that index rather than a sort of every member (SQLite, 10,000 members: 3 ms).
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    account: Mapped[Account] = relationship(back_populates="memberships")
    user: Mapped[User] = relationship()
