"""Mailboxes: creation rules, provisioning through jobs, and every attempt recorded.

A web request only writes the mailbox and a ``mailbox.provision`` job; the
worker calls the domain's backend and records the attempt. Creation is
idempotent on every adapter, so a retry after a lost answer finds the
mailbox instead of making a second one.
"""

from __future__ import annotations

from datetime import timedelta

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import bindparam, func, tuple_
from sqlalchemy.orm import joinedload, lazyload

from portal.accounts.models import Account, Membership
from portal.accounts.services import add_member
from portal.audit.models import SYSTEM_ACTOR
from portal.audit.services import record
from portal.auth.models import User
from portal.backends import service as backends
from portal.backends.base import BackendError, ChangeNotKept, MailboxSpec, TransientBackendError, Unsupported
from portal.backends.registry import backend_class
from portal.domains import ownership
from portal.domains import services as domains
from portal.domains.models import DISABLED as DOMAIN_DISABLED
from portal.domains.models import ENABLED as DOMAIN_ENABLED
from portal.domains.models import TAKEN as DOMAIN_TAKEN
from portal.domains.models import Domain, aliased_names, catch_all_address
from portal.extensions import db
from portal.i18n import StoredReason, _l, later, later_plural
from portal.jobs.models import FAILED as JOB_FAILED
from portal.jobs.models import QUEUED, RUNNING, Job
from portal.jobs.registry import PermanentJobError, handler
from portal.jobs.services import enqueue, enqueue_many
from portal.mailboxes.models import (DELETED, DISABLED, ENABLED, FAILED, PENDING, PERSONAL, PROVISIONING, SHARED,
                                     Mailbox, MailboxAlias, MailboxSecret, ProvisioningAttempt, ReleasedMailbox,
                                     mailboxes_matching)
from portal.roles import catalogue
from portal.roles.services import account_permissions, grant_mailbox_role, system_role
from portal.sealing import MAILBOX_PASSWORD, seal, unseal
from portal.timeutil import utcnow

PROVISION_KIND = "mailbox.provision"
OPERATIONS = ("create", "set_active", "delete", "reset_password", "set_quota")
SECRET_LIFETIME = timedelta(days=7)


class MailboxError(StoredReason, ValueError):
    """A refusal about a mailbox; ``field`` names the form field it concerns. A ``later`` text
    as the message is kept as it is (``stored``), for those who read it later in their language."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def mailbox_in_account(account: Account, mailbox_id: int) -> Mailbox | None:
    mailbox = db.session.get(Mailbox, mailbox_id)
    return mailbox if mailbox is not None and mailbox.account_id == account.id else None


def capabilities_of(mailbox: Mailbox):
    return backends.capabilities(mailbox.domain.connection)


# -- creating ---------------------------------------------------------------------

def _login_holder_problem(address: str, kind: str, owner: User | None) -> str | None:
    """Why the mailbox may not have ``address`` (a ``later`` text: a pending mailbox stores it), if so.

    Whoever holds a mailbox at someone's login address could take over their profile: only
    that person's own personal mailbox may have it. A vacant profile (a registration nobody
    confirmed, say a stranger's) holds nothing: the mailbox takes its address (``_take_address``)."""
    from portal.users.services import vacant_profile

    holder = db.session.execute(db.select(User).where(User.email == address)).scalar_one_or_none()
    if holder is not None and (kind != PERSONAL or owner is None or owner.id != holder.id) \
            and not vacant_profile(holder):
        return later("%(address)s is %(person)s's login address: only their own personal mailbox may have it.",
                     address=address, person=holder.email)
    return None


def _name_problem(domain: Domain, address: str, kind: str, owner: User | None,
                  readers: set[int] = frozenset()) -> str | None:
    """Why a mailbox may not receive ``address`` by name (a ``later`` text), if so: the address, or
    one of the forms the domain's settings deliver to it (joe@alias reaches joe@here), is someone's
    login address (``_login_holder_problem``), or the address the account's catch-all names. The
    catch-all receives the login mail of everyone on its domain without a mailbox: a mailbox may
    take its name only while nobody but owners reads it (``readers``, with a personal mailbox's
    owner; a review: a member aliased the name onto her own mailbox, whose password she had, and
    got an administrator's reset link)."""
    local = address.split("@", 1)[0]
    forms = [address, *sorted(f"{local}@{name}" for name in _aliased_names(domain))]
    for form in forms:
        problem = _login_holder_problem(form, kind, owner)
        if problem:
            return problem
        # Mail servers deliver name+tag@ to name@ when nothing has name+tag@ itself: a login address
        # with a tag reaches a mailbox at the plain name.
        form_local, _at, form_name = form.partition("@")
        for tagged in db.session.execute(db.select(User.email).where(
                User.email.startswith(f"{form_local}+", autoescape=True),
                User.email.endswith(f"@{form_name}", autoescape=True)).order_by(User.email)).scalars():
            if not _named(domain.account_id, tagged):
                problem = _login_holder_problem(tagged, kind, owner)
                if problem:
                    return problem
    caught = [other.name for other in db.session.execute(db.select(Domain).where(
        Domain.account_id == domain.account_id, Domain.settings.is_not(None))).scalars()
        if catch_all_address(other.settings) in forms]
    if caught:
        readers = set(readers) | ({owner.id} if kind == PERSONAL and owner is not None else set())
        if read_by_non_owners(readers, domain.account_id):
            return later("%(address)s is the catch-all of %(domains)s: it receives the mail of every address "
                             "there without a mailbox, people's login addresses among them. Only a mailbox that "
                             "nobody but the account's owners reads may have it.",
                         address=address, domains=", ".join(sorted(caught)))
    return None


def read_by_non_owners(readers, account_id: int) -> bool:
    """Whether one of ``readers`` (profile ids, ``readers_of``) is not an owner of the account: a
    mailbox that receives everyone's mail (a catch-all, the server's administrator) may be read by
    owners alone, who outrank everyone in it. A profile since deleted reads nothing."""
    from portal.roles.services import is_owner

    return any(not is_owner(person, account_id) for person in db.session.execute(
        db.select(User).where(User.id.in_(set(readers)))).scalars())


def readers_of(mailbox: Mailbox) -> set[int]:
    """Who may read the mailbox's mail, as far as the portal knows: whoever its password was last
    given to, its owner if personal, and the person whose login address it is (they get its
    password from their own page)."""
    from portal.users.services import vacant_profile

    readers = {mailbox.password_given_to_id, mailbox.owner_id if mailbox.kind == PERSONAL else None}
    # A vacant profile at its address (a stranger's registration nobody confirmed) reads nothing:
    # counting it let anyone stop the resets a shared mailbox receives (a review).
    readers |= {user.id for user in db.session.execute(db.select(User).where(User.email == mailbox.address)).scalars()
                if not vacant_profile(user)}
    return readers - {None}


def _take_address(domain: Domain, mailbox: Mailbox, address: str, actor: User | None) -> None:
    """``mailbox`` now receives ``address`` by name: a vacant profile there goes (unless it is the
    mailbox's own owner's), and invitation links mailed there end (``_routed``)."""
    from portal.users.services import retire_vacant

    if mailbox.owner_id is None or mailbox.owner.email != address:
        retire_vacant(address, domain.account_id, actor)
    _routed(domain, address)


def _aliased_names(domain: Domain) -> set[str]:
    """The domains the domain's settings alias onto it (joe@alias reaches joe@ here)."""
    return aliased_names(domain.settings)


def _routed(domain: Domain, address: str) -> None:
    """A mailbox now receives ``address`` by name, on ``domain`` (and the same local part on the
    domains aliased onto it): invitation links mailed there before stop working, since whoever reads
    this mailbox would now get them (sending again checks who reads it)."""
    from portal.invitations.services import expire_links_to

    local = address.split("@", 1)[0]
    expire_links_to({address} | {f"{local}@{name}" for name in _aliased_names(domain)}, domain.account_id)


NAME_LIMIT = 100  # first and last names, as the mailboxes table keeps them
DISPLAY_NAME_LIMIT = 200
# Aliases of one mailbox, at most (as many as a Microsoft 365 mailbox has addresses): the mailbox page
# and the API list them all. More names for one mailbox are a domain alias or a catch-all.
MAX_ALIASES = 400


