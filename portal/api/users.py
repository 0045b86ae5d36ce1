"""Invitations, corporate users, imports, the users report and the audit log."""

from __future__ import annotations

import io

from flask import Response, g, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.accounts import services as accounts
from portal.api import out, schemas
from portal.api.core import accepted, bp, created, endpoint, json_response, listed
from portal.api.problems import problem
from portal.audit.services import FAMILIES, query_events
from portal.extensions import db
from portal.invitations import services as invitations
from portal.mailboxes.services import mailbox_in_account
from portal.roles.services import membership_of
from portal.users import imports, reports, workbook
from portal.users import services as users
from portal.web import lists
from portal.web.access import member

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# -- invitations ----------------------------------------------------------------------------


def _invitation(invitation_id: int):
    return invitations.invitation_in_account(g.account, invitation_id)


def _add_offer(invitation, offer: schemas.OfferIn) -> None:
    mailbox = None
    if offer.mailbox_id:
        mailbox = mailbox_in_account(g.account, offer.mailbox_id)
        if mailbox is None:
            raise invitations.InvitationError(_("Choose a mailbox of this account."))
    if not offer.role_id and not offer.permission:
        raise invitations.InvitationError(_("An offer is a role, a permission, or both."))
    if offer.role_id:
        invitations.add_grant(current_user, invitation, role_id=offer.role_id, mailbox=mailbox)
    if offer.permission:
        invitations.add_grant(current_user, invitation, permission=offer.permission, mailbox=mailbox)


@bp.get("/accounts/<int:account_id>/invitations")
@endpoint(member("users.invite"), query=schemas.InvitationQuery, responses={200: None, 422: None},
          tags=("invitations",))
def invitation_list(account_id, query: schemas.InvitationQuery):
    listing = lists.Listing(q=query.q, filters={"status": query.status}, sort=query.sort,
                            descending=query.dir == "desc", page=query.page, per_page=query.per_page)
    page = lists.fetch(invitations.invitation_query(g.account, listing), listing)
    return listed(page, [out.invitation(item).model_dump(mode="json") for item in page.items],
                  "api.invitation_list", account_id=account_id)


@bp.post("/accounts/<int:account_id>/invitations")
@endpoint(member("users.invite"), body=schemas.InvitationIn,
          responses={201: schemas.InvitationOut, 403: None, 409: None, 422: None}, tags=("invitations",),
          creates=True)
def invite(account_id, body: schemas.InvitationIn):
    """A draft with its offers (nobody offers what they do not hold), sent at once with ``send``."""
    invitation = invitations.start(current_user, g.account, body.email)
    for offer in body.offers:
        _add_offer(invitation, offer)
    if body.send:
        invitations.send_invitation(current_user, invitation)
    db.session.commit()
    return created(url_for("api.invitation", account_id=account_id, invitation_id=invitation.id, _external=True),
                   out.invitation(invitation))


@bp.get("/accounts/<int:account_id>/invitations/<int:invitation_id>")
@endpoint(member("users.invite"), responses={200: schemas.InvitationOut, 404: None}, tags=("invitations",))
def invitation(account_id, invitation_id):
    found = _invitation(invitation_id)
    return json_response(out.invitation(found)) if found else problem(404, _("No such invitation in this account."))


def _invitation_action(invitation_id, action):
    found = _invitation(invitation_id)
    if found is None:
        return problem(404, _("No such invitation in this account."))
    action(found)
    db.session.commit()
    return json_response(out.invitation(found))


@bp.post("/accounts/<int:account_id>/invitations/<int:invitation_id>/offers")
@endpoint(member("users.invite"), body=schemas.OfferIn,
          responses={200: schemas.InvitationOut, 403: None, 404: None, 409: None}, tags=("invitations",))
def invitation_add_offer(account_id, invitation_id, body: schemas.OfferIn):
    return _invitation_action(invitation_id, lambda found: _add_offer(found, body))


@bp.delete("/accounts/<int:account_id>/invitations/<int:invitation_id>/offers/<int:offer_id>")
@endpoint(member("users.invite"), responses={200: schemas.InvitationOut, 404: None, 409: None},
          tags=("invitations",))
def invitation_remove_offer(account_id, invitation_id, offer_id):
    return _invitation_action(invitation_id, lambda found: invitations.remove_grant(current_user, found, offer_id))


@bp.post("/accounts/<int:account_id>/invitations/<int:invitation_id>/send")
@endpoint(member("users.invite"), responses={200: schemas.InvitationOut, 404: None, 409: None},
          tags=("invitations",))
def invitation_send(account_id, invitation_id):
    return _invitation_action(invitation_id, lambda found: invitations.send_invitation(current_user, found))


@bp.post("/accounts/<int:account_id>/invitations/<int:invitation_id>/resend")
@endpoint(member("users.invite"), responses={200: schemas.InvitationOut, 404: None, 409: None},
          tags=("invitations",))
def invitation_resend(account_id, invitation_id):
    """A new link and a new expiry; the old link stops working."""
    return _invitation_action(invitation_id, lambda found: invitations.resend(current_user, found))


