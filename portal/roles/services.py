"""Who holds what, and the rules for changing it.

``account_permissions`` is the one answer to "what may this user do in this
account"; views (through the access rules), templates (``can``) and services
all ask it. The escalation rule lives here too: nobody grants, or builds into
a role, a permission they do not hold themselves.
"""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from functools import cache

from flask_babel import gettext as _
from sqlalchemy import bindparam, func, insert, or_
from sqlalchemy.orm import joinedload, lazyload, selectinload

from portal.accounts.models import Account, Membership
from portal.audit.services import record, record_each
from portal.auth.models import User
from portal.extensions import db
from portal.i18n import StoredReason, later
from portal.roles import catalogue
from portal.roles.models import Grant, Role, RolePermission
from portal.web import lists


class AccessError(StoredReason, ValueError):
    """A change to roles or grants that the rules forbid; the message says why."""


class RoleNameError(AccessError):
    """A role's name the rules refuse (shown at the name field)."""


def ensure_system_roles() -> None:
    """Create the rows of the system roles that are missing; keep names in step with code.
    The rows hold the English names (workbooks and identity providers match on them); pages show
    ``Role.label``, in the reader's language."""
    existing = {role.system_key: role for role in db.session.execute(
        db.select(Role).where(Role.system_key.is_not(None))).scalars()}
    for definition in catalogue.SYSTEM_ROLES:
        name, description = catalogue.english(definition.name), catalogue.english(definition.description)
        role = existing.get(definition.key)
        if role is None:
            db.session.add(Role(system_key=definition.key, scope=definition.scope,
                                name=name, description=description))
        else:
            role.name, role.description, role.scope = name, description, definition.scope
    db.session.flush()


def system_role(key: str) -> Role:
    return db.session.execute(db.select(Role).where(Role.system_key == key)).scalar_one()


def membership_of(user: User, account: Account | int) -> Membership | None:
    account_id = getattr(account, "id", account)
    return db.session.execute(
        db.select(Membership).where(Membership.account_id == account_id, Membership.user_id == user.id)
    ).scalar_one_or_none()


def account_grants(membership: Membership) -> list[Grant]:
    """The member's grants over the whole account (not those on single mailboxes)."""
    return list(db.session.execute(
        db.select(Grant).where(Grant.membership_id == membership.id, Grant.mailbox_id.is_(None))
        .order_by(Grant.id)).scalars())


def mailbox_grants(membership: Membership, mailbox_id: int) -> list[Grant]:
    return list(db.session.execute(
        db.select(Grant).where(Grant.membership_id == membership.id, Grant.mailbox_id == mailbox_id)
        .order_by(Grant.id)).scalars())


def permissions_of_grants(grants) -> frozenset[str]:
    held: set[str] = set()
    for grant in grants:
        held |= grant.role.permissions if grant.role is not None else {grant.permission}
    return frozenset(held)


def _granted(rows) -> frozenset[str]:
    """Permission codes from rows of (system role key, single permission, custom role's permission)."""
    held: set[str] = set()
    for system_key, permission, role_permission in rows:
        if system_key is not None:
            held |= catalogue.SYSTEM_BY_KEY[system_key].permissions
        elif permission is not None:
            held.add(permission)
        elif role_permission is not None:
            held.add(role_permission)
    return frozenset(held)


def _with_holdings(query):
    """``query`` (from memberships) joined to what the user's account-wide grants hold: rows of
    (..., system role key, single permission, custom role's permission), one per permission."""
    return (query.outerjoin(Grant, (Grant.membership_id == Membership.id) & Grant.mailbox_id.is_(None))
            .add_columns(Role.system_key, Grant.permission, RolePermission.permission)
            .outerjoin(Role, Role.id == Grant.role_id)
            .outerjoin(RolePermission, RolePermission.role_id == Grant.role_id))


def held_in(user: User, account: Account | int) -> tuple[int | None, frozenset[str]]:
    """The user's membership of the account (its id, None for none) and the permissions their
    account-wide grants hold (not limited to account scope), read in one statement."""
    account_id = getattr(account, "id", account)
    rows = db.session.execute(_with_holdings(db.select(Membership.id).select_from(Membership)).where(
        Membership.account_id == account_id, Membership.user_id == user.id)).all()
    if not rows:
        return None, frozenset()
    return rows[0][0], _granted(row[1:] for row in rows)


@cache
def _access_statement():
    """``access_to``'s statement, built once: building it took longer than running it (0.15 ms)."""
    return _with_holdings(
        db.select(Account, Membership.id).select_from(Account).outerjoin(
            Membership, (Membership.account_id == Account.id) & (Membership.user_id == bindparam("user_id"))))\
        .where(Account.id == bindparam("account_id"))


