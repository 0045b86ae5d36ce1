"""Who may use a mail name: the one place that decides it.

Mail is routed by names (mailbox addresses, aliases, domain aliases, catch-all
targets), so a name belongs to the account that **proved** its domain, and to
no other. Every path that accepts a name (mailbox creation, aliases, domain
settings, corporate users, imports, invitations that bring a personal mailbox,
provisioning in the worker) asks this module, so the rule is written once:

- ``ROUTE``: the name makes mail flow now (an alias, a domain alias, a
  catch-all, a mailbox being created on the backend). Its domain must be one
  of the account's own domains, proven by it and not taken or disabled.
- ``RESERVE``: a mailbox that waits for its domain (created ``pending``). It
  may wait on the account's own copy of a domain that is not proven yet; it
  routes nothing until that copy is proven, and it never blocks or reveals an
  address of an account that proved the same name: uniqueness is checked
  within the account's own copy of the domain only.

At most one account holds a proven copy of a domain name (a partial unique
index enforces it); when one account proves a name, every other copy is
taken (see ``domains.services.end_other_claims``).
"""

from __future__ import annotations


from portal.backends.base import is_plain_local_part
from portal.domains.models import DISABLED, TAKEN, Domain
from portal.domains.names import DomainNameError, normalize
from portal.extensions import db
from portal.i18n import StoredReason, later

ROUTE = "route"
RESERVE = "reserve"
ADDRESS_LIMIT = 254  # characters of a whole address (RFC 5321's path, less its angle brackets)


class NameRefused(StoredReason, ValueError):
    """The account may not use this name; the message says why, ``field`` where it belongs."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def proven_copy(name: str) -> Domain | None:
    """The proven copy of a domain name, whoever holds it."""
    return db.session.execute(db.select(Domain).where(Domain.name == name, Domain.verified_at.is_not(None))
                              .order_by(Domain.id).limit(1)).scalar_one_or_none()


def proven_elsewhere(name: str, account_id: int) -> bool:
    return db.session.execute(db.select(Domain.id).where(
        Domain.name == name, Domain.account_id != account_id, Domain.verified_at.is_not(None))).first() is not None


def own_copy(account_id: int, name: str) -> Domain | None:
    return db.session.execute(db.select(Domain).where(Domain.account_id == account_id, Domain.name == name)
                              ).scalar_one_or_none()


def usable_domain(account_id: int, domain: Domain | str, use: str, field: str | None = None) -> Domain:
    """The account's copy of the domain, if the account may use names on it for ``use``."""
    if isinstance(domain, str):
        try:
            name = normalize(domain)
        except DomainNameError as error:
            raise NameRefused(str(error), field) from None
        found = own_copy(account_id, name)
    else:
        found, name = (domain if domain.account_id == account_id else None), domain.name
    if found is None:
        raise NameRefused(later("%(domain)s is not one of this account's domains.", domain=name), field)
    if found.status == TAKEN or proven_elsewhere(found.name, account_id):
        raise NameRefused(later("%(domain)s was proven by another account: this account can no longer use it.",
                                domain=found.name), field)
    if found.status == DISABLED:
        raise NameRefused(later("%(domain)s is disabled: no new addresses can be used on it.", domain=found.name),
                          field)
    if use == ROUTE and found.verified_at is None:
        raise NameRefused(later("%(domain)s is not proven yet: publish its ownership record first.", domain=found.name),
                          field)
    return found


def require_held(domain: Domain) -> None:
    """The account that has this copy of the domain holds the name: it proved it, and no other
    account has since. Nothing is sent to a backend by a name its account does not hold: what a
    copy that was never proven, or was taken, still has (failed mailboxes, settings) stays in the
    portal, since the name on the backend is, or may become, another account's."""
    # Stored by the worker as a provisioning attempt's reason: kept for each reader's language.
    if domain.status == TAKEN:
        raise NameRefused(later("%(domain)s was proven by another account: this account can no longer use it.",
                                domain=domain.name))
    if domain.verified_at is None:
        raise NameRefused(later("%(domain)s is not proven yet: publish its ownership record first.",
                                domain=domain.name))


def holds(domain: Domain) -> bool:
    return domain.status != TAKEN and domain.verified_at is not None


def validate_local_part(raw: str, field: str = "local_part") -> str:
    local_part = raw.strip().lower()
    if not local_part:
        raise NameRefused(later("Enter the part before the @."), field)
    if len(local_part) > 64 or not is_plain_local_part(local_part):
        raise NameRefused(later("Use lower-case letters, digits and . _ + - (not at the start or end), "
                                "at most 64 characters."), field)
    return local_part


def backend_problem(domain: Domain, local_part: str, *, alias: bool = False) -> str | None:
    """What the domain's backend would say against this address, known before anything is sent."""
    from portal.backends import service as backends
    from portal.backends.registry import backend_class

    adapter_class = backend_class(backends.connection(domain.connection).backend)
    rules = adapter_class.alias_problem if alias else adapter_class.address_problem
    return rules(local_part, domain.name)


def address_taken(domain: Domain, address: str) -> bool:
    """Whether a live mailbox or an alias already has the address on this copy of the domain."""
    from portal.mailboxes.models import DELETED, Mailbox, MailboxAlias

    mailbox = db.select(Mailbox.id).where(Mailbox.domain_id == domain.id, Mailbox.address == address,
                                          Mailbox.status != DELETED)
    alias = db.select(MailboxAlias.id).join(Mailbox, Mailbox.id == MailboxAlias.mailbox_id).where(
        MailboxAlias.address == address, Mailbox.account_id == domain.account_id)
    return db.session.execute(db.select(mailbox.exists() | alias.exists())).scalar()


def address_for(account_id: int, domain: Domain | str, local_part: str, use: str, *,
                field: str = "local_part", alias: bool = False) -> tuple[Domain, str]:
    """(the domain, the full address) for a new mailbox or alias, once every rule is met."""
    found = usable_domain(account_id, domain, use, "domain" if field == "local_part" else field)
    local_part = validate_local_part(local_part, field)
    problem = backend_problem(found, local_part, alias=alias)
    if problem:
        raise NameRefused(problem, field)
    address = f"{local_part}@{found.name}"
    if len(address) > ADDRESS_LIMIT:
        # A domain name may be 253 characters long, a local part 64: together more than mail allows.
        raise NameRefused(later("An address is at most %(limit)s characters; this one would have %(length)s. "
                                "Choose a shorter name before the @.", limit=ADDRESS_LIMIT, length=len(address)),
                          field)
    if address_taken(found, address):
        raise NameRefused(later("%(address)s is already used in this account.", address=address), field)
    return found, address


def split(raw: str, field: str) -> tuple[str, str]:
    """(local part, domain name) of a typed address, with a readable refusal."""
    local_part, at, domain = raw.strip().rpartition("@")
    if not at or not local_part or not domain:
        raise NameRefused(later("Enter a full address, such as name@example.org."), field)
    try:
        return local_part, normalize(domain)
    except DomainNameError as error:
        raise NameRefused(str(error), field) from None


def routable_domains(account_id: int, names: list[str], field: str) -> None:
    """Domain names another domain's mail may be sent from (domain aliases): each must be the account's, proven."""
    for name in names:
        usable_domain(account_id, name, ROUTE, field)
