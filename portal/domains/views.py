from flask import Blueprint, abort, flash, g, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from portal.auth.forms import ConfirmForm
from portal.backends import service as backends
from portal.domains import forms, services
from portal.domains import settings as domain_settings
from portal.domains.models import DISABLED, ENABLED, STATUSES, TAKEN
from portal.extensions import db
from portal.i18n import label, shown_within
from portal.timeutil import utcnow
from portal.web import lists
from portal.web.access import SUPERADMIN, member, rule
from portal.web.loaders import load_or_404
from portal.web.htmx import is_htmx
from portal.web.render import render
from portal.web.pagecache import cached_page

# A domain in these states is not followed by its page (no polling): read a moment early, it is
# only a moment old. In any other, the page follows it and must not stop on a state it has left.
SETTLED = (ENABLED, DISABLED, TAKEN)

bp = Blueprint("domains", __name__)


def _add_form():
    form = forms.AddDomainForm()
    form.connection.choices = [(name, f"{name} ({backends.connection(name).backend_label})")
                               for name in backends.connection_names()]
    if not form.connection.data:
        form.connection.data = "local"
    return form


def _index(form, status=200):
    listing = lists.read({"status": STATUSES}, services.DOMAIN_SORTS, "name")
    page = lists.fetch(services.domain_query(g.account, listing), listing)
    return render("domains/index.html", block="list", status=status, account=g.account, page=page, listing=listing,
                  status_options=[(value, label(value, "domain.status")) for value in STATUSES], form=form)


@bp.route("/accounts/<int:account_id>/domains")
@rule(member("domains.view"))
@cached_page()
def index(account_id):
    return _index(_add_form())


@bp.route("/accounts/<int:account_id>/domains/new", methods=["POST"])
@rule(member("domains.manage"))
def add(account_id):
    form = _add_form()
    if form.validate_on_submit():
        try:
            domain = services.add_domain(current_user, g.account, form.name.data, form.connection.data)
        except services.DomainError as error:
            db.session.rollback()
            form.name.errors.append(str(error))
        else:
            db.session.commit()
            flash(_("%(domain)s added. Publish the ownership record shown below.", domain=domain.name), "success")
            return redirect(url_for("domains.show", account_id=account_id, domain_id=domain.id))
    return _index(form, 422)


def _page(domain, status=200, error=None):
    checking = services.check_in_progress(domain)
    if not checking and domain.status not in SETTLED:
        # The domain was read before its checks were looked for; on PostgreSQL each statement sees
        # what has committed by then, so a check may have ended in between: read the domain again
        # rather than show a state it has left on a page that stops looking.
        db.session.refresh(domain)
    waiting = services.waiting_check(domain)
    seconds = max(int((waiting.run_at - utcnow()).total_seconds()), 0) if waiting else None
    return render("domains/show.html", block="live", status=status, account=g.account, domain=domain,
                  challenge_name=services.challenge_name(domain), checking=checking,
                  watching=services.watching(domain, waiting), next_check_seconds=seconds,
                  capabilities=backends.capabilities(domain.connection).describe(),
                  connection=backends.connection(domain.connection), history=domain.checks.limit(20).all(),
                  error=error, form=ConfirmForm(), statuses=STATUSES)


@bp.route("/accounts/<int:account_id>/domains/<int:domain_id>")
@rule(member("domains.view"))
# The page counts down to the next check in seconds: kept for one second at most.
@cached_page(seconds=1)
def show(account_id, domain_id):
    return _page(load_or_404(services.domain_in_account, domain_id))


def _act(account_id, domain_id, action, success):
    domain = load_or_404(services.domain_in_account, domain_id)
    try:
        action(current_user._get_current_object(), domain)
    except services.DomainError as error:
        db.session.rollback()
        return _page(domain, 409, str(error))
    db.session.commit()
    if success:
        flash(success, "success")
    if is_htmx(request):
        return _page(domain)
    return redirect(url_for("domains.show", account_id=account_id, domain_id=domain_id))


@bp.route("/accounts/<int:account_id>/domains/<int:domain_id>/check", methods=["POST"])
@rule(member("domains.manage"))
def check(account_id, domain_id):
    return _act(account_id, domain_id, services.request_check, None)


@bp.route("/accounts/<int:account_id>/domains/<int:domain_id>/disable", methods=["POST"])
@rule(member("domains.manage"))
def disable(account_id, domain_id):
    return _act(account_id, domain_id, services.disable, _("Domain disabled."))


@bp.route("/accounts/<int:account_id>/domains/<int:domain_id>/enable", methods=["POST"])
@rule(member("domains.manage"))
def enable(account_id, domain_id):
    return _act(account_id, domain_id, services.enable, _("Domain enabled again; checking it now."))


@bp.route("/accounts/<int:account_id>/domains/<int:domain_id>/verify", methods=["POST"])
@rule(SUPERADMIN)
def mark_verified(account_id, domain_id):
    return _act(account_id, domain_id, services.mark_verified, _("Ownership marked as verified by hand."))


@bp.route("/accounts/<int:account_id>/domains/<int:domain_id>/remove", methods=["GET", "POST"])
@rule(member("domains.manage"))
def remove(account_id, domain_id):
    domain = load_or_404(services.domain_in_account, domain_id)
    form = forms.RemoveDomainForm()
    error = None
    if form.validate_on_submit():
        if form.confirm.data.strip().lower() not in (domain.name, domain.unicode_name):
            form.confirm.errors.append(_("Type %(domain)s exactly to confirm.", domain=domain.unicode_name))
        else:
            try:
                services.remove_domain(current_user, domain)
            except services.DomainError as refusal:
                db.session.rollback()
                error = str(refusal)
            else:
                db.session.commit()
                flash(_("%(domain)s removed from the account.", domain=domain.name), "success")
                return redirect(url_for("domains.index", account_id=account_id))
    status = 409 if error else (422 if form.errors else 200)
    return render("domains/remove.html", status=status, account=g.account, domain=domain, form=form, error=error)


@bp.route("/accounts/<int:account_id>/domains/<int:domain_id>/settings", methods=["GET", "POST"])
@rule(member("domains.view"))
def settings(account_id, domain_id):
    domain = load_or_404(services.domain_in_account, domain_id)
    capabilities = backends.capabilities(domain.connection)
    values, problems = dict(domain.settings or {}), {}
    status = 200
    if request.method == "POST":
        if not g.access.can("domains.manage"):
            abort(403)
        values, problems = domain_settings.parse_form(domain, request.form)
        if not problems:
            try:
                ended = domain_settings.save(current_user, domain, values)
            except domain_settings.SettingsInvalid as invalid:
                db.session.rollback()
                problems = invalid.problems
            else:
                db.session.commit()
                flash(_("Settings saved; they are being applied on the backend."), "success")
                if ended:
                    flash(ngettext("%(num)d pending invitation was mailed to an address these settings now route "
                                   "to a mailbox: its link no longer works. Send it again if its reader is meant "
                                   "to get it.",
                                   "%(num)d pending invitations were mailed to addresses these settings now route "
                                   "to a mailbox: their links no longer work. Send them again if their readers "
                                   "are meant to get them.", ended), "info")
                return redirect(url_for("domains.settings", account_id=account_id, domain_id=domain_id))
        status = 422
    return render("domains/settings.html", block="state", status=status, account=g.account, domain=domain,
                  specs=domain_settings.specs(domain), values=values, problems=problems,
                  hints=shown_within(domain.settings_hints or {}), capabilities=capabilities,
                  megabytes=domain_settings.shown_in_megabytes, connection=backends.connection(domain.connection))
