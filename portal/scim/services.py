"""SCIM resources onto the portal: Users are the account's corporate users, Groups its roles at
account scope.

This module only translates. Every change goes through the service that owns its rules
(``users.services`` to create, rename, suspend, restore and remove people; ``roles.services`` to
create, rename and delete roles and to grant and take them away), so SCIM can do nothing the
pages could not, and is refused for the same reasons, in SCIM's words. What the portal has no
column for (an identity provider's ids, the enterprise attributes) is kept in ``ScimProfile`` and
``ScimGroup``.

A write (POST, PUT, PATCH) builds the resource as the identity provider wants it, then
``replace_user`` / ``replace_group`` compare it with the resource as it is and call a service for
each difference: PATCH is applied by scim2-models to the current resource first, so every PATCH
shape an identity provider sends (paths or none, filters, any case of ``op``) ends the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from flask import abort, g
from scim2_models import (Context, InvalidValueException, ListResponse, MutabilityException, NotFoundException,
                          PatchOp, SearchRequest, UniquenessException)
from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import contains_eager

from portal.accounts.models import Account, Membership
from portal.audit.services import record
from portal.auth.models import User
from portal.auth.services import AuthError, find_user, normalize_email
from portal.extensions import db
from portal.roles import catalogue
from portal.roles import services as roles
from portal.roles.models import Grant, Role
from portal.scim import filters, schema
from portal.scim.models import ScimGroup, ScimProfile
from portal.timeutil import utcnow
from portal.users import services as users
from portal.web.inputs import MAX_ID, parse_id
from portal.web.urls import external_url

ENTERPRISE = str(schema.EnterpriseUser.__schema__)
# The longest text each kept attribute may hold (the columns of ScimProfile).
LIMITS = {"externalId": 255, "displayName": 200, "employeeNumber": 100, "department": 200}


@dataclass
class Page:
    total: int
    start_index: int
    resources: list
    # Groups: each resource's member ids (None: not asked for), written as plain JSON (``member_documents``).
    members: list | None = None

    def to_list_response(self, model) -> ListResponse:
        return ListResponse[model](total_results=self.total, start_index=self.start_index,
                                   items_per_page=len(self.resources), resources=self.resources)


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=timezone.utc) if moment is not None else None


def _paged(query, search: SearchRequest, attributes: dict, order_by) -> tuple[int, int, list]:
    """Filter, count and page ``query`` as the search asks: (total, start index, rows)."""
    if search.filter is not None:
        query = query.where(filters.to_sql(search.filter.ast, attributes))
    total = db.session.execute(select(func.count()).select_from(query.order_by(None).subquery())).scalar_one()
    start = min(search.start_index or 1, MAX_ID)  # beyond every row; and an offset the database can take
    count = schema.DEFAULT_COUNT if search.count is None else min(search.count, schema.MAX_RESULTS)
    rows = db.session.execute(query.order_by(order_by).offset(start - 1).limit(count)).all() if count else []
    return total, start, rows


def _clean(value: str | None, attribute: str) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split()) if attribute != "externalId" else value
    if len(value) > LIMITS[attribute]:
        raise InvalidValueException(detail=f"{attribute} is at most {LIMITS[attribute]} characters.")
    return value or None


# -- users ------------------------------------------------------------------------------------

def user_query(account: Account):
    """(User, ScimProfile or None) of every corporate user of the account: the /Users collection."""
    return (select(User, ScimProfile)
            .join(Membership, and_(Membership.user_id == User.id, Membership.account_id == account.id))
            .outerjoin(ScimProfile, and_(ScimProfile.user_id == User.id, ScimProfile.account_id == account.id))
            .where(User.is_corporate, User.corporate_account_id == account.id))


def _user_attributes() -> dict[str, filters.Attribute]:
    shown_name = db.case((ScimProfile.id.is_(None), User.name), else_=ScimProfile.display_name)
    address = filters.text(User.email, stored_lower=True)
    return {
        "id": filters.identifier(User.id),
        "username": address,
        "externalid": filters.text(ScimProfile.external_id, case_exact=True),
        "displayname": filters.text(shown_name),
        "active": filters.boolean(User.suspended_at.is_(None)),
        "emails.value": address,
        "emails.type": filters.constant("work"),
        "emails.primary": filters.constant(True),
        f"{ENTERPRISE.lower()}:employeenumber": filters.text(ScimProfile.employee_number),
        f"{ENTERPRISE.lower()}:department": filters.text(ScimProfile.department),
        f"{ENTERPRISE.lower()}:manager.value": filters.identifier(ScimProfile.manager_id),
    }


def user_in_account(account: Account, user_id: str) -> tuple[User, ScimProfile | None]:
    number = parse_id(user_id)
    row = db.session.execute(user_query(account).where(User.id == number)).first() if number else None
    if row is None:
        raise NotFoundException(detail=f"No user {user_id[:40]} in this account.")
    return row[0], row[1]


def user_by_id(account: Account, user_id: str) -> schema.UserResource:
    user, profile = user_in_account(account, user_id)
    return user_resource(user, profile, _visible_managers(account, [profile.manager_id] if profile else []))


def search_users(account: Account, search: SearchRequest) -> Page:
    total, start, rows = _paged(user_query(account), search, _user_attributes(), User.id)
    managers = _visible_managers(account, [profile.manager_id for _, profile in rows if profile is not None])
    return Page(total, start, [user_resource(user, profile, managers) for user, profile in rows])


def _visible_managers(account: Account, ids: list[int | None]) -> set[int]:
    """Which of ``ids`` are users of the account, in one statement."""
    wanted = {manager_id for manager_id in ids if manager_id}
    if not wanted:
        return set()
    return set(db.session.execute(user_query(account).with_only_columns(User.id).where(User.id.in_(wanted))).scalars())


def _name_parts(user: User, profile: ScimProfile | None) -> tuple[str, str]:
    """The name as the identity provider split it, unless the portal's name changed since."""
    if profile is not None and profile.given_name and profile.family_name \
            and f"{profile.given_name} {profile.family_name}" == user.name:
        return profile.given_name, profile.family_name
    first, _, last = (user.name or "").partition(" ")
    return first, last