def access_to(user: User, account_id: int) -> tuple[Account | None, int | None, frozenset[str]]:
    """The account, the user's membership of it (its id) and what their account-wide grants
    hold (as ``held_in``): one statement, for the access check every account page makes."""
    rows = db.session.execute(_access_statement(), {"user_id": user.id, "account_id": account_id}).all()
    if not rows:
        return None, None, frozenset()
    account, membership_id = rows[0][0], rows[0][1]
    return account, membership_id, _granted(row[2:] for row in rows) if membership_id is not None else frozenset()


def account_permissions(user: User, account: Account | int) -> frozenset[str]:
    if user.is_superadmin:
        return catalogue.codes(catalogue.ACCOUNT)
    return held_in(user, account)[1] & catalogue.codes(catalogue.ACCOUNT)


def account_permissions_of(account_id: int, users) -> dict[int, frozenset[str]]:
    """``account_permissions`` of several people in one account, by user id: one statement for them all."""
    users = list(users)
    every = catalogue.codes(catalogue.ACCOUNT)
    rows: dict[int, list] = {user.id: [] for user in users}
    members = [user.id for user in users if not user.is_superadmin]
    if members:
        holdings = _with_holdings(db.select(Membership.user_id).select_from(Membership)).where(
            Membership.account_id == account_id, Membership.user_id.in_(members))
        for user_id, *row in db.session.execute(holdings):
            rows[user_id].append(row)
    return {user.id: every if user.is_superadmin else _granted(rows[user.id]) & every for user in users}


def mailbox_powers(account_held: frozenset[str]) -> frozenset[str]:
    """What account-wide permissions give on every mailbox of the account."""
    if "mailboxes.manage" in account_held:
        return catalogue.codes(catalogue.MAILBOX)
    return frozenset({"mailbox.view"}) if "mailboxes.view" in account_held else frozenset()


def granted_on_mailboxes(membership_id: int | None, mailbox_ids) -> dict[int, frozenset[str]]:
    """Per mailbox, what the member's grants on it hold: one statement for them all."""
    ids = set(mailbox_ids)
    found: dict[int, list] = {mailbox_id: [] for mailbox_id in ids}
    if membership_id is None or not ids:
        return {mailbox_id: frozenset() for mailbox_id in ids}
    for mailbox_id, *row in db.session.execute(
            db.select(Grant.mailbox_id, Role.system_key, Grant.permission, RolePermission.permission)
            .outerjoin(Role, Role.id == Grant.role_id)
            .outerjoin(RolePermission, RolePermission.role_id == Grant.role_id)
            .where(Grant.membership_id == membership_id, Grant.mailbox_id.in_(ids))):
        found[mailbox_id].append(row)
    return {mailbox_id: _granted(rows) for mailbox_id, rows in found.items()}


def mailboxes_granted(membership_id: int | None, permission: str = "mailbox.view"):
    """A select of the ids of the mailboxes on which the member's own grants hold ``permission``
    (a role holding it, or the permission itself): a grant of "Send as" alone shows no mailbox."""
    system_keys = [role.key for role in catalogue.SYSTEM_ROLES
                   if role.scope == catalogue.MAILBOX and permission in role.permissions]
    return (db.select(Grant.mailbox_id).outerjoin(Role, Role.id == Grant.role_id)
            .where(Grant.membership_id == (membership_id or -1), Grant.mailbox_id.is_not(None),
                   or_(Grant.permission == permission, Role.system_key.in_(system_keys),
                       Grant.role_id.in_(db.select(RolePermission.role_id)
                                         .where(RolePermission.permission == permission)))))


def members_holding(account: Account, permission: str) -> list[User]:
    """The account's members who hold ``permission`` over the whole account: two queries,
    whatever the number of members (for notifying administrators)."""
    grants: dict[int, list[Grant]] = {}
    for grant in db.session.execute(db.select(Grant).join(Membership, Membership.id == Grant.membership_id).where(
            Membership.account_id == account.id, Grant.mailbox_id.is_(None))).scalars():
        grants.setdefault(grant.membership_id, []).append(grant)
    rows = db.session.execute(db.select(Membership.id, User).join(User, User.id == Membership.user_id)
                              .where(Membership.account_id == account.id).order_by(User.email)).all()
    return [user for membership_id, user in rows
            if user.is_superadmin or permission in permissions_of_grants(grants.get(membership_id, []))]


def roles_query(account: Account, scope: str | None = None):
    """The roles the account may use (the system roles and its own), as a query to filter and page."""
    return _usable_roles(account.id, scope)


def _usable_roles(account_id, scope: str | None):
    """``roles_query`` for an account id, or a parameter standing for one."""
    query = db.select(Role).where((Role.account_id == account_id) | Role.system_key.is_not(None))
    return query.where(Role.scope == scope) if scope else query


def roles_for(account: Account, scope: str | None = None, *, permissions: bool = True) -> list[Role]:
    """The roles the account may use, system roles first; ``permissions=False`` leaves their
    permissions unread (for a list of names)."""
    return list(db.session.execute(_roles_statement(scope, permissions), {"account_id": account.id}).scalars())


