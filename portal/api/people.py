"""The account, its members and their access, roles and permissions."""

from __future__ import annotations

from flask import Response, g, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func

from portal.accounts import services as accounts
from portal.accounts.models import Membership
from portal.api import out, schemas
from portal.api.core import bp, created, endpoint, json_response, listed
from portal.api.problems import problem
from portal.extensions import db
from portal.roles import catalogue
from portal.roles import services as roles
from portal.roles.models import Grant
from portal.web import lists
from portal.web.access import member, on_mailbox


def _account_out(account) -> schemas.AccountOut:
    return schemas.AccountOut(id=account.id, name=account.name, self_registration=account.self_registration,
                              personal_mailboxes=account.personal_mailboxes,
                              personal_mailbox_role_id=account.personal_mailbox_role_id, created_at=account.created_at)


@bp.get("/accounts/<int:account_id>")
@endpoint(member(), responses={200: schemas.AccountOut}, tags=("account",))
def account(account_id):
    """The token's account."""
    return json_response(_account_out(g.account))


@bp.patch("/accounts/<int:account_id>")
@endpoint(member("account.settings"), body=schemas.AccountSettingsIn,
          responses={200: schemas.AccountOut, 422: None}, tags=("account",))
def account_settings(account_id, body: schemas.AccountSettingsIn):
    """Change the account's name, registration and personal-mailbox settings (what is left out stays)."""
    account = g.account
    accounts.update_settings(
        current_user, account, name=body.name if body.name is not None else account.name,
        self_registration=account.self_registration if body.self_registration is None else body.self_registration,
        personal_mailboxes=account.personal_mailboxes if body.personal_mailboxes is None else body.personal_mailboxes,
        personal_mailbox_role_id=body.personal_mailbox_role_id or account.personal_mailbox_role_id)
    db.session.commit()
    return json_response(_account_out(account))


# -- members ---------------------------------------------------------------------------

def _member_listing(query: schemas.MemberQuery) -> lists.Listing:
    return lists.Listing(q=query.q, filters={"role": str(query.role or ""), "kind": query.kind,
                                             "mailbox": query.mailbox, "status": query.status},
                         sort=query.sort, descending=query.dir == "desc", page=query.page, per_page=query.per_page)


def _member_out(membership) -> schemas.MemberOut:
    details = accounts.member_details([membership])[membership.id]
    return out.member(membership, membership.user, details, membership.account_id)


def _access_out(membership, page: int = 1, per_page: int = 50) -> schemas.AccessOut:
    """The member and one page of their grants (someone delegated on each of 10,000 mailboxes made a
    950 kB answer); a change answers with the first page."""
    held = Grant.membership_id == membership.id
    grants = db.session.execute(db.select(Grant).where(held)
                                .order_by(Grant.mailbox_id.is_not(None), Grant.id)
                                .limit(per_page).offset((page - 1) * per_page)).scalars()
    total = db.session.execute(db.select(func.count()).select_from(Grant).where(held)).scalar_one()
    return schemas.AccessOut(member=_member_out(membership), grants=[out.grant(item) for item in grants],
                             total=total, page=page, per_page=per_page)


def _membership(membership_id: int):
    return accounts.member_in_account(g.account, membership_id)


@bp.get("/accounts/<int:account_id>/members")
@endpoint(member("members.view"), query=schemas.MemberQuery, responses={200: None, 422: None}, tags=("members",))
def members(account_id, query: schemas.MemberQuery):
    """The account's members, searched, filtered, sorted and paged as on the Users page."""
    listing = _member_listing(query)
    page = lists.fetch(accounts.member_query(g.account, listing), listing, scalars=False,
                       counted=accounts.member_count_query(g.account, listing), key=Membership.id)
    details = accounts.member_details([membership for membership, _user in page.items])
    items = [out.member(membership, user, details[membership.id], account_id).model_dump(mode="json")
             for membership, user in page.items]
    return listed(page, items, "api.members", account_id=account_id)


