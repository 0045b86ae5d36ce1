"""The Users and Mailboxes lists, as filtered on the page, as a workbook or CSV: a handful of
statements whatever the number of rows, every text stored as text.

A list of up to ``AT_ONCE`` rows is written while the page waits. A longer one (10,000 rows took
1.1 to 1.6 s of a web worker as a workbook) is asked for with a POST and written by a job into an
``ExportRun``, which its page follows; only whoever asked downloads it, while they may still see
the list, and the file is erased after ``KEEP_HOURS``."""

from __future__ import annotations

import csv
import io
from contextlib import nullcontext
from datetime import timedelta

from flask_babel import gettext as _
from openpyxl import Workbook
from sqlalchemy import func, literal
from sqlalchemy.orm import aliased

from portal.accounts.models import Account, Membership
from portal.audit.services import record
from portal.auth.models import User
from portal.bulk.models import DONE, FAILED, MAILBOXES, MEMBERS, QUEUED, RUNNING, ExportRun
from portal.extensions import db
from portal.i18n import StoredReason, _l, chosen, for_person, label, labels, later
from portal.jobs.registry import handler, marks_failed
from portal.jobs.services import enqueue
from portal.roles.models import Grant, Role
from portal.spreadsheets import cells, csv_text
from portal.timeutil import utcnow

# Rows written while the page waits (1,000: about 0.3 s as a workbook, 0.1 s as CSV, on two slow
# cores; 500 took 143 ms as a workbook in the scale review); a longer list is written by a job.
AT_ONCE = 1_000
KEEP_HOURS = 24
# Exports one person may have queued or being written at once.
WAITING_AT_MOST = 3
EXPORT_KIND = "bulk.export"
ERASE_KIND = "bulk.export_erase"

FORMATS = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
           "csv": "text/csv; charset=utf-8"}
MEMBER_HEADER = (_l("E-mail"), _l("Name"), _l("Corporate"), _l("Status"), _l("Account roles"),
                 _l("Single permissions"), _l("Mailboxes with access"), _l("Last log-in (UTC)"), _l("Joined (UTC)"))
MAILBOX_HEADER = (_l("Address"), _l("Name"), _l("Kind"), _l("Owner"), _l("Domain"), _l("Status"), _l("Quota (bytes)"),
                  _l("Created (UTC)"))
# A member's state in the export.
labels("member.state", {"active": _l("active"), "never_signed_in": _l("never signed in"),
                        "suspended": _l("suspended")})


class ExportRefused(StoredReason, ValueError):
    """The export cannot be asked for now; the message says why."""


def listing_for(target: str, args=None):
    """The list's state: from the query string, or ``args`` (what an export run kept of it)."""
    from portal.accounts.views import member_listing
    from portal.mailboxes.views import mailbox_listing

    return (member_listing if target == MEMBERS else mailbox_listing)(args)


def _members_listed(actor: User, account: Account, listing):
    from portal.accounts.services import member_query

    return member_query(account, listing)


def _mailboxes_listed(actor: User, account: Account, listing):
    from portal.mailboxes.services import mailbox_query

    return mailbox_query(actor, account, listing)


def longer_than_at_once(actor: User, account: Account, target: str, listing) -> bool:
    """Whether the list has more than ``AT_ONCE`` rows (one statement, reading no more than that)."""
    listed = (_members_listed if target == MEMBERS else _mailboxes_listed)(actor, account, listing)
    first = listed.with_only_columns(literal(1)).order_by(None).limit(AT_ONCE + 1).subquery()
    return db.session.execute(db.select(func.count()).select_from(first)).scalar_one() > AT_ONCE


def _member_rows(actor: User, account: Account, listing):
    """The listed members as plain columns (no ORM object per row: 10,000 people made 34,000 of
    them), their grants as plain columns too, restricted to those members."""
    listed = _members_listed(actor, account, listing)
    rows = db.session.execute(listed.with_only_columns(
        Membership.id, Membership.created_at, User.email, User.name, User.is_corporate, User.corporate_account_id,
        User.suspended_at, User.password_hash, User.oidc_subject, User.last_login_at)).all()
    grants: dict[int, list[tuple]] = {}
    for membership_id, role_id, permission, mailbox_id in db.session.execute(
            db.select(Grant.membership_id, Grant.role_id, Grant.permission, Grant.mailbox_id)
            .where(Grant.membership_id.in_(listed.with_only_columns(Membership.id).order_by(None)))):
        grants.setdefault(membership_id, []).append((role_id, permission, mailbox_id))
    role_ids = {role_id for held in grants.values() for role_id, _p, mailbox_id in held
                if role_id is not None and mailbox_id is None}
    roles = {role.id: role.label for role in db.session.execute(
        db.select(Role).where(Role.id.in_(role_ids))).scalars()} if role_ids else {}
    yes, no = _("yes"), _("no")
    states = {state: label(state, "member.state") for state in ("suspended", "active", "never_signed_in")}
    for (membership_id, joined, email, name, is_corporate, corporate_account_id, suspended_at, password_hash,
         oidc_subject, last_login_at) in rows:
        held = grants.get(membership_id, [])
        corporate = is_corporate and corporate_account_id == account.id
        status = ("suspended" if suspended_at else
                  "active" if password_hash or oidc_subject else "never_signed_in")
        yield (email, name, yes if corporate else no, states[status],
               ", ".join(sorted({roles[r] for r, _p, m in held if r is not None and m is None})),
               ", ".join(sorted({p for _r, p, m in held if p and m is None})),
               len({m for _r, _p, m in held if m is not None}),
               last_login_at.strftime("%Y-%m-%d %H:%M") if last_login_at else "",
               joined.strftime("%Y-%m-%d %H:%M"))


