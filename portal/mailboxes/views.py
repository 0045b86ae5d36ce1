from dataclasses import replace

from flask import Blueprint, abort, flash, g, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy.orm import lazyload

from portal.accounts.services import member_in_account
from portal.auth.forms import ConfirmForm
from portal.backends import service as backends
from portal.backends.base import PROTOCOL_LABELS
from portal.domains.models import DISABLED as DOMAIN_DISABLED
from portal.domains.models import TAKEN as DOMAIN_TAKEN
from portal.domains.services import domain_in_account, domains_of
from portal.extensions import db
from portal.i18n import label
from portal.mailboxes import drift, forms, services
from portal.mailboxes.models import KINDS, PERSONAL, PROVISIONING, STATUSES, Mailbox
from portal.roles import catalogue
from portal.roles import services as roles
from portal.roles.views import picker_state
from portal.security.confirmation import require_fresh
from portal.web import lists
from portal.web.access import findable_people, member, on_mailbox, rule
from portal.web.loaders import load_or_404
from portal.web.htmx import is_htmx
from portal.web.inputs import arg_id, form_id, parse_id
from portal.web.render import render
from portal.web.pagecache import cached_page

bp = Blueprint("mailboxes", __name__)


def mailbox_listing(args=None):
    """The Mailboxes list's state: from the query string, or ``args`` (what a job kept of it)."""
    return lists.read({"domain": None, "status": STATUSES, "kind": KINDS, "owner": None}, services.MAILBOX_SORTS,
                      "address", args=args)


@bp.route("/accounts/<int:account_id>/mailboxes")
@rule(member())
@cached_page()
def index(account_id):
    listing = mailbox_listing()
    query = services.mailbox_query(current_user, g.account, listing, (g.access.membership_id, g.access.held))
    # The list shows neither domains nor aliases: load neither.
    page = lists.fetch(query.options(lazyload(Mailbox.domain), lazyload(Mailbox.aliases)), listing)
    return render("mailboxes/index.html", block="list", account=g.account, page=page, listing=listing,
                  domain_options=[(str(d.id), d.unicode_name) for d in domains_of(g.account)],
                  status_options=[(status, label(status, "mailbox.status")) for status in STATUSES])


def _form():
    form = forms.MailboxForm()
    form.domain.choices = [(d.id, f"{d.unicode_name} ({label(d.status, 'domain.status').lower()})")
                           for d in domains_of(g.account) if d.status not in (DOMAIN_DISABLED, DOMAIN_TAKEN)]
    return form


@bp.route("/accounts/<int:account_id>/mailboxes/new", methods=["GET", "POST"])
@rule(member("mailboxes.create"))
@cached_page()
def create(account_id):
    form = _form()
    owner = services.member_user(g.account, form_id("owner") if request.method == "POST" else None,
                                 only=findable_people())
    finding = request.form.get("action") == "find-owner"
    owner_errors: list[str] = []
    if not finding and form.validate_on_submit():
        domain = next((d for d in domains_of(g.account) if d.id == form.domain.data), None)
        try:
            if domain is None:
                raise services.MailboxError(_("Choose one of this account's domains."), "domain")
            mailbox = services.create_mailbox(
                current_user, g.account, domain, form.local_part.data or "", kind=form.kind.data,
                owner=owner if form.kind.data == PERSONAL else None,
                first_name=form.first_name.data or "", last_name=form.last_name.data or "",
                display_name=form.display_name.data or "", quota_bytes=form.quota_bytes())
        except services.MailboxError as error:
            db.session.rollback()
            if error.field == "owner":
                owner_errors.append(str(error))
            else:
                getattr(form, error.field or "local_part").errors.append(str(error))
        else:
            db.session.commit()
            flash(_("%(address)s created.", address=mailbox.address), "success")
            return redirect(url_for("mailboxes.show", account_id=account_id, mailbox_id=mailbox.id))
    owner_query = request.form.get("owner_q", "").strip()[:254]
    candidates = services.owner_candidates(g.account, owner_query, only=findable_people()) if finding else []
    return render("mailboxes/new.html", status=422 if form.errors or owner_errors else 200, account=g.account,
                  form=form, has_domains=bool(form.domain.choices), owner=owner, owner_query=owner_query,
                  candidates=candidates, owner_errors=owner_errors)