def user_location(user_id: int) -> str:
    return external_url("scim.user", user_id=str(user_id))


def user_resource(user: User, profile: ScimProfile | None, managers: set[int]) -> schema.UserResource:
    """The User resource; ``managers``: the ids among the managers named that are still users of
    the account (a manager who left is not named)."""
    given, family = _name_parts(user, profile)
    resource = schema.UserResource(
        id=str(user.id), user_name=user.email,
        name=schema.Name(given_name=given or None, family_name=family or None),
        display_name=profile.display_name if profile is not None else (user.name or None),
        active=user.suspended_at is None,
        emails=[schema.Email(value=user.email, type="work", primary=True)],
        external_id=profile.external_id if profile is not None else None,
        meta={"resourceType": "User", "created": _aware(user.created_at),
              "lastModified": _aware(max(user.created_at, profile.updated_at) if profile else user.created_at),
              "location": user_location(user.id)},
    )
    if profile is None:
        return resource
    manager = None
    if profile.manager_id in managers:
        manager = schema.Manager(value=str(profile.manager_id), ref=user_location(profile.manager_id))
    if profile.employee_number or profile.department or manager:
        resource[schema.EnterpriseUser] = schema.EnterpriseUser(
            employee_number=profile.employee_number, department=profile.department, manager=manager)
    return resource


def _manager_id(account: Account, wanted: schema.EnterpriseUser | None) -> int | None:
    manager = wanted.manager if wanted is not None else None
    if manager is None or not (manager.value or manager.ref):
        return None
    reference = manager.value or str(manager.ref).rstrip("/").rsplit("/", 1)[-1]
    number = parse_id(reference)
    if number is None or not _visible_managers(account, [number]):
        raise InvalidValueException(detail=f"The manager {reference[:40]} is not a user of this account.")
    return number


def _names(wanted: schema.UserResource, given: str | None, family: str | None) -> tuple[str | None, str | None]:
    """The first and last names asked for; a part left out keeps ``given``/``family``."""
    if wanted.name is not None:
        given = wanted.name.given_name or given
        family = wanted.name.family_name or family
    return given, family


