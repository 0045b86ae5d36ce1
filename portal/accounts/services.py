from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from functools import cache
from types import SimpleNamespace

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import bindparam, func
from sqlalchemy.orm import aliased

from portal.accounts.models import Account, Membership
from portal.audit.services import record
from portal.auth.models import User
from portal.extensions import db
from portal.i18n import later
from portal.jobs.registry import handler
from portal.jobs.services import enqueue
from portal.roles import catalogue
from portal.roles.models import Grant, Role
from portal.roles.services import AccessError, owner_memberships, system_role
from portal.search import holding


class DeletionRefused(ValueError):
    """A lifecycle change the rules forbid; the message says why."""


def create_account(owner: User, name: str) -> Account:
    """Create an account with ``owner`` as its Account Owner."""
    if owner.is_corporate:
        raise DeletionRefused(_("Corporate users are managed by their organisation and cannot create accounts."))
    from portal.i18n import chosen

    name = " ".join(name.split())
    # The account's work (domain checks, provisioning, mails to people without a profile) is
    # written in its language: at first its creator's, when they chose one other than the portal's.
    language = chosen(owner.locale)
    default = current_app.config["PORTAL"]["DEFAULT_LOCALE"]
    account = Account(name=name, default_locale=language if language != default else None)
    db.session.add(account)
    db.session.flush()
    membership = add_member(account, owner)
    db.session.add(Grant(membership_id=membership.id, account_id=account.id,
                         role_id=system_role(catalogue.OWNER).id, granted_by_id=owner.id))
    record("account.create", account=account, target=account, actor=owner)
    return account


def add_member(account: Account, user: User) -> Membership:
    membership = db.session.execute(
        db.select(Membership).where(Membership.account_id == account.id, Membership.user_id == user.id)
    ).scalar_one_or_none()
    if membership is None:
        membership = Membership(account_id=account.id, user_id=user.id, email=user.email)
        db.session.add(membership)
        db.session.flush()
    return membership


def accounts_query(user: User, q: str = "", *, descending: bool = False):
    """The accounts ``user`` may open (a superadmin: every one), by name; ``q``: part of the name."""
    return _accounts(user.is_superadmin, user.id, q, descending=descending)


def _accounts(superadmin: bool, user_id, q: str = "", *, descending: bool = False):
    """``accounts_query`` for a user of that id (a value or a bind parameter)."""
    query = db.select(Account)
    if not superadmin:
        query = query.join(Membership).where(Membership.user_id == user_id)
    if q:
        query = query.where(holding(Account.search_text, q))
    return query.order_by(Account.name.desc(), Account.id.desc()) if descending else \
        query.order_by(Account.name, Account.id)


def accounts_of(user: User, limit: int | None = None) -> list[Account]:
    """The first ``limit`` accounts ``user`` may open, by name (all of them without a limit: a
    superadmin of a large instance may open thousands; pages show a few, or a list in pages)."""
    if limit is not None:  # the switcher of every page: its statement is built once
        values = {"limit": limit} if user.is_superadmin else {"user_id": user.id, "limit": limit}
        return list(db.session.execute(_first_accounts(user.is_superadmin), values).scalars())
    return list(db.session.execute(accounts_query(user)).scalars())


@cache
def _first_accounts(superadmin: bool):
    return _accounts(superadmin, bindparam("user_id")).limit(bindparam("limit"))


def account_to_open(user: User, account_id) -> Account | None:
    """The account of that id if ``user`` may open it."""
    if not isinstance(account_id, int):
        return None
    return db.session.execute(accounts_query(user).where(Account.id == account_id)).scalar_one_or_none()


def member_count(account: Account) -> int:
    return db.session.execute(db.select(func.count()).select_from(Membership)
                              .where(Membership.account_id == account.id)).scalar_one()