@bp.route("/accounts/<int:account_id>/mailboxes/pick-owner")
@rule(member("mailboxes.create"))
def pick_owner(account_id):
    """The owner picker's choices as one types (htmx), at most 20."""
    text = request.args.get("owner_q", "").strip()[:254]
    return render("mailboxes/new.html", block="owner_choices", account=g.account, owner=None,
                  candidates=services.owner_candidates(g.account, text, only=findable_people()) if text else [],
                  owner_query=text,
                  owner_errors=[])


@bp.route("/accounts/<int:account_id>/mailboxes/pick")
@rule(member())
def pick_mailbox(account_id):
    """Mailboxes this person may see whose address holds the text typed, for a picker (htmx), at most 20."""
    text = request.args.get("mailbox_q", "").strip()[:254]
    return render("mailboxes/_pick.html", account=g.account, field=request.args.get("field", "mailbox_id"),
                  choices=services.pick_mailboxes(current_user, g.account, text) if text else [], query=text,
                  chosen=None)


def _page(mailbox, status=200, error=None, password=None):
    # Provisioning means a change is under way, even when its job is already done: the mailbox row
    # was read before the job was looked for, and on PostgreSQL each statement sees what has committed
    # by then, so the job may have finished in between. The page then looks again (once) rather than
    # stop following a status that has already moved on.
    busy = mailbox.status == PROVISIONING or services.busy(mailbox)
    capabilities = services.capabilities_of(mailbox)
    # The privilege is box-wide: not offered where the server holds other accounts' mailboxes.
    admin_refusal = None
    if capabilities.mailbox_admin_privilege:
        if not mailbox.backend_admin and services.serves_other_accounts(mailbox.domain.connection,
                                                                        mailbox.account_id):
            admin_refusal = services.SHARED_SERVER
        elif not roles.is_owner(current_user, g.account.id):  # giving it or taking it away
            admin_refusal = services.OWNERS_MAKE_ADMINS
    # Someone who may grant access here and see the account's people finds whom to give it to
    # (each found person links to their access on this mailbox); None: the form is not shown.
    person_query = request.args.get("person_q", "").strip()[:254]
    people = None
    if g.access.can_read("members.view") and g.access.can_on_mailbox(mailbox.id, "mailbox.access"):
        people = services.members_matching(g.account, person_query) if person_query else []
    # Who has access, a page at a time: a shared mailbox may be open to every member.
    access_listing = lists.read({}, ("email",), "email")
    return render("mailboxes/show.html", block="live", status=status, account=g.account, mailbox=mailbox,
                  person_query=person_query, people=people, access_listing=access_listing,
                  access=roles.mailbox_access(mailbox.id, access_listing, g.account.id),
                  busy=busy, capabilities=capabilities, admin_refusal=admin_refusal,
                  connection=backends.connection(mailbox.domain.connection),
                  attempts=mailbox.attempts.limit(50).all(),
                  secret=services.waiting_secret(mailbox), password=password, error=error,
                  protocol_names=services.protocol_names(mailbox), protocol_labels=PROTOCOL_LABELS,
                  quota_form=forms.QuotaForm(formdata=None), form=ConfirmForm())


@bp.route("/accounts/<int:account_id>/mailboxes/<int:mailbox_id>")
@rule(on_mailbox("mailbox.view"))
def show(account_id, mailbox_id):
    return _page(g.mailbox)


