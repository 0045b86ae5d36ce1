from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.i18n import _l, labels
from portal.timeutil import utcnow

DRAFT = "draft"          # being prepared: grants are chosen, nothing was sent
PENDING = "pending"
ACCEPTED = "accepted"
DECLINED = "declined"
EXPIRED = "expired"      # shown, never stored: a pending invitation past its expiry
REVOKED = "revoked"
STATUSES = (DRAFT, PENDING, ACCEPTED, DECLINED, EXPIRED, REVOKED)
labels("invitation.status", {DRAFT: _l("draft"), PENDING: _l("pending"), ACCEPTED: _l("accepted"),
                             DECLINED: _l("declined"), EXPIRED: _l("expired"), REVOKED: _l("revoked")})


class Invitation(db.Model):
    __tablename__ = "invitations"
    __table_args__ = (Index("ix_invitations_email_status", "email", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(16), default=DRAFT)
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    responded_at: Mapped[datetime | None]
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)

    account = relationship("Account", lazy="joined")
    invited_by = relationship("User", foreign_keys=[invited_by_id], lazy="joined")
    grants: Mapped[list["InvitationGrant"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin", order_by="InvitationGrant.id")

    @property
    def shown_status(self) -> str:
        if self.status == PENDING and self.expires_at is not None and self.expires_at <= utcnow():
            return EXPIRED
        return self.status


class InvitationGrant(db.Model):
    """One role or permission the invitation offers, over the account or one mailbox.

    A role or mailbox deleted before acceptance leaves the row with its label,
    so the person accepting is told what no longer exists.
    """

    __tablename__ = "invitation_grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("invitations.id", ondelete="CASCADE"), index=True)
    role_id: Mapped[int | None] = mapped_column(ForeignKey("roles.id", ondelete="SET NULL"), index=True)
    permission: Mapped[str | None] = mapped_column(String(64))
    on_mailbox: Mapped[bool] = mapped_column(default=False)
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailboxes.id", ondelete="SET NULL"), index=True)
    label: Mapped[str] = mapped_column(String(300))

    role = relationship("Role", lazy="joined")
    mailbox = relationship("Mailbox", lazy="joined")

    @property
    def still_exists(self) -> bool:
        if self.role_id is None and self.permission is None:
            return False
        return not self.on_mailbox or self.mailbox_id is not None

    def same_offer(self, other: "InvitationGrant") -> bool:
        return (self.role_id, self.permission, self.on_mailbox, self.mailbox_id) == \
            (other.role_id, other.permission, other.on_mailbox, other.mailbox_id)

    @property
    def shown_label(self) -> str:
        """The offer in the reader's language; the label kept when it was added once what it
        names is gone."""
        return offer_label(self.label, self.role.name if self.role is not None else None, self.permission,
                           self.on_mailbox, self.mailbox.address if self.mailbox is not None else None)


def stored_offer(grant: InvitationGrant) -> str:
    """The offer as the audit log keeps it: read later in each reader's language, as
    ``shown_label`` shows it now (a walkthrough: a French log read « offres : See members »)."""
    return offer_text(grant.label, grant.role.name if grant.role is not None else None, grant.permission,
                      grant.on_mailbox, grant.mailbox.address if grant.mailbox is not None else None)


def offer_text(kept: str, role_name: str | None, permission: str | None, on_mailbox: bool,
               mailbox_address: str | None) -> str:
    """An offer as a text to keep or show: a ``later`` text read in each reader's language (a
    system role's or a permission's name, "… on <mailbox>"), a custom role's name as it is, and
    ``kept`` (the label written when it was added) once what it names is gone."""
    from portal.i18n import LABELS, later
    from portal.roles.catalogue import BY_CODE

    if role_name is not None:
        offer = LABELS.get(("role", role_name), role_name)
    elif permission in BY_CODE:
        offer = BY_CODE[permission].text  # the lazy text, not as it reads now
    else:
        return kept
    if not on_mailbox:
        return offer if isinstance(offer, str) else later(offer)
    if mailbox_address is None:
        return kept
    return later(_l("%(offer)s on %(mailbox)s"), offer=offer, mailbox=mailbox_address)


def offer_label(kept: str, role_name: str | None, permission: str | None, on_mailbox: bool,
                mailbox_address: str | None) -> str:
    """An offer as people read it, in their language, from what it names now (``offer_text``)."""
    from portal.i18n import shown

    return shown(offer_text(kept, role_name, permission, on_mailbox, mailbox_address))
