from datetime import date, timedelta

from flask import Blueprint, current_app, jsonify, redirect, request, session, url_for
from flask_login import current_user
from sqlalchemy import text

from portal.accounts.services import account_to_open, accounts_of
from portal.auth.services import any_user_exists
from portal.extensions import db
from portal.i18n import COOKIE, chosen
from portal.jobs.models import WorkerBeat
from portal.jobs.services import counts
from portal.timeutil import utcnow
from portal.web.access import PUBLIC, rule
from portal.web.render import render
from portal.web.urls import safe_next

bp = Blueprint("web", __name__)
# When the accessibility statement was last brought up to date.
STATEMENT_DATE = date(2026, 12, 4)


@bp.route("/")
@rule(PUBLIC)
def home():
    if not any_user_exists():
        return redirect(url_for("auth.setup"))
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    chosen = account_to_open(current_user, session.get("account_id"))
    if chosen is None:
        accounts = accounts_of(current_user, limit=2)
        chosen = accounts[0] if len(accounts) == 1 else None
    if chosen is not None:
        return redirect(url_for("accounts.overview", account_id=chosen.id))
    return redirect(url_for("accounts.index"))


@bp.route("/healthz")
@rule(PUBLIC)
def healthz():
    """Database reachability and worker liveness, for load balancers and monitoring."""
    report = {"database": "ok", "worker": "unknown", "jobs": {}}
    status = 200
    try:
        db.session.execute(text("SELECT 1"))
        report["jobs"] = counts()
        recent = db.session.execute(
            db.select(WorkerBeat).where(WorkerBeat.seen_at >= utcnow() - timedelta(minutes=2))
        ).scalars().all()
        report["worker"] = "ok" if recent else "no worker seen in the last 2 minutes"
        report["workers"] = len(recent)
    except Exception as error:  # the point of this page is to report, not to fail
        db.session.rollback()
        report["database"] = f"unavailable ({error.__class__.__name__})"
        status = 503
    report["status"] = "ok" if status == 200 and report["worker"] == "ok" else "degraded"
    return jsonify(report), status


@bp.route("/language", methods=["POST"])
@rule(PUBLIC)
def language():
    """The footer's language switch: saved in the profile of whoever is signed in, in a cookie
    for everyone (so it holds before sign-in), then back to the page it was used on."""
    code = chosen(request.form.get("language"))
    back = safe_next(request.form.get("next")) or url_for("web.home")
    response = redirect(back)
    if code is None:
        return response
    if current_user.is_authenticated:
        current_user.locale = code
        db.session.commit()
    response.set_cookie(COOKIE, code, max_age=365 * 24 * 3600, samesite="Lax", httponly=True,
                        secure=current_app.config.get("SESSION_COOKIE_SECURE", False))
    return response


@bp.route("/accessibility")
@rule(PUBLIC)
def accessibility():
    """The accessibility statement: the standard, what is tested, and how to report a problem."""
    return render("web/accessibility.html", drawn_up=STATEMENT_DATE)