def _act(action, success=None):
    mailbox = g.mailbox
    try:
        message = action(current_user._get_current_object(), mailbox)
    except services.MailboxError as error:
        db.session.rollback()
        return _page(mailbox, 409, str(error))
    db.session.commit()
    text = message if isinstance(message, str) else success
    if text:
        flash(text, "success")
    if is_htmx(request):
        return _page(mailbox)
    return redirect(url_for("mailboxes.show", account_id=mailbox.account_id, mailbox_id=mailbox.id))


@bp.route("/accounts/<int:account_id>/mailboxes/<int:mailbox_id>/enable", methods=["POST"])
@rule(on_mailbox("mailbox.settings"))
def enable(account_id, mailbox_id):
    return _act(lambda actor, mailbox: services.set_active(actor, mailbox, True), _("The mailbox is being enabled."))


@bp.route("/accounts/<int:account_id>/mailboxes/<int:mailbox_id>/disable", methods=["POST"])
@rule(on_mailbox("mailbox.settings"))
def disable(account_id, mailbox_id):
    return _act(lambda actor, mailbox: services.set_active(actor, mailbox, False),
                _("The mailbox is being disabled."))


@bp.route("/accounts/<int:account_id>/mailboxes/<int:mailbox_id>/retry", methods=["POST"])
@rule(on_mailbox("mailbox.settings"))
def retry(account_id, mailbox_id):
    return _act(services.retry, _("Trying again."))


@bp.route("/accounts/<int:account_id>/mailboxes/<int:mailbox_id>/password", methods=["POST"])
@rule(on_mailbox("mailbox.password"))
def reset_password(account_id, mailbox_id):
    return _act(services.reset_password, _("A new password is being set; reveal it here once it is ready."))


@bp.route("/accounts/<int:account_id>/mailboxes/<int:mailbox_id>/password/reveal", methods=["POST"])
@rule(on_mailbox("mailbox.password"))
def reveal_password(account_id, mailbox_id):
    require_fresh(url_for("mailboxes.show", account_id=account_id, mailbox_id=mailbox_id))
    try:
        password = services.reveal_secret(current_user, g.mailbox)
    except services.MailboxError as refusal:
        db.session.rollback()
        return _page(g.mailbox, 403, str(refusal))
    db.session.commit()
    if password is None:
        return _page(g.mailbox, 410, _("There is no password to reveal: it was already shown, or it expired."))
    return _page(g.mailbox, password=password)


@bp.route("/accounts/<int:account_id>/mailboxes/<int:mailbox_id>/quota", methods=["POST"])
@rule(on_mailbox("mailbox.settings"))
def quota(account_id, mailbox_id):
    form = forms.QuotaForm()
    if not form.validate_on_submit():
        return _page(g.mailbox, 422, " ".join(str(error) for error in form.quota.errors) or _("Enter a quota."))
    return _act(lambda actor, mailbox: services.set_quota(actor, mailbox, form.quota_bytes()),
                _("The quota is being changed."))


@bp.route("/accounts/<int:account_id>/mailboxes/<int:mailbox_id>/aliases", methods=["POST"])
@rule(on_mailbox("mailbox.settings"))
def add_alias(account_id, mailbox_id):
    return _act(lambda actor, mailbox: services.add_alias(actor, mailbox, request.form.get("alias", "")) and None,
                _("The alias is being added."))


@bp.route("/accounts/<int:account_id>/mailboxes/<int:mailbox_id>/aliases/<int:alias_id>/remove", methods=["POST"])
@rule(on_mailbox("mailbox.settings"))
def remove_alias(account_id, mailbox_id, alias_id):
    return _act(lambda actor, mailbox: services.remove_alias(actor, mailbox, alias_id),
                _("The alias is being removed."))


@bp.route("/accounts/<int:account_id>/mailboxes/<int:mailbox_id>/backend-admin", methods=["POST"])
@rule(on_mailbox("mailbox.settings"))
def backend_admin(account_id, mailbox_id):
    wanted = request.form.get("admin") == "yes"
    return _act(lambda actor, mailbox: services.set_backend_admin(actor, mailbox, wanted),
                _("The administrator privilege is being changed on the backend."))