def create_mailbox(actor: User | None, account: Account, domain: Domain, local_part: str, *,
                   kind: str = SHARED, owner: User | None = None, first_name: str = "", last_name: str = "",
                   display_name: str = "", quota_bytes: int | None = None,
                   owner_role=None) -> Mailbox:
    """``owner_role``: the mailbox role the owner gets (default Mailbox Owner)."""
    try:
        domain, address = ownership.address_for(account.id, domain, local_part, ownership.RESERVE)
    except ownership.NameRefused as refusal:
        raise MailboxError(refusal.stored, refusal.field) from None
    local_part = address.split("@", 1)[0]
    capabilities = backends.capabilities(domain.connection)
    if quota_bytes is not None:
        if quota_bytes <= 0:
            raise MailboxError(_("The quota must be above zero, or left empty for the default."), "quota")
        if not capabilities.mailbox_quota:
            raise MailboxError(_("The %(backend)s backend does not set quotas; leave it empty.",
                                 backend=domain.connection), "quota")
    if kind not in (PERSONAL, SHARED):
        raise MailboxError(_("Choose personal or shared."), "kind")
    for field, value, limit in (("first_name", first_name, NAME_LIMIT), ("last_name", last_name, NAME_LIMIT),
                                ("display_name", display_name, DISPLAY_NAME_LIMIT)):
        if len(value.strip()) > limit:
            raise MailboxError(_("At most %(number)s characters.", number=limit), field)
    if kind == PERSONAL and owner is None:
        raise MailboxError(_("A personal mailbox needs its owner."), "owner")
    from portal.domains.settings import mailbox_limit_problem

    in_use = db.session.execute(db.select(db.func.count()).select_from(Mailbox).where(
        Mailbox.domain_id == domain.id, Mailbox.status != DELETED)).scalar_one()
    limit_problem = mailbox_limit_problem(domain, in_use)
    if limit_problem:
        raise MailboxError(limit_problem, "domain")
    # On a copy of a domain that is not proven yet, nothing about who holds which address on
    # the real domain may be revealed: this is checked again when the mailbox is provisioned.
    holder_problem = _name_problem(domain, address, kind, owner) if domain.verified_at else None
    if holder_problem:
        raise MailboxError(holder_problem, "owner" if kind == PERSONAL else "local_part")
    previous = db.session.execute(db.select(Mailbox).where(Mailbox.domain_id == domain.id, Mailbox.address == address,
                                                           Mailbox.status == DELETED)).scalar_one_or_none()
    if previous is not None:
        # Re-creating a removed address: the backend may restore what it archived. That mail is for
        # someone who could have reset the old mailbox's password, not for whoever may create users
        # (a personal mailbox comes with a person; a review found a helper reading a removed
        # person's mail that way).
        if actor is not None and capabilities.mailbox_delete_archives and \
                "mailboxes.manage" not in account_permissions(actor, account):
            raise MailboxError(later("%(address)s had a mailbox whose mail its backend kept: making it again "
                                     "restores that mail, which only someone who manages the account's mailboxes "
                                     "may do.", address=address), "local_part")
        db.session.delete(previous)
        db.session.flush()
    mailbox = Mailbox(account_id=account.id, domain_id=domain.id, local_part=local_part, address=address, kind=kind,
                      owner_id=getattr(owner, "id", None), first_name=first_name.strip(),
                      last_name=last_name.strip(), display_name=display_name.strip(), quota_bytes=quota_bytes)
    mailbox.domain = domain
    mailbox.protocols = default_protocols(domain)
    db.session.add(mailbox)
    db.session.flush()
    if ownership.holds(domain):  # else once its domain is proven and the mailbox is created (provision_pending)
        _take_address(domain, mailbox, address, actor)
    if owner is not None:
        membership = add_member(account, owner)
        grant_mailbox_role(None, account, membership, mailbox.id, owner_role or system_role(catalogue.MAILBOX_OWNER))
    if domain.status == DOMAIN_ENABLED:
        _start(mailbox, "create")
    else:
        mailbox.status = PENDING
        mailbox.status_reason = later("Waits for %(domain)s to be enabled; it is created on the backend then.",
                                      domain=domain.name)
    record("mailbox.create", account=account, target=mailbox, actor=actor, kind=kind,
           owner=getattr(owner, "email", None), status=mailbox.status)
    return mailbox


def provision_pending(domain: Domain) -> None:
    """Activation hook: a domain just became enabled; create what waited for it, unless the
    address turned out to be someone's login address (checked only now that the domain is proven)."""
    pending = db.session.execute(db.select(Mailbox).where(Mailbox.domain_id == domain.id,
                                                          Mailbox.status == PENDING)).scalars().all()
    for mailbox in pending:
        problem = _name_problem(domain, mailbox.address, mailbox.kind, mailbox.owner)
        if problem:
            mailbox.status, mailbox.status_reason = FAILED, later("Not created: %(reason)s", reason=problem)
            continue
        _take_address(domain, mailbox, mailbox.address, None)
        _start(mailbox, "create")


def stop_on_taken_domain(domain: Domain) -> None:
    """Another account proved the domain: what waited on this account's copy will never be created."""
    for mailbox in db.session.execute(db.select(Mailbox).where(
            Mailbox.domain_id == domain.id, Mailbox.status.in_((PENDING, PROVISIONING)))).scalars():
        mailbox.status = FAILED
        mailbox.status_reason = later("Not created: another account proved that %(domain)s is theirs. "
                                      "Delete this mailbox.", domain=domain.name)


def mailboxes_block_removal(domain: Domain) -> str | None:
    count = db.session.execute(db.select(db.func.count()).select_from(Mailbox).where(
        Mailbox.domain_id == domain.id, Mailbox.status != DELETED)).scalar_one()
    if count:
        return ngettext("%(domain)s still has %(num)d mailbox. Delete it first, then remove the domain.",
                        "%(domain)s still has %(num)d mailboxes. Delete them first, then remove the domain.",
                        count, domain=domain.name)
    return None


def routing_blocks_removal(domain: Domain) -> str | None:
    """Mail routed to names on the domain (an alias on it, or another domain of the account that has
    it as a domain alias or sends its catch-all there) stays on the backend once the domain is gone,
    and would reach this account from names that may become another account's: removed first."""
    suffix = "@" + domain.name
    aliases = list(db.session.execute(
        db.select(MailboxAlias.address).join(Mailbox, Mailbox.id == MailboxAlias.mailbox_id)
        .where(Mailbox.account_id == domain.account_id, MailboxAlias.address.endswith(suffix, autoescape=True))
        .order_by(MailboxAlias.address).limit(3)).scalars())
    if aliases:
        return _("%(domain)s still has aliases (%(aliases)s). Remove them first, then remove the domain.",
                 domain=domain.name, aliases=", ".join(aliases))
    for other in db.session.execute(db.select(Domain).where(Domain.account_id == domain.account_id,
                                                             Domain.id != domain.id)).scalars():
        settings = other.settings or {}
        catch_all = settings.get("catch_all") or ""
        aliased = {str(name).strip().lower().rstrip(".") for name in settings.get("domain_aliases") or []}
        if domain.name in aliased or \
                (isinstance(catch_all, str) and catch_all.lower().endswith(suffix)):
            return _("%(other)s routes mail to %(domain)s (a domain alias or its catch-all, in its settings). "
                     "Change that first, then remove the domain.", other=other.name, domain=domain.name)
    return None


