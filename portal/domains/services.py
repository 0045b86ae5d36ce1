"""Domains: adding, proving, checking, the status lifecycle and its consequences.

Checks run in the worker (``domain.check`` jobs): DNS look-ups and backend
calls never happen inside a web request. Each domain has one chain of check
jobs: a check schedules the next one, and "Check now" pulls the waiting one
forward. People's rule for backends with their own checks (dimail): ``ok`` ->
enabled; an external check failing -> action_required; only internal ones
failing -> fix, then enabled or failed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Callable

from flask import current_app
from flask_babel import gettext as _

from portal.accounts.models import Account
from portal.accounts.services import add_member
from portal.audit.models import AuditEvent
from portal.audit.services import record
from portal.auth.models import User
from portal.backends import service as backends
from portal.backends.base import BackendError, TransientBackendError
from portal.domains import dns as dnscheck
from portal.domains.models import (ACTION_REQUIRED, DISABLED, ENABLED, FAILED, PENDING, TAKEN, Domain,
                                   DomainCheckRun)
from portal.domains.ownership import proven_elsewhere
from portal.domains.names import DomainNameError, normalize
from portal.extensions import db
from portal.i18n import _l, later
from portal.jobs.models import QUEUED, RUNNING, Job
from portal.jobs.registry import handler
from portal.jobs.services import enqueue
from portal.mail.services import send
from portal.roles.services import members_holding
from portal.timeutil import utcnow

CHECK_KIND = "domain.check"
OWNERSHIP_PURPOSE = _l("Proves the domain belongs to this account")
MANUAL_CHECK_INTERVAL = timedelta(minutes=1)
# After "Check now", the domain is checked every WATCH_INTERVAL for WATCH.
WATCH = timedelta(minutes=15)
WATCH_INTERVAL = timedelta(seconds=20)
PENDING_CHECK_WINDOW = timedelta(hours=72)
ENABLED_GRACE = timedelta(hours=24)
ENABLED_GRACE_CHECKS = 3

# Run when a domain becomes enabled, in the same transaction: (domain) -> None.
activation_hooks: list[Callable[[Domain], None]] = []
# Run when another account proves a domain and this copy is taken: (domain) -> None.
taken_hooks: list[Callable[[Domain], None]] = []
# Reasons a domain cannot be removed: (domain) -> message or None.
removal_blockers: list[Callable[[Domain], str | None]] = []
# What goes with a domain that is removed (history that points at it): (domain) -> None.
removal_cleanups: list[Callable[[Domain], None]] = []


def taken_reason(name: str) -> str:
    return later("Another account proved that %(domain)s is theirs. This account can no longer use it: remove it, "
                 "or, if the domain is yours, contact the portal's operator.", domain=name)


class DomainError(ValueError):
    """A refusal about a domain; the message says what to do."""


def challenge_name(domain: Domain) -> str:
    return f"{dnscheck.CHALLENGE_PREFIX}.{domain.name}"


def domain_in_account(account: Account, domain_id: int) -> Domain | None:
    domain = db.session.get(Domain, domain_id)
    return domain if domain is not None and domain.account_id == account.id else None


def domains_of(account: Account) -> list[Domain]:
    return list(db.session.execute(
        db.select(Domain).where(Domain.account_id == account.id).order_by(Domain.name)).scalars())


DOMAIN_SORTS = ("name", "status", "checked")


def domain_query(account: Account, listing):
    from portal.web.lists import like

    query = db.select(Domain).where(Domain.account_id == account.id)
    if listing.q:
        query = query.where(Domain.name.like(like(listing.q), escape="\\"))
    if listing.filters.get("status"):
        query = query.where(Domain.status == listing.filters["status"])
    column = {"name": Domain.name, "status": Domain.status, "checked": Domain.last_checked_at}[listing.sort]
    return query.order_by(column.desc() if listing.descending else column.asc(), Domain.name)


# -- adding and removing ----------------------------------------------------------

def add_domain(actor: User, account: Account, raw_name: str, connection: str) -> Domain:
    try:
        name = normalize(raw_name)
    except DomainNameError as error:
        raise DomainError(str(error)) from None
    if connection not in backends.connection_names():
        raise DomainError(_("Choose one of the configured mail backends."))
    if db.session.execute(db.select(Domain.id).where(Domain.account_id == account.id,
                                                     Domain.name == name)).first():
        raise DomainError(_("%(domain)s is already one of this account's domains.", domain=name))
    if proven_elsewhere(name, account.id):
        raise DomainError(_("%(domain)s has already been proven to belong to another account. "
                            "If it is yours, contact the portal's operator.", domain=name))
    from portal.mailboxes.services import administered_by_other_accounts

    if (backends.capabilities(connection).mailbox_admin_privilege
            and administered_by_other_accounts(connection, account.id)):
        # Its administrators would manage this account's mailboxes too.
        raise DomainError(_("Another account administers the server of this mail backend: choose another one."))
    domain = Domain(account_id=account.id, name=name, connection=connection, status=PENDING,
                    status_reason=later("Publish the ownership TXT record below; the portal checks it automatically."))
    db.session.add(domain)
    db.session.flush()
    record("domain.add", account=account, target=domain, connection=connection)
    schedule_check(domain, trigger="added")
    return domain


def remove_domain(actor: User, domain: Domain) -> None:
    for blocker in removal_blockers:
        reason = blocker(domain)
        if reason:
            raise DomainError(reason)
    record("domain.remove", account=domain.account_id, target=domain, status=domain.status)
    for cleanup in removal_cleanups:
        cleanup(domain)
    db.session.delete(domain)
    db.session.flush()


# -- status ------------------------------------------------------------------------

def set_status(domain: Domain, status: str, reason: str, *, actor: User | None = None) -> bool:
    """Move the domain to ``status``; audit, notify and run activation when it changes."""
    domain.status_reason = reason
    if domain.status == status:
        return False
    before = domain.status
    domain.status = status
    record("domain.status", account=domain.account_id, target=domain, actor=actor,
           before=before, after=status, reason=reason)
    if status == ENABLED:
        domain.enabled_at = utcnow()
        for hook in activation_hooks:
            hook(domain)
    _notify_admins(domain, before)
    return True


def _notify_admins(domain: Domain, before: str) -> None:
    account = db.session.get(Account, domain.account_id)
    for user in members_holding(account, "domains.manage"):
        send(user.email, "domain_status", for_account=account, account=account, domain=domain, before=before,
             user=user)


def disable(actor: User, domain: Domain) -> None:
    if domain.status == TAKEN:
        raise DomainError(_("Another account proved this domain; there is nothing left to disable here."))
    if domain.status == DISABLED:
        raise DomainError(_("The domain is already disabled."))
    set_status(domain, DISABLED, later("Disabled by an administrator: existing users and mailboxes keep working, "
                                       "but no new users or mailboxes can be created on it."), actor=actor)


def enable(actor: User, domain: Domain) -> None:
    if domain.status != DISABLED:
        raise DomainError(_("Only a disabled domain can be enabled again."))
    status = ACTION_REQUIRED if domain.verified_at else PENDING
    set_status(domain, status, later("Enabled again by an administrator; checking the domain now."), actor=actor)
    domain.failing_since, domain.failed_checks = None, 0
    schedule_check(domain, trigger="enabled")


def mark_verified(actor: User, domain: Domain) -> None:
    """The superadmin vouches for ownership, for DNS the portal cannot see."""
    if proven_elsewhere(domain.name, domain.account_id):
        raise DomainError(_("Another account has already proven this domain."))
    if domain.verified_at is None:
        domain.verified_at = utcnow()
        end_other_claims(domain)
    domain.verified_by_hand = True
    if domain.status == TAKEN:
        set_status(domain, PENDING, later("Ownership was vouched for by the portal's operator; checking the domain "
                                          "now."), actor=actor)
    record("domain.mark_verified", account=domain.account_id, target=domain, actor=actor)
    schedule_check(domain, trigger="manual")


def end_other_claims(domain: Domain) -> None:
    """``domain`` was just proven: every other account's copy of the name is over, and its admins are told."""
    db.session.flush()  # the partial unique index refuses a second proven copy here, under a race
    others = db.session.execute(db.select(Domain).where(
        Domain.name == domain.name, Domain.id != domain.id, Domain.status != TAKEN)).scalars().all()
    for other in others:
        set_status(other, TAKEN, taken_reason(other.name))
        for hook in taken_hooks:
            hook(other)