@bp.route("/accounts/<int:account_id>/mailboxes/<int:mailbox_id>/protocols", methods=["POST"])
@rule(on_mailbox("mailbox.settings"))
def protocols(account_id, mailbox_id):
    allowed = set(request.form.getlist("protocol"))
    return _act(lambda actor, mailbox: services.set_protocols(actor, mailbox, allowed),
                _("Protocol access is being changed."))


@bp.route("/accounts/<int:account_id>/mailboxes/<int:mailbox_id>/delete", methods=["GET", "POST"])
@rule(member("mailboxes.manage"))
def delete(account_id, mailbox_id):
    mailbox = load_or_404(services.mailbox_in_account, mailbox_id)
    g.mailbox = mailbox
    form = ConfirmForm()
    if form.validate_on_submit():
        return _act(services.delete)
    return render("mailboxes/delete.html", account=g.account, mailbox=mailbox, form=form,
                  capabilities=services.capabilities_of(mailbox))


# -- mailbox access of a member --------------------------------------------------------

def _member_mailboxes(membership, chosen_id, status=200, error=None, picker=None):
    chosen = services.mailbox_in_account(g.account, chosen_id) if chosen_id else None
    if chosen is not None and not g.access.can_on_mailbox(chosen.id, "mailbox.view"):
        chosen = None
    query = request.args.get("mailbox_q", "").strip()[:254]
    grants = roles.mailbox_grants(membership, chosen.id) if chosen else []
    # Only the mailboxes the viewer may see: seeing the members is not seeing every mailbox they
    # hold something on (a review: a helpdesk read the address of the director's mailbox here).
    # Chosen in the query and paged, with their count: the first 100 were shown, unsaid, and those
    # the viewer could not see taken out after (a scale review: 100 of 2,000, or none of them).
    listing = replace(lists.read({}, ("address",), "address"), q="")  # a page of addresses, no search
    visible = services.mailbox_query(current_user, g.account, listing, (g.access.membership_id, g.access.held))
    held_on = lists.fetch(visible.where(roles.mailboxes_held_by(membership))
                          .options(lazyload(Mailbox.domain), lazyload(Mailbox.aliases), lazyload(Mailbox.owner)),
                          listing)
    held_block = "held" if request.headers.get("HX-Target") == "held-mailboxes" else None
    return render("accounts/mailbox_access.html", block=held_block,
                  status=status, account=g.account, membership=membership,
                  chosen=chosen, grants=grants, error=error, form=ConfirmForm(), query=query,
                  choices=services.pick_mailboxes(current_user, g.account, query) if query else [],
                  held_on=held_on, listing=listing, roles=roles.roles_for(g.account, catalogue.MAILBOX),
                  picker=picker)


@bp.route("/accounts/<int:account_id>/members/<int:membership_id>/mailboxes")
@rule(member("members.view"))
def member_access(account_id, membership_id):
    membership = load_or_404(member_in_account, membership_id)
    chosen_id = arg_id("mailbox") or 0
    if not chosen_id and "mailbox_q" in request.args and not request.args["mailbox_q"].strip():
        # "Show its access" with nothing typed or picked: say what to do rather than show the form again.
        return _member_mailboxes(membership, 0, error=_("Type part of a mailbox's address, then pick the mailbox "
                                                        "whose access to show."))
    return _member_mailboxes(membership, chosen_id)


def _back(account_id, membership_id, mailbox_id):
    return redirect(url_for("mailboxes.member_access", account_id=account_id, membership_id=membership_id,
                            mailbox=mailbox_id))


@bp.route("/accounts/<int:account_id>/members/<int:membership_id>/mailboxes/<int:mailbox_id>/roles",
          methods=["POST"])
