"""The Users and Mailboxes lists, as filtered on the page, as a workbook or CSV: a handful of
statements whatever the number of rows, every text stored as text."""

from __future__ import annotations

import csv
import io

from flask_babel import gettext as _
from openpyxl import Workbook

from portal.accounts.models import Account, Membership
from portal.auth.models import User
from portal.bulk.models import MEMBERS
from portal.extensions import db
from portal.i18n import _l, label, labels
from portal.roles.models import Grant
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
    from portal.accounts.services import member_query
    from portal.accounts.views import member_listing

    listing = member_listing()
    rows = db.session.execute(member_query(account, listing)).all()
    grants: dict[int, list[Grant]] = {}
    for grant in db.session.execute(db.select(Grant).join(Membership, Membership.id == Grant.membership_id)
                                    .where(Membership.account_id == account.id)).scalars():
        grants.setdefault(grant.membership_id, []).append(grant)
    for membership, user in rows:
        held = grants.get(membership.id, [])
        corporate = user.is_corporate and user.corporate_account_id == account.id
        status = ("suspended" if user.suspended_at else
                  "active" if user.password_hash or user.oidc_subject else "never_signed_in")
        yield (user.email, user.name, _("yes") if corporate else _("no"), label(status, "member.state"),
               ", ".join(sorted({g.role.label for g in held if g.role is not None and g.mailbox_id is None})),
               ", ".join(sorted({g.permission for g in held if g.permission and g.mailbox_id is None})),
               len({g.mailbox_id for g in held if g.mailbox_id is not None}),
               user.last_login_at.strftime("%Y-%m-%d %H:%M") if user.last_login_at else "",
               membership.created_at.strftime("%Y-%m-%d %H:%M"))


def _mailbox_rows(actor: User, account: Account):
    from portal.mailboxes.services import mailbox_query
    from portal.mailboxes.views import mailbox_listing

    for mailbox in db.session.execute(mailbox_query(actor, account, mailbox_listing())).scalars():
        yield (mailbox.address, mailbox.name if mailbox.name != mailbox.address else "",
               label(mailbox.kind, "mailbox.kind"), mailbox.owner.email if mailbox.owner else "", mailbox.domain.name,
               label(mailbox.status, "mailbox.status"),
               mailbox.quota_bytes, mailbox.created_at.strftime("%Y-%m-%d %H:%M"))


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