@bp.get("/accounts/<int:account_id>/members/<int:membership_id>")
@endpoint(member("members.view"), query=schemas.PageQuery, responses={200: schemas.AccessOut, 404: None, 422: None},
          tags=("members",))
def member_access(account_id, membership_id, query: schemas.PageQuery):
    """One member and what they hold, over the account and on mailboxes, in pages (``page``,
    ``per_page``; ``total`` counts every grant)."""
    membership = _membership(membership_id)
    if membership is None:
        return problem(404, _("No such member in this account."))
    return json_response(_access_out(membership, query.page, query.per_page))


@bp.post("/accounts/<int:account_id>/members/<int:membership_id>/roles")
@endpoint(member("access.grant", also="members.view"), body=schemas.RoleGrantIn,
          responses={200: schemas.AccessOut, 404: None, 403: None, 422: None}, tags=("members",))
def grant_role(account_id, membership_id, body: schemas.RoleGrantIn):
    """Grant an account role (nobody grants what they do not hold)."""
    membership = _membership(membership_id)
    role = roles.role_in_account(g.account, body.role_id)
    if membership is None or role is None:
        return problem(404, _("No such member or role in this account."))
    roles.grant_role(current_user, g.account, membership, role)
    db.session.commit()
    return json_response(_access_out(membership))


@bp.put("/accounts/<int:account_id>/members/<int:membership_id>/permissions")
@endpoint(member("access.grant", also="members.view"), body=schemas.PermissionsIn,
          responses={200: schemas.AccessOut, 404: None, 403: None, 422: None}, tags=("members",))
def set_permissions(account_id, membership_id, body: schemas.PermissionsIn):
    """Make the member's single account permissions exactly these."""
    membership = _membership(membership_id)
    if membership is None:
        return problem(404, _("No such member in this account."))
    roles.set_single_permissions(current_user, g.account, membership, set(body.permissions))
    db.session.commit()
    return json_response(_access_out(membership))


@bp.post("/accounts/<int:account_id>/members/<int:membership_id>/mailboxes/<int:mailbox_id>/roles")
@endpoint(on_mailbox("mailbox.access", also="members.view"), body=schemas.RoleGrantIn,
          responses={200: schemas.AccessOut, 404: None, 403: None, 422: None}, tags=("members",))
def grant_mailbox_role(account_id, membership_id, mailbox_id, body: schemas.RoleGrantIn):
    """Grant a mailbox role on one mailbox."""
    membership = _membership(membership_id)
    role = roles.role_in_account(g.account, body.role_id)
    if membership is None or role is None:
        return problem(404, _("No such member or role in this account."))
    roles.grant_mailbox_role(current_user, g.account, membership, mailbox_id, role)
    db.session.commit()
    return json_response(_access_out(membership))


@bp.put("/accounts/<int:account_id>/members/<int:membership_id>/mailboxes/<int:mailbox_id>/permissions")
@endpoint(on_mailbox("mailbox.access", also="members.view"), body=schemas.PermissionsIn,
          responses={200: schemas.AccessOut, 404: None, 403: None, 422: None}, tags=("members",))
def set_mailbox_permissions(account_id, membership_id, mailbox_id, body: schemas.PermissionsIn):
    """Make the member's single permissions on one mailbox exactly these."""
    membership = _membership(membership_id)
    if membership is None:
        return problem(404, _("No such member in this account."))
    roles.set_mailbox_permissions(current_user, g.account, membership, mailbox_id, set(body.permissions))
    db.session.commit()
    return json_response(_access_out(membership))


@bp.delete("/accounts/<int:account_id>/members/<int:membership_id>/grants/<int:grant_id>")
@endpoint(member("access.grant", also="members.view"), responses={204: None, 404: None, 403: None, 409: None},
          tags=("members",))
def revoke(account_id, membership_id, grant_id):
    """Take away one role or permission (the account's last owner stays)."""
    grant = roles.grant_in_account(g.account, grant_id)
    if grant is None or grant.membership_id != membership_id:
        return problem(404, _("No such grant for this member."))
    roles.revoke_grant(current_user, g.account, grant)
    db.session.commit()
    return Response(status=204)