@rule(on_mailbox("mailbox.access", also="members.view"))
def add_member_role(account_id, membership_id, mailbox_id):
    membership = load_or_404(member_in_account, membership_id)
    role = roles.role_in_account(g.account, form_id("role_id") or 0)
    try:
        if role is None:
            raise roles.AccessError(_("Choose a mailbox role."))
        roles.grant_mailbox_role(current_user, g.account, membership, mailbox_id, role)
    except roles.AccessError as error:
        db.session.rollback()
        return _member_mailboxes(membership, mailbox_id, 403, str(error))
    db.session.commit()
    flash(_("%(email)s now has “%(role)s” on %(address)s.", email=membership.user.email, role=role.name,
            address=g.mailbox.address), "success")
    return _back(account_id, membership_id, mailbox_id)


@bp.route("/accounts/<int:account_id>/members/<int:membership_id>/mailboxes/<int:mailbox_id>/advanced",
          methods=["GET", "POST"])
@rule(on_mailbox("mailbox.access", also="members.view"))
def member_advanced(account_id, membership_id, mailbox_id):
    membership = load_or_404(member_in_account, membership_id)
    current = {grant.permission for grant in roles.mailbox_grants(membership, mailbox_id) if grant.permission}
    picker = picker_state(catalogue.MAILBOX, current)
    if request.method == "POST" and request.form.get("action") == "apply":
        try:
            roles.set_mailbox_permissions(current_user, g.account, membership, mailbox_id, picker.selected)
        except roles.AccessError as error:
            db.session.rollback()
            return _member_mailboxes(membership, mailbox_id, 403, str(error), picker)
        db.session.commit()
        flash(_("Mailbox permissions saved."), "success")
        return _back(account_id, membership_id, mailbox_id)
    if not is_htmx(request):
        # The whole page, its list of mailboxes with it (the fuzz test: a page without that list,
        # which is paged now, was a 500).
        return _member_mailboxes(membership, mailbox_id, picker=picker)
    return render("accounts/mailbox_access.html", block="permission_picker", account=g.account,
                  membership=membership, chosen=g.mailbox, grants=roles.mailbox_grants(membership, mailbox_id),
                  error=None, form=ConfirmForm(), query="", choices=[],
                  roles=roles.roles_for(g.account, catalogue.MAILBOX), picker=picker)


@bp.route("/accounts/<int:account_id>/members/<int:membership_id>/mailboxes/<int:mailbox_id>/grants/"
          "<int:grant_id>/revoke", methods=["POST"])
@rule(on_mailbox("mailbox.access", also="members.view"))
def revoke_member_grant(account_id, membership_id, mailbox_id, grant_id):
    membership = load_or_404(member_in_account, membership_id)
    grant = roles.grant_in_account(g.account, grant_id)
    if grant is None or grant.membership_id != membership.id or grant.mailbox_id != mailbox_id:
        return _member_mailboxes(membership, mailbox_id, 404, _("That access was already taken away."))
    try:
        roles.revoke_grant(current_user, g.account, grant)
    except roles.AccessError as error:
        db.session.rollback()
        return _member_mailboxes(membership, mailbox_id, 403, str(error))
    db.session.commit()
    flash(_("Mailbox access taken away."), "success")
    return _back(account_id, membership_id, mailbox_id)





# -- drift -----------------------------------------------------------------------------

def _drift_page(domain, status=200, error=None):
    # Whether a comparison runs is read before the latest report: a comparison that ends in between
    # leaves a page that looks again once, never an old report the page stops following.
    comparing = drift.comparing(domain)
    report = drift.latest_report(domain)
    # A page of differences at a time: a backend may differ on every one of 10,000 mailboxes.
    listing = lists.read({}, ("address",), "address", per_page=DRIFT_PAGE)
    return render("mailboxes/drift.html", block="live", status=status, account=g.account, domain=domain,
                  report=report, differences=lists.page_of(_by_address(report), listing),
                  listing=listing, comparing=comparing, labels=drift.LABELS,
                  capabilities=backends.capabilities(domain.connection), error=error, form=ConfirmForm())