def forget_deleted_mailboxes(domain: Domain) -> None:
    """Deleted mailboxes are history of the domain; they go with it. Where its backend archives
    what it deletes (creating the address again restores the mail), each is remembered as left
    by this account (``ReleasedMailbox``): the next account to prove the domain does not get it.
    An address already remembered stays as it was: what another account left is still theirs,
    whoever deleted a mailbox at it since (the backend only found the archive)."""
    from portal.backends.base import ConfigurationError

    deleted = list(db.session.execute(db.select(Mailbox.address).where(Mailbox.domain_id == domain.id,
                                                                        Mailbox.status == DELETED)).scalars())
    try:
        archives = backends.capabilities(domain.connection).mailbox_delete_archives
    except ConfigurationError:
        archives = True  # a connection no longer configured: it may keep anything
    if deleted and archives and domain.verified_at is not None and domain.status != DOMAIN_TAKEN:
        with db.session.no_autoflush:
            addresses = sorted(set(deleted))
            known = set()
            for start in range(0, len(addresses), 500):
                known |= set(db.session.execute(db.select(ReleasedMailbox.address).where(
                    ReleasedMailbox.connection == domain.connection,
                    ReleasedMailbox.address.in_(addresses[start:start + 500]))).scalars())
            account_name = db.session.execute(db.select(Account.name).where(
                Account.id == domain.account_id)).scalar_one()
            left = [{"connection": domain.connection, "address": address, "account_name": account_name[:200],
                     "account_id": domain.account_id, "released_at": utcnow()}
                    for address in addresses if address not in known]
            if left:
                db.session.execute(db.insert(ReleasedMailbox.__table__), left)
    if deleted:  # one statement; their aliases and attempts go with them (ON DELETE CASCADE)
        db.session.execute(db.delete(Mailbox).where(Mailbox.domain_id == domain.id, Mailbox.status == DELETED),
                           execution_options={"synchronize_session": False})
    db.session.flush()


domains.activation_hooks.append(provision_pending)
domains.taken_hooks.append(stop_on_taken_domain)
domains.removal_blockers.append(mailboxes_block_removal)
domains.removal_blockers.append(routing_blocks_removal)
domains.removal_cleanups.append(forget_deleted_mailboxes)


# -- changing ---------------------------------------------------------------------

# What a mailbox says while the backend carries an operation out (its status reason).
SHARED_SERVER = _l("This mail server also serves other accounts' domains, and its administrator privilege "
                   "covers every mailbox it holds: it is not given from the portal.")
UNDER_WAY = {"create": _l("Being created on the backend."), "set_active": _l("Being updated on the backend."),
             "delete": _l("Being deleted on the backend."),
             "reset_password": _l("A new password is being set on the backend."),
             "set_quota": _l("The quota is being changed on the backend."),
             "add_alias": _l("An alias is being added on the backend."),
             "remove_alias": _l("An alias is being removed on the backend."),
             "set_protocols": _l("Protocol access is being changed on the backend."),
             "set_admin": _l("The backend's administrator privilege is being changed.")}


def _start(mailbox: Mailbox, operation: str, **extra) -> Job:
    mailbox.status = PROVISIONING
    mailbox.status_reason = later(UNDER_WAY[operation])
    return enqueue(PROVISION_KIND, {"mailbox_id": mailbox.id, "operation": operation, **extra},
                   subject=f"mailbox:{mailbox.id}", account=mailbox.account_id)


def _require_live(mailbox: Mailbox, *, allow_failed: bool = False) -> None:
    """Changes go to a mailbox at rest on its backend; a failed one is retried (or deleted) first."""
    if mailbox.status == DELETED:
        raise MailboxError(_("This mailbox was deleted."))
    if mailbox.status == PENDING:
        raise MailboxError(_("This mailbox waits for its domain; it can be changed once it exists on the backend."))
    try:
        ownership.require_held(mailbox.domain)
    except ownership.NameRefused as refusal:
        raise MailboxError(refusal.stored) from None
    if busy(mailbox):
        raise MailboxError(_("A change to this mailbox is still running; wait for it to finish."))
    if mailbox.status == FAILED and not allow_failed:
        raise MailboxError(_("The last change to this mailbox failed: retry it (or delete the mailbox) first."))


def busy(mailbox: Mailbox) -> bool:
    return db.session.execute(db.select(Job.id).where(
        Job.subject == f"mailbox:{mailbox.id}", Job.status.in_((QUEUED, RUNNING)))).first() is not None


def set_active(actor: User, mailbox: Mailbox, active: bool) -> None:
    _require_live(mailbox)
    if active and mailbox.domain.status == DOMAIN_DISABLED:
        raise MailboxError(_("%(domain)s is disabled: its mailboxes cannot be enabled.", domain=mailbox.domain.name))
    if not capabilities_of(mailbox).mailbox_disable:
        raise MailboxError(_("The %(backend)s backend cannot disable mailboxes.", backend=mailbox.domain.connection))
    mailbox.want_active = active
    _start(mailbox, "set_active")
    record("mailbox.enable" if active else "mailbox.disable", account=mailbox.account_id, target=mailbox, actor=actor)


def delete(actor: User, mailbox: Mailbox) -> str:
    """Delete where the backend can; otherwise disable, and say so. A pending mailbox
    never reached the backend: it goes at once."""
    if mailbox.status == PENDING:
        mailbox.status, mailbox.status_reason = DELETED, later("Deleted before it was created on the backend.")
        record("mailbox.delete", account=mailbox.account_id, target=mailbox, actor=actor, pending=True)
        return _("The mailbox was deleted; it had not been created on the backend yet.")
    if not ownership.holds(mailbox.domain) and mailbox.status != DELETED:
        # The name is not this account's (any more): the address on the backend is, or may be,
        # another account's, so the portal forgets it and sends nothing.
        mailbox.status = DELETED
        mailbox.status_reason = later("Deleted from the portal only: %(domain)s is not this account's.",
                                      domain=mailbox.domain.name)
        record("mailbox.delete", account=mailbox.account_id, target=mailbox, actor=actor, portal_only=True)
        return _("The mailbox was deleted from the portal; %(domain)s is not this account's, so nothing was sent "
                 "to the backend.", domain=mailbox.domain.name)
    _require_live(mailbox, allow_failed=True)
    capabilities = capabilities_of(mailbox)
    if capabilities.can_delete_mailbox:
        _start(mailbox, "delete")
        record("mailbox.delete", account=mailbox.account_id, target=mailbox, actor=actor)
        if capabilities.mailbox_delete_archives:
            return _("The mailbox is being removed. This backend archives it: the mail stays on the server, "
                     "and creating the same address again restores it.")
        return _("The mailbox is being deleted.")
    mailbox.want_active = False
    _start(mailbox, "set_active")
    record("mailbox.disable", account=mailbox.account_id, target=mailbox, actor=actor, instead_of="delete")
    return _("The %(backend)s backend cannot delete mailboxes, so it is being disabled instead.",
             backend=mailbox.domain.connection)


def received_addresses(mailbox: Mailbox) -> set[str]:
    """Every address whose mail this mailbox receives by name: its own, its aliases', and the same
    local parts on the domains the settings of each one's domain alias onto it (joe@alias reaches
    joe@here; an alias on another of the account's domains takes that domain's: a review found
    ceo@w reaching an alias ceo@z, w aliased onto z, unseen)."""
    own = {mailbox.address} | {alias.address for alias in mailbox.aliases}
    names = {address.rsplit("@", 1)[-1] for address in own}
    aliased = {domain.name: _aliased_names(domain) for domain in db.session.execute(db.select(Domain).where(
        Domain.account_id == mailbox.account_id, Domain.name.in_(names), Domain.settings.is_not(None))).scalars()}
    return own | {f"{address.split('@', 1)[0]}@{name}" for address in own
                  for name in aliased.get(address.rsplit("@", 1)[-1], ())}


def received_by_name(account_id: int, addresses: list[str]) -> set[str]:
    """Of ``addresses``, those one of the account's live mailboxes receives by name: at it, as one
    of its aliases, or at the same local part on a domain aliased onto the address's (joe@alias
    reaches joe@target); not a person's own personal mailbox at their login address. Another
    account's mailboxes are that account's to know (a review: they blocked this account's names).
    A statement or two per 500 addresses, plus one for the domain aliases."""
    onto: dict[str, list[str]] = {}
    for domain in db.session.execute(db.select(Domain).where(Domain.account_id == account_id,
                                                             Domain.settings.is_not(None))).scalars():
        for name in _aliased_names(domain):
            onto.setdefault(name, []).append(domain.name)
    # name+tag@ reaches name@ where nothing has the tagged name, as mail servers deliver it (a
    # review: sales+x@ was accepted where sales@ was refused): looked up again untagged, for those
    # whose tagged name nothing had (a later review: jane+x@, a mailbox of its own, counted as jane@'s).
    found, named = _received(account_id, onto, {address: address.partition("@")[0] for address in addresses})
    untagged = {address: address.partition("@")[0].split("+", 1)[0] for address in addresses
                if "+" in address.partition("@")[0] and address not in named}
    if untagged:
        found |= _received(account_id, onto, untagged)[0]
    return found