def _profile(account: Account, user: User) -> ScimProfile:
    profile = db.session.execute(select(ScimProfile).where(
        ScimProfile.account_id == account.id, ScimProfile.user_id == user.id)).scalar_one_or_none()
    if profile is None:
        profile = ScimProfile(account_id=account.id, user_id=user.id)
        db.session.add(profile)
    return profile


def _apply_profile(actor: User, account: Account, user: User, profile: ScimProfile,
                   wanted: schema.UserResource, shown_name: str | None = None) -> list[str]:
    """Keep what the portal has no column for; return the attributes that changed. A profile made
    just now showed ``shown_name`` as its displayName (the portal's name): sent back, it changes nothing."""
    extension = wanted[schema.EnterpriseUser]
    values = {
        "external_id": _clean(wanted.external_id, "externalId"),
        "display_name": _clean(wanted.display_name, "displayName"),
        "employee_number": _clean(extension.employee_number if extension else None, "employeeNumber"),
        "department": _clean(extension.department if extension else None, "department"),
        "manager_id": _manager_id(account, extension),
    }
    before = {key: getattr(profile, key) for key in values}
    if before["display_name"] is None:
        before["display_name"] = shown_name
    changed = sorted(key for key, value in values.items() if before[key] != value)
    stored = [key for key, value in values.items() if getattr(profile, key) != value]
    if changed:
        # As on the user's page: what others know someone by is changed only by a caller who holds
        # every right they hold (an Administrator's token does not rewrite the Owner's).
        users.require_outranks(actor, account, user, elsewhere=False)
    for key in stored:
        setattr(profile, key, values[key])
    if changed:
        record("user.scim_profile", account=account, target=user, actor=actor, changed=changed)
    return changed


def create_user(actor: User, account: Account, wanted: schema.UserResource) -> User:
    """POST /Users: a corporate user made as the pages make one (personal mailbox per the
    account's setting; the onboarding link mailed where it can be, never shown)."""
    if not wanted.user_name:
        raise InvalidValueException(detail="userName is required: the person's address on one of the account's "
                                           "enabled domains.")
    try:
        address = normalize_email(wanted.user_name)
    except AuthError as error:
        raise InvalidValueException(detail=f"userName: {error}") from None
    # Off the account's own active domains the answer is the same whoever has a profile there: the
    # portal's people are no business of another account's identity provider.
    users.corporate_domain_for(account, address)
    existing = find_user(address)
    if existing is not None and not users.vacant_profile(existing):  # a vacant one is taken over, as in the pages
        mine = users.is_corporate_of(existing, account)
        raise UniquenessException(detail=f"{address} is already a user of this account." if mine else
                                  f"{address} already has a profile in the portal: invite them from the account's "
                                  "pages instead.")
    given, family = _names(wanted, None, None)
    user, _link = users.create_corporate_user(actor, account, first_name=given or "", last_name=family or "",
                                              email=address, personal_mailbox=account.personal_mailboxes,
                                              link_shown=False)
    profile = _profile(account, user)
    profile.given_name, profile.family_name = _cleaned_name(given), _cleaned_name(family)
    _apply_profile(actor, account, user, profile, wanted)
    if wanted.active is False:
        users.suspend(actor, account, user)
    db.session.flush()
    return user


def _cleaned_name(value: str | None) -> str | None:
    return " ".join(value.split()) if value else None


