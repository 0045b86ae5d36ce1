from flask import Blueprint, Response, abort, flash, g, jsonify, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.accounts.services import member_in_account
from portal.auth import sso
from portal.auth.forms import ConfirmForm
from portal.auth.models import User
from portal.extensions import db
from portal.roles.services import AccessError
from portal.security import forms, passkeys, policy, services
from portal.security import second_step as step
from portal.security.confirmation import confirm_with_password, is_fresh, mark_confirmed, require_fresh
from portal.security.navigation import whole_page
from portal.users.services import is_corporate_of
from portal.web.access import PUBLIC, SIGNED_IN, member, rule
from portal.web.inputs import arg_id
from portal.web.loaders import load_or_404
from portal.web.render import render
from portal.web.urls import safe_next

bp = Blueprint("security", __name__)


def _next() -> str | None:
    return safe_next(request.args.get("next"))


def _status(error: services.SecurityError) -> int:
    return 429 if error.code == "rate_limited" else 422


def _options(options_json: str):
    return Response('{"publicKey": ' + options_json + "}", mimetype="application/json")


def _user() -> User:
    return current_user._get_current_object()


# -- the second step of a password log-in (no session yet) --------------------------------------

def _second_step_page(user: User, status: int = 200, error: str | None = None, **forms_given):
    return render("security/second_step.html", status=status, user=user, error=error,
                  app_form=forms_given.get("app_form") or forms.AppCodeForm(formdata=None),
                  recovery_form=forms_given.get("recovery_form") or forms.RecoveryCodeForm(formdata=None),
                  passkey_form=forms.PasskeyForm(formdata=None),
                  has_app=services.confirmed_app(user) is not None, passkeys=passkeys.usable_passkeys(user),
                  passkeys_elsewhere=passkeys.hosts_elsewhere(user), passkey_problem=passkeys.unavailable_reason(),
                  show_recovery="recovery_form" in forms_given, single_sign_on=step.after_single_sign_on())


def _pending_user_or_login() -> User:
    user = step.pending_user()
    if user is None:
        step.abandon()
        flash(_("Log in again: the second step of a log-in waits ten minutes at most."), "info")
        abort(redirect(url_for("auth.login")))
    return user


@bp.route("/login/two-factor", methods=["GET", "POST"])
@rule(PUBLIC)
@whole_page
def second_step():
    user = _pending_user_or_login()
    form = forms.AppCodeForm()
    if form.validate_on_submit():
        try:
            services.check_app_code(user, form.code.data, "log-in")
        except services.SecurityError as error:
            db.session.commit()  # the failure counts
            form.code.errors.append(str(error))
            return _second_step_page(user, _status(error), app_form=form)
        return step.finish(user)
    return _second_step_page(user, 422 if form.errors else 200, app_form=form)


@bp.route("/login/two-factor/recovery-code", methods=["POST"])
@rule(PUBLIC)
def second_step_recovery():
    user = _pending_user_or_login()
    form = forms.RecoveryCodeForm()
    if form.validate_on_submit():
        try:
            left = services.use_recovery_code(user, form.recovery_code.data, "log-in")
        except services.SecurityError as error:
            db.session.commit()
            form.recovery_code.errors.append(str(error))
            return _second_step_page(user, _status(error), recovery_form=form)
        response = step.finish(user)
        flash(_("You used a recovery code: %(left)s left. Make new ones on your Security page if you are running out.",
                left=left), "info")
        return response
    return _second_step_page(user, 422, recovery_form=form)


@bp.route("/login/two-factor/passkey/options", methods=["POST"])
@rule(PUBLIC)
def second_step_passkey_options():
    user = step.pending_user()
    if user is None:
        return jsonify(redirect=url_for("auth.login")), 401
    try:
        return _options(passkeys.authentication_options(user))
    except passkeys.PasskeyError as error:
        return jsonify(error=str(error)), 422


@bp.route("/login/two-factor/passkey", methods=["POST"])
@rule(PUBLIC)
def second_step_passkey():
    user = _pending_user_or_login()
    form = forms.PasskeyForm()
    if form.validate_on_submit():
        try:
            passkeys.authenticate(user, form.credential.data or "", "log-in")
        except passkeys.PasskeyError as error:
            db.session.commit()
            return _second_step_page(user, 422, str(error))
        return step.finish(user)
    return _second_step_page(user, 422, _("The passkey form had expired. Try again."))


# -- the Security tab of the profile ------------------------------------------------------------

