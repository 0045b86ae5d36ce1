"""Fresh confirmation before the most dangerous actions: the person proved who they are (with
their password, a second factor, or by logging in) less than ten minutes ago.

Views call ``require_fresh()`` first; when the proof is older, the browser goes to the
confirmation page and comes back afterwards::

    from portal.security.confirmation import require_fresh

    @bp.route("/accounts/<int:account_id>/tokens/new", methods=["GET", "POST"])
    @rule(member("api_tokens.manage"))
    def create_token(account_id):
        require_fresh()
        ...
"""

from __future__ import annotations

from datetime import timedelta

from flask import abort, request, url_for
from flask_babel import gettext as _

from portal.auth import sessions
from portal.auth.models import User
from portal.auth.passwords import verify_password
from portal.security import services
from portal.security.navigation import go_to
from portal.timeutil import utcnow
from portal.web.urls import safe_next

FRESH_FOR = timedelta(minutes=10)


def is_fresh() -> bool:
    row = sessions.current()
    return row is not None and row.confirmed_at is not None and utcnow() - row.confirmed_at < FRESH_FOR


def require_fresh(return_to: str | None = None) -> None:
    """Go on when the current session was confirmed less than ten minutes ago; otherwise answer
    with the confirmation page, which comes back to ``return_to`` (default: this page, or for a
    form posted to a URL that has no page, the page the form was on)."""
    if is_fresh():
        return
    abort(go_to(url_for("security.confirm", next=return_to or _this_page())))


def _this_page() -> str:
    if request.method == "GET":
        return request.full_path.rstrip("?")
    if request.url_rule is not None and "GET" in request.url_rule.methods:
        return request.path
    referrer = request.referrer or ""
    origin = request.host_url
    if referrer.startswith(origin):
        return safe_next("/" + referrer[len(origin):]) or url_for("web.home")
    return url_for("web.home")


def mark_confirmed() -> None:
    sessions.current().confirmed_at = utcnow()


def confirm_with_password(user: User, password: str) -> None:
    services.refuse_if_rate_limited(user)
    if not user.password_hash or not verify_password(user.password_hash, password):
        services.record_failure(user, "password", "confirmation")
        raise services.SecurityError(_("That password is not right."))
    mark_confirmed()
