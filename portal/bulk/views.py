import re
import secrets

from flask import Blueprint, Response, abort, g, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from portal.auth.forms import ConfirmForm
from portal.bulk import exports, services
from portal.bulk.models import MAILBOXES, MEMBERS, QUEUED, RUNNING
from portal.extensions import db
from portal.roles.services import AccessError
from portal.security.confirmation import require_fresh
from portal.web.access import member, rule
from portal.web.loaders import load_or_404
from portal.web.render import render

bp = Blueprint("bulk", __name__)

LIST_ENDPOINTS = {MEMBERS: "accounts.members", MAILBOXES: "mailboxes.index"}
# Each confirmation page carries its own key: posted twice, it starts one run.
RUN_KEY = re.compile(r"[0-9a-f]{32}")


def _start(target: str):
    """Checked and counted, the action is shown for confirmation; confirmed, it starts."""
    form = ConfirmForm()
    back = url_for(LIST_ENDPOINTS[target], account_id=g.account.id)
    if not form.validate_on_submit():
        abort(400)
    try:
        run = services.prepare(current_user, g.account, target, request.form)
    except services.BulkError as refusal:
        return render("bulk/refused.html", status=422, account=g.account, message=str(refusal), back=back)
    except AccessError as refusal:
        return render("bulk/refused.html", status=403, account=g.account, message=str(refusal), back=back)
    if services.touches_an_owner(current_user, g.account, run):
        require_fresh(back)
    key = request.form.get("run_key", "")
    shown = services.rows_digest(run)
    # Confirmed, it acts on the rows the page showed: a list that changed meanwhile (someone joined
    # and matches the filters) is shown again, and so is a confirmation that names no rows (a form
    # made by hand: it would act on whatever matches at that moment, unseen).
    confirmed = request.form.get("confirmed") == "yes"
    carried = request.form.get("shown")
    changed = confirmed and carried is not None and carried != shown
    if not confirmed or not RUN_KEY.fullmatch(key) or carried != shown:
        db.session.rollback()
        return render("bulk/confirm.html", account=g.account, run=run, label=services.label(run), back=back,
                      fields=[(name, value) for name in request.form for value in request.form.getlist(name)
                              if name not in ("csrf_token", "confirmed", "mailboxes", "run_key", "shown")],
                      run_key=secrets.token_hex(16), shown=shown, changed=changed, form=form)
    earlier = services.repeated(current_user, g.account, key)
    if earlier is None:
        try:
            earlier = services.start(current_user, g.account, run, key)
            db.session.commit()
        except IntegrityError:  # the same confirmation, posted at the same moment, started it
            db.session.rollback()
            earlier = services.repeated(current_user, g.account, key)
            if earlier is None:
                raise
    else:
        db.session.rollback()
    return redirect(url_for("bulk.show", account_id=g.account.id, run_id=earlier.id))


@bp.route("/accounts/<int:account_id>/members/bulk", methods=["POST"])
@rule(member("members.view"))
def start_members(account_id):
    return _start(MEMBERS)


@bp.route("/accounts/<int:account_id>/mailboxes/bulk", methods=["POST"])
@rule(member("mailboxes.manage"))
def start_mailboxes(account_id):
    return _start(MAILBOXES)


@bp.route("/accounts/<int:account_id>/bulk/<int:run_id>")
@rule(member())
def show(account_id, run_id):
    run = load_or_404(services.run_in_account, run_id)
    if run.created_by_id != current_user.id and not g.access.can(services.ACTIONS[run.target][run.action].permission):
        abort(404)
    return render("bulk/run.html", block="progress", account=g.account, run=run, label=services.label(run),
                  busy=run.status in (QUEUED, RUNNING), back=url_for(LIST_ENDPOINTS[run.target], account_id=account_id))


def _download(target: str, fmt: str) -> Response:
    if fmt not in exports.FORMATS:
        abort(404)
    listing = exports.listing_for(target)
    if exports.longer_than_at_once(current_user, g.account, target, listing):
        # A GET changes nothing: a long list is asked for again with a POST, written by a job.
        return render("bulk/export_ask.html", account=g.account, target=target, fmt=fmt, listing=listing,
                      at_once=exports.AT_ONCE,
                      back=url_for(LIST_ENDPOINTS[target], account_id=g.account.id, **listing.args(page=1)))
    body, mimetype, name = exports.export(current_user, g.account, target, fmt)
    return _file(body, mimetype, name)


def _file(body: bytes, mimetype: str, name: str) -> Response:
    # Personal data: no cache keeps a copy.
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"',
                                                      "Cache-Control": "no-store"})


@bp.route("/accounts/<int:account_id>/members/export.<format>")
@rule(member("members.view"))
def export_members(account_id, format):
    return _download(MEMBERS, format)


@bp.route("/accounts/<int:account_id>/mailboxes/export.<format>")
@rule(member())
def export_mailboxes(account_id, format):
    return _download(MAILBOXES, format)


def _later(target: str):
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    fmt = request.form.get("format", "")
    if fmt not in exports.FORMATS:
        return render("bulk/refused.html", status=422, account=g.account, message=_("Choose Excel or CSV."),
                      back=url_for(LIST_ENDPOINTS[target], account_id=g.account.id))
    try:
        run = exports.request_export(current_user, g.account, target, fmt, request.form)
    except exports.ExportRefused as refusal:
        return render("bulk/refused.html", status=429, account=g.account, message=str(refusal),
                      back=url_for(LIST_ENDPOINTS[target], account_id=g.account.id))
    db.session.commit()
    return redirect(url_for("bulk.show_export", account_id=g.account.id, export_id=run.id))


@bp.route("/accounts/<int:account_id>/members/exports", methods=["POST"])
@rule(member("members.view"))
def export_members_later(account_id):
    return _later(MEMBERS)


@bp.route("/accounts/<int:account_id>/mailboxes/exports", methods=["POST"])
@rule(member())
def export_mailboxes_later(account_id):
    return _later(MAILBOXES)


def _own_export(export_id: int):
    """The export, to whoever asked for it alone (anyone else finds nothing), while they may still
    see its list."""
    run = load_or_404(exports.export_in_account, export_id)
    if run.created_by_id != current_user.id or not exports.may_export(current_user, g.account, run.target, run):
        abort(404)
    return run


@bp.route("/accounts/<int:account_id>/exports/<int:export_id>")
@rule(member())
def show_export(account_id, export_id):
    run = _own_export(export_id)
    return render("bulk/export.html", block="progress", account=g.account, run=run,
                  busy=run.status in (QUEUED, RUNNING), downloadable=exports.downloadable(run),
                  keep_hours=exports.KEEP_HOURS, filtered=exports.listing_for(run.target, run.filters).filtered,
                  back=url_for(LIST_ENDPOINTS[run.target], account_id=account_id, **run.filters))


@bp.route("/accounts/<int:account_id>/exports/<int:export_id>/download")
@rule(member())
def download_export(account_id, export_id):
    run = _own_export(export_id)
    if not exports.downloadable(run):
        return redirect(url_for("bulk.show_export", account_id=account_id, export_id=export_id))
    return _file(run.content, exports.FORMATS[run.format], exports.file_name(run.target, g.account, run.format))


@bp.app_template_global()
def export_in_background(total: int) -> bool:
    """Whether a list of ``total`` rows is exported by a job (see ``portal.bulk.exports``)."""
    return total > exports.AT_ONCE