@bp.route("/profile/security")
@rule(SIGNED_IN)
@whole_page
def index():
    user = _user()
    return render("security/index.html", factors=services.factors_of(user),
                  setting_up=services.pending_app(user) is not None,
                  reasons=policy.reasons_to_enrol(user, arg_id("required_by")), next=_next(),
                  passkey_form=forms.NewPasskeyForm(formdata=None), passkey_problem=passkeys.unavailable_reason(),
                  host=passkeys.relying_party().id, events=services.recent_events(user),
                  fresh=is_fresh())


def _to_security_page(message: str, category: str = "success"):
    flash(message, category)
    return redirect(url_for("security.index", next=_next()))


def _recovery_codes_page(codes: list[str], first: bool):
    return render("security/recovery_codes.html", codes=codes, first=first, next=_next())


@bp.route("/profile/security/app", methods=["GET", "POST"])
@rule(SIGNED_IN)
def app_setup():
    require_fresh(url_for("security.index", next=_next()))
    user = _user()
    if request.method == "POST":
        if ConfirmForm().validate_on_submit():
            try:
                services.start_app(user)
            except services.SecurityError as error:
                db.session.rollback()
                return _to_security_page(str(error), "error")
            db.session.commit()
        return redirect(url_for("security.app_setup", next=_next()))
    return _app_setup_page(user, forms.AppCodeForm(formdata=None))


def _app_setup_page(user: User, form, status: int = 200):
    app = services.pending_app(user)
    if app is None:
        return _to_security_page(_("Start setting up an authenticator app here."), "info")
    secret = services.app_secret(app)
    if secret is None:
        return _to_security_page(
            _("That set-up can no longer be read (the portal's secret key changed): start again."), "error")
    uri = services.provisioning_uri(user, secret, passkeys.relying_party().id)
    return render("security/app_setup.html", status=status, form=form, qr_code=services.qr_code_svg(uri), uri=uri,
                  secret=" ".join(secret[index:index + 4] for index in range(0, len(secret), 4)), next=_next())


@bp.route("/profile/security/app/confirm", methods=["POST"])
@rule(SIGNED_IN)
def confirm_app():
    require_fresh(url_for("security.app_setup", next=_next()))
    user = _user()
    form = forms.AppCodeForm()
    if not form.validate_on_submit():
        return _app_setup_page(user, form, 422)
    try:
        codes = services.confirm_app(user, form.code.data)
    except services.SecurityError as error:
        db.session.rollback()
        form.code.errors.append(str(error))
        return _app_setup_page(user, form, 422)
    db.session.commit()
    if codes is not None:
        return _recovery_codes_page(codes, first=True)
    return _to_security_page(_("Your authenticator app is set up."))


@bp.route("/profile/security/app/remove", methods=["POST"])
@rule(SIGNED_IN)
def remove_app():
    require_fresh(url_for("security.index"))
    if not ConfirmForm().validate_on_submit():
        return _to_security_page(_("The form had expired. Try again."), "error")
    try:
        services.remove_app(_user())
    except services.SecurityError as error:
        db.session.rollback()
        return _to_security_page(str(error), "info")
    db.session.commit()
    return _to_security_page(_removed_message(_("Your authenticator app is removed.")))


def _removed_message(done: str) -> str:
    if services.uses_two_factor(_user()):
        return done
    return _("%(done)s Two-factor sign-in is now off: your password alone signs you in.", done=done)


@bp.route("/profile/security/passkeys/options", methods=["POST"])
@rule(SIGNED_IN)
def passkey_options():
    if not is_fresh():
        return jsonify(redirect=url_for("security.confirm", next=url_for("security.index", next=_next()))), 401
    return _options(passkeys.registration_options(_user()))


@bp.route("/profile/security/passkeys", methods=["POST"])
@rule(SIGNED_IN)
def add_passkey():
    require_fresh(url_for("security.index", next=_next()))
    user = _user()
    form = forms.NewPasskeyForm()
    if not form.validate_on_submit():
        return _to_security_page(" ".join(form.name.errors) or _("The form had expired. Try again."), "error")
    try:
        passkey, codes = passkeys.register(user, form.name.data or "", form.credential.data or "")
    except passkeys.PasskeyError as error:
        db.session.rollback()
        return _to_security_page(str(error), "error")
    db.session.commit()
    if codes is not None:
        return _recovery_codes_page(codes, first=True)
    return _to_security_page(_("The passkey “%(name)s” is added.", name=passkey.name))


@bp.route("/profile/security/passkeys/<int:passkey_id>/remove", methods=["POST"])
@rule(SIGNED_IN)
def remove_passkey(passkey_id):
    require_fresh(url_for("security.index"))
    if not ConfirmForm().validate_on_submit():
        return _to_security_page(_("The form had expired. Try again."), "error")
    try:
        name = services.remove_passkey(_user(), passkey_id)
    except services.SecurityError as error:
        db.session.rollback()
        return _to_security_page(str(error), "info")
    db.session.commit()
    return _to_security_page(_removed_message(_("The passkey “%(name)s” is removed.", name=name)))