def _received(account_id: int, onto: dict[str, list[str]], locals_of: dict[str, str]) -> tuple[set[str], set[str]]:
    """(those of the addresses a live mailbox of the account receives, those any mailbox or alias
    has the name of): each address looked up at ``locals_of[address]`` on its domain and on the
    domains aliased onto it; a person's own personal mailbox at their login address is named but
    does not count as received by another."""
    stands_for: dict[str, set[str]] = {}
    for address, local in locals_of.items():
        name = address.partition("@")[2]
        for target in (f"{local}@{name}", *(f"{local}@{domain_name}" for domain_name in onto.get(name, ()))):
            stands_for.setdefault(target, set()).add(address)
    found: set[str] = set()
    named: set[str] = set()
    names = list(stands_for)
    for start in range(0, len(names), 500):
        chunk = names[start:start + 500]
        for address, kind, owner_email in db.session.execute(
                db.select(Mailbox.address, Mailbox.kind, User.email).outerjoin(User, User.id == Mailbox.owner_id)
                .where(Mailbox.account_id == account_id, Mailbox.status != DELETED, Mailbox.address.in_(chunk))):
            named |= stands_for[address]
            found |= {asked for asked in stands_for[address] if not (kind == PERSONAL and owner_email == asked)}
        aliases = db.select(MailboxAlias.address).join(Mailbox, Mailbox.id == MailboxAlias.mailbox_id).where(
            Mailbox.account_id == account_id, Mailbox.status != DELETED, MailboxAlias.address.in_(chunk))
        for address in db.session.execute(aliases).scalars():
            named |= stands_for[address]
            found |= stands_for[address]
    return found, named


def received_by_a_mailbox(address: str) -> bool:
    """Whether a mailbox of the account that proved the address's domain receives it by name (at
    it, as an alias, through a domain alias, name+tag@ at name@), not through a catch-all: whoever
    reads it would confirm a profile made there, and hold its password (a review: a member aliased
    ceo@ onto her own mailbox, registered it, and the profile she held was later made Administrator)."""
    return bool(receiving(address, catch_all=False))


def receiving(address: str, *, catch_all: bool = True) -> list[Mailbox]:
    """The portal's mailboxes that receive mail sent to ``address``: at it, with it as an alias,
    at its local part on a domain its domain is aliased onto, or (``catch_all``) its domain's catch-all."""
    local, _at, name = address.partition("@")
    holder = ownership.proven_copy(name)
    if holder is None or not ownership.holds(holder):
        # Mail to a name is delivered by the account that proved its domain, and only by it: a
        # mailbox another account reserves on its own copy of the domain (never proven, or taken
        # since) receives nothing, and must neither end links mailed there nor block sending them.
        return []
    found = _named_or_untagged(holder.account_id, address)
    for domain in db.session.execute(db.select(Domain).where(Domain.account_id == holder.account_id,
                                                             Domain.settings.is_not(None))).scalars():
        if name in _aliased_names(domain):
            # Delivered as local@ that domain: to a mailbox or an alias there, else to its catch-all.
            target = _named_or_untagged(holder.account_id, f"{local}@{domain.name}")
            found += target or (_catch_all_of(domain) if catch_all else [])
    if not found and catch_all:
        found += _catch_all_of(holder)
    return list({mailbox.id: mailbox for mailbox in found}.values())


def _named_or_untagged(account_id: int, address: str) -> list[Mailbox]:
    """``_named``; for name+tag@ that nothing has by name, name@'s (mail servers deliver there)."""
    found = _named(account_id, address)
    local, _at, name = address.partition("@")
    if not found and "+" in local:
        found = _named(account_id, f"{local.split('+', 1)[0]}@{name}")
    return found


def _named(account_id: int, address: str) -> list[Mailbox]:
    """The account's live mailboxes at ``address`` or with it as an alias. A deleted one receives
    nothing: the domain's catch-all does (a review: one hid the catch-all from the checks)."""
    return list(db.session.execute(db.select(Mailbox).where(
        Mailbox.account_id == account_id, Mailbox.address == address, Mailbox.status != DELETED)).scalars()) + list(
        db.session.execute(db.select(Mailbox).join(MailboxAlias, MailboxAlias.mailbox_id == Mailbox.id)
                           .where(Mailbox.account_id == account_id, Mailbox.status != DELETED,
                                  MailboxAlias.address == address)).scalars())


def _catch_all_of(domain: Domain) -> list[Mailbox]:
    """The mailbox the domain's catch-all names (by its address or one of its aliases), if any."""
    catch_all = catch_all_address(domain.settings)
    return _named(domain.account_id, catch_all) if catch_all else []


def catches_all(mailbox: Mailbox) -> list[str]:
    """The account's domains whose catch-all is this mailbox (or one of its aliases)."""
    own = {mailbox.address} | {alias.address for alias in mailbox.aliases}
    return [domain.name for domain in db.session.execute(db.select(Domain).where(
        Domain.account_id == mailbox.account_id, Domain.settings.is_not(None))).scalars()
        if catch_all_address(domain.settings) in own]


def _require_outranks_holder(actor: User, mailbox: Mailbox) -> None:
    """The password of a mailbox that receives someone's login mail (at its address, an alias, a
    domain alias) opens their profile too, a password reset arriving there: only someone who holds
    every right that person holds may get it. A catch-all's mailbox receives the login mail of
    everyone on its domain without a mailbox: only an owner, who outranks everyone in the account."""
    from portal.roles.services import is_owner, outranks

    account = db.session.get(Account, mailbox.account_id)
    holders = db.session.execute(db.select(User).where(User.email.in_(received_addresses(mailbox)),
                                                       User.id != actor.id).order_by(User.email)).scalars()
    for holder in holders:
        if not outranks(actor, account, holder):
            raise MailboxError(_("%(address)s receives the mail of %(person)s's login address, and they hold rights "
                                 "you do not hold: only they, or someone who holds all their rights, may get its "
                                 "password.", address=mailbox.address, person=holder.email))
    if mailbox.backend_admin and not is_owner(actor, account.id):
        raise MailboxError(_("%(address)s is the server's administrator: it can change the password of every "
                             "mailbox on the server, and so read anyone's mail. Only an owner of the account may "
                             "get its password.", address=mailbox.address))
    caught = catches_all(mailbox)
    if caught and not is_owner(actor, account.id):
        raise MailboxError(_("%(address)s is the catch-all of %(domains)s: it receives the mail of every address "
                             "there without a mailbox, people's login addresses among them. Only an owner of the "
                             "account may get its password.", address=mailbox.address, domains=", ".join(caught)))


def reset_password(actor: User, mailbox: Mailbox) -> None:
    _require_live(mailbox)
    _require_outranks_holder(actor, mailbox)
    if not capabilities_of(mailbox).can_reset_password:
        raise MailboxError(_("The %(backend)s backend cannot reset passwords.", backend=mailbox.domain.connection))
    _start(mailbox, "reset_password")
    record("mailbox.reset_password", account=mailbox.account_id, target=mailbox, actor=actor)


def set_quota(actor: User, mailbox: Mailbox, quota_bytes: int | None) -> None:
    _require_live(mailbox)
    if not capabilities_of(mailbox).mailbox_quota:
        raise MailboxError(_("The %(backend)s backend does not set quotas.", backend=mailbox.domain.connection),
                           "quota")
    if quota_bytes is not None and quota_bytes <= 0:
        raise MailboxError(_("The quota must be above zero, or empty for the default."), "quota")
    before = mailbox.quota_bytes
    mailbox.quota_bytes = quota_bytes
    _start(mailbox, "set_quota")
    record("mailbox.set_quota", account=mailbox.account_id, target=mailbox, actor=actor, before=before,
           after=quota_bytes)