def replace_user(actor: User, account: Account, user: User, profile: ScimProfile | None,
                 wanted: schema.UserResource) -> None:
    """PUT /Users/<id>, and the end of every PATCH: make the person what ``wanted`` says.
    The attributes SCIM requires (name, active) keep their value when left out."""
    if wanted.user_name is not None and not wanted.user_name.strip():
        raise InvalidValueException(detail="userName is required: the person's login address, which cannot be "
                                           "changed.")
    if wanted.user_name and not _same_address(wanted.user_name, user.email):
        raise MutabilityException(detail="userName is the person's login address, which cannot be changed.")
    given, family = _name_parts(user, profile)
    shown_name = None if profile is not None else user.name or None  # a profile made now showed the name
    new_given, new_family = (_cleaned_name(part) for part in _names(wanted, given, family))
    for part, before, label in ((new_given, given, "givenName"), (new_family, family, "familyName")):
        # A part sent anew is kept as such, even when the full name is the same; one the portal split
        # from its own name (a first name with a space) is not the provider's to answer for.
        if part and part != before and len(part) > users.NAME_LIMIT:
            raise InvalidValueException(detail=f"name.{label} is at most {users.NAME_LIMIT} characters.")
    profile = profile or _profile(account, user)
    changed = (new_given, new_family) != (profile.given_name, profile.family_name)
    if f"{new_given} {new_family}" != user.name:
        users.update_settings(actor, account, user, first_name=new_given or "", last_name=new_family or "",
                              timezone=user.timezone, phone=user.phone, default_mailbox_id=user.default_mailbox_id,
                              recovery_email=user.recovery_email or "")
        changed = True
    # A part too long to keep is not kept: the name is then split from the portal's own again.
    profile.given_name, profile.family_name = (part if part and len(part) <= users.NAME_LIMIT else None
                                               for part in (new_given, new_family))
    changed = bool(_apply_profile(actor, account, user, profile, wanted, shown_name)) or changed
    if wanted.active is False and user.suspended_at is None:
        users.suspend(actor, account, user)
        changed = True
    elif wanted.active is True and user.suspended_at is not None:
        users.restore(actor, account, user)
        changed = True
    if changed:
        profile.updated_at = utcnow()
    db.session.flush()


MANAGER = f"{ENTERPRISE}:manager"


def _manager_value(value):
    """Entra ID sends the manager as its id alone, or as a list of one value."""
    if isinstance(value, str):
        return {"value": value}
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        return value[0]
    return value


def _only_address(value, address: str) -> bool:
    if isinstance(value, str):
        return _same_address(value, address)
    if isinstance(value, dict):
        return _same_address(str(value.get("value", "")), address)
    return isinstance(value, list) and bool(value) and all(_only_address(item, address) for item in value)


def _as_rfc_operation(operation, address: str):
    """A PATCH operation as identity providers write it, in the form RFC 7644 gives it; None when
    it only restates the person's address (``emails`` is read-only and ``userName`` immutable: the
    login address, which is not case-exact, so restated in another case it is the same)."""
    if not isinstance(operation, dict):
        return operation
    path, value = operation.get("path"), operation.get("value")
    if isinstance(path, str) and path.strip().lower() in ("manager", MANAGER.lower()):
        return {**operation, "path": MANAGER, "value": _manager_value(value)}
    if isinstance(path, str) and path.strip().lower().startswith("emails") and _only_address(value, address):
        return None
    if isinstance(path, str) and path.strip().lower() == "username" and _same_address(value, address):
        return None
    if path is None and isinstance(value, dict):
        kept = {key: _manager_value(item) if str(key).lower() == MANAGER.lower() else item
                for key, item in value.items()
                if not (str(key).lower() == "username" and _same_address(item, address))}
        return {**operation, "value": kept} if kept or not value else None
    return operation


def _same_address(value, address: str) -> bool:
    """Whether ``value`` names the stored ``address``: in any case, with spaces around it, or with
    its domain in Unicode (addresses are kept lower-cased, the domain in its ASCII form)."""
    if not isinstance(value, str):
        return False
    if value.strip().lower() == address:
        return True
    try:
        return normalize_email(value) == address
    except AuthError:
        return False


def read_user_patch(payload: dict, user: User) -> PatchOp | None:
    """The PATCH request for ``user``; None when nothing in it changes anything."""
    operations = payload.get("Operations", payload.get("operations"))
    if isinstance(operations, list):
        kept = [operation for operation in (_as_rfc_operation(item, user.email) for item in operations)
                if operation is not None]
        if operations and not kept:
            return None
        payload = {**{key: item for key, item in payload.items() if key.lower() != "operations"}, "Operations": kept}
    return read(PatchOp[schema.UserResource], payload, Context.RESOURCE_PATCH_REQUEST)


def patch_user(actor: User, account: Account, user: User, profile: ScimProfile | None, patch: PatchOp) -> None:
    resource = user_resource(user, profile, _visible_managers(account, [profile.manager_id] if profile else []))
    with schema.POLICY:
        patch.patch(resource)
    replace_user(actor, account, user, profile, resource)


