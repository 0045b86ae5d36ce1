"""The Users and Mailboxes lists, as filtered on the page, as a workbook or CSV: a handful of
statements whatever the number of rows, every text stored as text."""

from __future__ import annotations

import csv
import io

from flask_babel import gettext as _
from openpyxl import Workbook
from sqlalchemy.orm import aliased

from portal.accounts.models import Account, Membership
from portal.auth.models import User
from portal.bulk.models import MEMBERS
from portal.extensions import db
from portal.i18n import _l, label, labels
from portal.roles.models import Grant, Role
from portal.spreadsheets import cells, looks_like_formula

FORMATS = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
           "csv": "text/csv; charset=utf-8"}
MEMBER_HEADER = (_l("E-mail"), _l("Name"), _l("Corporate"), _l("Status"), _l("Account roles"),
                 _l("Single permissions"), _l("Mailboxes with access"), _l("Last log-in (UTC)"), _l("Joined (UTC)"))
MAILBOX_HEADER = (_l("Address"), _l("Name"), _l("Kind"), _l("Owner"), _l("Domain"), _l("Status"), _l("Quota (bytes)"),
                  _l("Created (UTC)"))
# A member's state in the export.
labels("member.state", {"active": _l("active"), "never_signed_in": _l("never signed in"),
                        "suspended": _l("suspended")})


def _member_rows(actor: User, account: Account):
    """The listed members as plain columns (no ORM object per row: 10,000 people made 34,000 of
    them), their grants as plain columns too, restricted to those members."""
    from portal.accounts.services import member_query
    from portal.accounts.views import member_listing

    listed = member_query(account, member_listing())
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
    for (membership_id, joined, email, name, is_corporate, corporate_account_id, suspended_at, password_hash,
         oidc_subject, last_login_at) in rows:
        held = grants.get(membership_id, [])
        corporate = is_corporate and corporate_account_id == account.id
        status = ("suspended" if suspended_at else
                  "active" if password_hash or oidc_subject else "never_signed_in")
        yield (email, name, _("yes") if corporate else _("no"), label(status, "member.state"),
               ", ".join(sorted({roles[r] for r, _p, m in held if r is not None and m is None})),
               ", ".join(sorted({p for _r, p, m in held if p and m is None})),
               len({m for _r, _p, m in held if m is not None}),
               last_login_at.strftime("%Y-%m-%d %H:%M") if last_login_at else "",
               joined.strftime("%Y-%m-%d %H:%M"))


def _mailbox_rows(actor: User, account: Account):
    """The listed mailboxes as plain columns, with their owner's address and their domain's name."""
    from portal.domains.models import Domain
    from portal.mailboxes.models import Mailbox
    from portal.mailboxes.services import mailbox_query
    from portal.mailboxes.views import mailbox_listing

    owner = aliased(User)
    listed = (mailbox_query(actor, account, mailbox_listing()).with_only_columns(
        Mailbox.address, Mailbox.display_name, Mailbox.first_name, Mailbox.last_name, Mailbox.kind, owner.email,
        Domain.name, Mailbox.status, Mailbox.quota_bytes, Mailbox.created_at)
        .join(Domain, Domain.id == Mailbox.domain_id).outerjoin(owner, owner.id == Mailbox.owner_id))
    for (address, display_name, first_name, last_name, kind, owner_email, domain, status, quota_bytes,
         created_at) in db.session.execute(listed):
        name = display_name or " ".join(part for part in (first_name, last_name) if part)
        yield (address, name if name != address else "", label(kind, "mailbox.kind"), owner_email or "", domain,
               label(status, "mailbox.status"), quota_bytes, created_at.strftime("%Y-%m-%d %H:%M"))


def export(actor: User, account: Account, target: str, fmt: str) -> tuple[bytes, str, str]:
    header, rows = ((MEMBER_HEADER, _member_rows(actor, account)) if target == MEMBERS
                    else (MAILBOX_HEADER, _mailbox_rows(actor, account)))
    header = [str(text) for text in header]
    name = f"{'users' if target == MEMBERS else 'mailboxes'}-{account.id}.{fmt}"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        for row in rows:
            # A leading apostrophe keeps a spreadsheet from evaluating text as a formula (OWASP).
            writer.writerow(["'" + value if isinstance(value, str) and looks_like_formula(value) else value
                             for value in row])
        return buffer.getvalue().encode("utf-8-sig"), FORMATS[fmt], name
    book = Workbook(write_only=True)
    sheet = book.create_sheet(_("Users") if target == MEMBERS else _("Mailboxes"))
    sheet.append(header)
    for row in rows:
        sheet.append(cells(sheet, row))
    output = io.BytesIO()
    book.save(output)
    return output.getvalue(), FORMATS[fmt], name