MEMBER_SORTS = ("name", "email", "last_login", "joined")
MEMBER_KINDS = ("corporate", "other")
# ``needs_link``: corporate users no onboarding link can be mailed to (never signed in, no recovery
# address, no personal mailbox): those the Overview and an import's page send the admin to.
MEMBER_STATES = ("active", "never_signed_in", "needs_link", "suspended")


def member_query(account: Account, listing):
    """(Membership, User) rows of the account as ``listing`` filters and sorts them."""
    return (db.select(Membership, User).join(User, User.id == Membership.user_id)
            .where(*_membership_filters(account, listing), *_user_filters(account, listing))
            .order_by(*member_order(listing)))


def member_search(account: Account, listing) -> dict:
    """``lists.fetch``'s arguments for a search of the members (none for a list not searched): the
    matches are counted and numbered in one pass, the page's rows read from the unsearched list."""
    if not listing.q:
        return {}
    return {"ordered_by": member_order(listing),
            "unfiltered": member_query(account, replace(listing, q="", filters={}))}


def member_order(listing) -> tuple:
    """The clauses ``member_query`` sorts by. The whole list by address is read in the order of the
    (account, address) index of memberships, 50 entries for a page. A searched or filtered list is
    sorted by the users' copy of the address, read with the rest of the person's row: along the
    index the database would test every member in turn until a page is found, where it otherwise
    sorts the members the filters keep (SQLite, 10,000 members: suspended people 10.8 ms along the
    index, 1.5 ms sorting; a search 11.4 and 2.4 ms)."""
    email = User.email if listing.filtered else Membership.email
    column = {"name": func.lower(User.name), "email": email, "last_login": User.last_login_at,
              "joined": Membership.created_at}[listing.sort]
    if listing.sort == "email":  # one member per address
        return (column.desc() if listing.descending else column.asc(),)
    return column.desc() if listing.descending else column.asc(), email


def member_count_query(account: Account, listing):
    """What ``member_query`` selects, for counting: without the users table when no filter needs it,
    so the count of a whole list reads the memberships index alone."""
    on_users = _user_filters(account, listing)
    query = db.select(Membership.id).where(*_membership_filters(account, listing), *on_users)
    return query.join(User, User.id == Membership.user_id) if on_users else query


def _membership_filters(account: Account, listing) -> list:
    from portal.web.inputs import parse_id

    conditions = [Membership.account_id == account.id]
    role_id = parse_id(listing.filters.get("role"))
    if role_id:
        conditions.append(db.select(Grant.id).where(Grant.membership_id == Membership.id, Grant.role_id == role_id,
                                                    Grant.mailbox_id.is_(None)).exists())
    return conditions


def corporate_of(account_id):
    """The condition: a person is a corporate user of the account (``account_id`` a value or a
    bound parameter)."""
    return User.is_corporate & (User.corporate_account_id == account_id)


def has_personal_mailbox(account_id):
    """The condition: the person owns a live personal mailbox of the account. On SQLite it is looked
    up by its owner, the account only checked (``+ 0``): through the account's index SQLite read
    every mailbox of the account for each person, 16 s for the Users list filtered "without a
    mailbox" at 10,000 (590 ms for the Overview's count); 20 ms now. PostgreSQL plans it as a join
    and is slower so (the list filtered "needs a link": 20 -> 206 ms), so not there."""
    from portal.mailboxes.models import DELETED, PERSONAL, Mailbox

    account = Mailbox.account_id + 0 if db.engine.dialect.name == "sqlite" else Mailbox.account_id
    return db.select(Mailbox.id).where(Mailbox.owner_id == User.id, account == account_id,
                                       Mailbox.kind == PERSONAL, Mailbox.status != DELETED).exists()