def retry(actor: User, mailbox: Mailbox) -> None:
    """Run the operation that failed again, with a fresh series of attempts."""
    if mailbox.status != FAILED:
        raise MailboxError(_("Only a failed mailbox can be retried."))
    try:
        ownership.require_held(mailbox.domain)
    except ownership.NameRefused as refusal:
        raise MailboxError(refusal.stored) from None
    last = db.session.execute(db.select(Job).where(Job.subject == f"mailbox:{mailbox.id}", Job.status == JOB_FAILED)
                              .order_by(Job.id.desc()).limit(1)).scalar_one_or_none()
    operation = last.payload.get("operation", "create") if last is not None else "create"
    _start(mailbox, operation)
    record("mailbox.retry", account=mailbox.account_id, target=mailbox, actor=actor, operation=operation)


# -- one-time passwords ------------------------------------------------------------

# Written by the worker for every creation: plain statements built once and run on the session's
# connection, since nothing is read back from them and no object of the session holds a secret.
_FORGET_SECRETS = db.delete(MailboxSecret.__table__).where(MailboxSecret.mailbox_id == bindparam("mailbox_id"))
_KEEP_SECRET = db.insert(MailboxSecret.__table__)


def keep_secret(mailbox: Mailbox, password: str) -> None:
    connection = db.session.connection()
    connection.execute(_FORGET_SECRETS, {"mailbox_id": mailbox.id})
    connection.execute(_KEEP_SECRET, {"mailbox_id": mailbox.id, "ciphertext": seal(MAILBOX_PASSWORD, password),
                                      "expires_at": utcnow() + SECRET_LIFETIME})


def waiting_secret(mailbox: Mailbox) -> MailboxSecret | None:
    return db.session.execute(db.select(MailboxSecret).where(
        MailboxSecret.mailbox_id == mailbox.id, MailboxSecret.expires_at > utcnow())).scalar_one_or_none()


def reveal_secret(actor: User, mailbox: Mailbox) -> str | None:
    """The generated password, once: it is deleted as it is read."""
    _require_outranks_holder(actor, mailbox)
    secret = waiting_secret(mailbox)
    if secret is None:
        return None
    removed = db.session.execute(db.delete(MailboxSecret).where(MailboxSecret.id == secret.id)).rowcount
    if removed != 1:
        return None
    holder = db.session.execute(db.select(User.id).where(User.email == mailbox.address)).scalar_one_or_none()
    # Its holder may be given more rights than ``actor`` holds later: see auth.services.reset_withheld.
    mailbox.password_given_to_id = None if actor.id == holder else actor.id
    mailbox.password_given_at = utcnow()
    record("mailbox.reveal_password", account=mailbox.account_id, target=mailbox, actor=actor)
    return unseal(MAILBOX_PASSWORD, secret.ciphertext)


# -- the worker side ---------------------------------------------------------------

def _spec(mailbox: Mailbox, can_disable: bool) -> MailboxSpec:
    return MailboxSpec.for_address(mailbox.address, first_name=mailbox.first_name, last_name=mailbox.last_name,
                                   display_name=mailbox.display_name, quota_bytes=mailbox.quota_bytes,
                                   active=mailbox.want_active or not can_disable, protocols=mailbox.protocols)


def _resting_status(mailbox: Mailbox) -> str:
    """What a mailbox is once no change is running: what the admin wants of it."""
    return ENABLED if mailbox.want_active else DISABLED


def _refuse_released(mailbox: Mailbox) -> None:
    found = released(mailbox.domain.connection, mailbox.address, mailbox.account_id)
    if found is not None:
        raise AddressReleased(released_message(found))


def _carry_out(mailbox: Mailbox, operation: str, job_alias_id: int | None = None) -> tuple[str, dict]:
    """Make the backend call; return what it did, in words, and the mailbox's columns it changed.
    Create and delete set the status; every other change leaves the mailbox resting (set by the caller)."""
    backend = backends.discovered(mailbox.domain)
    if operation == "create":
        # A backend that archives what it deletes answers "created" when it restores an archive, with
        # the mail another account left there: asked first. Another has the mailbox already, or not.
        archives = backend.capabilities.mailbox_delete_archives
        if archives:
            _refuse_released(mailbox)
        can_disable = backend.capabilities.mailbox_disable
        result = backend.create_mailbox(_spec(mailbox, can_disable))
        if not result.created and not archives:
            _refuse_released(mailbox)  # there because another account left it, not from an earlier attempt
        if result.generated_password:
            keep_secret(mailbox, result.generated_password)
        message = later("Created on the backend.") if result.created else \
            later("Already on the backend (an earlier attempt made it).")
        # Made by an earlier attempt whose answer was lost: nobody has its first password.
        columns = {"password_lost": not result.created and waiting_secret(mailbox) is None,
                   "backend_id": result.backend_id or mailbox.backend_id,
                   "status": DISABLED if not mailbox.want_active and can_disable else ENABLED}
        if not result.created and _server_administrator(backend, mailbox):
            # Already there as the server's administrator (its set-up one, made outside the portal:
            # a review saw an Administrator make a mailbox at its address and reset its password).
            columns["backend_admin"] = True
        return message, columns
    if operation == "set_active":
        backend.set_mailbox_active(mailbox.address, mailbox.want_active)
        if mailbox.want_active and mailbox.protocols and backend.capabilities.protocol_flags:
            # Some backends (Odin) restore their own defaults on enabling: put the mailbox's back.
            backend.set_protocols(mailbox.address, mailbox.protocols)
        return (later("Enabled.") if mailbox.want_active else later("Disabled.")), {}
    if operation in ("add_alias", "remove_alias"):
        return _carry_out_alias(backend, mailbox, operation, job_alias_id), {}
    if operation == "set_admin":
        if mailbox.backend_admin and serves_other_accounts(mailbox.domain.connection, mailbox.account_id):
            # Another account's domain came onto the server since it was asked: not given.
            mailbox.backend_admin = False
            return later(SHARED_SERVER), {}
        backend.set_admin(mailbox.address, mailbox.backend_admin)
        return (later("Administrator privilege granted on the backend.") if mailbox.backend_admin else
                later("Administrator privilege removed on the backend.")), {}
    if operation == "set_protocols":
        backend.set_protocols(mailbox.address, mailbox.protocols or {})
        return later("Protocol access changed."), {}
    if operation == "delete":
        removed = backend.delete_mailbox(mailbox.address)
        archives = backend.capabilities.mailbox_delete_archives
        if removed:
            message = later("Removed on the backend, which keeps any mail it held archived.") if archives else \
                later("Deleted.")
        elif archives and _archived_on_backend(backend, mailbox.address):
            # Removed behind the portal's back, its mail folder kept (Mail-in-a-Box lists it inactive).
            message = later("The backend had already removed this mailbox; it keeps the mail it held archived.")
        else:
            message = later("The backend no longer had this mailbox: nothing was left to archive.") if archives else \
                later("The backend no longer had this mailbox: nothing was left to delete.")
        return message, {"status": DELETED}
    if operation == "reset_password":
        if _server_administrator(backend, mailbox):
            # Asked for as a plain mailbox, it turns out the server's administrator: whoever asked
            # may not be an owner, and its password opens every mailbox there. Not reset; an owner
            # may ask again.
            return later("Not reset: the backend lists this mailbox as its administrator, whose password only an "
                         "owner of the account may get. An owner may reset it."), {"backend_admin": True}
        keep_secret(mailbox, backend.reset_password(mailbox.address))
        return later("New password set; it can be revealed once on the mailbox page."), {"password_lost": False}
    if operation == "set_quota":
        backend.set_quota(mailbox.address, mailbox.quota_bytes)
        return later("Quota changed."), {}
    raise PermanentJobError(_("unknown mailbox operation %(operation)s", operation=repr(operation)))


