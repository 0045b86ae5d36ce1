from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from portal.extensions import db
from portal.i18n import _l, _lp, labels
from portal.search import folded, holding, insert_default, one_line
from portal.timeutil import utcnow

PERSONAL = "personal"
SHARED = "shared"
KINDS = (PERSONAL, SHARED)

PENDING = "pending"            # waits for its domain to be enabled
PROVISIONING = "provisioning"  # a job is creating it on the backend
ENABLED = "enabled"
DISABLED = "disabled"
FAILED = "failed"              # the backend refused; see the last attempt, Retry
DELETED = "deleted"            # gone from the backend (or archived there); kept for history
STATUSES = (PENDING, PROVISIONING, ENABLED, DISABLED, FAILED, DELETED)

labels("mailbox.kind", {PERSONAL: _l("Personal"), SHARED: _l("Shared")})
# A mailbox's own words where other languages agree them with it ("Activée", a mailbox being feminine
# in French, where a domain is "Activé").
labels("mailbox.status", {PENDING: _l("Pending"), PROVISIONING: _l("Provisioning"), ENABLED: _lp("mailbox", "Enabled"),
                          DISABLED: _lp("mailbox", "Disabled"), FAILED: _l("Failed"),
                          DELETED: _lp("mailbox", "Deleted")})
# What each call to the backend did (ProvisioningAttempt.operation) and how it ended (outcome).
labels("mailbox.operation", {"create": _l("create"), "set_active": _l("set active"), "delete": _l("delete"),
                             "reset_password": _l("reset password"), "set_quota": _l("set quota"),
                             "add_alias": _l("add alias"), "remove_alias": _l("remove alias"),
                             "set_protocols": _l("set protocols"), "set_admin": _l("set admin")})
labels("mailbox.attempt_outcome", {"ok": _l("ok"), "retrying": _l("retrying"), "failed": _l("failed")})
labels("mailbox.alias_state", {"adding": _l("adding"), "active": _l("active"), "removing": _l("removing"),
                               "failed": _l("failed")})


def mailbox_search_text(address: str | None, display_name: str | None) -> str:
    """What mailboxes are searched in: their address and display name (see ``portal.search``)."""
    return folded(address, display_name)


def mailboxes_matching(text: str):
    """The condition on ``Mailbox`` for mailboxes whose address or display name holds ``text``."""
    return holding(Mailbox.search_text, text)


