from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, ForeignKeyConstraint, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.roles import catalogue
from portal.timeutil import utcnow


class Role(db.Model):
    """A named set of permissions at one scope.

    System roles have no account and carry their permissions in code
    (``catalogue.SYSTEM_ROLES``); their rows exist so grants can point at them.
    """

    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("account_id", "scope", "name", name="uq_roles_account_scope_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    system_key: Mapped[str | None] = mapped_column(String(32), unique=True)
    scope: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    permission_rows: Mapped[list["RolePermission"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin")

    @property
    def is_system(self) -> bool:
        return self.system_key is not None

    @property
    def label(self) -> str:
        """The name as people read it: a system role's in their language (``name`` keeps the
        English one, which workbooks and identity providers match)."""
        definition = catalogue.SYSTEM_BY_KEY.get(self.system_key or "")
        return str(definition.name) if definition is not None else self.name

    @property
    def summary(self) -> str:
        """The description as people read it (a system role's in their language)."""
        definition = catalogue.SYSTEM_BY_KEY.get(self.system_key or "")
        return str(definition.description) if definition is not None else (self.description or "")

    @property
    def permissions(self) -> frozenset[str]:
        if self.system_key:
            return catalogue.SYSTEM_BY_KEY[self.system_key].permissions
        return frozenset(row.permission for row in self.permission_rows)

    def __repr__(self) -> str:
        return f"<Role {self.id} {self.name}>"


class RolePermission(db.Model):
    __tablename__ = "role_permissions"

    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True)
    permission: Mapped[str] = mapped_column(String(64), primary_key=True)


class Grant(db.Model):
    """One role or one single permission held by a member, at account scope
    (``mailbox_id`` empty) or over one mailbox."""

    __tablename__ = "grants"
    __table_args__ = (
        CheckConstraint("(role_id IS NULL) <> (permission IS NULL)", name="role_xor_permission"),
        # A role's holders are counted from this index alone (the Roles page, a role's page).
        Index("ix_grants_role_membership", "role_id", "membership_id"),
        # A member's grants over the account (``mailbox_id`` empty) or over mailboxes, for one member
        # or the 50 of a page: without the second column SQLite read the page's account grants by
        # walking the ``mailbox_id IS NULL`` entries of every member (2 ms at 14,000 grants).
        Index("ix_grants_membership_mailbox", "membership_id", "mailbox_id"),
        # The grant's membership and, kept equal to the membership's by the database, its account:
        # holders of the account's roles are counted from the index below alone, without joining
        # every grant to its membership (the Roles page, 14,000 grants: SQLite 2.7 -> 1.1 ms; the
        # system roles are shared by every account).
        ForeignKeyConstraint(["membership_id", "account_id"], ["memberships.id", "memberships.account_id"],
                             name="fk_grants_membership_account", ondelete="CASCADE"),
        Index("ix_grants_account_role_membership", "account_id", "role_id", "membership_id"),
        # A member holds a role, or a single permission, once over the account and once over each
        # mailbox: two requests granting the same at once (a double click, an identity provider's
        # retries) make one grant, the other is refused. Empty columns are compared as equal.
        Index("uq_grants_once", "membership_id", text("coalesce(role_id, 0)"), text("coalesce(permission, '')"),
              text("coalesce(mailbox_id, 0)"), unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Both refer to the membership together (fk_grants_membership_account above).
    membership_id: Mapped[int]
    account_id: Mapped[int]
    role_id: Mapped[int | None] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"))
    permission: Mapped[str | None] = mapped_column(String(64))
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"), index=True)
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    role: Mapped[Role | None] = relationship(lazy="joined")