def delete_user(actor: User, account: Account, user: User) -> list[str]:
    """DELETE /Users/<id>: removed as an admin removes a corporate user, their personal
    mailboxes kept, disabled or deleted as the account's setting says."""
    membership = roles.membership_of(user, account)
    outcome = users.remove_corporate_user(actor, account, membership, account.deprovisioned_mailboxes)
    db.session.execute(db.delete(ScimProfile).where(ScimProfile.account_id == account.id,
                                                    ScimProfile.user_id == user.id))
    return outcome


# -- groups -----------------------------------------------------------------------------------

def group_query(account: Account):
    """(Role, ScimGroup or None) of the account's roles at account scope: the /Groups collection."""
    return (roles.roles_query(account, catalogue.ACCOUNT).add_columns(ScimGroup)
            .outerjoin(ScimGroup, and_(ScimGroup.role_id == Role.id, ScimGroup.account_id == account.id)))


def _holders(account: Account):
    """(role id, user id) of the account-wide grants held by the account's corporate users."""
    return (select(Grant.role_id, User.id).join(Membership, Membership.id == Grant.membership_id)
            .join(User, User.id == Membership.user_id)
            .where(Membership.account_id == account.id, Grant.mailbox_id.is_(None),
                   User.is_corporate, User.corporate_account_id == account.id))


def _group_attributes(account: Account) -> dict[str, filters.Attribute]:
    def member(op, value):
        if op is None:
            return exists(_holders(account).where(Grant.role_id == Role.id))
        number = parse_id(value) if isinstance(value, str) else None
        if op != filters.CompareOperator.eq or number is None:
            raise filters.InvalidFilterException(detail='Members are filtered with value eq "<user id>" only.')
        return exists(_holders(account).where(Grant.role_id == Role.id, User.id == number))

    return {
        "id": filters.identifier(Role.id),
        "displayname": filters.text(Role.name),
        "externalid": filters.text(ScimGroup.external_id, case_exact=True),
        "members.value": member,
    }


def _member_ids(account: Account, role_ids: list[int]) -> dict[int, list[int]]:
    members: dict[int, list[int]] = {role_id: [] for role_id in role_ids}
    if role_ids:
        for role_id, user_id in db.session.execute(_holders(account).where(Grant.role_id.in_(role_ids))
                                                   .order_by(User.id)):
            members[role_id].append(user_id)
    return members


def group_location(role_id: int) -> str:
    return external_url("scim.group", role_id=str(role_id))


def group_resource(role: Role, link: ScimGroup | None, member_ids: list[int] | None) -> schema.Group:
    # A group may hold thousands of members: their references are made from one address (not one
    # URL built per member), and each member is made without validating again what is known good.
    prefix = user_location(0)[:-1]
    members = None if member_ids is None else [
        schema.GroupMember.model_construct(value=str(user_id), ref=f"{prefix}{user_id}") for user_id in member_ids]
    updated = max(role.updated_at, link.updated_at) if link is not None else role.updated_at
    return schema.Group(id=str(role.id), display_name=role.name, members=members or None,
                        external_id=link.external_id if link is not None else None,
                        meta={"resourceType": "Group", "created": _aware(role.created_at),
                              "lastModified": _aware(max(updated, role.created_at)),
                              "location": group_location(role.id)})


def group_in_account(account: Account, role_id: str) -> tuple[Role, ScimGroup | None]:
    number = parse_id(role_id)
    row = db.session.execute(group_query(account).where(Role.id == number)).first() if number else None
    if row is None:
        raise NotFoundException(detail=f"No group {role_id[:40]} in this account.")
    return row[0], row[1]


def member_documents(member_ids: list[int], keys: tuple[str, ...] = ("value", "$ref")) -> list[dict]:
    """A group's members as its answer lists them (``keys``: the parts asked for), written as JSON
    directly: through the models a member cost 20 µs, a role held by 5,000 people 170 ms a read,
    and a page of groups as many times as it holds such roles (a scale review)."""
    prefix = user_location(0)[:-1]
    return [{key: str(user_id) if key == "value" else f"{prefix}{user_id}" for key in keys} for user_id in member_ids]


