from datetime import datetime, time

from flask import Blueprint, flash, g, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.auth.forms import ConfirmForm
from portal.extensions import db
from portal.security.confirmation import is_fresh, require_fresh
from portal.tokens import services
from portal.web import lists
from portal.web.access import member, rule
from portal.web.loaders import load_or_404
from portal.web.render import render

bp = Blueprint("tokens", __name__)


def _page(status=200, problems=None, values=None, shown=None):
    listing = lists.read({}, ("made",), "made", descending=True)  # the newest first
    page = lists.fetch(services.token_query(g.account, listing.q), listing)
    tokens = page.items
    ended = services.ended(tokens)
    revocable = services.revocable(current_user, g.account, tokens)
    usable = services.usable_scopes(current_user, g.account)
    return render("tokens/index.html", block="list", status=status, account=g.account, tokens=tokens, ended=ended,
                  page=page, listing=listing,
                  ended_why=services.ENDED_WHY, areas=services.AREAS, scopes=services.SCOPES,
                  problems=problems or {}, values=values or {}, shown=shown, revocable=revocable, usable=usable,
                  status_of=lambda token: "ended" if token.id in ended else services.status(token),
                  scope_label=services.scope_label, form=ConfirmForm(), fresh=is_fresh())


@bp.route("/accounts/<int:account_id>/settings/tokens")
@rule(member("api_tokens.manage"))
def index(account_id):
    return _page()


def _expiry(text: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.combine(datetime.fromisoformat(text).date(), time(23, 59, 59))
    except ValueError:
        raise services.TokenError(_("Write the expiry as a date (YYYY-MM-DD)."), "expires") from None


@bp.route("/accounts/<int:account_id>/settings/tokens", methods=["POST"])
@rule(member("api_tokens.manage"))
def create(account_id):
    """The token is shown this once, on the answer to this request, and never again. Making one
    needs a recent proof of who the person is, as the other dangerous actions do."""
    require_fresh(url_for("tokens.index", account_id=account_id))
    form = ConfirmForm()
    values = {"name": request.form.get("name", "")[:200], "scopes": request.form.getlist("scope"),
              "expires": request.form.get("expires", "")[:20], "networks": request.form.get("networks", "")[:2000]}
    if not form.validate_on_submit():
        return _page(400, {"name": _("The form had expired; try again.")}, values)
    try:
        token, raw = services.create(current_user, g.account, name=values["name"], scopes=set(values["scopes"]),
                                     expires_at=_expiry(values["expires"]), networks=values["networks"])
    except services.TokenError as refusal:
        db.session.rollback()
        return _page(422, {refusal.field or "name": str(refusal)}, values)
    db.session.commit()
    return _page(201, shown={"token": token, "secret": raw})


@bp.route("/accounts/<int:account_id>/settings/tokens/<int:token_id>/revoke", methods=["GET", "POST"])
@rule(member("api_tokens.manage"))
def revoke(account_id, token_id):
    token = load_or_404(services.token_in_account, token_id)
    form = ConfirmForm()
    try:
        if form.validate_on_submit():
            services.revoke(current_user, g.account, token)
            db.session.commit()
            flash(_("The token “%(name)s” is revoked: it no longer works.", name=token.name), "success")
            return redirect(url_for("tokens.index", account_id=account_id))
        services.require_revocable(current_user, g.account, token)  # the page says so before the click
    except services.TokenError as refusal:
        db.session.rollback()
        return render("tokens/revoke.html", account=g.account, token=token, form=form, refused=str(refusal),
                      status=403 if request.method == "POST" else 200)
    return render("tokens/revoke.html", account=g.account, token=token, form=form, refused=None)