# -- checks ------------------------------------------------------------------------

def _check_jobs(domain: Domain, statuses: tuple[str, ...]):
    return db.select(Job).where(Job.kind == CHECK_KIND, Job.subject == f"domain:{domain.id}",
                                Job.status.in_(statuses)).order_by(Job.run_at).limit(1)


def waiting_check(domain: Domain) -> Job | None:
    return db.session.execute(_check_jobs(domain, (QUEUED,))).scalar_one_or_none()


def check_in_progress(domain: Domain) -> bool:
    """A check is running or about to: the page keeps polling until it is done."""
    job = db.session.execute(_check_jobs(domain, (QUEUED, RUNNING))).scalar_one_or_none()
    return job is not None and (job.status == RUNNING or job.run_at <= utcnow() + timedelta(seconds=5))


def schedule_check(domain: Domain, *, trigger: str, delay: timedelta = timedelta(0)) -> Job:
    run_at = utcnow() + delay
    job = waiting_check(domain)
    if job is None:
        return enqueue(CHECK_KIND, {"domain_id": domain.id, "trigger": trigger}, run_at=run_at,
                       subject=f"domain:{domain.id}", account=domain.account_id)
    if job.run_at > run_at:
        job.run_at = run_at
        job.payload = {"domain_id": domain.id, "trigger": trigger}
    return job


