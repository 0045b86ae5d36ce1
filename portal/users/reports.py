"""The users report: built by a job, mailed as a signed, expiring link, listed on the page.

The link opens only for someone allowed to see the report (the route's rule)
and only until it expires (the signature).
"""

from __future__ import annotations

import io
from contextlib import nullcontext

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from openpyxl import Workbook

from portal.accounts.models import Account, Membership
from portal.audit.services import record
from portal.auth.models import User
from portal.extensions import db
from portal.i18n import _l, for_person, label, language_of
from portal.jobs.registry import handler, marks_failed
from portal.jobs.services import enqueue
from portal.mail.services import send
from portal.mailboxes.models import Mailbox
from portal.roles.models import Grant
from portal.spreadsheets import cells
from portal.timeutil import utcnow
from portal.users.models import DONE, QUEUED, UsersReport
from portal.web.urls import external_url

REPORT_KIND = "users.report"
LINK_DAYS = 7
HEADER = (_l("Name"), _l("E-mail"), _l("Corporate"), _l("Status"), _l("Account roles"), _l("Account permissions"),
          _l("Mailboxes with access"), _l("Last log-in (UTC)"))


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="users-report")


def signed_link(report: UsersReport) -> str:
    token = _signer().dumps({"report": report.id})
    return external_url("users.download_report", account_id=report.account_id, report_id=report.id, signature=token)


def signature_valid(report: UsersReport, token: str) -> bool:
    try:
        data = _signer().loads(token, max_age=LINK_DAYS * 86400)
    except (SignatureExpired, BadSignature):
        return False
    return data.get("report") == report.id


def report_in_account(account: Account, report_id: int) -> UsersReport | None:
    report = db.session.get(UsersReport, report_id)
    return report if report is not None and report.account_id == account.id else None


def reports_of(account: Account) -> list[UsersReport]:
    return list(db.session.execute(db.select(UsersReport).where(UsersReport.account_id == account.id)
                                   .order_by(UsersReport.id.desc()).limit(20)).scalars())


def request_report(actor: User, account: Account) -> UsersReport:
    report = UsersReport(account_id=account.id, requested_by_id=actor.id, status=QUEUED)
    db.session.add(report)
    db.session.flush()
    enqueue(REPORT_KIND, {"report_id": report.id}, subject=f"report:{report.id}", account=account)
    record("users.report_request", account=account, target=report, target_label=f"report {report.id}", actor=actor)
    return report


def rows(account: Account):
    """The report's rows, worded in the current language."""
    members = db.session.execute(db.select(Membership, User).join(User, User.id == Membership.user_id)
                                 .where(Membership.account_id == account.id).order_by(User.email)).all()
    grants: dict[int, list[Grant]] = {}
    for grant in db.session.execute(db.select(Grant).join(Membership).where(
            Membership.account_id == account.id)).scalars():
        grants.setdefault(grant.membership_id, []).append(grant)
    addresses = dict(db.session.execute(db.select(Mailbox.id, Mailbox.address).where(
        Mailbox.account_id == account.id)).all())
    for membership, user in members:
        held = grants.get(membership.id, [])
        roles = sorted({label(g.role.name, "role") for g in held if g.role is not None and g.mailbox_id is None})
        permissions = sorted({g.permission for g in held if g.permission and g.mailbox_id is None})
        mailboxes = sorted({addresses[g.mailbox_id] for g in held if g.mailbox_id in addresses})
        corporate = user.is_corporate and user.corporate_account_id == account.id
        if user.suspended_at is not None:
            status = _("suspended")
        else:
            status = _("active") if user.password_hash or user.oidc_subject else _("invited, no password yet")
        yield (user.name, user.email, _("yes") if corporate else _("no"), status, ", ".join(roles),
               ", ".join(permissions), ", ".join(mailboxes),
               user.last_login_at.strftime("%Y-%m-%d %H:%M") if user.last_login_at else _("never"))


@handler(REPORT_KIND, max_attempts=3, backoff_seconds=30, on_failure=marks_failed(UsersReport, "report_id"))
def build_report(job) -> None:
    """The workbook and the e-mail are written in the language of the person who asked."""
    report = db.session.get(UsersReport, job.payload["report_id"])
    if report is None:
        return
    requester = report.requested_by
    with for_person(requester) if requester is not None else nullcontext():
        _build(report, requester)


def _build(report: UsersReport, requester: User | None) -> None:
    account = db.session.get(Account, report.account_id)
    book = Workbook(write_only=True)
    sheet = book.create_sheet(_("Users"))
    sheet.append([str(header) for header in HEADER])
    count = 0
    for row in rows(account):
        sheet.append(cells(sheet, row))
        count += 1
    buffer = io.BytesIO()
    book.save(buffer)
    report.content, report.rows, report.status, report.finished_at = buffer.getvalue(), count, DONE, utcnow()
    if requester is not None:
        send(requester.email, "users_report", for_account=account, language=language_of(requester), account=account,
             report=report, user=requester, link=signed_link(report), days=LINK_DAYS)