@bp.post("/accounts/<int:account_id>/invitations/<int:invitation_id>/revoke")
@endpoint(member("users.invite"), responses={200: schemas.InvitationOut, 404: None, 409: None},
          tags=("invitations",))
def invitation_revoke(account_id, invitation_id):
    return _invitation_action(invitation_id, lambda found: invitations.revoke(current_user, found))


# -- corporate users ------------------------------------------------------------------------

def _corporate(membership_id: int):
    membership = accounts.member_in_account(g.account, membership_id)
    return membership if membership is not None and users.is_corporate_of(membership.user, g.account) else None


def _member_out(membership) -> schemas.MemberOut:
    return out.member(membership, membership.user, accounts.member_details([membership])[membership.id],
                      g.account.id)


def _onboarding(user, link: str | None) -> schemas.OnboardingOut:
    if link:
        return schemas.OnboardingOut(sent_to=None, link=link)
    return schemas.OnboardingOut(sent_to=user.recovery_email or user.email, link=None)


@bp.post("/accounts/<int:account_id>/users")
@endpoint(member("users.create"), body=schemas.CorporateUserIn,
          responses={201: schemas.CorporateUserOut, 403: None, 422: None}, tags=("users",), creates=True)
def create_user(account_id, body: schemas.CorporateUserIn):
    """A corporate user on one of the account's enabled domains, with a personal mailbox if asked."""
    user, link = users.create_corporate_user(current_user, g.account, first_name=body.first_name,
                                             last_name=body.last_name, email=body.email,
                                             personal_mailbox=body.personal_mailbox,
                                             recovery_email=body.recovery_email)
    db.session.commit()
    membership = membership_of(user, g.account)
    return created(url_for("api.member_access", account_id=account_id, membership_id=membership.id, _external=True),
                   schemas.CorporateUserOut(member=_member_out(membership), onboarding=_onboarding(user, link)))


@bp.put("/accounts/<int:account_id>/users/<int:membership_id>")
@endpoint(member("users.manage"), body=schemas.UserSettingsIn,
          responses={200: schemas.MemberOut, 403: None, 404: None, 422: None}, tags=("users",))
def user_settings(account_id, membership_id, body: schemas.UserSettingsIn):
    """A corporate user's settings: name, time zone, phone, default mailbox, recovery address."""
    membership = _corporate(membership_id)
    if membership is None:
        return problem(404, _("No such corporate user in this account."))
    users.update_settings(current_user, g.account, membership.user, first_name=body.first_name,
                          last_name=body.last_name, timezone=body.timezone, phone=body.phone,
                          default_mailbox_id=body.default_mailbox_id, recovery_email=body.recovery_email)
    db.session.commit()
    return json_response(_member_out(membership))


@bp.post("/accounts/<int:account_id>/users/<int:membership_id>/onboarding")
@endpoint(member("users.manage"), responses={200: schemas.OnboardingOut, 403: None, 404: None, 409: None},
          tags=("users",))
def user_onboarding(account_id, membership_id):
    """A new onboarding link: e-mailed where it can be, else given here to someone who outranks the person."""
    membership = _corporate(membership_id)
    if membership is None:
        return problem(404, _("No such corporate user in this account."))
    link = users.send_onboarding(current_user, g.account, membership.user)
    db.session.commit()
    return json_response(_onboarding(membership.user, link))


@bp.post("/accounts/<int:account_id>/users/<int:membership_id>/suspend")
@endpoint(member("users.manage"), responses={200: schemas.MemberOut, 403: None, 404: None, 409: None},
          tags=("users",))
def user_suspend(account_id, membership_id):
    membership = _corporate(membership_id)
    if membership is None:
        return problem(404, _("No such corporate user in this account."))
    users.suspend(current_user, g.account, membership.user)
    db.session.commit()
    return json_response(_member_out(membership))


@bp.post("/accounts/<int:account_id>/users/<int:membership_id>/restore")
@endpoint(member("users.manage"), responses={200: schemas.MemberOut, 403: None, 404: None, 409: None},
          tags=("users",))
def user_restore(account_id, membership_id):
    membership = _corporate(membership_id)
    if membership is None:
        return problem(404, _("No such corporate user in this account."))
    users.restore(current_user, g.account, membership.user)
    db.session.commit()
    return json_response(_member_out(membership))


@bp.delete("/accounts/<int:account_id>/users/<int:membership_id>")
@endpoint(member("users.manage"), query=schemas.RemoveUserIn, responses={204: None, 403: None, 404: None, 409: None},
          tags=("users",))
def user_remove(account_id, membership_id, query: schemas.RemoveUserIn):
    """Remove a corporate user; ``mailboxes`` says what happens to their personal mailboxes."""
    membership = _corporate(membership_id)
    if membership is None:
        return problem(404, _("No such corporate user in this account."))
    users.remove_corporate_user(current_user, g.account, membership, query.mailboxes)
    db.session.commit()
    return Response(status=204)


# -- imports ----------------------------------------------------------------------------------

def _import(run_id: int):
    return imports.run_in_account(g.account, run_id)


