import io

from flask import Blueprint, abort, current_app, flash, g, redirect, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.accounts.services import member_in_account
from portal.auth import tokens
from portal.auth.forms import ConfirmForm
from portal.auth.models import User
from portal.auth.services import AuthError, start_session
from portal.extensions import db
from portal.mailboxes.services import MailboxError
from portal.roles.services import AccessError, membership_of, owner_memberships
from portal.security.confirmation import require_fresh
from portal.users import forms, imports, reports, services, workbook
from portal.users.models import CHECKING, QUEUED, RUNNING
from portal.web.access import PUBLIC, member, rule
from portal.web.loaders import load_or_404
from portal.web.render import render

bp = Blueprint("users", __name__)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# -- one corporate user --------------------------------------------------------------

@bp.route("/accounts/<int:account_id>/users/new", methods=["GET", "POST"])
@rule(member("users.create"))
def create(account_id):
    # The box starts as the account's setting for new corporate users has it (a walkthrough: ticked
    # here while the invitation page said the account gives new corporate users no mailbox).
    form = forms.CreateUserForm(personal_mailbox=g.account.personal_mailboxes)
    if form.validate_on_submit():
        try:
            user, link = services.create_corporate_user(
                current_user, g.account, first_name=form.first_name.data, last_name=form.last_name.data,
                email=form.email.data, personal_mailbox=form.personal_mailbox.data,
                recovery_email=form.recovery_email.data or "")
        except services.UserError as error:
            db.session.rollback()
            getattr(form, error.field or "email").errors.append(str(error))
        except AccessError as error:
            db.session.rollback()
            form.email.errors.append(str(error))
        else:
            db.session.commit()
            membership = membership_of(user, g.account)
            return render("users/created.html", account=g.account, user=user, link=link, membership=membership)
    return render("users/new.html", status=422 if form.errors else 200, account=g.account, form=form,
                  active_domains=_active_domain_names())


def _active_domain_names() -> list[str]:
    """The account's enabled domains, as the form names them (an address elsewhere is refused)."""
    from portal.domains.models import ENABLED, Domain

    return list(db.session.execute(db.select(Domain.name).where(
        Domain.account_id == g.account.id, Domain.status == ENABLED).order_by(Domain.name).limit(20)).scalars())


def _corporate_member(membership_id):
    membership = load_or_404(member_in_account, membership_id)
    if not services.is_corporate_of(membership.user, g.account):
        abort(404)
    return membership


@bp.route("/accounts/<int:account_id>/members/<int:membership_id>/settings", methods=["GET", "POST"])
@rule(member("users.manage"))
def settings(account_id, membership_id):
    membership = _corporate_member(membership_id)
    user = membership.user
    first, _space, last = user.name.partition(" ")
    form = forms.SettingsForm(data={"first_name": first, "last_name": last, "timezone": user.timezone,
                                    "phone": user.phone, "default_mailbox_id": user.default_mailbox_id or 0,
                                    "recovery_email": user.recovery_email or ""})
    mailboxes = services.own_mailboxes(user, g.account)
    form.default_mailbox_id.choices = [(0, "—")] + [(m.id, m.address) for m in mailboxes]
    if form.validate_on_submit():
        try:
            services.update_settings(current_user, g.account, user, first_name=form.first_name.data,
                                     last_name=form.last_name.data, timezone=form.timezone.data,
                                     phone=form.phone.data or "", default_mailbox_id=form.default_mailbox_id.data,
                                     recovery_email=form.recovery_email.data or "")
        except services.UserError as error:
            db.session.rollback()
            getattr(form, error.field or "first_name").errors.append(str(error))
        except AccessError as error:
            db.session.rollback()
            recovery_changed = (form.recovery_email.data or "").strip().lower() != (user.recovery_email or "")
            (form.recovery_email if recovery_changed else form.first_name).errors.append(str(error))
        else:
            db.session.commit()
            flash(_("Settings saved."), "success")
            return redirect(url_for("users.settings", account_id=account_id, membership_id=membership_id))
    return render("users/settings.html", status=422 if form.errors else 200, account=g.account,
                  membership=membership, form=form, phones=current_app.config["PORTAL"]["USER_PHONES"],
                  has_mailbox=services.onboarding_mailbox(user) is not None, confirm=ConfirmForm())


@bp.route("/accounts/<int:account_id>/members/<int:membership_id>/onboarding", methods=["POST"])
@rule(member("users.manage"))
def resend_onboarding(account_id, membership_id):
    membership = _corporate_member(membership_id)
    try:
        link = services.send_onboarding(current_user, g.account, membership.user)
    except (services.UserError, AccessError) as refusal:
        db.session.rollback()
        flash(str(refusal), "error")
        return redirect(url_for("users.settings", account_id=account_id, membership_id=membership_id))
    db.session.commit()
    if link is None:
        flash(_("A new link is being sent to %(email)s.",
                email=membership.user.recovery_email or membership.user.email), "success")
        return redirect(url_for("users.settings", account_id=account_id, membership_id=membership_id))
    return render("users/created.html", account=g.account, user=membership.user, link=link, membership=membership)


