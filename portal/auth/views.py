import hashlib
import hmac
import secrets

from flask import Blueprint, abort, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext as _, ngettext
from flask_login import current_user

from portal.auth import devices, forms, services, sessions, sso, tokens
from portal.auth.models import User
from portal.extensions import db
from portal.security import second_step
from portal.web.access import PUBLIC, SIGNED_IN, rule
from portal.web.render import render
from portal.web.urls import external_url, safe_next

bp = Blueprint("auth", __name__)
# Where a single sign-on started from a page (to confirm it is you, say) comes back to.
SSO_NEXT = "sso_next"
# The profile this browser registered: its confirmation link takes one click here.
REGISTERED = "registered"


def _fail(form, field, message):
    getattr(form, field).errors.append(message)


@bp.route("/setup", methods=["GET", "POST"])
@rule(PUBLIC)
def setup():
    if services.any_user_exists():
        abort(404)
    form = forms.SetupForm()
    if form.validate_on_submit():
        try:
            user = services.create_superadmin(form.email.data, form.name.data, form.password.data)
        except services.AuthError as error:
            _fail(form, error.field or "email", str(error))
        else:
            services.start_session(user)
            db.session.commit()
            flash(_("Welcome. You are the superadmin of this portal. Create your first account."), "success")
            return redirect(url_for("accounts.index"))
    return render("auth/setup.html", form=form, status=422 if form.errors else 200)


@bp.route("/register", methods=["GET", "POST"])
@rule(PUBLIC)
def register():
    if not current_app.config["PORTAL"]["PASSWORD_LOGIN"]:
        return redirect(url_for("auth.login"))
    if not current_app.config["PORTAL"]["OPEN_REGISTRATION"]:
        return render("auth/registration_closed.html", status=403)
    form = forms.RegisterForm()
    if form.validate_on_submit():
        try:
            user = services.register(form.email.data, form.name.data, form.password.data)
        except services.AuthError as error:
            _fail(form, error.field or "email", str(error))
        else:
            db.session.commit()
            # The confirmation link then takes one click in this browser (the password was just typed).
            # The cookie is signed, not hidden: it holds a value alike whether a profile was made.
            session[REGISTERED] = _registered_mark(user.id) if user is not None else secrets.token_hex(16)
            return render("auth/check_email.html", email=form.email.data.strip())
    return render("auth/register.html", form=form, status=422 if form.errors else 200)


def _registered_mark(user_id: int) -> str:
    key = current_app.secret_key
    key = key.encode() if isinstance(key, str) else key
    return hmac.new(key, f"registered:{user_id}".encode(), hashlib.sha256).hexdigest()[:32]


@bp.route("/verify/<token>", methods=["GET", "POST"])
@rule(PUBLIC)
def verify(token):
    pending = tokens.peek(token, tokens.VERIFY_EMAIL)
    person = db.session.get(User, pending.user_id) if pending is not None else None
    if person is None or not (person.is_verified or services.verifiable(person)):
        return render("auth/link_invalid.html", status=410, resend=True, form=forms.EmailOnlyForm())
    registered_here = hmac.compare_digest(str(session.get(REGISTERED, "")), _registered_mark(pending.user_id))
    form = forms.VerifyForm()
    new_form = forms.VerifyNewPasswordForm(prefix="new")
    if request.method == "GET":
        new_form.name.data = person.name
    choosing = request.method == "POST" and "new-password" in request.form
    if (new_form if choosing else form).validate_on_submit():
        try:
            user = services.verify_email(token, password=None if choosing else form.password.data,
                                         new_password=new_form.password.data if choosing else None,
                                         name=new_form.name.data if choosing else None,
                                         registered_here=registered_here)
        except services.AuthError as error:
            db.session.rollback()
            (new_form.password if choosing else form.password).errors.append(str(error))
        else:
            db.session.commit()
            if user is None:
                return render("auth/link_invalid.html", status=410, resend=True, form=forms.EmailOnlyForm())
            session.pop(REGISTERED, None)
            flash(_("Your address is confirmed. You can log in now."), "success")
            return redirect(url_for("auth.login", email=user.email))
    failed = bool(form.errors or new_form.errors)
    return render("auth/verify.html", form=form, new_form=new_form, registered_here=registered_here,
                  status=422 if failed else 200)


@bp.route("/verify", methods=["POST"])
@rule(PUBLIC)
def resend_verification():
    form = forms.EmailOnlyForm()
    if form.validate_on_submit():
        services.resend_verification(form.email.data)
        db.session.commit()
        return render("auth/check_email.html", email=form.email.data.strip())
    return render("auth/link_invalid.html", status=422, resend=True, form=form)


@bp.route("/login", methods=["GET", "POST"])
@rule(PUBLIC)
def login():
    if not services.any_user_exists():
        return redirect(url_for("auth.setup"))
    form = forms.LoginForm(email=request.args.get("email", ""))
    if request.method == "POST" and not current_app.config["PORTAL"]["PASSWORD_LOGIN"]:
        abort(404)
    if form.validate_on_submit():
        try:
            user = services.authenticate(form.email.data, form.password.data, request.remote_addr or "",
                                         request.cookies.get(devices.COOKIE))
        except services.AuthError as error:
            db.session.rollback()
            status = 429 if error.code == "rate_limited" else 422
            return render("auth/login.html", form=form, error=str(error), status=status,
                          unverified=error.code == "invalid", resend_form=forms.EmailOnlyForm(
                              email=form.email.data, formdata=None))
        if second_step.needed_for(user):
            db.session.commit()
            return second_step.begin(user, safe_next(request.args.get("next")))
        services.start_session(user)
        db.session.commit()
        response = redirect(safe_next(request.args.get("next")) or url_for("web.home"))
        devices.remember(response, user, request.cookies.get(devices.COOKIE))
        return response
    return render("auth/login.html", form=form, status=422 if form.errors else 200)