def _mailbox_rows(actor: User, account: Account, listing):
    """The listed mailboxes as plain columns, with their owner's address and their domain's name."""
    from portal.domains.models import Domain
    from portal.mailboxes.models import Mailbox

    owner = aliased(User)
    listed = (_mailboxes_listed(actor, account, listing).with_only_columns(
        Mailbox.address, Mailbox.display_name, Mailbox.first_name, Mailbox.last_name, Mailbox.kind, owner.email,
        Domain.name, Mailbox.status, Mailbox.quota_bytes, Mailbox.created_at)
        .join(Domain, Domain.id == Mailbox.domain_id).outerjoin(owner, owner.id == Mailbox.owner_id))
    for (address, display_name, first_name, last_name, kind, owner_email, domain, status, quota_bytes,
         created_at) in db.session.execute(listed):
        name = display_name or " ".join(part for part in (first_name, last_name) if part)
        yield (address, name if name != address else "", label(kind, "mailbox.kind"), owner_email or "", domain,
               label(status, "mailbox.status"), quota_bytes, created_at.strftime("%Y-%m-%d %H:%M"))


def file_name(target: str, account: Account, fmt: str) -> str:
    return f"{'users' if target == MEMBERS else 'mailboxes'}-{account.id}.{fmt}"


def write(actor: User, account: Account, target: str, fmt: str, listing) -> tuple[bytes, int]:
    """The file of the list as ``listing`` filters it, and how many rows it holds."""
    header, rows = ((MEMBER_HEADER, _member_rows(actor, account, listing)) if target == MEMBERS
                    else (MAILBOX_HEADER, _mailbox_rows(actor, account, listing)))
    header = [str(text) for text in header]
    count = 0
    if fmt == "csv":
        buffer = io.StringIO()
        # Every cell quoted, and no text a spreadsheet could take for a formula (OWASP).
        writer = csv.writer(buffer, quoting=csv.QUOTE_ALL)
        writer.writerow(header)
        for row in rows:
            writer.writerow([csv_text(value) if isinstance(value, str) else value for value in row])
            count += 1
        return buffer.getvalue().encode("utf-8-sig"), count
    book = Workbook(write_only=True)
    sheet = book.create_sheet(_("Users") if target == MEMBERS else _("Mailboxes"))
    sheet.append(header)
    for row in rows:
        sheet.append(cells(sheet, row))
        count += 1
    output = io.BytesIO()
    book.save(output)
    return output.getvalue(), count


def export(actor: User, account: Account, target: str, fmt: str) -> tuple[bytes, str, str]:
    """The list as the query string filters it, written now (``AT_ONCE`` rows at most: the view checks)."""
    body, _count = write(actor, account, target, fmt, listing_for(target))
    return body, FORMATS[fmt], file_name(target, account, fmt)


# -- longer lists: written by a job ------------------------------------------------------

def _held(actor: User | None, account: Account) -> tuple[int | None, frozenset[str]] | None:
    """``actor``'s membership id and what they hold over the account, or None when they may
    export nothing: no profile, suspended, or not a member (a superadmin holds everything, as the
    access gate says, with or without a membership)."""
    from portal.roles import catalogue
    from portal.roles.services import held_in

    if actor is None or actor.suspended_at is not None:
        return None
    membership_id, held = held_in(actor, account)
    if actor.is_superadmin:
        return membership_id, catalogue.codes(catalogue.ACCOUNT)
    return None if membership_id is None else (membership_id, held)


def _granted_mailboxes(membership_id: int | None) -> set[int]:
    from portal.roles.services import mailboxes_granted

    return set(db.session.execute(mailboxes_granted(membership_id)).scalars())


def _sees_every_mailbox(held: frozenset[str]) -> bool:
    from portal.roles.services import mailbox_powers

    return "mailbox.view" in mailbox_powers(held)


