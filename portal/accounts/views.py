from flask import Blueprint, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from portal.accounts import forms, services
from portal.accounts.models import Membership
from portal.accounts import overview as dashboard
from portal.auth.forms import ConfirmForm
from portal.extensions import db
from portal.roles import catalogue
from portal.roles import services as roles
from portal.security import policy as two_factor_policy
from portal.security.confirmation import require_fresh
from portal.web import lists
from portal.web.access import SIGNED_IN, member, rule
from portal.web.loaders import load_or_404
from portal.web.inputs import form_id
from portal.web.render import render
from portal.web.pagecache import cached_page

bp = Blueprint("accounts", __name__)


def _accounts_page(form, status=200):
    """The accounts the person may open, searched by name and in pages (a superadmin may open
    thousands), and the form for a new one."""
    listing = lists.read({}, ("name",), "name")
    page = lists.fetch(services.accounts_query(current_user, listing.q, descending=listing.descending), listing)
    return render("accounts/index.html", block="list", status=status, page=page, listing=listing, form=form)


@bp.route("/accounts")
@rule(SIGNED_IN)
def index():
    return _accounts_page(forms.AccountForm())


@bp.route("/accounts/new", methods=["POST"])
@rule(SIGNED_IN)
def create():
    form = forms.AccountForm()
    if not form.validate_on_submit():
        return _accounts_page(form, 422)
    try:
        account = services.create_account(current_user._get_current_object(), form.name.data)
    except services.DeletionRefused as refusal:
        form.name.errors.append(str(refusal))
        return _accounts_page(form, 403)
    db.session.commit()
    session["account_id"] = account.id
    flash(_("Account “%(name)s” created. You are its owner.", name=account.name), "success")
    return redirect(url_for("accounts.overview", account_id=account.id))


@bp.route("/accounts/<int:account_id>/")
@rule(member())
@cached_page()
def overview(account_id):
    session["account_id"] = account_id
    view = dashboard.build(g.account, g.access.can)
    # The page offers Retry where the person may: one look-up for all the failed mailboxes.
    g.access.load_mailboxes(mailbox.id for mailbox in view.failed_mailboxes)
    return render("accounts/overview.html", account=g.account, view=view)


def member_listing(args=None):
    """The Users list's state: from the query string, or ``args`` (what a job kept of it)."""
    return lists.read({"role": None, "kind": services.MEMBER_KINDS, "mailbox": ("yes", "no"),
                       "status": services.MEMBER_STATES}, services.MEMBER_SORTS, "email", args=args)


@bp.route("/accounts/<int:account_id>/members")
@rule(member("members.view"))
@cached_page()
def members(account_id):
    listing = member_listing()
    page = lists.fetch(services.member_query(g.account, listing), listing, scalars=False,
                       counted=services.member_count_query(g.account, listing), key=Membership.id,
                       **services.member_search(g.account, listing))
    account_roles = roles.roles_for(g.account, catalogue.ACCOUNT, permissions=False)
    return render("accounts/members.html", block="list", account=g.account, listing=listing, page=page,
                  details=services.member_details([membership for membership, _ in page.items]),
                  roles=account_roles, role_options=[(str(role.id), role.label) for role in account_roles])


def _access_page(membership, status=200, error=None):
    return render("accounts/access.html", status=status, account=g.account, membership=membership,
                  grants=roles.account_grants(membership),
                  roles=roles.roles_for(g.account, catalogue.ACCOUNT), error=error, form=ConfirmForm())


@bp.route("/accounts/<int:account_id>/members/<int:membership_id>")
@rule(member("members.view"))
def access(account_id, membership_id):
    return _access_page(load_or_404(services.member_in_account, membership_id))