@bp.post("/accounts/<int:account_id>/imports")
@endpoint(member("users.create"), query=schemas.UploadQuery, responses={202: schemas.ImportOut, 413: None, 422: None},
          tags=("imports",), creates=True, raw_body=XLSX)
def import_upload(account_id, query: schemas.UploadQuery):
    """Upload a workbook as the request body (Content-Type: the .xlsx media type). It is read and
    checked in the background (202): the import's page shows the preview, with every problem."""
    if request.mimetype != XLSX:
        return problem(415, _("Send the workbook as the body with Content-Type: %(type)s.", type=XLSX))
    try:
        run = imports.receive(current_user, g.account, query.filename, request.get_data())
    except workbook.WorkbookRefused as refusal:
        db.session.rollback()
        return problem(422, str(refusal), errors={"body": str(refusal)})
    db.session.commit()
    return accepted(url_for("api.import_run", account_id=account_id, run_id=run.id, _external=True),
                    out.import_run(run))


@bp.get("/accounts/<int:account_id>/imports/<int:run_id>")
@endpoint(member("users.create"), responses={200: schemas.ImportOut, 404: None}, tags=("imports",))
def import_run(account_id, run_id):
    """The import: its preview (counts and every problem), then its progress and result."""
    run = _import(run_id)
    return json_response(out.import_run(run)) if run else problem(404, _("No such import in this account."))


@bp.post("/accounts/<int:account_id>/imports/<int:run_id>/confirm")
@endpoint(member("users.create"), responses={202: schemas.ImportOut, 404: None, 409: None}, tags=("imports",))
def import_confirm(account_id, run_id):
    """Carry out the plan the preview showed (in the background: poll the import)."""
    run = _import(run_id)
    if run is None:
        return problem(404, _("No such import in this account."))
    imports.confirm(current_user, run)
    db.session.commit()
    return accepted(url_for("api.import_run", account_id=account_id, run_id=run.id, _external=True),
                    out.import_run(run))


@bp.get("/accounts/<int:account_id>/imports/<int:run_id>/result.xlsx")
@endpoint(member("users.create"), responses={200: None, 404: None}, tags=("imports",))
def import_result(account_id, run_id):
    """The result workbook: each row of the Users sheet with what became of it."""
    run = _import(run_id)
    if run is None or run.result is None:
        return problem(404, _("No result for this import (yet)."))
    return send_file(io.BytesIO(run.result), mimetype=XLSX, as_attachment=True,
                     download_name=f"import-{run.id}-result.xlsx")


# -- users report -------------------------------------------------------------------------------

@bp.post("/accounts/<int:account_id>/reports")
@endpoint(member("users.report"), responses={202: schemas.ReportOut}, tags=("reports",), creates=True)
def report_request(account_id):
    """Generate the users report in the background (it is also e-mailed to the token's creator)."""
    report = reports.request_report(current_user, g.account)
    db.session.commit()
    return accepted(url_for("api.report", account_id=account_id, report_id=report.id, _external=True),
                    out.report(report))


@bp.get("/accounts/<int:account_id>/reports/<int:report_id>")
@endpoint(member("users.report"), responses={200: schemas.ReportOut, 404: None}, tags=("reports",))
def report(account_id, report_id):
    found = reports.report_in_account(g.account, report_id)
    return json_response(out.report(found)) if found else problem(404, _("No such report in this account."))


@bp.get("/accounts/<int:account_id>/reports/<int:report_id>/download")
@endpoint(member("users.report"), responses={200: None, 404: None}, tags=("reports",))
def report_download(account_id, report_id):
    found = reports.report_in_account(g.account, report_id)
    if found is None or found.content is None:
        return problem(404, _("No such finished report in this account."))
    return send_file(io.BytesIO(found.content), mimetype=XLSX, as_attachment=True,
                     download_name=f"users-report-{found.id}.xlsx")


# -- audit log ------------------------------------------------------------------------------------

def _date(text: str, field: str):
    from datetime import date

    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise ValueError(field) from None


@bp.get("/accounts/<int:account_id>/audit")
@endpoint(member("audit.view"), query=schemas.AuditQuery, responses={200: None, 422: None}, tags=("audit",))
def audit(account_id, query: schemas.AuditQuery):
    """Who did what, when and from where (web, api, worker), filtered like the Audit log page."""
    if query.family and query.family not in dict(FAMILIES):
        return problem(422, _("Unknown kind of action."),
                       errors={"query.family": _("one of %(families)s", families=", ".join(dict(FAMILIES)))})
    try:
        since, until = _date(query.since, "since"), _date(query.until, "until")
    except ValueError as wrong:
        return problem(422, _("Dates are written YYYY-MM-DD."), errors={f"query.{wrong}": _("not a date")})
    listing = lists.Listing(page=query.page, per_page=query.per_page)
    page = lists.fetch(query_events(account_id, family=query.family, actor=query.actor, target=query.q, since=since,
                                    until=until, oldest_first=query.dir == "asc"), listing)
    return listed(page, [out.audit_event(item).model_dump(mode="json") for item in page.items], "api.audit",
                  account_id=account_id)