def _server_administrator(backend, mailbox: Mailbox) -> bool:
    """Whether the backend lists ``mailbox``, which the portal does not know as its administrator,
    as its administrator (one call, only on a backend that has the privilege); logged when so."""
    if mailbox.backend_admin or not backend.capabilities.mailbox_admin_privilege:
        return False
    remote = backend.get_mailbox(mailbox.address)
    if remote is None or not remote.extra.get("admin"):
        return False
    record("mailbox.backend_admin_found", account=mailbox.account_id, target=mailbox, actor_label=SYSTEM_ACTOR)
    return True


def _archived_on_backend(backend, address: str) -> bool:
    """Whether the backend still holds the address as an archive (a read error retries the job: the
    delete is idempotent, and the page must not guess)."""
    remote = backend.get_mailbox(address)
    return remote is not None and not remote.active and bool(remote.extra.get("archived"))


_ADD_ATTEMPT = db.insert(ProvisioningAttempt.__table__)
_WRITE_MAILBOX = db.update(Mailbox.__table__).where(Mailbox.id == bindparam("mailbox_id"))


def _write_mailbox(mailbox_id: int, **columns) -> None:
    """Write what a job did to its mailbox: one plain UPDATE of those columns (``updated_at`` with
    them), cheaper than the unit of work's flush; the job does not read the mailbox again."""
    db.session.connection().execute(_WRITE_MAILBOX, {"mailbox_id": mailbox_id, **columns})


def _add_attempt(mailbox_id: int, job_id: int, operation: str, outcome: str, message: str) -> None:
    """Record one call to the backend (a plain insert on the session's connection: nothing reads the
    row back in the job)."""
    db.session.connection().execute(_ADD_ATTEMPT, {"mailbox_id": mailbox_id, "job_id": job_id,
                                                   "operation": operation, "outcome": outcome, "message": message})


def _record_attempt(mailbox_id: int, job_id: int, operation: str, outcome: str, message: str, *,
                    fail: bool, alias_id: int | None = None) -> None:
    """Write the attempt in its own transaction: it must outlive the job's rollback.

    A failed alias change fails the alias, not the mailbox, which still works.
    """
    db.session.rollback()
    _add_attempt(mailbox_id, job_id, operation, outcome, message)
    mailbox = db.session.get(Mailbox, mailbox_id)
    # What the adapter learnt of its server while the call failed (a route gone) must reach the pages too.
    backends.remember_discovery(mailbox.domain.connection, backends.for_domain(mailbox.domain))
    if fail:
        alias = db.session.get(MailboxAlias, alias_id) if alias_id else None
        if alias is not None:
            alias.state, alias.message = "failed", message
            mailbox.status = _resting_status(mailbox)
            mailbox.status_reason = later("The alias %(alias)s could not be changed: %(detail)s",
                                          alias=alias.address, detail=message)
        else:
            mailbox.status, mailbox.status_reason = FAILED, message
    db.session.commit()


def _state_on_backend(mailbox: Mailbox, operation: str, error: BackendError) -> bool | None:
    """Whether the mailbox is active on the backend after a refusal that changed nothing there
    (a state change the server did not keep or cannot make, a reset it cannot do); None otherwise."""
    if isinstance(error, ChangeNotKept):
        return error.active
    if not isinstance(error, Unsupported) or operation not in ("set_active", "reset_password"):
        return None
    if operation == "reset_password":
        return mailbox.want_active
    try:
        remote = backends.for_domain(mailbox.domain).get_mailbox(mailbox.address)
    except BackendError:
        return None
    return None if remote is None else remote.active


def _fail_for_good(job, message: str) -> None:
    if job.payload.get("alias_id"):
        return  # the alias was marked failed with the last attempt; the mailbox still works
    mailbox = db.session.get(Mailbox, job.payload.get("mailbox_id"))
    if mailbox is not None and mailbox.status != FAILED:
        mailbox.status, mailbox.status_reason = FAILED, later_plural(
            "Gave up after %(num)d attempt: %(detail)s", "Gave up after %(num)d attempts: %(detail)s", job.attempts,
            detail=message)


# One statement: the mailbox with what a job reads of its domain (not the JSON of its records and
# settings); aliases and owner only if an operation needs them. Built once: every job runs it.
_MAILBOX_FOR_JOB = (db.select(Mailbox).where(Mailbox.id == bindparam("mailbox_id"))
                    .options(joinedload(Mailbox.domain).load_only(Domain.name, Domain.connection, Domain.status,
                                                                  Domain.verified_at),
                             lazyload(Mailbox.aliases), lazyload(Mailbox.owner)))


@handler(PROVISION_KIND, max_attempts=8, backoff_seconds=15, backoff_cap_seconds=1800, on_failure=_fail_for_good)
def provision(job) -> None:
    mailbox = db.session.execute(_MAILBOX_FOR_JOB, {"mailbox_id": job.payload["mailbox_id"]}).scalar_one_or_none()
    if mailbox is None:
        return
    operation = job.payload["operation"]
    try:
        # Checked when the job runs: another account may have proven the domain since it was queued.
        ownership.require_held(mailbox.domain)
    except ownership.NameRefused as refusal:
        _record_attempt(mailbox.id, job.id, operation, "failed", refusal.stored, fail=True,
                        alias_id=job.payload.get("alias_id"))
        raise PermanentJobError(refusal.stored) from None
    try:
        message, changes = _carry_out(mailbox, operation, job.payload.get("alias_id"))
    except AddressReleased as refusal:
        _record_attempt(mailbox.id, job.id, operation, "failed", refusal.stored, fail=True,
                        alias_id=job.payload.get("alias_id"))
        raise PermanentJobError(refusal.stored) from None
    except TransientBackendError as error:
        final = job.attempts >= job.max_attempts
        _record_attempt(mailbox.id, job.id, operation, "failed" if final else "retrying",
                        later("%(detail)s (gave up)", detail=error.message) if final else
                        later("%(detail)s (will retry)", detail=error.message), fail=final,
                        alias_id=job.payload.get("alias_id"))
        raise
    except BackendError as error:
        active = _state_on_backend(mailbox, operation, error)
        if active is not None:
            # The backend did not (or cannot) make the change: the mailbox shows what it really is, and why.
            _write_mailbox(mailbox.id, want_active=active, status=ENABLED if active else DISABLED,
                           status_reason=error.message)
            _add_attempt(mailbox.id, job.id, operation, "failed", error.message)
            backends.remember_discovery(mailbox.domain.connection, backends.for_domain(mailbox.domain))
            return
        _record_attempt(mailbox.id, job.id, operation, "failed", error.message, fail=True,
                        alias_id=job.payload.get("alias_id"))
        raise PermanentJobError(error.message) from None
    if "status" not in changes and mailbox.status == PROVISIONING:
        changes["status"] = _resting_status(mailbox)
    _write_mailbox(mailbox.id, status_reason=message, **changes)
    _add_attempt(mailbox.id, job.id, operation, "ok", message)


# -- lists -------------------------------------------------------------------------

MAILBOX_SORTS = ("address", "status", "created", "kind")


def mailbox_query(user: User, account: Account, listing, held: tuple[int | None, frozenset[str]] | None = None):
    """The account's mailboxes ``user`` may see, as ``listing`` filters and sorts them.

    ``held`` is the user's membership id and account permissions when the caller has read them
    already (the request's access context), else they are read here."""
    from portal.roles.services import held_in, mailbox_powers, mailboxes_granted
    from portal.web.inputs import parse_id
    from portal.web.lists import like

    membership_id, permissions = held if held is not None else held_in(user, account)
    query = db.select(Mailbox).where(Mailbox.account_id == account.id)
    # Whoever sees every mailbox (also through "Manage all mailboxes", as their pages do) lists them all.
    if not user.is_superadmin and "mailbox.view" not in mailbox_powers(permissions):
        # Those whose page they may open: a grant of "Send as" alone shows none (a review).
        query = query.where(Mailbox.id.in_(mailboxes_granted(membership_id)))
    if listing.q:
        query = query.where(mailboxes_matching(listing.q))
    domain_id = parse_id(listing.filters.get("domain"))
    if domain_id:
        query = query.where(Mailbox.domain_id == domain_id)
    if listing.filters.get("status"):
        query = query.where(Mailbox.status == listing.filters["status"])
    if listing.filters.get("kind"):
        query = query.where(Mailbox.kind == listing.filters["kind"])
    if listing.filters.get("owner"):
        query = query.where(Mailbox.owner_id.in_(db.select(User.id).where(
            User.email.like(like(listing.filters["owner"]), escape="\\"))))
    column = {"address": Mailbox.address, "status": Mailbox.status, "created": Mailbox.created_at,
              "kind": Mailbox.kind}[listing.sort]
    return query.order_by(column.desc() if listing.descending else column.asc(), Mailbox.address, Mailbox.id)


