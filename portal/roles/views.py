from dataclasses import dataclass, field

from flask import Blueprint, abort, flash, g, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.auth.forms import ConfirmForm
from portal.extensions import db
from portal.roles import catalogue, services
from portal.roles.forms import RoleForm
from portal.web import lists
from portal.web.access import member, rule
from portal.web.loaders import load_or_404
from portal.web.render import render
from portal.web.pagecache import cached_page

bp = Blueprint("roles", __name__)


@dataclass
class PickerState:
    """The permission picker: what is ticked, and which part of the catalogue is shown.

    Filtering re-renders the picker from the submitted form, so ticks survive
    a search with or without JavaScript.
    """

    scope: str | None
    query: str
    group: str
    selected: set[str]
    shown: list = field(default_factory=list)

    @property
    def groups(self) -> list[str]:
        return catalogue.groups(self.scope)

    @property
    def hidden_selected(self) -> list:
        """The selected permissions the search or group filter hides, still listed (and untickable)."""
        shown_codes = {p.code for p in self.shown}
        return [catalogue.BY_CODE[code] for code in sorted(self.selected - shown_codes)]


def picker_state(scope: str | None, current: set[str]) -> PickerState:
    source = request.form if request.method == "POST" else request.args
    query = source.get("q", "").strip()[:100]
    group = source.get("group", "")
    allowed = catalogue.codes(scope) if scope else set(catalogue.BY_CODE)
    if request.method == "POST":
        selected = {code for code in request.form.getlist("permission") if code in allowed}
    else:
        selected = set(current) & allowed
    state = PickerState(scope, query, group if group in catalogue.groups(scope) else "", selected)
    state.shown = catalogue.search(query, scope, state.group or None)
    return state


@bp.route("/accounts/<int:account_id>/roles")
@rule(member("roles.view"))
@cached_page()
def index(account_id):
    account_roles = services.roles_for(g.account)
    return render("roles/index.html", account=g.account, roles=account_roles,
                  holders=services.holder_counts(g.account, account_roles), form=ConfirmForm())


@bp.route("/accounts/<int:account_id>/permissions")
@rule(member("roles.view"))
def permissions(account_id):
    scope = request.args.get("scope", "")
    scope = scope if scope in catalogue.SCOPES else None
    state = picker_state(scope, set())
    return render("roles/permissions.html", block="results", account=g.account, picker=state,
                  scope=scope or "", all_groups=catalogue.groups(scope))


def _role_or_404(account, role_id):
    return services.role_in_account(account, role_id)


@bp.route("/accounts/<int:account_id>/roles/<int:role_id>")
@rule(member("roles.view"))
def show(account_id, role_id):
    role = load_or_404(_role_or_404, role_id)
    granted = [catalogue.BY_CODE[code] for code in sorted(role.permissions) if code in catalogue.BY_CODE]
    listing = lists.read({}, ("email",), "email")
    page = lists.fetch(services.holders_query(g.account, role), listing, scalars=False,
                       counted=services.holders_count_query(g.account, role))
    return render("roles/show.html", block="holders", account=g.account, role=role, granted=granted,
                  form=ConfirmForm(), page=page, listing=listing)


def _editor(role, scope, form, picker, status=200, error=None):
    return render("roles/edit.html", block="permission_picker" if request.form.get("action") == "filter" else None,
                  status=status, account=g.account, role=role, scope=scope, form=form, picker=picker, error=error)


@bp.route("/accounts/<int:account_id>/roles/new", methods=["GET", "POST"])
@rule(member("roles.manage"))
def create(account_id):
    scope = request.values.get("scope", catalogue.ACCOUNT)
    if scope not in catalogue.SCOPES:
        abort(404)
    form = RoleForm()
    picker = picker_state(scope, set())
    if request.form.get("action") == "save" and form.validate_on_submit():
        try:
            role = services.create_role(current_user, g.account, name=form.name.data, scope=scope,
                                        description=form.description.data or "", permissions=picker.selected)
        except services.RoleNameError as error:
            db.session.rollback()
            form.name.errors.append(str(error))
            return _editor(None, scope, form, picker, 422)
        except services.AccessError as error:
            db.session.rollback()
            return _editor(None, scope, form, picker, 422, str(error))
        db.session.commit()
        flash(_("Role “%(name)s” created.", name=role.name), "success")
        return redirect(url_for("roles.show", account_id=account_id, role_id=role.id))
    return _editor(None, scope, form, picker, 422 if form.errors else 200)


@bp.route("/accounts/<int:account_id>/roles/<int:role_id>/edit", methods=["GET", "POST"])
@rule(member("roles.manage"))
def edit(account_id, role_id):
    role = load_or_404(_role_or_404, role_id)
    if role.is_system:
        flash(_("System roles cannot be changed; copy one to make your own."), "info")
        return redirect(url_for("roles.show", account_id=account_id, role_id=role_id))
    form = RoleForm(obj=role)
    picker = picker_state(role.scope, set(role.permissions))
    if request.form.get("action") == "save" and form.validate_on_submit():
        try:
            services.update_role(current_user, g.account, role, name=form.name.data,
                                 description=form.description.data or "", permissions=picker.selected)
        except services.RoleNameError as error:
            db.session.rollback()
            form.name.errors.append(str(error))
            return _editor(role, role.scope, form, picker, 422)
        except services.AccessError as error:
            db.session.rollback()
            return _editor(role, role.scope, form, picker, 422, str(error))
        db.session.commit()
        flash(_("Role “%(name)s” saved.", name=role.name), "success")
        return redirect(url_for("roles.show", account_id=account_id, role_id=role.id))
    return _editor(role, role.scope, form, picker, 422 if form.errors else 200)


@bp.route("/accounts/<int:account_id>/roles/<int:role_id>/copy", methods=["POST"])
@rule(member("roles.manage"))
def copy(account_id, role_id):
    role = load_or_404(_role_or_404, role_id)
    try:
        new_role = services.copy_role(current_user, g.account, role)
    except services.AccessError as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(url_for("roles.show", account_id=account_id, role_id=role_id))
    db.session.commit()
    flash(_("Copied as “%(name)s”. Adjust it and save.", name=new_role.name), "success")
    return redirect(url_for("roles.edit", account_id=account_id, role_id=new_role.id))


@bp.route("/accounts/<int:account_id>/roles/<int:role_id>/delete", methods=["GET", "POST"])
@rule(member("roles.manage"))
def delete(account_id, role_id):
    role = load_or_404(_role_or_404, role_id)
    form = ConfirmForm()
    error = _("System roles cannot be deleted.") if role.is_system else None
    if error is None and form.validate_on_submit():
        try:
            services.delete_role(current_user, g.account, role)
        except services.AccessError as refusal:
            db.session.rollback()
            error = str(refusal)
        else:
            db.session.commit()
            flash(_("Role “%(name)s” deleted.", name=role.name), "success")
            return redirect(url_for("roles.index", account_id=account_id))
    return render("roles/delete.html", account=g.account, role=role, form=form, error=error,
                  holders=services.role_holder_count(g.account, role), status=403 if error else 200)
