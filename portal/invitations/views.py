from flask import Blueprint, abort, current_app, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, lazyload

from portal.auth.forms import ConfirmForm
from portal.auth.models import User
from portal.auth.services import AuthError, find_user, start_session
from portal.extensions import db
from portal.i18n import label
from portal.invitations import forms, services
from portal.invitations.models import STATUSES, Invitation
from portal.mailboxes.services import mailbox_in_account, pick_mailboxes
from portal.roles import catalogue
from portal.roles.services import roles_for
from portal.web import lists
from portal.web.access import PUBLIC, SIGNED_IN, member, rule
from portal.web.loaders import load_or_404
from portal.web.inputs import form_id
from portal.web.render import render
from portal.web.pagecache import cached_page

bp = Blueprint("invitations", __name__)
# The invitations whose mailed link was opened in this session, signed in as their address.
OPENED = "invitations_opened"
MAX_OPENED = 20


def _index(form, status=200):
    listing = lists.read({"status": STATUSES}, services.INVITATION_SORTS, "created", descending=True)
    # The list shows the inviter's address and each offer's label, and nothing of the account or of
    # the offers' roles and mailboxes: no object per offer, nor a whole person per inviter.
    query = services.invitation_query(g.account, listing).options(
        lazyload(Invitation.account), lazyload(Invitation.grants), joinedload(Invitation.invited_by).load_only(User.email))
    page = lists.fetch(query, listing)
    return render("invitations/index.html", block="list", status=status, account=g.account, listing=listing,
                  page=page, form=form, offers=services.offer_labels([invitation.id for invitation in page.items]),
                  status_options=[(value, label(value, "invitation.status").capitalize()) for value in STATUSES])


@bp.route("/accounts/<int:account_id>/invitations")
@rule(member("users.invite"))
@cached_page()
def index(account_id):
    return _index(forms.InviteForm())


@bp.route("/accounts/<int:account_id>/invitations/new", methods=["POST"])
@rule(member("users.invite"))
def create(account_id):
    form = forms.InviteForm()
    if form.validate_on_submit():
        try:
            invitation = services.start(current_user, g.account, form.email.data)
        except services.InvitationError as error:
            db.session.rollback()
            form.email.errors.append(str(error))
        else:
            db.session.commit()
            return redirect(url_for("invitations.edit", account_id=account_id, invitation_id=invitation.id))
    return _index(form, 422)


def _corporate_here(invitation) -> bool:
    """Whether the invitee, on accepting, becomes a corporate user of this account (the address is
    on one of its active domains): the page says whether they get a personal mailbox (a
    walkthrough: an invitee got none, the account's setting being off, and no page said so)."""
    from portal.users.corporate import active_domain_of

    if invitation.status not in ("draft", "pending"):
        return False
    domain = active_domain_of(invitation.email)
    return domain is not None and domain.account_id == g.account.id


def _edit_page(invitation, status=200, error=None, mailbox_query=""):
    return render("invitations/edit.html", status=status, account=g.account, invitation=invitation, error=error,
                  corporate_here=_corporate_here(invitation),
                  account_roles=roles_for(g.account, catalogue.ACCOUNT),
                  mailbox_roles=roles_for(g.account, catalogue.MAILBOX),
                  account_permissions=catalogue.search("", catalogue.ACCOUNT),
                  mailbox_permissions=catalogue.search("", catalogue.MAILBOX), mailbox_query=mailbox_query,
                  mailbox_choices=pick_mailboxes(current_user, g.account, mailbox_query) if mailbox_query else [],
                  form=ConfirmForm())


@bp.route("/accounts/<int:account_id>/invitations/<int:invitation_id>")
@rule(member("users.invite"))
def edit(account_id, invitation_id):
    return _edit_page(load_or_404(services.invitation_in_account, invitation_id))


def _act(invitation_id, action, success):
    invitation = load_or_404(services.invitation_in_account, invitation_id)
    try:
        action(invitation)
    except services.InvitationError as error:
        db.session.rollback()
        return _edit_page(invitation, 409, str(error))
    db.session.commit()
    flash(success(invitation), "success")
    return redirect(url_for("invitations.edit", account_id=invitation.account_id, invitation_id=invitation.id))