@bp.route("/accounts/<int:account_id>/members/<int:membership_id>/roles", methods=["POST"])
@rule(member("access.grant", also="members.view"))
def add_role(account_id, membership_id):
    membership = load_or_404(services.member_in_account, membership_id)
    form = ConfirmForm()
    role = roles.role_in_account(g.account, form_id("role_id") or 0)
    if not form.validate_on_submit() or role is None:
        return _access_page(membership, 422, _("Choose a role to add."))
    try:
        roles.grant_role(current_user, g.account, membership, role)
    except roles.AccessError as error:
        db.session.rollback()
        return _access_page(membership, 403, str(error))
    db.session.commit()
    flash(_("%(email)s now has the role “%(role)s”.", email=membership.user.email, role=role.label), "success")
    return redirect(url_for("accounts.access", account_id=account_id, membership_id=membership_id))


@bp.route("/accounts/<int:account_id>/members/<int:membership_id>/grants/<int:grant_id>/revoke",
          methods=["POST"])
@rule(member("access.grant", also="members.view"))
def revoke(account_id, membership_id, grant_id):
    membership = load_or_404(services.member_in_account, membership_id)
    grant = roles.grant_in_account(g.account, grant_id)
    if grant is None or grant.membership_id != membership.id or grant.mailbox_id is not None:
        return _access_page(membership, 404, _("That access was already taken away."))
    if grant.role is not None and grant.role.system_key == catalogue.OWNER:
        require_fresh(url_for("accounts.access", account_id=account_id, membership_id=membership_id))
    try:
        roles.revoke_grant(current_user, g.account, grant)
    except roles.AccessError as error:
        db.session.rollback()
        return _access_page(membership, 403, str(error))
    db.session.commit()
    flash(_("Access taken away."), "success")
    return redirect(url_for("accounts.access", account_id=account_id, membership_id=membership_id))


@bp.route("/accounts/<int:account_id>/members/<int:membership_id>/advanced", methods=["GET", "POST"])
@rule(member("access.grant", also="members.view"))
def advanced(account_id, membership_id):
    """Single permissions without a role, with the catalogue's search and filters."""
    from portal.roles.views import picker_state

    membership = load_or_404(services.member_in_account, membership_id)
    current = {grant.permission for grant in roles.account_grants(membership) if grant.permission}
    picker = picker_state(catalogue.ACCOUNT, current)
    form = ConfirmForm()
    if request.method == "POST" and request.form.get("action") == "apply" and form.validate_on_submit():
        try:
            added, removed = roles.set_single_permissions(current_user, g.account, membership, picker.selected)
        except roles.AccessError as error:
            db.session.rollback()
            return render("accounts/advanced.html", status=403, account=g.account, membership=membership,
                          picker=picker, form=form, error=str(error))
        db.session.commit()
        flash(_("Single permissions saved (%(added)s added, %(removed)s removed).", added=len(added),
                removed=len(removed)), "success")
        return redirect(url_for("accounts.access", account_id=account_id, membership_id=membership_id))
    return render("accounts/advanced.html", block="permission_picker", account=g.account,
                  membership=membership, picker=picker, form=form)


@bp.route("/accounts/<int:account_id>/members/<int:membership_id>/remove", methods=["GET", "POST"])
@rule(member("members.remove"))
def remove(account_id, membership_id):
    membership = load_or_404(services.member_in_account, membership_id)
    if membership.id in roles.owner_memberships(g.account):
        require_fresh()
    form = ConfirmForm()
    error = None
    if form.validate_on_submit():
        try:
            services.remove_member(current_user, g.account, membership)
        except roles.AccessError as refusal:
            db.session.rollback()
            error = str(refusal)
        else:
            db.session.commit()
            flash(_("%(email)s is no longer a member.", email=membership.user.email), "success")
            return redirect(url_for("accounts.members", account_id=account_id))
    return render("accounts/remove_member.html", account=g.account, membership=membership, form=form,
                  error=error, status=403 if error else 200)