def request_check(actor: User, domain: Domain) -> None:
    """Check now, or as soon as allowed (one asked-for check a minute); then keep checking often
    for a while (``WATCH``), so records published in one pass enable the domain with no other click."""
    if domain.status == TAKEN and proven_elsewhere(domain.name, domain.account_id):
        raise DomainError(_("Another account has proven this domain; it cannot be checked for this account."))
    if domain.status == DISABLED:
        raise DomainError(_("The domain is disabled: enable it to check it again."))
    now = utcnow()
    domain.watch_until = now + WATCH
    if _asked_check_waits(waiting_check(domain)) or (domain.last_manual_check_at or now) > now:
        # The asked-for check still to come covers this click (each click had pushed it a minute
        # on, while the queued check kept its time: a page then followed a check long run).
        return
    run_at = now
    if domain.last_manual_check_at and now - domain.last_manual_check_at < MANUAL_CHECK_INTERVAL:
        run_at = domain.last_manual_check_at + MANUAL_CHECK_INTERVAL
    domain.last_manual_check_at = run_at
    schedule_check(domain, trigger="manual", delay=run_at - now)


def next_check_at(domain: Domain):
    job = waiting_check(domain)
    return job.run_at if job is not None else None


def _asked_check_waits(waiting: Job | None) -> bool:
    """Whether the check waiting to run (``waiting_check``'s job) is one somebody asked for."""
    return waiting is not None and waiting.payload.get("trigger") == "manual"


def watching(domain: Domain, waiting: Job | None) -> bool:
    """The page keeps checking by itself: someone asked for a check a short while ago, or asked
    for one that waits its turn (``waiting``: ``waiting_check``'s job; a second Check now within
    the minute, on an enabled domain too), until it has run."""
    if _asked_check_waits(waiting):
        return True
    return domain.status not in (ENABLED, DISABLED, TAKEN) and domain.watch_until is not None \
        and domain.watch_until > utcnow()


def _lookup() -> dnscheck.Lookup:
    settings = current_app.config["PORTAL"]
    return dnscheck.Lookup(settings["DNS_RESOLVERS"], settings["DNS_TIMEOUT"])


# What the backends' own check names mean, in words an administrator reads.
CHECK_LABELS = {
    "domain_exist": _l("The domain exists in the DNS"), "mx": _l("Mail is delivered to the mail system (MX)"),
    "cname_imap": _l("Mail client address for reading (IMAP)"),
    "cname_smtp": _l("Mail client address for sending (SMTP)"),
    "cname_webmail": _l("Webmail address"), "spf": _l("Sending is allowed (SPF)"), "dkim": _l("Signatures (DKIM)"),
    "dmarc": _l("Policy for unsigned mail (DMARC)"), "postfix": _l("The mail server's own set-up"),
    "ox": _l("The webmail's own set-up"), "cert": _l("The security certificate"),
}


def check_label(name: str) -> str:
    """A backend check as people read it, stored (``later``) to be shown in each reader's language."""
    return later(CHECK_LABELS.get(name, _l("A check of the mail system")))


def _backend_summary(check) -> list[dict]:
    return [{"name": check_label(item.name), "ok": item.ok, "internal": item.internal,
             "messages": list(item.messages)} for item in check.checks]