def pick_mailboxes(user: User, account: Account, text: str, limit: int = 20) -> list[Mailbox]:
    """The first mailboxes ``user`` may see whose address holds ``text``: a picker's choices."""
    from portal.web.lists import Listing

    return list(db.session.execute(mailbox_query(user, account, Listing(q=text, sort="address"))
                                   .where(Mailbox.status != DELETED).limit(limit)).scalars())


def owner_candidates(account: Account, text: str, limit: int = 20, only: User | None = None) -> list[User]:
    """Members whose address or name holds ``text``, the choices of the owner picker; ``only``: the
    one person the picker may offer (someone who may not see the account's users finds only themself)."""
    return [user for _membership_id, user in members_matching(account, text, limit, only)]


def members_matching(account: Account, text: str, limit: int = 20,
                     only: User | None = None) -> list[tuple[int, User]]:
    """(membership id, person) of the account's members whose address or name holds ``text``, by
    address; ``only``: that one person, if they match."""
    from portal.auth.models import people_matching

    query = (db.select(Membership.id, User).join(User, User.id == Membership.user_id)
             .where(Membership.account_id == account.id, people_matching(text)))
    if only is not None:
        query = query.where(User.id == only.id)
    return [tuple(row) for row in db.session.execute(query.order_by(User.email).limit(limit))]


def member_user(account: Account, user_id: int | None, only: User | None = None) -> User | None:
    """The member of the account with this user id (a picked owner), or None; ``only``: as for
    ``owner_candidates``, anyone else is not found."""
    if not user_id or (only is not None and user_id != only.id):
        return None
    return db.session.execute(db.select(User).join(Membership, Membership.user_id == User.id)
                              .where(Membership.account_id == account.id, User.id == user_id)).scalar_one_or_none()


# -- decommissioning (the account is going) ----------------------------------------------

DECOMMISSION_KIND = "mailbox.decommission"


def decommission_all(account_id: int, delete: bool, account_name: str = "") -> dict[str, str]:
    """Queue the backend side of every mailbox of an account that is being deleted: disable each,
    or delete it where asked and its backend can. Each job carries all it needs, since the mailbox
    rows go with the account. What stays on a backend, with its mail, is remembered as released
    (``ReleasedMailbox``). A fixed number of statements whatever their number; returns what becomes
    of each mailbox, by address."""
    rows = db.session.execute(db.select(Mailbox.address, Mailbox.status, Domain.connection, Domain.status,
                                        Domain.verified_at)
                              .join(Domain, Domain.id == Mailbox.domain_id)
                              .where(Mailbox.account_id == account_id).order_by(Mailbox.address)).all()
    outcome, jobs, left = {}, [], []
    for address, status, connection, domain_status, verified_at in rows:
        if domain_status == DOMAIN_TAKEN or verified_at is None:
            # On a name the account does not hold, the address on the backend is not its to touch.
            outcome[address] = "nothing to do on the backend (its domain is not this account's)"
            continue
        action, outcome[address] = _decommission_plan(backends.capabilities(connection), status, delete)
        if action is not None:
            jobs.append(({"address": address, "connection": connection, "action": action},
                         f"decommission:{address}"))
        if status != PENDING and outcome[address] != "deleted":
            left.append({"connection": connection, "address": address, "account_name": account_name[:200],
                         "released_at": utcnow()})
    enqueue_many(DECOMMISSION_KIND, jobs)
    # What it left when it removed domains is no longer anyone's to take back.
    db.session.execute(db.update(ReleasedMailbox).where(ReleasedMailbox.account_id == account_id)
                       .values(account_id=None))
    if left:
        for start in range(0, len(left), 500):
            db.session.execute(db.delete(ReleasedMailbox).where(tuple_(
                ReleasedMailbox.connection, ReleasedMailbox.address).in_(
                [(row["connection"], row["address"]) for row in left[start:start + 500]])))
        db.session.execute(db.insert(ReleasedMailbox.__table__), left)
    return outcome


class AddressReleased(StoredReason):
    """The backend already has the address because a deleted account left it there, with its mail."""


def released(connection: str, address: str, account_id: int | None = None) -> ReleasedMailbox | None:
    """The record of a mailbox another account left at ``address`` on ``connection``, with its
    mail, if any. One that ``account_id`` itself left (it removed the domain, then proved it
    again) is its own: not returned, and forgotten, since the mail is back with its account."""
    found = db.session.execute(db.select(ReleasedMailbox).where(
        ReleasedMailbox.connection == connection, ReleasedMailbox.address == address)).scalar_one_or_none()
    if found is not None and account_id is not None and found.account_id == account_id:
        db.session.delete(found)
        return None
    return found


def released_message(found: ReleasedMailbox) -> str:
    """Why a released address is refused, stored (``later``) to be read in each reader's language."""
    return later("%(address)s was left on the backend, with its mail, by the account %(account)s when it was "
                 "deleted or removed the domain (%(date)s): its mail is that account's people's, and the portal "
                 "does not give it to another account. Ask the portal's operator to delete it on the backend, or "
                 "to release it.", address=found.address, account=found.account_name or "?",
                 date=found.released_at.strftime("%Y-%m-%d"))


def _decommission_plan(capabilities, status: str, delete: bool) -> tuple[str | None, str]:
    """(the backend call to make, or None; what becomes of the mailbox, in the audit's words)."""
    if delete and capabilities.can_delete_mailbox:
        action = "delete"
    elif capabilities.mailbox_disable:
        action = "disable"
    elif capabilities.can_delete_mailbox:
        action = "delete"  # a backend that cannot disable (Mail-in-a-Box) archives instead
    else:
        return None, "kept (the backend can neither disable nor delete it)"
    if status in (DELETED, PENDING):
        return None, "nothing to do on the backend"
    return action, {"delete": "deleted" if not capabilities.mailbox_delete_archives else "archived",
                    "disable": "disabled"}[action]


@handler(DECOMMISSION_KIND, max_attempts=12, backoff_seconds=60, backoff_cap_seconds=3600)
def decommission_job(job) -> None:
    backend = backends.adapter(job.payload["connection"])
    try:
        if job.payload["action"] == "delete":
            backend.delete_mailbox(job.payload["address"])
        else:
            backend.set_mailbox_active(job.payload["address"], False)
    except TransientBackendError:
        raise
    except BackendError as error:
        raise PermanentJobError(error.message) from None


# -- aliases and protocols ----------------------------------------------------------------

def default_protocols(domain: Domain) -> dict[str, bool] | None:
    """New mailboxes follow the domain's "services of new mailboxes" where the backend switches protocols."""
    services = (domain.settings or {}).get("default_services")
    capabilities = backends.capabilities(domain.connection)
    if not services or not capabilities.protocol_flags:
        return None
    names = backend_class(backends.connection(domain.connection).backend).protocols()
    wanted = {SERVICE_PROTOCOLS.get(service, service) for service in services}
    return {name: name in wanted for name in names}


SERVICE_PROTOCOLS = {"imap": "imap4", "pop": "pop3", "smtp": "smtp", "webmail": "webmail"}