@bp.delete("/accounts/<int:account_id>/members/<int:membership_id>")
@endpoint(member("members.remove"), responses={204: None, 404: None, 403: None, 409: None}, tags=("members",))
def remove_member(account_id, membership_id):
    """Take a member out of the account (corporate users: see DELETE .../users/{id})."""
    membership = _membership(membership_id)
    if membership is None:
        return problem(404, _("No such member in this account."))
    accounts.remove_member(current_user, g.account, membership)
    db.session.commit()
    return Response(status=204)


# -- roles and permissions -----------------------------------------------------------

def _role_out(role) -> schemas.RoleOut:
    return out.role(role, roles.role_holder_count(g.account, role))


@bp.get("/accounts/<int:account_id>/roles")
@endpoint(member("roles.view"), responses={200: None}, tags=("roles",))
def role_list(account_id):
    """Every role of the account: the system ones and its own."""
    account_roles = roles.roles_for(g.account)
    holders = roles.holder_counts(g.account, account_roles)
    return json_response({"items": [out.role(role, holders.get(role.id, 0)).model_dump(mode="json")
                                    for role in account_roles]})


@bp.get("/accounts/<int:account_id>/roles/<int:role_id>")
@endpoint(member("roles.view"), responses={200: schemas.RoleOut, 404: None}, tags=("roles",))
def role(account_id, role_id):
    found = roles.role_in_account(g.account, role_id)
    if found is None:
        return problem(404, _("No such role in this account."))
    return json_response(_role_out(found))


@bp.post("/accounts/<int:account_id>/roles")
@endpoint(member("roles.manage"), body=schemas.RoleIn, responses={201: schemas.RoleOut, 403: None, 422: None},
          tags=("roles",), creates=True)
def create_role(account_id, body: schemas.RoleIn):
    """A custom role (nobody builds a role with permissions they do not hold)."""
    made = roles.create_role(current_user, g.account, name=body.name, scope=body.scope,
                             description=body.description, permissions=set(body.permissions))
    db.session.commit()
    return created(url_for("api.role", account_id=account_id, role_id=made.id, _external=True), _role_out(made))


@bp.put("/accounts/<int:account_id>/roles/<int:role_id>")
@endpoint(member("roles.manage"), body=schemas.RoleUpdateIn,
          responses={200: schemas.RoleOut, 403: None, 404: None, 422: None}, tags=("roles",))
def update_role(account_id, role_id, body: schemas.RoleUpdateIn):
    found = roles.role_in_account(g.account, role_id)
    if found is None:
        return problem(404, _("No such role in this account."))
    roles.update_role(current_user, g.account, found, name=body.name, description=body.description,
                      permissions=set(body.permissions))
    db.session.commit()
    return json_response(_role_out(found))


@bp.post("/accounts/<int:account_id>/roles/<int:role_id>/copy")
@endpoint(member("roles.manage"), responses={201: schemas.RoleOut, 403: None, 404: None}, tags=("roles",),
          creates=True)
def copy_role(account_id, role_id):
    found = roles.role_in_account(g.account, role_id)
    if found is None:
        return problem(404, _("No such role in this account."))
    made = roles.copy_role(current_user, g.account, found)
    db.session.commit()
    return created(url_for("api.role", account_id=account_id, role_id=made.id, _external=True), _role_out(made))


@bp.delete("/accounts/<int:account_id>/roles/<int:role_id>")
@endpoint(member("roles.manage"), responses={204: None, 403: None, 404: None}, tags=("roles",))
def delete_role(account_id, role_id):
    found = roles.role_in_account(g.account, role_id)
    if found is None:
        return problem(404, _("No such role in this account."))
    roles.delete_role(current_user, g.account, found)
    db.session.commit()
    return Response(status=204)


@bp.get("/accounts/<int:account_id>/permissions")
@endpoint(member("roles.view"), responses={200: None}, tags=("roles",))
def permission_catalogue(account_id):
    """Every permission there is, at account and mailbox scope."""
    return json_response({"items": [out.permission(item).model_dump() for item in catalogue.PERMISSIONS]})