DRIFT_PAGE = 100


def _by_address(report) -> list[dict]:
    """The report's differences in the order the page says (by address)."""
    return sorted(report.differences, key=lambda item: item.get("address", "")) if report else []


@bp.route("/accounts/<int:account_id>/domains/<int:domain_id>/drift")
@rule(member("mailboxes.view"))
def drift_report(account_id, domain_id):
    return _drift_page(load_or_404(domain_in_account, domain_id))


def _drift_act(domain_id, action):
    domain = load_or_404(domain_in_account, domain_id)
    try:
        message = action(domain)
    except services.MailboxError as error:
        db.session.rollback()
        return _drift_page(domain, 409, str(error))
    db.session.commit()
    if message:
        flash(message, "success")
    if is_htmx(request):
        return _drift_page(domain)
    # Back to the page of differences the person acted on, not the first one (a walkthrough).
    page = parse_id(request.form.get("page")) or None
    return redirect(url_for("mailboxes.drift_report", account_id=domain.account_id, domain_id=domain.id,
                            page=page if page and page > 1 else None))


@bp.route("/accounts/<int:account_id>/domains/<int:domain_id>/drift/compare", methods=["POST"])
@rule(member("mailboxes.manage"))
def drift_compare(account_id, domain_id):
    return _drift_act(domain_id, lambda domain: drift.request_comparison(domain) and None)


def _settle(domain, settle_all: bool):
    report = drift.latest_report(domain)
    how = request.form.get("how", "")
    if report is None:
        raise services.MailboxError(_("Compare first."))
    if settle_all:
        if how not in ("adopt", "enforce"):
            raise services.MailboxError(_("Choose adopt or enforce."))
        count, refused = drift.settle_all(current_user, domain, report, how)
        if how == "adopt":
            message = ngettext("%(num)d difference settled (adopted).", "%(num)d differences settled (adopted).",
                               count)
        else:
            message = ngettext("%(num)d difference settled (enforced).", "%(num)d differences settled (enforced).",
                               count)
        if refused:
            message += " " + ngettext(
                "%(num)d was refused and stays listed: settle it by itself to see why (%(addresses)s).",
                "%(num)d were refused and stay listed: settle each by itself to see why (%(addresses)s).",
                len(refused), addresses=", ".join(refused[:5]))
        return message
    return drift.settle(current_user, domain, report, request.form.get("address", ""),
                        request.form.get("kind", ""), how)


@bp.route("/accounts/<int:account_id>/domains/<int:domain_id>/drift/settle", methods=["POST"])
@rule(member("mailboxes.manage"))
def drift_settle(account_id, domain_id):
    return _drift_act(domain_id, lambda domain: _settle(domain, settle_all=False))


@bp.route("/accounts/<int:account_id>/domains/<int:domain_id>/drift/settle-all", methods=["GET", "POST"])
@rule(member("mailboxes.manage"))
def drift_settle_all(account_id, domain_id):
    if request.method == "GET":
        domain = load_or_404(domain_in_account, domain_id)
        how = request.args.get("how", "")
        if how not in ("adopt", "enforce"):
            abort(404)
        report = drift.latest_report(domain)
        differences = sorted(drift.settled_by_all(domain, report, how), key=lambda item: item.get("address", ""))
        return render("mailboxes/drift_confirm.html", account=g.account, domain=domain, how=how, report=report,
                      shown=differences[:DRIFT_PAGE], more=max(len(differences) - DRIFT_PAGE, 0),
                      total=len(differences), left=len(report.differences) - len(differences) if report else 0,
                      labels=drift.LABELS, form=ConfirmForm())
    return _drift_act(domain_id, lambda domain: _settle(domain, settle_all=True))