def run_check(domain: Domain, trigger: str) -> DomainCheckRun | None:
    """Check ownership, records and the backend; move the status; schedule the next check."""
    if domain.status == DISABLED:
        return None
    if proven_elsewhere(domain.name, domain.account_id):
        if domain.status != TAKEN:
            set_status(domain, TAKEN, taken_reason(domain.name))
        return None
    if domain.status == TAKEN:
        # The account that proved it gave the name up: this copy may be proven again.
        set_status(domain, PENDING, later("The account that had proven this domain removed it; checking again."))
    now = utcnow()
    before = domain.status
    lookup = _lookup()
    ownership = dnscheck.compare(lookup, challenge_name(domain), "TXT", domain.challenge,
                                 later(OWNERSHIP_PURPOSE))
    results = [ownership]
    if ownership.state == dnscheck.OK and domain.verified_at is None:
        domain.verified_at = now
        record("domain.verify", account=domain.account_id, target=domain)
        end_other_claims(domain)
    status, reason = _decide(domain, lookup, results)
    status, reason = _apply_grace(domain, before, status, reason, now)
    domain.records = [result.as_dict() for result in results]
    domain.last_checked_at = now
    set_status(domain, status, reason)
    run = DomainCheckRun(domain_id=domain.id, trigger=trigger, status_before=before, status_after=status,
                         summary=reason, records=domain.records)
    db.session.add(run)
    _schedule_next(domain, now)
    return run


def _records_before_proof(domain: Domain, lookup: dnscheck.Lookup, results: list) -> None:
    """Every record the domain will need, shown (and checked) from the start, so that they are all
    published in one pass. A backend that only names them once the domain is set up on it (dimail's
    spec, after proof) refuses here, and the page says the rest comes after proof."""
    try:
        required = backends.discovered(domain).required_records(domain.name)
    except BackendError:
        return  # ownership alone decides for now; the next check asks again
    results.extend(dnscheck.compare(lookup, spec.name, spec.type, spec.value, later(spec.purpose))
                   for spec in required)


def _missing_summary(records: list) -> list[str]:
    """Which records are still missing or wrong, and what was found instead."""
    parts = []
    for result in records:
        found = ", ".join(result.found)
        parts.append(later("%(type)s %(name)s (found %(found)s instead)", type=result.type, name=result.name,
                           found=found)
                     if found else later("%(type)s %(name)s (nothing found)", type=result.type, name=result.name))
    # Each part may hold commas: shown, a list is joined with a semicolon, spaced as the language
    # writes it.
    return parts


def _decide(domain: Domain, lookup: dnscheck.Lookup, results: list) -> tuple[str, str]:
    ownership = results[0]
    if domain.verified_at is None:
        _records_before_proof(domain, lookup, results)
        if ownership.state == dnscheck.UNKNOWN:
            return PENDING, later("Ownership could not be checked: %(problem)s. The portal will try again.",
                                  problem=ownership.message)
        others = [r for r in results[1:] if r.state in (dnscheck.MISSING, dnscheck.WRONG)]
        record = challenge_name(domain)
        if ownership.state == dnscheck.OK:
            return PENDING, later("Waiting for the ownership record (TXT %(record)s): found. The portal checks again "
                                  "by itself.", record=record)
        if others:
            return PENDING, later("Waiting for the ownership record (TXT %(record)s): publish it and the other records "
                                  "marked missing. The portal checks again by itself.", record=record)
        return PENDING, later("Waiting for the ownership record (TXT %(record)s): publish it. The portal checks again "
                              "by itself.", record=record)
    domain.backend_checks = []
    try:
        # What this connection's server offers decides the rule: a dimail without checks of its
        # own is checked by the portal's DNS checks alone, as OpenSRS and Odin are.
        backend = backends.discovered(domain)
        capabilities = backend.capabilities
        if capabilities.domain_api:
            backend.ensure_domain(domain.name)
        required = backend.required_records(domain.name)
        backend_check = backend.check_domain(domain.name) if capabilities.domain_check else None
        fixed = False
        if backend_check is not None and backend_check.state == "internal_failed" and capabilities.domain_fix:
            backend_check, fixed = backend.fix_domain(domain.name), True
    except TransientBackendError as error:
        return domain.status, later("The mail backend could not be reached (%(detail)s). The portal will try again.",
                                    detail=error.message)
    except BackendError as error:
        return FAILED, later("The mail backend refused the domain: %(detail)s", detail=error.message)
    for record_spec in required:
        results.append(dnscheck.compare(lookup, record_spec.name, record_spec.type, record_spec.value,
                                        later(record_spec.purpose)))
    if backend_check is not None:
        domain.backend_checks = _backend_summary(backend_check)
    if ownership.state != dnscheck.OK:
        ownership.message = later("ownership is already proven; this record may stay or go")
    # Once ownership is proven the challenge record no longer decides anything.
    wrong = [r for r in results[1:] if r.state in (dnscheck.MISSING, dnscheck.WRONG)]
    unknown = [r for r in results[1:] if r.state == dnscheck.UNKNOWN]
    if backend_check is not None and backend_check.state == "external_failed":
        failing = [check_label(c.name) for c in backend_check.checks if not c.ok and not c.internal]
        return ACTION_REQUIRED, later("The mail backend's checks fail: %(checks)s. Publish the records below as shown.",
                                      checks=failing)
    if wrong:
        return ACTION_REQUIRED, later("Still missing or wrong: %(records)s. Publish them as shown below.",
                                      records=_missing_summary(wrong))
    if backend_check is not None and backend_check.state == "internal_failed":
        failing = [check_label(c.name) for c in backend_check.checks if not c.ok]
        if fixed:
            return FAILED, later("The mail backend's own set-up fails after an automatic repair (%(checks)s). Contact "
                                 "the portal's operator.", checks=failing)
        return FAILED, later("The mail backend's own set-up fails (%(checks)s). Contact the portal's operator.",
                             checks=failing)
    if unknown:
        return (domain.status if domain.status != PENDING else ACTION_REQUIRED,
                later("Some records could not be checked (the DNS did not answer). The portal will try again."))
    return ENABLED, later("Every record is published and the mail backend accepts the domain.")


