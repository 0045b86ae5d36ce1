"""The Overview: what the account holds and what needs an administrator, from a few aggregate
statements whatever its size."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache

from flask_babel import gettext as _
from sqlalchemy import bindparam, case, func
from sqlalchemy.orm import lazyload

from portal.accounts.models import Account, Membership
from portal.accounts.services import corporate_of, needs_link
from portal.audit.models import AuditEvent
from portal.auth.models import User
from portal.domains.models import ACTION_REQUIRED, ENABLED, FAILED, PENDING, Domain
from portal.extensions import db
from portal.invitations.models import PENDING as INVITATION_PENDING
from portal.invitations.models import Invitation
from portal.mailboxes.models import FAILED as MAILBOX_FAILED
from portal.mailboxes.models import STATUSES as MAILBOX_STATUSES
from portal.mailboxes.models import Mailbox
from portal.timeutil import utcnow
from portal.users.models import CHECKING, QUEUED, RUNNING, ImportRun

SHOWN = 5
EXPIRING_WITHIN = timedelta(days=2)


@dataclass
class Step:
    label: str
    done: bool
    endpoint: str
    hint: str


@dataclass
class Overview:
    members: int = 0
    corporate: int = 0
    # Corporate users no link can reach: never signed in, no recovery address, no personal mailbox.
    need_link: int = 0
    domains: dict[str, int] = field(default_factory=dict)
    mailboxes: dict[str, int] = field(default_factory=dict)
    pending_invitations: int = 0
    expiring_invitations: list = field(default_factory=list)
    invitations_sent: int = 0
    domains_needing_records: list = field(default_factory=list)
    failed_mailboxes: list = field(default_factory=list)
    imports_running: list = field(default_factory=list)
    recent: list = field(default_factory=list)
    checklist: list[Step] = field(default_factory=list)

    @property
    def mailbox_statuses(self) -> list[tuple[str, int]]:
        """The statuses the account's mailboxes are in, with how many, in the order a mailbox goes
        through them."""
        return [(status, self.mailboxes[status]) for status in MAILBOX_STATUSES if self.mailboxes.get(status)]

    @property
    def needs_action(self) -> bool:
        return bool(self.domains_needing_records or self.failed_mailboxes or self.imports_running
                    or self.expiring_invitations or self.need_link)

    @property
    def getting_started(self) -> bool:
        return not all(step.done for step in self.checklist)


def failed_mailboxes(account: Account):
    """The account's most recently changed failed mailboxes, read along the (account, status,
    updated_at) index: 10,000 mailboxes, 300 failed, SQLite 0.74 -> 0.05 ms, no sort."""
    return _statements()["failed_mailboxes"].params(account_id=account.id)


@cache
def _statements() -> dict:
    """The Overview's statements, built once with their values as parameters (``account_id``,
    ``now``, ``soon``): building and keying nine statements took longer than running them."""
    account_id, now = bindparam("account_id"), bindparam("now")
    pending = (Invitation.status == INVITATION_PENDING) & (Invitation.expires_at > now)
    # Each count is read from an index: the memberships' of the account, the corporate users'
    # (a corporate user of the account is always one of its members: removing one from the account
    # makes them corporate no more), and those no link can reach among those without a password or
    # a recovery address, as the Users list's status "Needs a link from you" says it (a
    # walkthrough: an import's page said 165 people needed a link from the admin; the Overview
    # said nothing). SQLite, 10,000 members, side by side: 5.4 -> 4.4 ms, every member's row no
    # longer read; most of what is left is looking for a personal mailbox of each candidate (2,500).
    members = db.select(
        db.select(func.count()).select_from(Membership).where(Membership.account_id == account_id).scalar_subquery(),
        db.select(func.count()).select_from(User).where(corporate_of(account_id)).scalar_subquery())
    unreachable = db.select(func.count()).select_from(User).where(needs_link(account_id)).scalar_subquery()
    return {
        "members": members.add_columns(unreachable),
        "members_only": members,
        "domains": db.select(Domain.status, func.count()).where(Domain.account_id == account_id)
        .group_by(Domain.status),
        "domains_needing_records": db.select(Domain).where(
            Domain.account_id == account_id, Domain.status.in_((PENDING, ACTION_REQUIRED, FAILED)))
        .order_by(Domain.name).limit(SHOWN),
        "mailboxes": db.select(Mailbox.status, func.count()).where(Mailbox.account_id == account_id)
        .group_by(Mailbox.status),
        "failed_mailboxes": db.select(Mailbox).where(Mailbox.account_id == account_id, Mailbox.status == MAILBOX_FAILED)
        .options(lazyload(Mailbox.domain), lazyload(Mailbox.owner), lazyload(Mailbox.aliases))
        .order_by(Mailbox.updated_at.desc()).limit(SHOWN),
        "invitations": db.select(func.coalesce(func.sum(case((pending, 1), else_=0)), 0), func.count())
        .where(Invitation.account_id == account_id),
        "expiring_invitations": db.select(Invitation).where(
            Invitation.account_id == account_id, pending, Invitation.expires_at <= bindparam("soon"))
        .options(lazyload(Invitation.account), lazyload(Invitation.invited_by), lazyload(Invitation.grants))
        .order_by(Invitation.expires_at).limit(SHOWN),
        "imports_running": db.select(ImportRun).where(
            ImportRun.account_id == account_id, ImportRun.status.in_((CHECKING, QUEUED, RUNNING)))
        .options(lazyload(ImportRun.created_by)).order_by(ImportRun.id.desc()).limit(SHOWN),
        "recent": db.select(AuditEvent).where(AuditEvent.account_id == account_id)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(8),
    }


def build(account: Account, can) -> Overview:
    """``can(permission)`` decides what the person may see; each part costs one or two statements."""
    view = Overview()
    now = utcnow()
    statements, values = _statements(), {"account_id": account.id}

    def rows(name: str, **more):
        return db.session.execute(statements[name], {**values, **more})

    if can("members.view"):
        # Those who need a link are counted for whoever may give them one (their pages, the list's
        # bulk "send links"): the look-up costs 2.5-5 ms at 10,000, for nothing to anyone else.
        if can("users.manage"):
            view.members, view.corporate, view.need_link = rows("members").one()
        else:
            view.members, view.corporate = rows("members_only").one()
    if can("domains.view"):
        view.domains = dict(rows("domains").all())
        view.domains_needing_records = list(rows("domains_needing_records").scalars())
    if can("mailboxes.view"):
        view.mailboxes = dict(rows("mailboxes").all())
        view.failed_mailboxes = list(rows("failed_mailboxes").scalars())
    if can("users.invite"):
        view.pending_invitations, view.invitations_sent = rows("invitations", now=now).one()
        view.expiring_invitations = list(rows("expiring_invitations", now=now, soon=now + EXPIRING_WITHIN).scalars())
    if can("users.create"):
        view.imports_running = list(rows("imports_running").scalars())
    if can("audit.view"):
        view.recent = list(rows("recent").scalars())
    if can("domains.view"):
        proven = sum(count for status, count in view.domains.items() if status not in (PENDING, "taken"))
        view.checklist = [
            Step(_("Add a domain"), bool(view.domains), "domains.index",
                 _("The mail domain your addresses will be on, such as example.org.")),
            Step(_("Prove it is yours"), proven > 0, "domains.index",
                 _("Publish its ownership TXT record; the portal checks it by itself.")),
            Step(_("Publish its mail records"), view.domains.get(ENABLED, 0) > 0, "domains.index",
                 _("MX, SPF and the records the mail backend needs; the domain is then enabled.")),
            Step(_("Create the first mailbox"), sum(view.mailboxes.values()) > 0, "mailboxes.create",
                 _("A shared address or someone's personal mailbox.")),
            Step(_("Invite someone"), view.invitations_sent > 0, "invitations.index",
                 _("Colleagues join by accepting an invitation, with the access you offer.")),
        ]
    return view
