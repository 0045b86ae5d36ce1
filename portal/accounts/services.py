from __future__ import annotations

from portal.accounts.models import Account, Membership
from portal.audit.services import record
from portal.auth.models import User
from portal.extensions import db
from portal.roles import catalogue
from portal.roles.models import Grant
from portal.roles.services import (AccessError, account_grants, account_permissions,
                                   owner_memberships, permissions_of_grants, system_role)


class DeletionRefused(ValueError):
    """A lifecycle change the rules forbid; the message says why."""


def create_account(owner: User, name: str) -> Account:
    """Create an account with ``owner`` as its Account Owner."""
    if owner.is_corporate:
        raise DeletionRefused("Corporate users are managed by their organisation and cannot create accounts.")
    name = " ".join(name.split())
    account = Account(name=name)
    db.session.add(account)
    db.session.flush()
    membership = add_member(account, owner)
    db.session.add(Grant(membership_id=membership.id, role_id=system_role(catalogue.OWNER).id,
                         granted_by_id=owner.id))
    record("account.create", account=account, target=account, actor=owner)
    return account


def add_member(account: Account, user: User) -> Membership:
    membership = db.session.execute(
        db.select(Membership).where(Membership.account_id == account.id, Membership.user_id == user.id)
    ).scalar_one_or_none()
    if membership is None:
        membership = Membership(account_id=account.id, user_id=user.id)
        db.session.add(membership)
        db.session.flush()
    return membership


def accounts_of(user: User) -> list[Account]:
    query = db.select(Account).order_by(Account.name, Account.id)
    if not user.is_superadmin:
        query = query.join(Membership).where(Membership.user_id == user.id)
    return list(db.session.execute(query).scalars())


def members(account: Account) -> list[Membership]:
    return list(db.session.execute(
        db.select(Membership).join(User).where(Membership.account_id == account.id)
        .order_by(User.email)).scalars())


def member_in_account(account: Account, membership_id: int) -> Membership | None:
    membership = db.session.get(Membership, membership_id)
    return membership if membership is not None and membership.account_id == account.id else None


def remove_member(actor: User, account: Account, membership: Membership) -> None:
    from portal.roles.services import refuse_last_owner

    refuse_last_owner(account, membership)
    held = permissions_of_grants(account_grants(membership))
    missing = held - account_permissions(actor, account)
    if missing:
        raise AccessError("You cannot remove a member who holds permissions you do not hold.")
    record("member.remove", account=account, target=membership.user)
    db.session.delete(membership)
    db.session.flush()


def update_settings(actor: User, account: Account, *, name: str, self_registration: bool, personal_mailboxes: bool,
                    personal_mailbox_role_id: int | None) -> None:
    from portal.roles.services import role_in_account

    role = role_in_account(account, personal_mailbox_role_id) if personal_mailbox_role_id else None
    if role is not None and role.scope != catalogue.MAILBOX:
        raise AccessError("Choose a mailbox role for personal mailboxes.")
    before = {"name": account.name, "self_registration": account.self_registration,
              "personal_mailboxes": account.personal_mailboxes, "role": account.personal_mailbox_role_id}
    account.name = " ".join(name.split())
    account.self_registration = self_registration
    account.personal_mailboxes = personal_mailboxes
    account.personal_mailbox_role_id = getattr(role, "id", None)
    after = {"name": account.name, "self_registration": self_registration, "personal_mailboxes": personal_mailboxes,
             "role": account.personal_mailbox_role_id}
    changed = {key: after[key] for key in after if after[key] != before[key]}
    if changed:
        record("account.settings", account=account, target=account, actor=actor, **changed)


def delete_account(actor: User, account: Account, typed_name: str, *, delete_mailboxes: bool) -> dict:
    """Delete the account (reference 004): members lose access to it and its mailboxes,
    corporate users stay corporate, mailboxes are disabled (or deleted) on their
    backends through jobs, domains are released, members are told by e-mail."""
    from portal.domains.models import Domain
    from portal.mail.services import send
    from portal.mailboxes.models import Mailbox
    from portal.mailboxes.services import decommission

    from portal.roles.services import membership_of

    own = membership_of(actor, account)
    if not actor.is_superadmin and (own is None or own.id not in owner_memberships(account)):
        raise DeletionRefused("Only an owner of the account can delete it.")
    if " ".join(typed_name.split()) != account.name:
        raise DeletionRefused(f"Type the account's name, {account.name}, exactly to confirm.")
    people = [m.user for m in members(account)]
    mailboxes = db.session.execute(db.select(Mailbox).where(Mailbox.account_id == account.id)).scalars().all()
    outcome = {}
    for mailbox in mailboxes:
        outcome[mailbox.address] = decommission(mailbox, delete_mailboxes)
    domains = [d.name for d in db.session.execute(db.select(Domain).where(Domain.account_id == account.id)).scalars()]
    record("account.delete", account=account, target=account, actor=actor, domains=domains,
           mailboxes=outcome, members=len(people))
    for person in people:
        send(person.email, "account_deleted", account_name=account.name, user=person, actor=actor)
    # Mailboxes first: domains refuse to go while mailboxes point at them.
    for mailbox in mailboxes:
        db.session.delete(mailbox)
    db.session.flush()
    db.session.delete(account)
    db.session.flush()
    return outcome


def delete_profile(user: User, typed_email: str) -> None:
    """A person deletes their own profile; audit entries keep their address as a tombstone."""
    from portal.invitations.services import withdraw_for

    if user.is_corporate:
        raise DeletionRefused("Your profile is managed by your organisation as a corporate user: ask its "
                              "administrators to remove it.")
    if typed_email.strip().lower() != user.email:
        raise DeletionRefused(f"Type your address, {user.email}, exactly to confirm.")
    sole = [m.account.name for m in db.session.execute(
        db.select(Membership).where(Membership.user_id == user.id)).scalars()
        if owner_memberships(m.account) == [m.id]]
    if sole:
        raise DeletionRefused("You are the only owner of " + ", ".join(sole) + ": make someone else owner, "
                              "or delete the account, first.")
    withdrawn = withdraw_for(user)
    record("user.delete_profile", target=user, actor=user, invitations_withdrawn=withdrawn)
    db.session.delete(user)
    db.session.flush()