def _apply_grace(domain: Domain, before: str, status: str, reason: str, now) -> tuple[str, str]:
    """One bad check must not break mail: an enabled domain degrades only after
    checks have failed repeatedly over a whole day."""
    if status == ENABLED:
        domain.failing_since, domain.failed_checks = None, 0
        return status, reason
    domain.failed_checks += 1
    if before != ENABLED:
        return status, reason
    domain.failing_since = domain.failing_since or now
    if now - domain.failing_since < ENABLED_GRACE or domain.failed_checks < ENABLED_GRACE_CHECKS:
        return ENABLED, later("Still enabled, but checks have failed since %(moment)s: %(reason)s",
                              moment=domain.failing_since, reason=reason)
    return status, reason


def _schedule_next(domain: Domain, now) -> None:
    if domain.status not in (ENABLED, DISABLED) and domain.watch_until is not None and domain.watch_until > now:
        schedule_check(domain, trigger="scheduled", delay=WATCH_INTERVAL)
        return
    if domain.status == ENABLED:
        delay = timedelta(hours=1) if domain.failing_since else timedelta(days=1)
    elif domain.status == PENDING:
        if now - domain.created_at > PENDING_CHECK_WINDOW:
            stopped = later("Automatic checks stopped after 72 hours without the ownership record. "
                            "Publish it, then click Check now.")
            if domain.status_reason != stopped:
                domain.status_reason = stopped
                _notify_admins(domain, domain.status)
            return
        delay = timedelta(minutes=min(2 ** max(domain.failed_checks - 1, 0), 60))
    else:
        delay = timedelta(minutes=min(5 * 2 ** max(domain.failed_checks - 1, 0), 60))
    schedule_check(domain, trigger="scheduled", delay=delay)


@handler(CHECK_KIND, max_attempts=5, backoff_seconds=30)
def check_job(job) -> None:
    domain = db.session.get(Domain, job.payload["domain_id"])
    if domain is not None:
        run_check(domain, job.payload.get("trigger", "scheduled"))


# -- activation: corporate users -----------------------------------------------------

# What makes, and unmakes, someone an account's corporate user, as its audit log keeps it.
CORPORATE_ACTIONS = ("user.create_corporate", "user.assign_corporate", "user.release_corporate")
# And what shows an account's mail server delivered a link that proved the person's address.
HELD_ACTIONS = CORPORATE_ACTIONS + ("user.address_proven",)