@bp.route("/accounts/<int:account_id>/members/<int:membership_id>/remove-user", methods=["GET", "POST"])
@rule(member("users.manage"))
def remove(account_id, membership_id):
    membership = _corporate_member(membership_id)
    if membership.id in owner_memberships(g.account):
        require_fresh()
    form = forms.RemoveForm()
    may_delete = services.may_delete_mailboxes(current_user, g.account)
    if not may_delete:  # offered to whoever may delete mailboxes by hand
        form.mailboxes.choices = [choice for choice in form.mailboxes.choices if choice[0] != "delete"]
    error = None
    if form.validate_on_submit():
        try:
            outcome = services.remove_corporate_user(current_user, g.account, membership, form.mailboxes.data)
        except (services.UserError, AccessError, MailboxError) as refusal:
            db.session.rollback()
            error = str(refusal)
        else:
            db.session.commit()
            flash(_("%(email)s was removed. %(mailboxes)s", email=membership.user.email, mailboxes="; ".join(outcome))
                  if outcome else _("%(email)s was removed.", email=membership.user.email), "success")
            return redirect(url_for("accounts.members", account_id=account_id))
    return render("users/remove.html", status=403 if error else 200, account=g.account, membership=membership,
                  form=form, error=error, mailboxes=services.own_mailboxes(membership.user, g.account),
                  may_delete=may_delete)


@bp.route("/welcome/<token>", methods=["GET", "POST"])
@rule(PUBLIC)
def welcome(token):
    link = tokens.peek(token, services.ONBOARDING)
    if link is None:
        return render("auth/link_invalid.html", status=410, onboarding=True)
    person = db.session.get(User, link.user_id)
    email = person.email
    refused = services.onboarding_link_problem(link, person)
    if refused:
        return render("auth/link_invalid.html", status=410, onboarding=True, reason=refused)
    if not current_app.config["PORTAL"]["PASSWORD_LOGIN"]:
        flash(_("This portal signs in through single sign-on: use it with your address."), "info")
        return redirect(url_for("auth.login"))
    form = forms.WelcomeForm()
    if form.validate_on_submit():
        try:
            user = services.complete_onboarding(token, form.password.data)
        except AuthError as error:
            db.session.rollback()
            form.password.errors.append(str(error))
        else:
            start_session(user)
            db.session.commit()
            flash(_("Your password is set. Welcome."), "success")
            return redirect(url_for("web.home"))
    return render("users/welcome.html", status=422 if form.errors else 200, form=form, email=email)


# -- mass creation --------------------------------------------------------------------

@bp.route("/accounts/<int:account_id>/users/import", methods=["GET", "POST"])
@rule(member("users.create"))
def import_upload(account_id):
    form = forms.UploadForm()
    error = None
    if form.validate_on_submit():
        upload = request.files.get("workbook")
        if upload is None or not upload.filename:
            error = _("Choose the .xlsx workbook to upload.")
        else:
            try:
                run = imports.receive(current_user, g.account, upload.filename, upload.read())
            except workbook.WorkbookRefused as refusal:
                db.session.rollback()
                error = str(refusal)
            else:
                db.session.commit()
                return redirect(url_for("users.import_run", account_id=account_id, run_id=run.id))
    return render("users/import.html", status=422 if error else 200, account=g.account, form=form, error=error,
                  runs=imports.runs_of(g.account))


@bp.route("/accounts/<int:account_id>/users/import/template")
@rule(member("users.create"))
def import_template(account_id):
    return send_file(io.BytesIO(workbook.template(g.account, current_user)), mimetype=XLSX, as_attachment=True,
                     download_name="users-template.xlsx")


def _run_page(run, status=200, error=None):
    busy = run.status in (CHECKING, QUEUED, RUNNING)
    return render("users/import_run.html", block="progress", status=status, account=g.account, run=run, busy=busy,
                  error=error, form=ConfirmForm(), problem_message=workbook.problem_message)


@bp.route("/accounts/<int:account_id>/users/import/<int:run_id>")
@rule(member("users.create"))
def import_run(account_id, run_id):
    return _run_page(load_or_404(imports.run_in_account, run_id))


@bp.route("/accounts/<int:account_id>/users/import/<int:run_id>/confirm", methods=["POST"])
@rule(member("users.create"))
def import_confirm(account_id, run_id):
    run = load_or_404(imports.run_in_account, run_id)
    try:
        imports.confirm(current_user, run)
    except imports.ImportError_ as error:
        db.session.rollback()
        return _run_page(run, 409, str(error))
    db.session.commit()
    return redirect(url_for("users.import_run", account_id=account_id, run_id=run_id))


@bp.route("/accounts/<int:account_id>/users/import/<int:run_id>/result.xlsx")
@rule(member("users.create"))
def import_result(account_id, run_id):
    run = load_or_404(imports.run_in_account, run_id)
    if run.result is None:
        abort(404)
    return send_file(io.BytesIO(run.result), mimetype=XLSX, as_attachment=True,
                     download_name=f"import-{run.id}-result.xlsx")


# -- report ------------------------------------------------------------------------------

@bp.route("/accounts/<int:account_id>/users/reports", methods=["GET", "POST"])
@rule(member("users.report"))
def report(account_id):
    if request.method == "POST" and ConfirmForm().validate_on_submit():
        reports.request_report(current_user, g.account)
        db.session.commit()
        flash(_("The report is being generated; it will be e-mailed to you and listed here."), "success")
        return redirect(url_for("users.report", account_id=account_id))
    listed = reports.reports_of(g.account)
    return render("users/reports.html", block="list", account=g.account, reports=listed, form=ConfirmForm(),
                  links={r.id: reports.signed_link(r) for r in listed if r.status == "done"},
                  busy=any(r.status in (QUEUED, RUNNING) for r in listed))


@bp.route("/accounts/<int:account_id>/users/reports/<int:report_id>/download")
@rule(member("users.report"))
def download_report(account_id, report_id):
    found = load_or_404(reports.report_in_account, report_id)
    if found.content is None:
        abort(404)
    if not reports.signature_valid(found, request.args.get("signature", "")):
        return render("users/report_link_expired.html", status=410, account=g.account)
    return send_file(io.BytesIO(found.content), mimetype=XLSX, as_attachment=True,
                     download_name=f"users-report-{found.created_at:%Y%m%d-%H%M}.xlsx")