@bp.route("/accounts/<int:account_id>/invitations/<int:invitation_id>/grants", methods=["POST"])
@rule(member("users.invite"))
def add_grant(account_id, invitation_id):
    if request.form.get("action") == "find-mailbox":
        # Without JavaScript, finding a mailbox re-shows the page with the matches to choose from.
        invitation = load_or_404(services.invitation_in_account, invitation_id)
        return _edit_page(invitation, mailbox_query=request.form.get("mailbox_q", "").strip()[:254])

    def add(invitation):
        mailbox = None
        if request.form.get("scope") == "mailbox":
            mailbox = mailbox_in_account(g.account, form_id("mailbox_id") or 0)
            if mailbox is None:
                raise services.InvitationError(_("Choose a mailbox."))
        role_id = form_id("role_id")
        permission = request.form.get("permission") or None
        if not role_id and not permission:
            raise services.InvitationError(_("Choose a role, a permission, or both."))
        if role_id:
            services.add_grant(current_user, invitation, role_id=role_id, mailbox=mailbox)
        if permission:
            services.add_grant(current_user, invitation, permission=permission, mailbox=mailbox)

    return _act(invitation_id, add, lambda invitation: _("Added to the invitation."))


@bp.route("/accounts/<int:account_id>/invitations/<int:invitation_id>/grants/<int:grant_id>/remove",
          methods=["POST"])
@rule(member("users.invite"))
def remove_grant(account_id, invitation_id, grant_id):
    return _act(invitation_id, lambda invitation: services.remove_grant(current_user, invitation, grant_id),
                lambda invitation: _("Removed from the invitation."))


@bp.route("/accounts/<int:account_id>/invitations/<int:invitation_id>/send", methods=["POST"])
@rule(member("users.invite"))
def send(account_id, invitation_id):
    return _act(invitation_id, lambda invitation: services.send_invitation(current_user, invitation),
                lambda invitation: _("Invitation sent to %(email)s.", email=invitation.email))


@bp.route("/accounts/<int:account_id>/invitations/<int:invitation_id>/resend", methods=["POST"])
@rule(member("users.invite"))
def resend(account_id, invitation_id):
    return _act(invitation_id, lambda invitation: services.resend(current_user, invitation),
                lambda invitation: _("A new link was sent to %(email)s; the old one no longer works.",
                                     email=invitation.email))


@bp.route("/accounts/<int:account_id>/invitations/<int:invitation_id>/revoke", methods=["GET", "POST"])
@rule(member("users.invite"))
def revoke(account_id, invitation_id):
    if request.method == "GET":
        invitation = load_or_404(services.invitation_in_account, invitation_id)
        return render("invitations/revoke.html", account=g.account, invitation=invitation, form=ConfirmForm())
    return _act(invitation_id, lambda invitation: services.revoke(current_user, invitation),
                lambda invitation: _("Invitation withdrawn: its link no longer works."))


# -- the invited person --------------------------------------------------------------------

def _link_dead(invitation):
    return render("invitations/link_dead.html", status=410, invitation=invitation)


@bp.route("/invitations/<token>")
@rule(PUBLIC)
def landing(token):
    invitation = services.by_token(token)
    if not services.is_open(invitation):
        return _link_dead(invitation)
    if find_user(invitation.email) is None:
        if current_app.config["PORTAL"]["PASSWORD_LOGIN"]:
            return redirect(url_for("invitations.register", token=token))
        flash(_("Sign in as %(email)s to answer the invitation.", email=invitation.email), "info")
        return redirect(url_for("auth.login", next=url_for("invitations.mine")))
    if current_user.is_authenticated and current_user.email == invitation.email:
        # The link was mailed to the address: whoever opened it may answer (see services.accept).
        opened = [i for i in session.get(OPENED, []) if i != invitation.id][-(MAX_OPENED - 1):]
        session[OPENED] = [*opened, invitation.id]
        return redirect(url_for("invitations.mine"))
    if current_user.is_authenticated:
        return render("invitations/other_address.html", status=403, invitation=invitation)
    flash(_("Log in as %(email)s to answer the invitation.", email=invitation.email), "info")
    # Back to the link after logging in (a log-in starts a new session): it counts as opened then.
    return redirect(url_for("auth.login", email=invitation.email, next=url_for("invitations.landing", token=token)))