def needs_link(account_id):
    """The condition: a corporate user of the account no onboarding link can be mailed to (never
    signed in, no recovery address, no personal mailbox): the Users list's status "Needs a link
    from you", and the Overview's count of them."""
    # Found through the partial index of corporate users without a password or a recovery address
    # (``ix_users_corporate_unlinked``). SQLite, without statistics, read them along the
    # unique index of sign-on subjects instead (IS NULL: every member who never used it, 4 ms at
    # 10,000): there the subject is tested as ``subject || ''``, null exactly when it is, which no
    # index answers.
    subject = User.oidc_subject
    if db.engine.dialect.name == "sqlite":
        subject = subject.concat("")
    return corporate_of(account_id) & User.password_hash.is_(None) & User.recovery_email.is_(None) \
        & subject.is_(None) & ~has_personal_mailbox(account_id)


def _user_filters(account: Account, listing) -> list:
    from portal.auth.models import people_matching

    # Each condition is built only when its filter asks for it: a page builds these twice or
    # three times (rows, count, search), and an unused expression costs as much to build.
    conditions = []
    if listing.q:
        conditions.append(people_matching(listing.q))
    kind, mailbox, state = (listing.filters.get(name) for name in ("kind", "mailbox", "status"))
    if kind in MEMBER_KINDS:
        corporate = corporate_of(account.id)
        conditions.append(corporate if kind == "corporate" else ~corporate)
    if mailbox in ("yes", "no"):
        personal = has_personal_mailbox(account.id)
        conditions.append(personal if mailbox == "yes" else ~personal)
    if state == "suspended":
        conditions.append(User.suspended_at.is_not(None))
    elif state == "needs_link":
        conditions.append(needs_link(account.id))
    elif state in ("active", "never_signed_in"):
        signed_in = User.password_hash.is_not(None) | User.oidc_subject.is_not(None)
        conditions += [signed_in, User.suspended_at.is_(None)] if state == "active" else [~signed_in]
    return conditions


@dataclass(frozen=True)
class HeldRole:
    id: int
    name: str
    is_system: bool


@dataclass(frozen=True)
class HeldGrant:
    """A member's account-wide grant as lists show it: the role (its name), or the single permission."""

    role: HeldRole | None
    permission: str | None


def member_details(memberships: list[Membership]) -> dict[int, dict]:
    """What the Users list shows of each member on the page: two statements for the whole page."""
    ids = [membership.id for membership in memberships]
    details = {membership_id: {"grants": [], "mailboxes": 0} for membership_id in ids}
    if not ids:
        return details
    grants, mailboxes = _details_statements()
    for membership_id, permission, role_id, role_name, system_key in db.session.execute(grants, {"ids": ids}):
        role = HeldRole(role_id, role_name, system_key is not None) if role_id is not None else None
        details[membership_id]["grants"].append(HeldGrant(role, permission))
    for membership_id, count in db.session.execute(mailboxes, {"ids": ids}):
        details[membership_id]["mailboxes"] = count
    return details


@cache
def _details_statements():
    """``member_details``' two statements, built once (``ids`` expands to the page's members)."""
    ids = bindparam("ids", expanding=True)
    return (db.select(Grant.membership_id, Grant.permission, Role.id, Role.name, Role.system_key)
            .outerjoin(Role, Role.id == Grant.role_id)
            .where(Grant.membership_id.in_(ids), Grant.mailbox_id.is_(None))
            # By member, as the (membership_id, mailbox_id) index gives them: ordered by id alone,
            # SQLite walked every account-wide grant of the table in id order (2 ms at 14,000).
            .order_by(Grant.membership_id, Grant.id),
            db.select(Grant.membership_id, func.count(Grant.mailbox_id.distinct()))
            .where(Grant.membership_id.in_(ids), Grant.mailbox_id.is_not(None)).group_by(Grant.membership_id))


def member_in_account(account: Account, membership_id: int) -> Membership | None:
    membership = db.session.get(Membership, membership_id)
    return membership if membership is not None and membership.account_id == account.id else None