def search_groups(account: Account, search: SearchRequest, with_members: bool) -> Page:
    """A page of groups; their members (when wanted) in ``Page.members``, written by the answer."""
    total, start, rows = _paged(group_query(account), search, _group_attributes(account), Role.id)
    members = _member_ids(account, [role.id for role, _ in rows]) if with_members else {}
    return Page(total, start, [group_resource(role, link, None) for role, link in rows],
                [members.get(role.id) for role, _ in rows] if with_members else None)


def member_ids(account: Account, role: Role) -> list[int]:
    """The ids of the account's corporate users holding the role: the group's members."""
    return _member_ids(account, [role.id])[role.id]


def _same_name_taken(account: Account, name: str, role: Role | None) -> bool:
    clash = db.session.execute(roles.roles_query(account, catalogue.ACCOUNT).with_only_columns(Role.id)
                               .where(func.lower(Role.name) == " ".join(name.split()).lower())).scalars().all()
    return any(role_id != getattr(role, "id", None) for role_id in clash)


def _wanted_member_ids(account: Account, wanted: schema.Group, current_ids: list[int]) -> list[int]:
    """The user ids the group should have, each checked to be a user of the account: those not
    members already, one statement per thousand, however many a provider sends."""
    references = [member.value or (str(member.ref).rstrip("/").rsplit("/", 1)[-1] if member.ref else "")
                  for member in wanted.members or []]
    ids = list(dict.fromkeys(parse_id(reference) for reference in references))
    known: set[int] = set(current_ids)
    numbers = [number for number in ids if number is not None and number not in known]
    for start in range(0, len(numbers), 1000):
        chunk = numbers[start:start + 1000]
        known |= set(db.session.execute(user_query(account).with_only_columns(User.id)
                                        .where(User.id.in_(chunk))).scalars())
    for reference in references:
        if parse_id(reference) not in known:
            raise InvalidValueException(detail=f"Member {reference[:40]} is not a user of this account.")
    return ids


def _set_members(actor: User, account: Account, role: Role, wanted_ids: list[int], current_ids: list[int]) -> None:
    current, wanted = set(current_ids), set(wanted_ids)
    added = sorted(wanted - current)
    memberships: list[Membership] = []
    for start in range(0, len(added), 1000):
        memberships += db.session.execute(select(Membership).join(User, User.id == Membership.user_id).options(
            contains_eager(Membership.user)).where(Membership.account_id == account.id,
                                                   Membership.user_id.in_(added[start:start + 1000]))).scalars()
    if memberships:
        roles.grant_role_to_many(actor, account, memberships, role)
    for user_id in sorted(current - wanted):
        # Every such grant: two requests at once could each have made one (nothing in the
        # database stops it), and the role is taken away only when both are.
        for grant in db.session.execute(select(Grant).join(Membership, Membership.id == Grant.membership_id).where(
                Membership.account_id == account.id, Membership.user_id == user_id, Grant.role_id == role.id,
                Grant.mailbox_id.is_(None))).scalars().all():
            roles.revoke_grant(actor, account, grant)


def _set_external_id(account: Account, role: Role, link: ScimGroup | None, external_id: str | None) -> ScimGroup:
    external_id = _clean(external_id, "externalId")
    if link is None:
        link = ScimGroup(account_id=account.id, role_id=role.id)
        db.session.add(link)
    if link.external_id != external_id:
        link.external_id = external_id
    link.updated_at = utcnow()
    return link


def create_group(actor: User, account: Account, wanted: schema.Group) -> Role:
    """POST /Groups: a custom role at account scope granting nothing yet (an administrator
    chooses its permissions in the pages), held by the members given."""
    name = wanted.display_name or ""
    if _same_name_taken(account, name, None):
        raise UniquenessException(detail=f"A role named “{' '.join(name.split())}” already exists in this account.")
    member_ids = _wanted_member_ids(account, wanted, [])
    role = roles.create_role(actor, account, name=name, scope=catalogue.ACCOUNT, permissions=set(),
                             description="Made by an identity provider (SCIM). It grants nothing until an "
                                         "administrator gives it permissions.")
    _set_external_id(account, role, None, wanted.external_id)
    _set_members(actor, account, role, member_ids, [])
    db.session.flush()
    return role