@bp.route("/logout", methods=["POST"])
@rule(SIGNED_IN)
def logout():
    services.end_session()
    db.session.commit()
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/password/forgot", methods=["GET", "POST"])
@rule(PUBLIC)
def forgot_password():
    if not current_app.config["PORTAL"]["PASSWORD_LOGIN"]:
        abort(404)
    form = forms.EmailOnlyForm()
    if form.validate_on_submit():
        services.request_password_reset(form.email.data)
        db.session.commit()
        return render("auth/check_email.html", email=form.email.data.strip(), reset=True)
    return render("auth/forgot.html", form=form, status=422 if form.errors else 200)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@rule(PUBLIC)
def reset_password(token):
    link = tokens.peek(token, tokens.RESET_PASSWORD)
    if link is None:
        return render("auth/link_invalid.html", status=410, reset=True)
    refused = services.reset_link_problem(db.session.get(User, link.user_id))
    if refused:
        return render("auth/link_invalid.html", status=410, reset=True, reason=refused)
    form = forms.ResetPasswordForm()
    if form.validate_on_submit():
        try:
            services.reset_password(token, form.password.data)
        except services.AuthError as error:
            _fail(form, error.field or "password", str(error))
        else:
            db.session.commit()
            flash(_("Your password is changed. Log in with it now."), "success")
            return redirect(url_for("auth.login"))
    return render("auth/reset.html", form=form, status=422 if form.errors else 200)


@bp.route("/profile", methods=["GET", "POST"])
@rule(SIGNED_IN)
def profile():
    user = current_user._get_current_object()
    form = forms.ProfileForm(obj=user)
    password_form = forms.ChangePasswordForm(prefix="pw")
    if form.validate_on_submit():
        services.update_profile(user, form.name.data or "", form.timezone.data, form.locale.data or None)
        db.session.commit()
        flash(_("Your profile is saved."), "success")
        return redirect(url_for("auth.profile"))
    return _profile(form, password_form, 422 if form.errors else 200)


def _profile(form, password_form, status=200):
    return render("auth/profile.html", form=form, password_form=password_form, status=status,
                  sessions=sessions.live_sessions(current_user), this_session=sessions.current(),
                  browser=sessions.browser_label, end_form=forms.ConfirmForm())


@bp.route("/profile/password", methods=["POST"])
@rule(SIGNED_IN)
def change_password():
    user = current_user._get_current_object()
    form = forms.ProfileForm(obj=user, formdata=None)
    password_form = forms.ChangePasswordForm(prefix="pw")
    if password_form.validate_on_submit():
        try:
            services.change_password(user, password_form.current.data, password_form.password.data)
        except services.AuthError as error:
            db.session.commit()  # a wrong current password is counted
            _fail(password_form, error.field or "password", str(error))
        else:
            services.start_session(user)  # every session ended with the change; this browser gets a new one
            db.session.commit()
            flash(_("Your password is changed. Your other sessions have ended."), "success")
            return redirect(url_for("auth.profile"))
    return _profile(form, password_form, 422)


@bp.route("/profile/sessions/<int:session_id>/end", methods=["POST"])
@rule(SIGNED_IN)
def end_session(session_id):
    if forms.ConfirmForm().validate_on_submit():
        if sessions.end_one(current_user, session_id):
            services.record_session_end(current_user, "one")
            flash(_("That session is signed out."), "success")
        else:
            flash(_("That session had already ended."), "info")
        db.session.commit()
    return redirect(url_for("auth.profile") + "#sessions")


@bp.route("/profile/sessions/end-others", methods=["POST"])
@rule(SIGNED_IN)
def end_other_sessions():
    if forms.ConfirmForm().validate_on_submit():
        count = sessions.end_all(current_user, sessions.SIGNED_OUT_ELSEWHERE, keep=sessions.current())
        services.record_session_end(current_user, "others", count=count)
        db.session.commit()
        flash(ngettext("Signed out everywhere else (%(num)d session).",
                       "Signed out everywhere else (%(num)d sessions).", count), "success")
    return redirect(url_for("auth.profile") + "#sessions")


@bp.route("/login/sso")
@rule(PUBLIC)
def sso_start():
    if not sso.enabled():
        abort(404)
    session[SSO_NEXT] = safe_next(request.args.get("next"))
    try:
        return sso.start(external_url("auth.sso_callback"))
    except sso.SsoError as error:
        return render("auth/login.html", form=forms.LoginForm(), error=str(error), status=503)


@bp.route("/login/sso/callback")
@rule(PUBLIC)
def sso_callback():
    if not sso.enabled():
        abort(404)
    try:
        user, link = sso.finish()
    except sso.SsoError as error:
        db.session.rollback()
        return render("auth/login.html", form=forms.LoginForm(), error=str(error), status=403)
    next_path = session.pop(SSO_NEXT, None)
    if second_step.needed_for(user):
        db.session.commit()
        return second_step.begin(user, next_path, single_sign_on=True, link=link)
    services.start_session(user, services.WITH_SINGLE_SIGN_ON)
    db.session.commit()
    return redirect(next_path or url_for("web.home"))