def remove_member(actor: User, account: Account, membership: Membership) -> None:
    from portal.roles.services import require_may_remove

    user = membership.user
    if user.is_corporate and user.corporate_account_id == account.id:
        # Their removal also decides what becomes of their personal mailboxes, and ends their
        # sessions: it is the users page's (a walkthrough: two "Remove" buttons did two things).
        raise AccessError(later("%(email)s is a corporate user of this account: remove them from their Settings "
                                "tab, which also decides what becomes of their personal mailboxes.",
                                email=user.email))
    require_may_remove(actor, account, membership)
    record("member.remove", account=account, actor=actor, target=membership.user)
    db.session.delete(membership)
    db.session.flush()


def update_settings(actor: User, account: Account, *, name: str, self_registration: bool, personal_mailboxes: bool,
                    personal_mailbox_role_id: int | None, deprovisioned_mailboxes: str | None = None,
                    default_locale: str | None = None) -> None:
    """``deprovisioned_mailboxes`` and ``default_locale`` None leave those settings as they are
    (``default_locale`` "": the portal's default language)."""
    from portal.i18n import chosen

    from portal.roles.services import role_in_account
    from portal.users.services import MAILBOX_CHOICES

    role = role_in_account(account, personal_mailbox_role_id) if personal_mailbox_role_id else None
    if (personal_mailbox_role_id and role is None) or (role is not None and role.scope != catalogue.MAILBOX):
        # Not silently "none" for a role id that is not this account's (or anyone's).
        raise AccessError(later("Choose a mailbox role for personal mailboxes."))
    if not " ".join(name.split()):
        raise AccessError(later("Give the account a name."))
    if deprovisioned_mailboxes is not None and deprovisioned_mailboxes not in MAILBOX_CHOICES:
        raise AccessError(later("Choose what happens to the mailboxes of someone your identity provider removes."))
    before = {"name": account.name, "self_registration": account.self_registration,
              "personal_mailboxes": account.personal_mailboxes, "role": account.personal_mailbox_role_id,
              "deprovisioned_mailboxes": account.deprovisioned_mailboxes, "default_locale": account.default_locale}
    if default_locale is not None:
        account.default_locale = chosen(default_locale)
    account.name = " ".join(name.split())
    account.self_registration = self_registration
    account.personal_mailboxes = personal_mailboxes
    account.personal_mailbox_role_id = getattr(role, "id", None)
    account.deprovisioned_mailboxes = deprovisioned_mailboxes or account.deprovisioned_mailboxes
    after = {"name": account.name, "self_registration": self_registration, "personal_mailboxes": personal_mailboxes,
             "role": account.personal_mailbox_role_id, "deprovisioned_mailboxes": account.deprovisioned_mailboxes,
             "default_locale": account.default_locale}
    changed = {key: after[key] for key in after if after[key] != before[key]}
    if changed:
        record("account.settings", account=account, target=account, actor=actor, **changed)


def delete_account(actor: User, account: Account, typed_name: str, *, delete_mailboxes: bool) -> dict:
    """Delete the account (reference 004): members lose access to it and its mailboxes,
    corporate users stay corporate, mailboxes are disabled (or deleted) on their
    backends through jobs, domains are released, members are told by e-mail.

    A fixed number of statements whatever the account holds: the mailboxes' jobs are one insert,
    the members are told by a job (``DELETED_NOTICE_KIND``) that carries who they are, and the rows
    go by two deletes, the database removing what hangs off them (ON DELETE CASCADE / SET NULL).
    Returns what becomes of each mailbox, by address."""
    from portal.domains.models import Domain
    from portal.domains.settings import clear_routing
    from portal.mailboxes.models import Mailbox
    from portal.mailboxes.services import decommission_all

    from portal.roles.services import is_owner

    if not is_owner(actor, account.id):
        raise DeletionRefused(_("Only an owner of the account can delete it."))
    if " ".join(typed_name.split()) != account.name:
        raise DeletionRefused(_("Type the account's name, %(name)s, exactly to confirm.", name=account.name))
    outcome = decommission_all(account.id, delete_mailboxes, account.name)
    held = list(db.session.execute(db.select(Domain).where(Domain.account_id == account.id)
                                   .order_by(Domain.name)).scalars())
    clear_routing(*held)
    domains = [domain.name for domain in held]
    recipients = _told_of_deletion(account)
    record("account.delete", account=account, target=account, actor=actor, domains=domains,
           mailboxes=dict(Counter(outcome.values())), members=len(recipients))
    enqueue(DELETED_NOTICE_KIND, {"account_name": account.name, "actor": actor.display_name,
                                  "recipients": recipients}, subject=f"account-deleted:{account.id}")
    db.session.flush()
    # Mailboxes first: domains refuse to go while mailboxes point at them.
    db.session.execute(db.delete(Mailbox).where(Mailbox.account_id == account.id),
                       execution_options={"synchronize_session": False})
    db.session.execute(db.delete(Account).where(Account.id == account.id),
                       execution_options={"synchronize_session": False})
    db.session.expunge(account)  # gone: the session must not try to load it again
    return outcome