class Mailbox(db.Model):
    __tablename__ = "mailboxes"
    # An address is unique within one account's copy of a domain: a copy that is not proven
    # never blocks (or reveals) the addresses of the account that proved the name.
    __table_args__ = (UniqueConstraint("domain_id", "address", name="uq_mailboxes_domain_address"),
                      # The list filtered by status and kind, newest first; its prefix serves counts by status.
                      Index("ix_mailboxes_account_status_kind_created", "account_id", "status", "kind", "created_at"),
                      Index("ix_mailboxes_account_address", "account_id", "address"),
                      # The Overview's failed mailboxes, most recently changed first.
                      Index("ix_mailboxes_account_status_updated", "account_id", "status", "updated_at"),
                      # Searching by any part of the address or display name (LIKE '%text%' on
                      # search_text): a trigram index on PostgreSQL where pg_trgm is installed.
                      Index("ix_mailboxes_search_trgm", "search_text", postgresql_using="gin",
                            postgresql_ops={"search_text": "gin_trgm_ops"}).ddl_if(dialect="postgresql"))

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="RESTRICT"), index=True)
    local_part: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(254))
    kind: Mapped[str] = mapped_column(String(16), default=SHARED)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    display_name: Mapped[str] = mapped_column(String(200), default="")
    quota_bytes: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    # What the admin wants; the status says what the backend has.
    want_active: Mapped[bool] = mapped_column(default=True)
    backend_id: Mapped[str | None] = mapped_column(String(128))
    # The backend made the mailbox but its answer, with the first password, was lost.
    password_lost: Mapped[bool] = mapped_column(default=False)
    # Who was last given the mailbox's generated password, when it was not the person whose login
    # address the mailbox is (no foreign key: a deleted profile's holder still knows it). A reset
    # link for that person is not mailed here while it is someone without all their rights.
    password_given_to_id: Mapped[int | None]
    # When: a profile made after it (SQLite gives a freed id again) is not who was given it.
    password_given_at: Mapped[datetime | None]
    # The backend's own administrator privilege (Mail-in-a-Box admins manage the whole box).
    backend_admin: Mapped[bool] = mapped_column(default=False)
    # Protocol name -> allowed, where the backend has protocol switches; None: its defaults.
    protocols: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # mailbox_search_text(address, display_name), kept by the ORM (below) and the insert default.
    search_text: Mapped[str] = mapped_column(Text, default=insert_default("address", "display_name"), server_default="")

    domain = relationship("Domain", lazy="joined")
    owner = relationship("User", lazy="joined", foreign_keys=[owner_id])
    # Read when asked for (a mailbox page, the API's answer about it; a list asks with ``selectinload``):
    # every mailbox loaded, for an invitation's offers or a picker, read all its aliases before.
    aliases: Mapped[list["MailboxAlias"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="MailboxAlias.address", lazy="select")
    attempts: Mapped[list["ProvisioningAttempt"]] = relationship(
        back_populates="mailbox", cascade="all, delete-orphan", passive_deletes=True,
        order_by="desc(ProvisioningAttempt.id)", lazy="dynamic")

    @validates("address", "display_name", "first_name", "last_name")
    def _keep_names_and_search_text(self, key: str, value):
        if key != "address" and value is not None:
            value = one_line(value)  # the backend is given these names
        if key == "first_name" or key == "last_name":
            return value
        self.search_text = mailbox_search_text(value if key == "address" else self.address,
                                               value if key == "display_name" else self.display_name)
        return value

    @property
    def name(self) -> str:
        return self.display_name or " ".join(p for p in (self.first_name, self.last_name) if p) or self.address

    def __repr__(self) -> str:
        return f"<Mailbox {self.id} {self.address} {self.status}>"


class MailboxAlias(db.Model):
    """An extra address delivering to a mailbox."""

    __tablename__ = "mailbox_aliases"

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(254), unique=True)
    state: Mapped[str] = mapped_column(String(16), default="adding")  # adding | active | removing | failed
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProvisioningAttempt(db.Model):
    """One call to the backend about a mailbox: what was asked, what came back."""

    __tablename__ = "provisioning_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    operation: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16))  # ok | retrying | failed
    message: Mapped[str] = mapped_column(Text, default="")

    mailbox: Mapped[Mailbox] = relationship(back_populates="attempts")


class MailboxSecret(db.Model):
    """A password the backend generated, encrypted, shown once to someone allowed."""

    __tablename__ = "mailbox_secrets"

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"), index=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class DriftReport(db.Model):
    """What differed between a domain's mailboxes on the backend and in the portal."""

    __tablename__ = "drift_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    error: Mapped[str] = mapped_column(Text, default="")
    differences: Mapped[list] = mapped_column(JSON, default=list)


class ReleasedMailbox(db.Model):
    """A mailbox an account left on its backend when the account was deleted (disabled, kept or
    archived there), or archived there and then removed its domain, with the mail it held. Its mail is that account's people's: the portal does
    not hand it to the next account that proves the domain (by adopting it from a comparison, or
    by creating the address and finding it already there) until the operator says so
    (``flask portal release-mailbox``)."""

    __tablename__ = "released_mailboxes"
    __table_args__ = (UniqueConstraint("connection", "address", name="uq_released_mailboxes_connection_address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(254))
    account_name: Mapped[str] = mapped_column(String(200), default="")
    released_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The account that left it, while that account exists (it removed the domain, and may take its
    # own mail back); None once the account is deleted. Not a foreign key: the row outlives it.
    account_id: Mapped[int | None] = mapped_column(default=None)