@cache
def _roles_statement(scope: str | None, permissions: bool):
    """``roles_for``'s statement, built once per scope (the Users and Roles pages make it every time)."""
    query = _usable_roles(bindparam("account_id"), scope).order_by(Role.system_key.is_(None), Role.scope, Role.name)
    return query if permissions else query.options(lazyload(Role.permission_rows))


def role_in_account(account: Account, role_id: int) -> Role | None:
    role = db.session.get(Role, role_id)
    if role is None or (role.account_id not in (None, account.id)):
        return None
    return role


# -- escalation -----------------------------------------------------------

def _handed_on(actor: User, account_id: int, held: frozenset[str], *, mailbox: bool = False) -> frozenset[str]:
    """What ``actor`` may hand on of ``held``: all of it, unless they act through an API token,
    which hands on no more than its scopes reach (a token made for people's settings makes nobody owner)."""
    from portal.tokens.services import reach

    limit = reach(actor.id, account_id, mailbox=mailbox)
    return held if limit is None else held & limit


def handable(actor: User, account: Account) -> frozenset[str]:
    """The account permissions ``actor`` may hand on (or take from someone) in this request: all
    they hold, or what their API token's scopes reach."""
    return _handed_on(actor, account.id, account_permissions(actor, account))


def _require_holds(actor: User, account: Account, wanted: frozenset[str] | set[str]) -> None:
    missing = set(wanted) - _handed_on(actor, account.id, account_permissions(actor, account))
    if missing:
        labels = ", ".join(sorted(catalogue.BY_CODE[code].label for code in missing if code in catalogue.BY_CODE))
        raise AccessError(later("You cannot grant permissions you do not hold yourself: %(labels)s.", labels=labels))


# -- custom roles -----------------------------------------------------------

def _check_description(description: str) -> None:
    if len(description.strip()) > 500:
        raise AccessError(later("A role's description has at most 500 characters."))