def _told_of_deletion(account: Account) -> list[list]:
    """[user id, language] of each member, in one statement: the language they chose, else (a
    corporate user, who may never have chosen one) their organisation's, read now, while the
    account that made them still is."""
    from portal.i18n import chosen

    corporate = aliased(Account)
    rows = db.session.execute(
        db.select(User.id, User.locale, corporate.default_locale)
        .join(Membership, Membership.user_id == User.id)
        .outerjoin(corporate, corporate.id == User.corporate_account_id)
        .where(Membership.account_id == account.id).order_by(User.id)).all()
    return [[user_id, chosen(locale) or (chosen(organisation) if organisation is not None else None)]
            for user_id, locale, organisation in rows]


DELETED_NOTICE_KIND = "account.deleted_notice"
# Members told per run of the notice job; it queues itself again for the rest.
NOTICE_BATCH = 200


@handler(DELETED_NOTICE_KIND, max_attempts=8, backoff_seconds=30)
def deleted_notice(job) -> None:
    """E-mail the members of a deleted account, a batch at a time: each message is its own mail job
    (retried on its own); the rest go to a job of their own, queued with this batch."""
    from portal.mail.services import send

    payload = job.payload
    batch, rest = payload["recipients"][:NOTICE_BATCH], payload["recipients"][NOTICE_BATCH:]
    languages = dict(batch)
    actor = SimpleNamespace(display_name=payload["actor"])
    for person in db.session.execute(db.select(User).where(User.id.in_(list(languages)))
                                     .order_by(User.id)).scalars():
        send(person.email, "account_deleted", language=languages[person.id], account_name=payload["account_name"],
             user=person, actor=actor)
    if rest:
        enqueue(DELETED_NOTICE_KIND, {**payload, "recipients": rest}, subject=job.subject)


def delete_profile(user: User, typed_email: str) -> None:
    """A person deletes their own profile; audit entries keep their address as a tombstone."""
    from portal.invitations.services import withdraw_for

    if user.is_corporate:
        raise DeletionRefused(_("Your profile is managed by your organisation as a corporate user: ask its "
                                "administrators to remove it."))
    if typed_email.strip().lower() != user.email:
        raise DeletionRefused(_("Type your address, %(email)s, exactly to confirm.", email=user.email))
    sole = [m.account.name for m in db.session.execute(
        db.select(Membership).where(Membership.user_id == user.id)).scalars()
        if owner_memberships(m.account) == [m.id]]
    if sole:
        raise DeletionRefused(_("You are the only owner of %(accounts)s: make someone else owner, or delete the "
                                "account, first.", accounts=", ".join(sole)))
    withdrawn = withdraw_for(user)
    record("user.delete_profile", target=user, actor=user, invitations_withdrawn=withdrawn)
    db.session.delete(user)
    db.session.flush()
