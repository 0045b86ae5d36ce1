"""What identity providers keep about people and groups that the portal itself has no column for.

A person's SCIM profile is kept per account (the account whose identity provider sent it): their
identifier at the provider (``externalId``), the name parts and display name as the provider sent
them, and the enterprise extension's employee number, department and manager. A group is one of
the account's roles; the provider's identifier for it is kept the same way.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.timeutil import utcnow


class ScimProfile(db.Model):
    __tablename__ = "scim_profiles"
    __table_args__ = (UniqueConstraint("account_id", "user_id", name="uq_scim_profiles_account_user"),
                      Index("ix_scim_profiles_account_external_id", "account_id", "external_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(255))
    # The name as the provider split it; the portal keeps only "given family" in users.name.
    given_name: Mapped[str | None] = mapped_column(String(100))
    family_name: Mapped[str | None] = mapped_column(String(100))
    display_name: Mapped[str | None] = mapped_column(String(200))
    employee_number: Mapped[str | None] = mapped_column(String(100))
    department: Mapped[str | None] = mapped_column(String(200))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScimGroup(db.Model):
    """The provider's identifier of one of the account's roles (system roles are shared by every
    account, so the identifier is kept per account)."""

    __tablename__ = "scim_groups"
    __table_args__ = (UniqueConstraint("account_id", "role_id", name="uq_scim_groups_account_role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
