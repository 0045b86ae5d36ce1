"""Corporate users: people whose address is on one of an account's active domains.

They are assigned to that account automatically (on registration, on an
invitation, on single sign-on, and when the domain is enabled), keep every
permission they hold elsewhere, and may get a personal mailbox per the
account's settings.
"""

from __future__ import annotations

from flask_babel import gettext as _

from portal.accounts.models import Account
from portal.accounts.services import add_member
from portal.audit.services import record
from portal.auth.models import User
from portal.domains.models import DISABLED, ENABLED, Domain
from portal.domains.names import DomainNameError, normalize
from portal.domains.ownership import proven_copy
from portal.extensions import db


class RegistrationRefused(ValueError):
    """The address's domain does not allow new users; the message says why."""


def _domain_name(address: str) -> str | None:
    try:
        return normalize(address.rsplit("@", 1)[-1])
    except DomainNameError:
        return None


def claimed_domain(address: str) -> Domain | None:
    """The proven domain the address is on, whatever its status."""
    name = _domain_name(address)
    return proven_copy(name) if name is not None else None


def check_registration_allowed(address: str) -> None:
    """Refuse self-registration on a disabled domain, or where the account closed it."""
    domain = claimed_domain(address)
    if domain is None:
        return
    if domain.status == DISABLED:
        raise RegistrationRefused(_("New users cannot register with addresses on %(domain)s: the domain is "
                                    "disabled. Ask its administrators for an invitation.", domain=domain.name))
    account = db.session.get(Account, domain.account_id)
    if domain.status == ENABLED and not account.self_registration:
        raise RegistrationRefused(_("Addresses on %(domain)s are managed by their organisation, which does not "
                                    "accept self-registration. Ask its administrators to create your profile.",
                                    domain=domain.name))


def active_domain_of(address: str) -> Domain | None:
    domain = claimed_domain(address)
    return domain if domain is not None and domain.status == ENABLED else None


def make_corporate(user: User, domain: Domain, *, personal_mailbox: bool | None = None, actor: User | None = None):
    """Assign ``user`` to the domain's account as a corporate user; return the personal mailbox if one was made.

    ``personal_mailbox`` None follows the account's setting.
    """
    from portal.mailboxes.models import DELETED, Mailbox
    from portal.mailboxes.services import DISPLAY_NAME_LIMIT, NAME_LIMIT, MailboxError, create_mailbox
    from portal.roles.models import Role

    account = db.session.get(Account, domain.account_id)
    add_member(account, user)
    if not user.is_corporate or user.corporate_account_id != account.id:
        user.is_corporate, user.corporate_account_id = True, account.id
        record("user.assign_corporate", account=account, target=user, actor=actor, domain=domain.name)
    wanted = account.personal_mailboxes if personal_mailbox is None else personal_mailbox
    if not wanted or domain.status != ENABLED:
        return None
    existing = db.session.execute(db.select(Mailbox).where(Mailbox.domain_id == domain.id, Mailbox.address == user.email,
                                                           Mailbox.status != DELETED)).scalar_one_or_none()
    if existing is not None:
        return existing
    role = db.session.get(Role, account.personal_mailbox_role_id) if account.personal_mailbox_role_id else None
    first, _space, last = (user.name or "").partition(" ")
    try:
        # A name of up to 200 characters without a space would be a first name longer than a
        # mailbox keeps: the mailbox shows the name cut, the person keeps it whole.
        return create_mailbox(actor, account, domain, user.email.split("@", 1)[0], kind="personal", owner=user,
                              first_name=first[:NAME_LIMIT], last_name=last[:NAME_LIMIT],
                              display_name=(user.name or "")[:DISPLAY_NAME_LIMIT], owner_role=role)
    except MailboxError as refusal:
        # The person joins all the same; the admins see why no mailbox was made.
        record("user.personal_mailbox_refused", account=account, target=user, actor=actor,
               reason=refusal.stored)
        return None