def may_export(actor: User | None, account: Account, target: str, run: ExportRun | None = None,
               held: tuple[int | None, frozenset[str]] | None = None) -> bool:
    """Whether ``actor`` may still export the list, or download ``run`` (checked when the job runs
    and at download): a member not suspended, holding the right to see the members for the Users
    list; for a Mailboxes list, still seeing every mailbox when it was written while they did,
    else still seeing each mailbox their grants showed them then. ``held``: what ``_held`` read
    already."""
    held = _held(actor, account) if held is None else held
    if held is None:
        return False
    membership_id, permissions = held
    if target == MEMBERS:
        return "members.view" in permissions
    if run is None or _sees_every_mailbox(permissions):
        return True
    if run.every_mailbox:
        return False
    return run.granted_mailboxes is None or set(run.granted_mailboxes) <= _granted_mailboxes(membership_id)


def request_export(actor: User, account: Account, target: str, fmt: str, form) -> ExportRun:
    """Queue the export of the list as the posted form filtered it (``filter-<name>`` fields, as
    the bulk form sends them; anything the list does not offer is dropped)."""
    from portal.bulk.services import LIST_FILTERS

    kept = {name: form.get(f"filter-{name}", "")[:254] for name in LIST_FILTERS[target] if form.get(f"filter-{name}")}
    listing = listing_for(target, kept)
    filters = {key: value for key, value in listing.args(page=1).items() if key in LIST_FILTERS[target]}
    waiting = list(db.session.execute(db.select(ExportRun).where(
        ExportRun.account_id == account.id, ExportRun.created_by_id == actor.id,
        ExportRun.status.in_((QUEUED, RUNNING)))).scalars())
    for run in waiting:
        if (run.target, run.format, run.filters) == (target, fmt, filters):
            return run  # the same export asked again (a double click) is the one on its way
    if len(waiting) >= WAITING_AT_MOST:
        raise ExportRefused(later("You have %(count)s exports on their way already; wait for one to be written.",
                                  count=len(waiting)))
    run = ExportRun(account_id=account.id, created_by_id=actor.id, target=target, format=fmt, filters=filters,
                    status=QUEUED)
    db.session.add(run)
    db.session.flush()
    enqueue(EXPORT_KIND, {"export_id": run.id}, subject=f"export:{run.id}", account=account)
    record("bulk.export", account=account, target=run, target_label=list_label(target), actor=actor,
           format=fmt, selection="every row matching the filters" if listing.filtered else "every row")
    return run


def list_label(target: str) -> str:
    """The list exported, as the audit log keeps it: read in each reader's language."""
    return later(_l("Users list")) if target == MEMBERS else later(_l("Mailboxes list"))


def export_in_account(account: Account, export_id: int) -> ExportRun | None:
    run = db.session.get(ExportRun, export_id)
    return run if run is not None and run.account_id == account.id else None


def downloadable(run: ExportRun) -> bool:
    return run.status == DONE and not run.erased and run.finished_at is not None \
        and utcnow() < run.finished_at + timedelta(hours=KEEP_HOURS)


@handler(EXPORT_KIND, max_attempts=3, backoff_seconds=30, on_failure=marks_failed(ExportRun, "export_id"))
def build_export(job) -> None:
    """The file, in the language of whoever asked (as their page showed the list)."""
    run = db.session.get(ExportRun, job.payload["export_id"])
    if run is None or run.status in (DONE, FAILED):
        return
    account = db.session.get(Account, run.account_id)
    actor = run.created_by
    with for_person(actor) if actor is not None and chosen(actor.locale) else nullcontext():
        held = _held(actor, account)
        if held is None or not may_export(actor, account, run.target, held=held):
            # Checked again now: the export may have waited while its author lost the right.
            run.status, run.finished_at = FAILED, utcnow()
            run.error = (later("The person who asked for it no longer has a profile.") if actor is None else
                         later("%(email)s is suspended; nothing was written.", email=actor.email)
                         if actor.suspended_at is not None else
                         later("%(email)s may no longer see this list; nothing was written.", email=actor.email))
            return
        run.status = RUNNING
        if run.target == MAILBOXES:
            run.every_mailbox = _sees_every_mailbox(held[1])
            run.granted_mailboxes = None if run.every_mailbox else sorted(_granted_mailboxes(held[0]))
        run.content, run.rows = write(actor, account, run.target, run.format, listing_for(run.target, run.filters))
    run.status, run.finished_at = DONE, utcnow()
    enqueue(ERASE_KIND, {"export_id": run.id}, run_at=run.finished_at + timedelta(hours=KEEP_HOURS),
            subject=f"export:{run.id}", account=account)


@handler(ERASE_KIND, max_attempts=8)
def erase_export(job) -> None:
    """The file goes once kept for its time: it holds personal data."""
    run = db.session.get(ExportRun, job.payload["export_id"])
    if run is not None:
        # The search went with the file: it may name a person.
        run.content, run.erased, run.filters, run.granted_mailboxes = None, True, {}, None