def add_alias(actor: User, mailbox: Mailbox, raw: str) -> MailboxAlias:
    _require_live(mailbox)
    if not capabilities_of(mailbox).mailbox_aliases:
        raise MailboxError(_("The %(backend)s backend has no mailbox aliases.", backend=mailbox.domain.connection),
                           "alias")
    try:
        local_part, domain_name = ownership.split(raw, "alias")
        domain, address = ownership.address_for(mailbox.account_id, domain_name, local_part, ownership.ROUTE,
                                                field="alias", alias=True)
    except ownership.NameRefused as refusal:
        raise MailboxError(refusal.stored, "alias") from None
    # Mail to someone's login address opens their profile (a password reset arrives there): only
    # their own personal mailbox may receive it, as for a mailbox at that address.
    holder_problem = _name_problem(domain, address, mailbox.kind, mailbox.owner, readers_of(mailbox))
    if holder_problem:
        raise MailboxError(holder_problem, "alias")
    if domain.connection != mailbox.domain.connection:
        raise MailboxError(_("An alias must be on a domain served by the same mail system as the mailbox "
                             "(%(backend)s).", backend=mailbox.domain.connection), "alias")
    # The mailbox's row locked first (PostgreSQL): two aliases added at once are counted one after
    # the other, so the ceiling holds (SQLite takes one writer at a time). FOR NO KEY UPDATE: rows
    # that only point at the mailbox (the job, the log entry) are not held up by it, so a request
    # that locks the account then changes the mailbox does not deadlock with this one (a review).
    db.session.execute(db.select(Mailbox.id).where(Mailbox.id == mailbox.id).with_for_update(key_share=True))
    if db.session.execute(db.select(func.count()).select_from(MailboxAlias)
                          .where(MailboxAlias.mailbox_id == mailbox.id)).scalar_one() >= MAX_ALIASES:
        raise MailboxError(_("A mailbox has at most %(count)s aliases: remove one first, or use a domain alias.",
                             count=MAX_ALIASES), "alias")
    alias = MailboxAlias(mailbox_id=mailbox.id, address=address, state="adding")
    db.session.add(alias)
    db.session.flush()
    _take_address(domain, mailbox, address, actor)
    _start(mailbox, "add_alias", alias_id=alias.id)
    record("mailbox.add_alias", account=mailbox.account_id, target=mailbox, actor=actor, alias=address)
    return alias


def remove_alias(actor: User, mailbox: Mailbox, alias_id: int) -> None:
    _require_live(mailbox)
    alias = db.session.execute(db.select(MailboxAlias).where(
        MailboxAlias.id == alias_id, MailboxAlias.mailbox_id == mailbox.id)).scalar_one_or_none()
    if alias is None:
        raise MailboxError(_("That alias was already removed."))
    if alias.state == "failed":
        db.session.delete(alias)
    else:
        if not capabilities_of(mailbox).mailbox_alias_remove:
            raise MailboxError(_("The %(backend)s backend cannot remove aliases.", backend=mailbox.domain.connection))
        alias.state = "removing"
        _start(mailbox, "remove_alias", alias_id=alias.id)
    record("mailbox.remove_alias", account=mailbox.account_id, target=mailbox, actor=actor, alias=alias.address)


def _carry_out_alias(backend, mailbox: Mailbox, operation: str, alias_id: int | None) -> str:
    alias = db.session.get(MailboxAlias, alias_id) if alias_id else None
    if alias is None:
        return later("Nothing to do: the alias is gone.")
    if operation == "add_alias":
        backend.add_alias(mailbox.address, alias.address)
        alias.state, alias.message = "active", ""
        return later("Alias %(alias)s added.", alias=alias.address)
    backend.remove_alias(mailbox.address, alias.address)
    db.session.delete(alias)
    return later("Alias %(alias)s removed.", alias=alias.address)


def set_protocols(actor: User, mailbox: Mailbox, allowed: set[str]) -> None:
    _require_live(mailbox)
    if not capabilities_of(mailbox).protocol_flags:
        raise MailboxError(_("The %(backend)s backend does not switch protocols per mailbox.",
                             backend=mailbox.domain.connection))
    names = backend_class(backends.connection(mailbox.domain.connection).backend).protocols()
    unknown = allowed - set(names)
    if unknown:
        raise MailboxError(_("Unknown protocols: %(protocols)s.", protocols=", ".join(sorted(unknown))))
    mailbox.protocols = {name: name in allowed for name in names}
    _start(mailbox, "set_protocols")
    record("mailbox.set_protocols", account=mailbox.account_id, target=mailbox, actor=actor,
           allowed=sorted(allowed))


def protocol_names(mailbox: Mailbox) -> list[str]:
    return backend_class(backends.connection(mailbox.domain.connection).backend).protocols()


def serves_other_accounts(connection: str, account_id: int) -> bool:
    """Another account has a domain on this connection (proven or not), or left mailboxes there
    (an account deleted since, a domain removed: ``ReleasedMailbox``): the server's administrator
    privilege, which is box-wide, would reach that account's mailboxes and the mail they keep."""
    if db.session.execute(db.select(Domain.id).where(
            Domain.connection == connection, Domain.account_id != account_id).limit(1)).first() is not None:
        return True
    return db.session.execute(db.select(ReleasedMailbox.id).where(
        ReleasedMailbox.connection == connection,
        db.or_(ReleasedMailbox.account_id.is_(None), ReleasedMailbox.account_id != account_id)).limit(1)
    ).first() is not None


def server_administrators(address: str) -> list[Mailbox]:
    """The live mailboxes holding the box-wide administrator privilege on the server that receives
    ``address`` (its name's holder's connection): whoever reads one may set the password of any
    mailbox there, so they read its mail too."""
    holder = ownership.proven_copy(address.rpartition("@")[2])
    if holder is None or not ownership.holds(holder):
        return []
    return list(db.session.execute(db.select(Mailbox).join(Domain, Domain.id == Mailbox.domain_id).where(
        Domain.connection == holder.connection, Mailbox.backend_admin.is_(True), Mailbox.status != DELETED))
        .scalars())


def administered_by_other_accounts(connection: str, account_id: int) -> bool:
    """A mailbox of another account holds this connection's box-wide administrator privilege."""
    return db.session.execute(db.select(Mailbox.id).join(Domain, Domain.id == Mailbox.domain_id).where(
        Domain.connection == connection, Mailbox.account_id != account_id, Mailbox.backend_admin.is_(True),
        Mailbox.status != DELETED).limit(1)).first() is not None


OWNERS_MAKE_ADMINS = _l("Only an owner of the account may make a mailbox the server's administrator: it can "
                        "change the password of every mailbox on the server.")


def set_backend_admin(actor: User, mailbox: Mailbox, admin: bool) -> None:
    """Push the backend's own administrator privilege (box-wide on Mail-in-a-Box), so only
    those who manage every mailbox of the account may change it, and only on a server that
    serves no other account's domain (its administrators manage every mailbox it holds)."""
    from portal.roles.services import account_permissions, is_owner

    _require_live(mailbox)
    if not capabilities_of(mailbox).mailbox_admin_privilege:
        raise MailboxError(_("The %(backend)s backend has no administrator privilege for mailboxes.",
                             backend=mailbox.domain.connection))
    account = db.session.get(Account, mailbox.account_id)
    if "mailboxes.manage" not in account_permissions(actor, account):
        raise MailboxError(_("Only those who manage every mailbox of the account may change this."))
    if admin and serves_other_accounts(mailbox.domain.connection, mailbox.account_id):
        raise MailboxError(later(SHARED_SERVER))
    # Whoever reads the mailbox may set the password of every mailbox on the server, an owner's
    # among them, and so read their password resets (a review: an Administrator made a shared
    # mailbox whose password they held the server's administrator, and reset the Owner's mailbox):
    # only owners, who outrank everyone in the account, may make it so, only for a mailbox that
    # owners alone read; and only they may take the privilege away (a review: an Administrator
    # took it away in the portal and revealed the password waiting there before the server had).
    if not is_owner(actor, account.id):
        raise MailboxError(later(OWNERS_MAKE_ADMINS))
    if admin and read_by_non_owners(readers_of(mailbox), account.id):
        raise MailboxError(_("%(address)s is read by someone who is not an owner of the account: the server's "
                                 "administrator can change the password of every mailbox on the server. Make "
                                 "it the administrator only while owners alone read it.", address=mailbox.address))
    mailbox.backend_admin = admin
    _start(mailbox, "set_admin")
    record("mailbox.set_backend_admin", account=mailbox.account_id, target=mailbox, actor=actor, admin=admin)