@bp.route("/invitations/<token>/register", methods=["GET", "POST"])
@rule(PUBLIC)
def register(token):
    invitation = services.by_token(token)
    if not services.is_open(invitation):
        return _link_dead(invitation)
    if not current_app.config["PORTAL"]["PASSWORD_LOGIN"]:
        return redirect(url_for("invitations.landing", token=token))
    if find_user(invitation.email) is not None:
        return redirect(url_for("invitations.landing", token=token))
    form = forms.RegisterFromInvitationForm()
    if form.validate_on_submit():
        try:
            user, gone = services.register_and_accept(token, form.name.data or "", form.password.data)
            start_session(user)
            db.session.commit()
        except AuthError as error:
            db.session.rollback()
            form.password.errors.append(str(error))
        except services.InvitationError as error:
            db.session.rollback()
            return render("invitations/link_dead.html", status=409, invitation=invitation, reason=str(error))
        except IntegrityError:
            # The same link was used at the same moment (a double click): the other request registered.
            db.session.rollback()
            session.clear()
            return render("invitations/link_dead.html", status=409, invitation=invitation,
                          reason=_("This invitation was just used to register; log in instead."))
        else:
            flash(_("Welcome. You are now a member of %(account)s.", account=invitation.account.name), "success")
            if gone:
                flash(_("Some of what the invitation offered is no longer available: %(offers)s.",
                        offers=", ".join(gone)), "info")
            return redirect(url_for("accounts.overview", account_id=invitation.account_id))
    return render("invitations/register.html", status=422 if form.errors else 200, invitation=invitation, form=form,
                  token=token)


@bp.route("/invitations/<token>/decline", methods=["POST"])
@rule(PUBLIC)
def decline_by_link(token):
    """The invited person declines from the link, without making a profile (or logging in)."""
    invitation = services.by_token(token)
    if not services.is_open(invitation):
        return _link_dead(invitation)
    if find_user(invitation.email) is not None:
        return redirect(url_for("invitations.landing", token=token))  # to answer signed in as it
    try:
        services.decline_by_link(token)
    except services.InvitationError as error:
        db.session.rollback()
        return render("invitations/link_dead.html", status=409, invitation=invitation, reason=str(error))
    db.session.commit()
    return render("invitations/declined.html", invitation=invitation)


@bp.route("/profile/invites")
@rule(SIGNED_IN)
def mine():
    invitations, total = services.pending_for(current_user)
    return render("invitations/mine.html", invitations=invitations, total=total, form=ConfirmForm(),
                  opened=set(session.get(OPENED, [])))


def _answer(invitation_id, accept: bool):
    invitation = services.invitation_for_user(current_user, invitation_id)
    if invitation is None:
        abort(404)
    by_link = invitation.id in session.get(OPENED, [])
    try:
        gone = (services.accept(current_user, invitation, by_link=by_link) if accept
                else services.decline(current_user, invitation, by_link=by_link))
    except services.InvitationError as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(url_for("invitations.mine"))
    db.session.commit()
    if accept:
        flash(_("You joined %(account)s.", account=invitation.account.name), "success")
        if gone:
            flash(_("Some of what the invitation offered is no longer available: %(offers)s.",
                    offers=", ".join(gone)), "info")
        return redirect(url_for("accounts.overview", account_id=invitation.account_id))
    flash(_("You declined the invitation from %(account)s.", account=invitation.account.name), "info")
    return redirect(url_for("invitations.mine"))


@bp.route("/profile/invites/<int:invitation_id>/accept", methods=["POST"])
@rule(SIGNED_IN)
def accept(invitation_id):
    return _answer(invitation_id, accept=True)


@bp.route("/profile/invites/<int:invitation_id>/decline", methods=["POST"])
@rule(SIGNED_IN)
def decline(invitation_id):
    return _answer(invitation_id, accept=False)