@bp.route("/accounts/<int:account_id>/settings", methods=["GET", "POST"])
@rule(member("account.settings"))
def settings(account_id):
    account = g.account
    form = forms.AccountSettingsForm(obj=account)
    form.personal_mailbox_role_id.choices = [(role.id, role.label)
                                             for role in roles.roles_for(account, catalogue.MAILBOX)]
    if request.method == "GET" and account.personal_mailbox_role_id is None:
        form.personal_mailbox_role_id.data = roles.system_role(catalogue.MAILBOX_OWNER).id
    # Someone who may not turn the requirement off sees it ticked and greyed, and saving keeps it.
    requirement_kept = account.require_two_factor and not two_factor_policy.may_stop_requiring(current_user, account)
    if requirement_kept:
        form.require_two_factor.data = True
        form.require_two_factor.render_kw = {"disabled": True}
    if form.validate_on_submit():
        try:
            services.update_settings(current_user, account, name=form.name.data,
                                     self_registration=form.self_registration.data,
                                     personal_mailboxes=form.personal_mailboxes.data,
                                     personal_mailbox_role_id=form.personal_mailbox_role_id.data,
                                     deprovisioned_mailboxes=form.deprovisioned_mailboxes.data,
                                     default_locale=form.default_locale.data or "")
            two_factor_policy.set_account_policy(current_user, account,
                                                 requirement_kept or form.require_two_factor.data)
        except roles.AccessError as error:
            db.session.rollback()
            form.personal_mailbox_role_id.errors.append(str(error))
        else:
            db.session.commit()
            flash(_("Account settings saved."), "success")
            return redirect(url_for("accounts.settings", account_id=account_id))
    return render("accounts/settings.html", status=422 if form.errors else 200, account=account, form=form,
                  requirement_kept=requirement_kept)


@bp.route("/accounts/<int:account_id>/delete", methods=["GET", "POST"])
@rule(member("account.delete"))
def delete(account_id):
    require_fresh()
    account = g.account
    form = forms.DeleteAccountForm()
    if form.validate_on_submit():
        try:
            outcome = services.delete_account(current_user._get_current_object(), account, form.confirm.data,
                                              delete_mailboxes=form.delete_mailboxes.data)
        except services.DeletionRefused as refusal:
            db.session.rollback()
            form.confirm.errors.append(str(refusal))
        else:
            name = account.name
            db.session.commit()
            session.pop("account_id", None)
            g.pop("account", None)
            if form.delete_mailboxes.data:
                done = ngettext("The account %(name)s was deleted; %(num)d mailbox is being deleted or disabled on "
                                "its backend.", "The account %(name)s was deleted; %(num)d mailboxes are being deleted "
                                "or disabled on their backends.", len(outcome), name=name)
            else:
                done = ngettext("The account %(name)s was deleted; %(num)d mailbox is being disabled on its backend.",
                                "The account %(name)s was deleted; %(num)d mailboxes are being disabled on their "
                                "backends.", len(outcome), name=name)
            flash(done, "success")
            return redirect(url_for("accounts.index"))
    from portal.mailboxes.models import Mailbox

    count = db.session.execute(db.select(db.func.count()).select_from(Mailbox)
                               .where(Mailbox.account_id == account.id)).scalar_one()
    return render("accounts/delete.html", status=422 if form.errors else 200, account=account, form=form,
                  mailbox_count=count, member_count=services.member_count(account))


@bp.route("/profile/delete", methods=["GET", "POST"])
@rule(SIGNED_IN)
def delete_profile():
    from flask_login import logout_user

    form = forms.DeleteProfileForm()
    user = current_user._get_current_object()
    if form.validate_on_submit():
        try:
            services.delete_profile(user, form.confirm.data)
        except services.DeletionRefused as refusal:
            db.session.rollback()
            form.confirm.errors.append(str(refusal))
        else:
            db.session.commit()
            logout_user()
            session.clear()
            flash(_("Your profile was deleted."), "info")
            return redirect(url_for("auth.login"))
    return render("accounts/delete_profile.html", status=422 if form.errors else 200, form=form)