def _handed_over(users: list[User], account: Account) -> set[int]:
    """The ids of those among ``users`` whom another account made or held at the name since this
    account last did (or last took them over), or whose address was proven through a link its mail
    server delivered: that account's people may know how to sign in as them. Read from the audit
    log, so that the domain enabled again later (a check failed once, or it was disabled) takes
    nobody over twice; only what was written since each profile was made counts (SQLite gives a
    deleted profile's id again: a review found a stranger taken over, and out of their own account,
    for what another account did with the profile that had the id before)."""
    held = {user.id for user in users if user.corporate_account_id not in (None, account.id)}
    made = {str(user.id): user.created_at for user in users}
    ids = list(made)
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        rows = db.session.execute(db.select(
            AuditEvent.target_id, AuditEvent.account_id, AuditEvent.action, db.func.max(AuditEvent.at)).where(
            AuditEvent.target_type == "user", AuditEvent.target_id.in_(chunk), AuditEvent.account_id.is_not(None),
            AuditEvent.action.in_(HELD_ACTIONS + ("user.credentials_retired",))).group_by(
            AuditEvent.target_id, AuditEvent.account_id, AuditEvent.action)).all()
        elsewhere: dict[str, object] = {}
        here: dict[str, object] = {}
        for target, account_id, action, at in rows:
            ours = account_id == account.id
            if at is None or at < made[target] or (action == "user.credentials_retired" and not ours):
                continue
            latest = here if ours else elsewhere
            latest[target] = max(latest.get(target, at), at)
        held.update(int(found) for found, at in elsewhere.items() if found not in here or here[found] < at)
    return held


def assign_corporate_users(domain: Domain) -> None:
    """Users whose login address is on the domain join its account as corporate
    users, keeping whatever they hold elsewhere (reference 004). Those another account made or
    held at the name (it held the name before) join without any way in that account's people may
    know of: the account that now holds the name gives them one (an onboarding link)."""
    from portal.users.services import retire_credentials

    account = db.session.get(Account, domain.account_id)
    users = [user for user in db.session.execute(db.select(User).where(User.email.like(f"%@{domain.name}")))
             .scalars() if user.email_domain == domain.name]
    foreign = _handed_over(users, account)
    for user in users:
        if user.id in foreign and not user.is_superadmin:
            revoked = retire_credentials(user)
            record("user.credentials_retired", account=account, target=user, domain=domain.name,
                   tokens_revoked=revoked)
            _leave_elsewhere(user, account, domain)
        elif user.email_verified_at is None:
            # A registration nobody confirmed is not someone: anyone may register any address, with
            # a password of their own. It joins when it is confirmed (through the link mailed to it).
            continue
        add_member(account, user)
        if not user.is_corporate or user.corporate_account_id != account.id:
            user.is_corporate, user.corporate_account_id = True, account.id
            record("user.assign_corporate", account=account, target=user, domain=domain.name)


def _leave_elsewhere(user: User, account: Account, domain: Domain) -> None:
    """A profile taken over leaves every other account, with what it held there: its memberships
    were answered, and its rights given, to whoever read the address then; whoever reads it now
    would hold them (a review: the former holder made its user an Administrator, gave the name up,
    and the new holder's person at that address signed in as its Administrator; and a right held
    there stopped the new holder giving its own person a way in). Each account may invite them
    again: the invitation goes where the name's holder now routes."""
    from portal.accounts.models import Membership
    from portal.audit.models import SYSTEM_ACTOR

    for membership in db.session.execute(db.select(Membership).where(
            Membership.user_id == user.id, Membership.account_id != account.id)).scalars():
        record("member.remove", account=membership.account_id, target=user, actor_label=SYSTEM_ACTOR,
               domain=domain.name, reason=later("Another account proved the domain of their address: whoever "
                                                "reads its mail now is not the person who joined."))
        db.session.delete(membership)
    db.session.flush()


def release_corporate_users(domain: Domain) -> None:
    """The account no longer holds the name (removed, or proven by another account): its corporate
    users there are its corporate users no more (it could give them links and set their recovery
    address). They stay its members, as people from elsewhere are. Invitations to addresses there,
    from any account, were mailed where this account's people may read: their links end (sent
    again, they go where the name's next holder routes)."""
    from portal.invitations.models import PENDING as INVITED, Invitation

    for user in db.session.execute(db.select(User).where(
            User.corporate_account_id == domain.account_id, User.email.like(f"%@{domain.name}"))).scalars():
        if user.email_domain == domain.name:
            user.is_corporate, user.corporate_account_id = False, None
            record("user.release_corporate", account=domain.account_id, target=user, domain=domain.name)
    now = utcnow()
    db.session.execute(db.update(Invitation).where(
        Invitation.email.like(f"%@{domain.name}"), Invitation.status == INVITED, Invitation.expires_at > now,
    ).values(expires_at=now).execution_options(synchronize_session=False))


activation_hooks.append(assign_corporate_users)
removal_cleanups.append(release_corporate_users)
taken_hooks.append(release_corporate_users)