def replace_group(actor: User, account: Account, role: Role, link: ScimGroup | None, wanted: schema.Group,
                  current_members: list[int] | None) -> None:
    """PUT /Groups/<id>, and the end of every PATCH. ``current_members`` None: the members
    are not being changed (a PATCH that does not touch them)."""
    name = " ".join((wanted.display_name or role.name).split())
    # A system role's name differing only in case is the same name (displayName is not case-exact):
    # an identity provider that matched it that way may send it back as it spells it.
    if name != role.name and not (role.is_system and name.lower() == role.name.lower()):
        if not g.access.can("roles.manage"):
            abort(403, description="Renaming a group renames its role, which needs the permission to manage roles.")
        if _same_name_taken(account, name, role):
            raise UniquenessException(detail=f"A role named “{name}” already exists in this account.")
        roles.update_role(actor, account, role, name=name, description=role.description,
                          permissions=set(role.permissions))
    if current_members is not None:
        _set_members(actor, account, role, _wanted_member_ids(account, wanted, current_members), current_members)
    _set_external_id(account, role, link, wanted.external_id)
    db.session.flush()


def _attribute(path) -> str:
    """The attribute a PATCH path names, lower case: ``members`` for ``members``,
    ``members[value eq "7"]``, ``members.value`` and their schema-qualified forms
    (``urn:ietf:params:scim:schemas:core:2.0:Group:members``, RFC 7644 §3.10)."""
    text = str(path).lower().split("[", 1)[0]
    if text.startswith("urn:"):
        text = text.rsplit(":", 1)[-1]
    return text.split(".", 1)[0]


def patch_group(actor: User, account: Account, role: Role, link: ScimGroup | None, patch: PatchOp) -> None:
    touches_members = any(operation.path is None or _attribute(operation.path) == "members"
                          for operation in patch.operations or [])
    current = member_ids(account, role) if touches_members else None
    resource = group_resource(role, link, current)
    with schema.POLICY:
        patch.patch(resource)
    replace_group(actor, account, role, link, resource, current)


def delete_group(actor: User, account: Account, role: Role) -> None:
    """DELETE /Groups/<id>: the custom role deleted (its holders lose it); system roles stay."""
    roles.delete_role(actor, account, role)


# -- reading requests -------------------------------------------------------------------------

def read(model, payload, context: Context):
    """A request body as the model, under the tolerant policy (see ``schema``)."""
    return model.model_validate(payload, scim_ctx=context, scim_policy=schema.POLICY)


def search_request(model, values: dict) -> SearchRequest:
    """A search (query parameters or a /.search body). Sorting is not offered
    (ServiceProviderConfig says so), so ``sortBy`` and ``sortOrder`` are ignored, as RFC 7644
    §3.4.2.3 lets a service provider do."""
    values = {key: value for key, value in values.items() if key not in ("sortBy", "sortOrder")}
    return SearchRequest[model].model_validate(values, scim_ctx=Context.SEARCH_REQUEST, scim_policy=schema.POLICY)


MEMBER_KEYS = ("value", "$ref")


def member_keys(search: SearchRequest) -> tuple[str, ...]:
    """What a group answer says of each member: ``value`` and ``$ref``, or those of them that
    ``attributes`` names (``members.value``), less those ``excludedAttributes`` names; none when
    the caller left the members out (Entra ID asks ``excludedAttributes=members`` for exactly this).
    The members are written after the model (``member_documents``), so their parts are chosen here
    (a review: ``attributes=members.value`` gave $ref too)."""
    def parts(paths) -> set[str] | None:
        """The members' parts ``paths`` name (every one for ``members`` itself), None for none."""
        named: set[str] | None = None
        for path in paths or []:
            text = str(path).lower()
            if text.startswith("urn:"):
                text = text.rsplit(":", 1)[-1]
            attribute, _dot, part = text.partition(".")
            if attribute == "members":
                named = (named or set()) | ({part} if part else set(MEMBER_KEYS))
        return named

    chosen = (parts(search.attributes) or set()) if search.attributes else set(MEMBER_KEYS)
    chosen -= parts(search.excluded_attributes) or set()
    return tuple(key for key in MEMBER_KEYS if key in chosen)


def members_wanted(search: SearchRequest) -> bool:
    """Whether a group answer lists members at all."""
    return bool(member_keys(search))
