from datetime import timedelta

from flask import Blueprint, jsonify, redirect, session, url_for
from flask_login import current_user
from sqlalchemy import text

from portal.accounts.services import accounts_of
from portal.auth.services import any_user_exists
from portal.extensions import db
from portal.jobs.models import WorkerBeat
from portal.jobs.services import counts
from portal.timeutil import utcnow
from portal.web.access import PUBLIC, rule

bp = Blueprint("web", __name__)


@bp.route("/")
@rule(PUBLIC)
def home():
    if not any_user_exists():
        return redirect(url_for("auth.setup"))
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    accounts = accounts_of(current_user)
    chosen = next((a for a in accounts if a.id == session.get("account_id")), None)
    if chosen is None and len(accounts) == 1:
        chosen = accounts[0]
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