@bp.route("/profile/security/recovery-codes", methods=["POST"])
@rule(SIGNED_IN)
def new_recovery_codes():
    require_fresh(url_for("security.index"))
    if not ConfirmForm().validate_on_submit():
        return _to_security_page(_("The form had expired. Try again."), "error")
    try:
        codes = services.issue_recovery_codes(_user())
    except services.SecurityError as error:
        db.session.rollback()
        return _to_security_page(str(error), "error")
    db.session.commit()
    return _recovery_codes_page(codes, first=False)


# -- fresh confirmation -----------------------------------------------------------------------

def _confirm_page(status: int = 200, error: str | None = None, **forms_given):
    user = _user()
    return render("security/confirm.html", status=status, error=error, next=_next(),
                  password_form=forms_given.get("password_form") or forms.PasswordConfirmForm(formdata=None),
                  app_form=forms_given.get("app_form") or forms.AppCodeForm(formdata=None),
                  passkey_form=forms.PasskeyForm(formdata=None), has_password=bool(user.password_hash),
                  has_app=services.confirmed_app(user) is not None, passkeys=passkeys.usable_passkeys(user),
                  passkeys_elsewhere=passkeys.hosts_elsewhere(user), passkey_problem=passkeys.unavailable_reason(),
                  single_sign_on=sso.enabled() and user.oidc_subject is not None)


def _confirmed():
    db.session.commit()
    return redirect(_next() or url_for("security.index"))


@bp.route("/profile/confirm", methods=["GET", "POST"])
@rule(SIGNED_IN)
@whole_page
def confirm():
    form = forms.PasswordConfirmForm()
    if form.validate_on_submit():
        try:
            confirm_with_password(_user(), form.password.data)
        except services.SecurityError as error:
            db.session.commit()
            form.password.errors.append(str(error))
            return _confirm_page(_status(error), password_form=form)
        return _confirmed()
    return _confirm_page(422 if form.errors else 200, password_form=form)


@bp.route("/profile/confirm/code", methods=["POST"])
@rule(SIGNED_IN)
def confirm_code():
    form = forms.AppCodeForm()
    if form.validate_on_submit():
        try:
            services.check_app_code(_user(), form.code.data, "confirmation")
        except services.SecurityError as error:
            db.session.commit()
            form.code.errors.append(str(error))
            return _confirm_page(_status(error), app_form=form)
        mark_confirmed()
        return _confirmed()
    return _confirm_page(422, app_form=form)


@bp.route("/profile/confirm/passkey/options", methods=["POST"])
@rule(SIGNED_IN)
def confirm_passkey_options():
    try:
        return _options(passkeys.authentication_options(_user()))
    except passkeys.PasskeyError as error:
        return jsonify(error=str(error)), 422


@bp.route("/profile/confirm/passkey", methods=["POST"])
@rule(SIGNED_IN)
def confirm_passkey():
    form = forms.PasskeyForm()
    if not form.validate_on_submit():
        return _confirm_page(422, _("The passkey form had expired. Try again."))
    try:
        passkeys.authenticate(_user(), form.credential.data or "", "confirmation")
    except passkeys.PasskeyError as error:
        db.session.commit()
        return _confirm_page(422, str(error))
    mark_confirmed()
    return _confirmed()


# -- recovery by an admin of the person's account -----------------------------------------------

@bp.route("/accounts/<int:account_id>/members/<int:membership_id>/two-factor", methods=["GET", "POST"])
@rule(member("users.manage"))
def admin_reset(account_id, membership_id):
    membership = load_or_404(member_in_account, membership_id)
    person = membership.user
    if not is_corporate_of(person, g.account):
        abort(404)
    require_fresh()
    form = ConfirmForm()
    error = None
    if form.validate_on_submit():
        try:
            services.reset_by_admin(_user(), g.account, person)
        except AccessError as refusal:
            db.session.rollback()
            error = str(refusal)
        else:
            db.session.commit()
            flash(_("The second factors of %(email)s are reset; they were told by e-mail. They sign in with their "
                    "password and set up two-factor sign-in again.", email=person.email), "success")
            return redirect(url_for("users.settings", account_id=account_id, membership_id=membership_id))
    return render("security/admin_reset.html", status=403 if error else 200, account=g.account,
                  membership=membership, factors=services.factors_of(person), form=form, error=error)
