from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.i18n import _l, labels
from portal.timeutil import utcnow

PENDING = "pending"                  # ownership not proven yet
ACTION_REQUIRED = "action_required"  # proven, but records or the backend's external checks fail
FAILED = "failed"                    # the backend's internal checks fail even after a fix
ENABLED = "enabled"
DISABLED = "disabled"                # set by an admin
TAKEN = "taken"                      # another account proved the name first: this copy is over
STATUSES = (PENDING, ACTION_REQUIRED, FAILED, ENABLED, DISABLED, TAKEN)

labels("domain.status", {PENDING: _l("Pending"), ACTION_REQUIRED: _l("Action required"), FAILED: _l("Failed"),
                         ENABLED: _l("Enabled"), DISABLED: _l("Disabled"), TAKEN: _l("Proven by another account")})
# Why a check ran (DomainCheckRun.trigger).
labels("domain.check_trigger", {"manual": _l("manual"), "scheduled": _l("scheduled"), "added": _l("added"),
                                "enabled": _l("enabled again")})
# How a record compares with what is published (portal.domains.dns).
labels("domain.record_state", {"ok": _l("OK"), "missing": _l("Missing"), "wrong": _l("Does not match"),
                               "unknown": _l("Not checked")})
# How far the backend has taken the domain's settings (Domain.settings_state).
labels("domain.settings_state", {"pending": _l("pending"), "applied": _l("applied"), "failed": _l("failed")})
# The backends' names that describe rather than name them (``Connection.backend_label``).
labels("backend", {"built-in": _l("built-in")})


class Domain(db.Model):
    __tablename__ = "domains"
    __table_args__ = (UniqueConstraint("account_id", "name", name="uq_domains_account_name"),
                      Index("ix_domains_name", "name"),
                      # One account at most holds a proven copy of a name.
                      Index("uq_domains_proven_name", "name", unique=True,
                            sqlite_where=text("verified_at IS NOT NULL"),
                            postgresql_where=text("verified_at IS NOT NULL")))

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(253))
    connection: Mapped[str] = mapped_column(String(64), default="local")
    status: Mapped[str] = mapped_column(String(20), default=PENDING)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    challenge: Mapped[str] = mapped_column(String(64), default=lambda: secrets.token_urlsafe(24))
    verified_at: Mapped[datetime | None]
    verified_by_hand: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    enabled_at: Mapped[datetime | None]
    last_checked_at: Mapped[datetime | None]
    last_manual_check_at: Mapped[datetime | None]
    # Until then the domain is checked often, since someone asked (the page keeps checking).
    watch_until: Mapped[datetime | None]
    # First failed check of a domain that is still enabled; cleared by a good check.
    failing_since: Mapped[datetime | None]
    failed_checks: Mapped[int] = mapped_column(default=0)
    # Records expected/found at the last check, for the records table.
    records: Mapped[list] = mapped_column(JSON, default=list)
    backend_checks: Mapped[list] = mapped_column(JSON, default=list)
    # Domain-wide settings the backend supports, as the admin wants them, and
    # how far the backend has taken them: "" (none yet), pending, applied, failed.
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    settings_state: Mapped[str] = mapped_column(String(16), default="")
    settings_message: Mapped[str] = mapped_column(Text, default="")
    settings_hints: Mapped[dict] = mapped_column(JSON, default=dict)

    checks: Mapped[list["DomainCheckRun"]] = relationship(
        back_populates="domain", cascade="all, delete-orphan", passive_deletes=True,
        order_by="desc(DomainCheckRun.id)", lazy="dynamic")

    @property
    def unicode_name(self) -> str:
        from portal.domains.names import to_unicode

        return to_unicode(self.name)

    @property
    def is_active(self) -> bool:
        return self.status == ENABLED

    def __repr__(self) -> str:
        return f"<Domain {self.id} {self.name} {self.status}>"


class DomainCheckRun(db.Model):
    """One check of a domain: what was found and what it led to."""

    __tablename__ = "domain_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    trigger: Mapped[str] = mapped_column(String(16))  # manual | scheduled | added | enabled
    status_before: Mapped[str] = mapped_column(String(20))
    status_after: Mapped[str] = mapped_column(String(20))
    summary: Mapped[str] = mapped_column(Text, default="")
    records: Mapped[list] = mapped_column(JSON, default=list)

    domain: Mapped[Domain] = relationship(back_populates="checks")


def aliased_names(settings: dict | None) -> set[str]:
    """The domain names a domain's settings alias onto it (joe@alias reaches joe@ it), as names
    are kept (lower case, no trailing dot); none when the value is not a list."""
    names = (settings or {}).get("domain_aliases")
    return {str(name).strip().lower().rstrip(".") for name in names} if isinstance(names, list) else set()


def catch_all_address(settings: dict | None) -> str:
    """The address a domain's settings make its catch-all, in lower case ("" for none)."""
    return str((settings or {}).get("catch_all") or "").strip().lower()