# Code points that show nothing (Unicode's Default_Ignorable_Code_Point: soft hyphen, joiners,
# variation selectors, direction marks, tags...), and blanks that are no spaces to Python (the
# Hangul fillers, which fonts draw as blanks, and the Braille blank).
_BLANKS = frozenset({"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"})
_IGNORABLE = ((0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x17B4, 0x17B5), (0x180B, 0x180F),
              (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
              (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF))
# Alphabets whose letters look alike: a word mixing them reads as another (a Cyrillic "О" in
# "Account Оwner"). Words of different alphabets side by side ("Support Київ") read as they are.
_LOOK_ALIKE_SCRIPTS = ("LATIN", "GREEK", "CYRILLIC")


def _ignorable(char: str) -> bool:
    point = ord(char)
    return unicodedata.category(char) in ("Cf", "Cc") or any(low <= point <= high for low, high in _IGNORABLE)


def _visible(name: str) -> str:
    """A role's name as it will be read: compatibility forms folded (NFKC), the characters that
    show nothing dropped, blanks made spaces and spaces collapsed. A name that differs from another
    only by those would look the same in a list."""
    name = unicodedata.normalize("NFKC", name)
    name = "".join(" " if char in _BLANKS else char for char in name if not _ignorable(char))
    return " ".join(name.split())


def _scripts(word: str) -> set[str]:
    """Which of the look-alike alphabets the word's letters come from."""
    return {script for char in word if char.isalpha()
            for script in _LOOK_ALIKE_SCRIPTS if unicodedata.name(char, "").startswith(script + " ")}


def _mixes_alphabets(name: str) -> bool:
    """Whether a word of the name (letters between anything else) mixes look-alike alphabets."""
    words = "".join(char if char.isalpha() else " " for char in name).split()
    return any(len(_scripts(word)) > 1 for word in words)


def _folded(name: str) -> str:
    """A name folded for telling look-alikes apart: case, and spaces (an invisible character dropped
    from "Account\u200bOwner" leaves "AccountOwner", which reads as the Owner role all the same)."""
    return "".join(name.casefold().split())


@cache
def _system_role_names() -> frozenset[str]:
    """The system roles' names in every language the portal speaks, folded for comparing."""
    from flask_babel import force_locale

    from portal.i18n import LANGUAGES

    names = set()
    for code in LANGUAGES:
        with force_locale(code):
            names.update(_folded(str(role.name)) for role in catalogue.SYSTEM_ROLES)
    return frozenset(names)


def _validate_role(account: Account, name: str, scope: str, permissions: set[str], role: Role | None) -> str:
    name = _visible(name)
    if not name:
        raise RoleNameError(later("Give the role a name."))
    if len(name) > 80:  # whatever path it comes by (a SCIM group's displayName had no limit)
        raise RoleNameError(later("A role's name has at most 80 characters."))
    if scope not in catalogue.SCOPES:
        raise AccessError(later("Choose the account or the mailbox scope."))
    unknown = permissions - catalogue.codes(scope)
    if unknown:
        raise AccessError(later("These permissions do not exist at this scope: %(codes)s.",
                                codes=", ".join(sorted(unknown))))
    renamed = role is None or name.casefold() != role.name.casefold()
    if renamed and _mixes_alphabets(name):
        raise RoleNameError(later("Write each word of a role's name in one alphabet (Latin, Greek or Cyrillic): "
                                  "letters of two of them can look alike and make it read as another name."))
    clash = db.session.execute(
        db.select(Role.id).where(func.lower(Role.name) == name.lower(), Role.scope == scope,
                                 (Role.account_id == account.id) | Role.system_key.is_not(None))
    ).scalars().all()
    if any(role_id != getattr(role, "id", None) for role_id in clash) or (
            renamed and _folded(name) in _system_role_names()):
        raise RoleNameError(later("A role named “%(name)s” already exists at this scope.", name=name))
    return name


def _scope_check(actor: User, account: Account, scope: str, permissions: set[str]) -> None:
    # Mailbox permissions are held per mailbox; building a mailbox role needs
    # the account-wide power to manage every mailbox instead.
    if scope == catalogue.ACCOUNT:
        _require_holds(actor, account, permissions)
    else:
        _require_holds(actor, account, {"mailboxes.manage"} if permissions else set())


def _require_may_change_holders(actor: User, account: Account, role: Role) -> None:
    """Changing what a role held over the account gives, or deleting it, changes what each of its
    holders may do: as granting or taking it from each of them would, it needs the rights to grant
    access and to see the members (a review: someone holding only the right to manage roles gave a
    role's holders a permission of their own, and could take one from them without holding the
    rest of the role). A mailbox role already needs the power to manage every mailbox."""
    if role.scope != catalogue.ACCOUNT:
        return
    missing = {"access.grant", "members.view"} - handable(actor, account)
    if missing and (role_holder_count(account, role) or _offered(account, role)):
        labels = ", ".join(sorted(catalogue.BY_CODE[code].label for code in missing))
        raise AccessError(later("People hold this role, or are offered it: changing what it gives them, or deleting "
                                "it, needs these permissions too: %(labels)s.", labels=labels))


def _offered(account: Account, role: Role) -> bool:
    """Whether an invitation of the account, pending or a draft, offers ``role``: whoever accepts it
    gets what the role gives then (a review: an editor who may not grant shaped what an invitee
    would get)."""
    from portal.invitations.models import DRAFT, PENDING, Invitation, InvitationGrant
    from portal.timeutil import utcnow

    waiting = or_(Invitation.status == DRAFT, (Invitation.status == PENDING) & (Invitation.expires_at > utcnow()))
    return db.session.execute(
        db.select(InvitationGrant.id).join(Invitation, Invitation.id == InvitationGrant.invitation_id)
        .where(Invitation.account_id == account.id, waiting, InvitationGrant.role_id == role.id).limit(1)
    ).first() is not None


def create_role(actor: User, account: Account, *, name: str, scope: str, description: str,
                permissions: set[str]) -> Role:
    name = _validate_role(account, name, scope, permissions, None)
    _check_description(description)
    _scope_check(actor, account, scope, permissions)
    role = Role(account_id=account.id, scope=scope, name=name, description=description.strip())
    role.permission_rows = [RolePermission(permission=code) for code in sorted(permissions)]
    db.session.add(role)
    db.session.flush()
    record("role.create", account=account, actor=actor, target=role, scope=scope, permissions=permissions)
    return role


def update_role(actor: User, account: Account, role: Role, *, name: str, description: str,
                permissions: set[str]) -> Role:
    if role.is_system:
        raise AccessError(later("System roles cannot be changed; copy one to make your own."))
    name = _validate_role(account, name, role.scope, permissions, role)
    _check_description(description)
    added = permissions - role.permissions
    removed = role.permissions - permissions
    _scope_check(actor, account, role.scope, added | removed)
    if name != role.name or description.strip() != (role.description or ""):
        # Its holders' and grantors' reading of what it gives: not for someone who holds less.
        _scope_check(actor, account, role.scope, set(role.permissions))
    if added or removed:
        _require_may_change_holders(actor, account, role)
    role.name, role.description = name, description.strip()
    role.permission_rows = [RolePermission(permission=code) for code in sorted(permissions)]
    db.session.flush()
    record("role.update", account=account, actor=actor, target=role, added=added, removed=removed)
    return role


def copy_role(actor: User, account: Account, role: Role) -> Role:
    base = _("Copy of %(name)s", name=role.label)
    name, number = base, 2
    while db.session.execute(db.select(Role.id).where(
            Role.name == name, Role.scope == role.scope,
            (Role.account_id == account.id) | Role.system_key.is_not(None))).first():
        name, number = f"{base} ({number})", number + 1
    return create_role(actor, account, name=name, scope=role.scope, description=role.summary,
                       permissions=set(role.permissions))


def delete_role(actor: User, account: Account, role: Role) -> None:
    if role.is_system:
        raise AccessError(later("System roles cannot be deleted."))
    _scope_check(actor, account, role.scope, set(role.permissions))
    _require_may_change_holders(actor, account, role)
    record("role.delete", account=account, actor=actor, target=role, holders=role_holder_count(account, role))
    db.session.delete(role)
    db.session.flush()


def role_holder_count(account: Account, role: Role) -> int:
    """How many members of the account hold the role (over the account or a mailbox)."""
    return holder_counts(account, [role]).get(role.id, 0)


def holder_counts(account: Account, roles: list[Role]) -> dict[int, int]:
    """Per role of ``roles``, how many members of the account hold it: one statement for them all,
    reading the (account, role, membership) index of the grants alone."""
    return dict(db.session.execute(
        db.select(Grant.role_id, func.count(Grant.membership_id.distinct()))
        .where(Grant.account_id == account.id, Grant.role_id.in_([role.id for role in roles]))
        .group_by(Grant.role_id)).all())


def holders_query(account: Account, role: Role):
    """(Membership, User) of the members of the account holding the role, by address."""
    return (db.select(Membership, User).join(User, User.id == Membership.user_id)
            .where(*_holders_of(account, role)).order_by(User.email, Membership.id))


def holders_count_query(account: Account, role: Role):
    """What ``holders_query`` selects, for counting: from the memberships alone."""
    return db.select(Membership.id).where(*_holders_of(account, role))


def _holders_of(account: Account, role: Role) -> tuple:
    """The conditions on ``Membership`` for the account's members holding the role (once each)."""
    return (Membership.account_id == account.id,
            Membership.id.in_(db.select(Grant.membership_id).where(Grant.account_id == account.id,
                                                                     Grant.role_id == role.id)))


# -- grants -----------------------------------------------------------------

def owner_memberships(account: Account) -> list[int]:
    owner = system_role(catalogue.OWNER)
    return list(db.session.execute(
        db.select(Grant.membership_id).where(Grant.account_id == account.id, Grant.role_id == owner.id).distinct()
    ).scalars())


def is_owner(actor: User, account_id: int) -> bool:
    """An owner of the account (or a superadmin): someone who outranks everyone in it."""
    if actor.is_superadmin:
        return True
    membership = membership_of(actor, account_id)
    return membership is not None and membership.id in owner_memberships(db.session.get(Account, account_id))


def refuse_last_owner(account: Account, membership: Membership) -> None:
    """Refuse a change that would leave the account without an owner.

    The account row is locked first, so two owners removing each other at
    once are taken one after the other.
    """
    # FOR NO KEY UPDATE: two such changes still wait for each other, but rows that only point at the
    # account (a job, a log entry) do not wait for it (a review: a deadlock with an alias added to
    # the mailbox of someone being removed).
    db.session.execute(db.select(Account.id).where(Account.id == account.id).with_for_update(key_share=True))
    if owner_memberships(account) == [membership.id]:
        raise AccessError(later("This is the account's last owner: make someone else owner first."))


def held_grant(membership: Membership, role_id: int | None, permission: str | None = None,
               mailbox_id: int | None = None) -> Grant | None:
    """The member's grant of this role (else of this single permission), on the account or on the mailbox."""
    query = db.select(Grant).where(Grant.membership_id == membership.id, Grant.mailbox_id.is_(None)
                                   if mailbox_id is None else Grant.mailbox_id == mailbox_id)
    if role_id is not None:
        query = query.where(Grant.role_id == role_id)
    else:
        query = query.where(Grant.permission == permission)
    # The first (grants made before 0032 could hold copies; the database now keeps one).
    return db.session.execute(query.order_by(Grant.id).limit(1)).scalar_one_or_none()


def _is_owner_role(role: Role | None) -> bool:
    return role is not None and role.system_key == catalogue.OWNER


def require_owner_for(actor: User, account: Account, role: Role | None) -> None:
    """The Owner role is given, offered or taken only by an owner: owners alone delete the account,
    set catch-alls and domain aliases, and outrank everyone; holding every permission one by one
    does not make someone an owner, nor able to make one."""
    if _is_owner_role(role) and not is_owner(actor, account.id):
        raise AccessError(later("Only an owner of the account gives or takes the Account Owner role."))


def _require_may_grant_role(actor: User, account: Account, role: Role) -> None:
    if role.scope != catalogue.ACCOUNT:
        raise AccessError(later("Mailbox roles are granted on a mailbox."))
    _require_holds(actor, account, role.permissions)
    require_owner_for(actor, account, role)


def grant_role_to_many(actor: User, account: Account, memberships: list[Membership], role: Role) -> int:
    """``grant_role`` for many members of the account at once (a directory's group of thousands):
    the rights checked once, the grants already held read in one statement per thousand, the new
    ones written together, each audited. How many were granted."""
    _require_may_grant_role(actor, account, role)
    ids = sorted({membership.id for membership in memberships})
    held: set[int] = set()
    for start in range(0, len(ids), 1000):
        held.update(db.session.execute(db.select(Grant.membership_id).where(
            Grant.membership_id.in_(ids[start:start + 1000]), Grant.role_id == role.id,
            Grant.mailbox_id.is_(None))).scalars())
    new = [membership for membership in {membership.id: membership for membership in memberships}.values()
           if membership.id not in held and membership.account_id == account.id]
    if new:
        # The grants first: a copy made meanwhile by another request is refused here.
        db.session.execute(insert(Grant.__table__), [
            {"membership_id": membership.id, "account_id": membership.account_id, "role_id": role.id,
             "permission": None, "mailbox_id": None, "granted_by_id": actor.id} for membership in new])
        record_each("access.grant_role", [membership.user for membership in new], account=account, actor=actor,
                    role=role.name)
    return len(new)


def grant_role(actor: User, account: Account, membership: Membership, role: Role) -> Grant:
    _require_may_grant_role(actor, account, role)
    existing = held_grant(membership, role.id)
    if existing:
        return existing
    grant = Grant(membership_id=membership.id, account_id=membership.account_id, role_id=role.id,
                  granted_by_id=actor.id)
    db.session.add(grant)
    db.session.flush()
    record("access.grant_role", account=account, actor=actor, target=membership.user, role=role.name)
    return grant


def set_single_permissions(actor: User, account: Account, membership: Membership,
                           wanted: set[str]) -> tuple[set[str], set[str]]:
    """Make the member's single account permissions exactly ``wanted``."""
    unknown = wanted - catalogue.codes(catalogue.ACCOUNT)
    if unknown:
        raise AccessError(later("Unknown permissions: %(codes)s.", codes=", ".join(sorted(unknown))))
    current = {grant.permission: grant for grant in account_grants(membership) if grant.permission}
    added, removed = wanted - set(current), set(current) - wanted
    _require_holds(actor, account, added | removed)
    for code in added:
        db.session.add(Grant(membership_id=membership.id, account_id=membership.account_id, permission=code,
                             granted_by_id=actor.id))
    for code in removed:
        db.session.delete(current[code])
    db.session.flush()
    if added or removed:
        record("access.set_permissions", account=account, actor=actor, target=membership.user,
               added=added, removed=removed)
    return added, removed


def revoke_grant(actor: User, account: Account, grant: Grant) -> None:
    membership = db.session.get(Membership, grant.membership_id)
    taken = grant.role.permissions if grant.role else {grant.permission}
    if grant.mailbox_id is not None:
        _require_holds_on_mailbox(actor, account, grant.mailbox_id, set(taken))
    else:
        _require_holds(actor, account, taken)
        require_owner_for(actor, account, grant.role)
    if grant.role is not None and grant.role.system_key == catalogue.OWNER:
        refuse_last_owner(account, membership)
    record("access.revoke", account=account, actor=actor, target=membership.user, mailbox_id=grant.mailbox_id,
           role=grant.role.name if grant.role else None, permission=grant.permission)
    db.session.delete(grant)
    db.session.flush()


def grant_in_account(account: Account, grant_id: int) -> Grant | None:
    grant = db.session.get(Grant, grant_id)
    if grant is None:
        return None
    membership = db.session.get(Membership, grant.membership_id)
    return grant if membership is not None and membership.account_id == account.id else None


# -- mailbox scope ------------------------------------------------------------------

def mailbox_permissions(user: User, account: Account, mailbox_id: int) -> frozenset[str]:
    """What ``user`` may do on one mailbox: account-wide powers plus grants on it."""
    return mailbox_permissions_of(user, account, [mailbox_id])[mailbox_id]


def mailbox_permissions_of(user: User, account: Account, mailbox_ids) -> dict[int, frozenset[str]]:
    """``mailbox_permissions`` on each of several mailboxes: two statements for them all."""
    ids = set(mailbox_ids)
    membership_id, held = held_in(user, account)
    powers = mailbox_powers(catalogue.codes(catalogue.ACCOUNT) if user.is_superadmin else held)
    every = catalogue.codes(catalogue.MAILBOX)
    if powers == every or not ids:
        return {mailbox_id: powers for mailbox_id in ids}
    return {mailbox_id: (powers | granted) & every
            for mailbox_id, granted in granted_on_mailboxes(membership_id, ids).items()}


def outranks(actor: User, account: Account, user: User, *, elsewhere: bool = True) -> bool:
    """Whether ``actor`` holds every right ``user`` holds: in this account, on each of its
    mailboxes, and (``elsewhere``) anywhere else. Only then may ``actor`` obtain the means to act
    as ``user`` (an onboarding link, a reset of their second factors). What gives no such means
    (suspending the account's own corporate user, naming them) looks at this account alone: another
    account giving them a right must not stop their account managing them."""
    return user.id in outranked(actor, account, [user], elsewhere=elsewhere)


def outranked(actor: User, account: Account, users, *, elsewhere: bool = True) -> set[int]:
    """The ids of those of ``users`` whom ``actor`` outranks (``outranks``), in three statements
    whatever their number."""
    every = catalogue.codes(catalogue.ACCOUNT)
    if actor.is_superadmin and _handed_on(actor, account.id, every) == every:
        return {user.id for user in users}
    candidates = {user.id for user in users if not user.is_superadmin}
    if not candidates:
        return set()
    held: dict[int, dict[int | None, list[Grant]]] = {user_id: {} for user_id in candidates}
    # The roles' permissions in the same statement: whoever holds what, one statement for them all.
    query = db.select(Grant, Membership.user_id, Membership.account_id).join(
        Membership, Membership.id == Grant.membership_id).where(Membership.user_id.in_(candidates)) \
        .options(joinedload(Grant.role).joinedload(Role.permission_rows))
    for grant, user_id, account_id in db.session.execute(query).unique().all():
        if account_id != account.id:
            if elsewhere:
                candidates.discard(user_id)  # rights in an account the actor cannot see, let alone hold
            continue
        held[user_id].setdefault(grant.mailbox_id, []).append(grant)
    actor_account = _handed_on(actor, account.id, account_permissions(actor, account))
    mailbox_ids = {mailbox_id for user_id in candidates for mailbox_id in held[user_id] if mailbox_id is not None}
    on_mailboxes = {} if "mailboxes.manage" in actor_account or not mailbox_ids else {
        mailbox_id: _handed_on(actor, account.id, permissions, mailbox=True)
        for mailbox_id, permissions in mailbox_permissions_of(actor, account, mailbox_ids).items()}
    owner = None
    result = set()
    for user_id in candidates:
        for mailbox_id, grants in held[user_id].items():
            wanted = permissions_of_grants(grants)
            if mailbox_id is None:
                if wanted - actor_account:
                    break
                if any(_is_owner_role(grant.role) for grant in grants):
                    owner = is_owner(actor, account.id) if owner is None else owner
                    if not owner:
                        break  # an owner is more than the permissions the role lists
            elif "mailboxes.manage" not in actor_account and wanted - on_mailboxes[mailbox_id]:
                break
        else:
            result.add(user_id)
    return result


def _require_holds_on_mailbox(actor: User, account: Account, mailbox_id: int, wanted: set[str]) -> None:
    held = _handed_on(actor, account.id, mailbox_permissions(actor, account, mailbox_id), mailbox=True)
    if "mailbox.access" not in held:
        raise AccessError(later("You may not grant access to this mailbox."))
    missing = wanted - held
    if missing:
        labels = ", ".join(sorted(catalogue.BY_CODE[code].label for code in missing))
        raise AccessError(later("You cannot grant permissions you do not hold on this mailbox: %(labels)s.",
                                labels=labels))


def require_may_remove(actor: User, account: Account, membership: Membership) -> None:
    """Removing someone from the account (as a member, a corporate user, in bulk, through the API
    or SCIM) takes away all they hold: no more allowed than revoking each of it. The last owner
    stays; only an owner removes an owner."""
    refuse_last_owner(account, membership)
    if membership.id in owner_memberships(account) and not is_owner(actor, account.id):
        raise AccessError(later("Only an owner of the account removes another owner."))
    # Through an API token, only what its scopes reach (a users:write token removed an owner).
    if permissions_of_grants(account_grants(membership)) - handable(actor, account):
        raise AccessError(later("You cannot remove a member who holds permissions you do not hold."))
    _require_holds_their_mailbox_rights(actor, account, membership)


def _require_holds_their_mailbox_rights(actor: User, account: Account, membership: Membership) -> None:
    """``actor`` holds, on each mailbox, what ``membership`` holds there; but for their own personal
    mailboxes, whose rights leave with them (what becomes of such a mailbox is chosen apart)."""
    from portal.mailboxes.models import PERSONAL, Mailbox

    wanted: dict[int, set[str]] = {}
    for grant in db.session.execute(
            db.select(Grant).join(Mailbox, Mailbox.id == Grant.mailbox_id)
            .where(Grant.membership_id == membership.id,
                   # (an owner gone, the column NULL, is no one's own: NOT (... = NULL) would skip it)
                   or_(Mailbox.kind != PERSONAL, Mailbox.owner_id.is_(None),
                       Mailbox.owner_id != membership.user_id))).scalars():
        wanted.setdefault(grant.mailbox_id, set()).update(grant.role.permissions if grant.role else {grant.permission})
    for mailbox_id, codes in wanted.items():
        held = mailbox_permissions(actor, account, mailbox_id)
        if codes - _handed_on(actor, account.id, held, mailbox=True):
            if not codes - held:  # the person holds them; the API token they use does not reach them
                raise AccessError(later("This token's scopes do not reach mailboxes: give it the mailboxes scope too "
                                        "to remove a member who holds rights on one."))
            raise AccessError(later("You cannot remove a member who holds permissions on a mailbox that you do not "
                                    "hold."))


def grant_mailbox_role(actor: User | None, account: Account, membership: Membership, mailbox_id: int,
                       role: Role) -> Grant:
    """Grant a mailbox-scope role; ``actor=None`` is the portal itself (e.g. a personal mailbox's owner)."""
    if role.scope != catalogue.MAILBOX:
        raise AccessError(later("Only mailbox roles can be granted on a mailbox."))
    if actor is not None:
        _require_holds_on_mailbox(actor, account, mailbox_id, set(role.permissions))
    existing = held_grant(membership, role.id, None, mailbox_id)
    if existing:
        return existing
    grant = Grant(membership_id=membership.id, account_id=membership.account_id, role_id=role.id,
                  mailbox_id=mailbox_id, granted_by_id=getattr(actor, "id", None))
    db.session.add(grant)
    db.session.flush()
    record("access.grant_mailbox_role", account=account, target=membership.user, actor=actor,
           role=role.name, mailbox_id=mailbox_id)
    return grant


def set_mailbox_permissions(actor: User, account: Account, membership: Membership, mailbox_id: int,
                            wanted: set[str]) -> tuple[set[str], set[str]]:
    unknown = wanted - catalogue.codes(catalogue.MAILBOX)
    if unknown:
        raise AccessError(later("Unknown mailbox permissions: %(codes)s.", codes=", ".join(sorted(unknown))))
    current = {g.permission: g for g in mailbox_grants(membership, mailbox_id) if g.permission}
    added, removed = wanted - set(current), set(current) - wanted
    _require_holds_on_mailbox(actor, account, mailbox_id, added | removed)
    for code in added:
        db.session.add(Grant(membership_id=membership.id, account_id=membership.account_id, permission=code,
                             mailbox_id=mailbox_id, granted_by_id=actor.id))
    for code in removed:
        db.session.delete(current[code])
    db.session.flush()
    if added or removed:
        record("access.set_mailbox_permissions", account=account, actor=actor, target=membership.user,
               mailbox_id=mailbox_id, added=added, removed=removed)
    return added, removed


def mailbox_access(mailbox_id: int, listing: lists.Listing, account_id: int) -> lists.Page:
    """The page ``listing`` asks for of who holds a role or a permission on the mailbox, by address:
    (membership with its person, their grants on it). Four statements however many hold some (the
    count, the page, its people, its grants): a shared mailbox may be open to 10,000 members. The
    people are read apart so that the page sorts memberships alone, not joined to their people
    (10,000 holders, SQLite: the 200th page 22 -> 14 ms, its grants included; the first alike)."""
    holding = db.select(Grant.membership_id).where(Grant.mailbox_id == mailbox_id)
    page = lists.fetch(db.select(Membership).options(selectinload(Membership.user))
                       .where(Membership.account_id == account_id, Membership.id.in_(holding))
                       .order_by(Membership.email, Membership.id),
                       listing, counted=holding.join(Membership, Membership.id == Grant.membership_id)
                       .where(Membership.account_id == account_id).distinct())
    held: dict[int, list[Grant]] = {membership.id: [] for membership in page.items}
    if held:
        grants = db.session.execute(db.select(Grant).where(Grant.mailbox_id == mailbox_id,
                                                           Grant.membership_id.in_(held)).order_by(Grant.id))
        for grant in grants.scalars():
            held[grant.membership_id].append(grant)
    return replace(page, items=[(membership, held[membership.id]) for membership in page.items])


def mailboxes_held_by(membership: Membership):
    """The condition: a mailbox the member holds a role or permission on."""
    from portal.mailboxes.models import Mailbox

    return Mailbox.id.in_(db.select(Grant.mailbox_id).where(Grant.membership_id == membership.id,
                                                            Grant.mailbox_id.is_not(None)))


def mailbox_grant_counts(account: Account) -> dict[int, int]:
    """Per membership, on how many mailboxes it holds something."""
    rows = db.session.execute(
        db.select(Grant.membership_id, func.count(Grant.mailbox_id.distinct()))
        .join(Membership, Membership.id == Grant.membership_id)
        .where(Membership.account_id == account.id, Grant.mailbox_id.is_not(None))
        .group_by(Grant.membership_id)).all()
    return dict(rows)
