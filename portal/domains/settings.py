"""A domain's Settings tab: what its backend supports, validated with the backend's
own limits, sent as a job, with the backend's answer shown beside each field."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _

from portal.audit.services import record
from portal.auth.models import User
from portal.backends import service as backends
from portal.backends.base import BackendError, DomainSetting, TransientBackendError, validate_domain_settings
from portal.backends.registry import backend_class
from portal.domains import ownership
from portal.domains.models import Domain, aliased_names, catch_all_address
from portal.extensions import db
from portal.i18n import _l, labels, later, later_plural, shown
from portal.jobs.registry import PermanentJobError, handler
from portal.jobs.services import enqueue_many, enqueue_once

SETTINGS_KIND = "domain.settings"
MEGABYTE = 1024 * 1024
PENDING, APPLIED, FAILED = "pending", "applied", "failed"

# The units a backend counts a setting in (DomainSetting.unit), as people read them.
labels("domain.setting_unit", {"bytes": _l("bytes"), "mailboxes": _l("mailboxes"), "aliases": _l("aliases"),
                               "messages per day": _l("messages per day")})


class SettingsInvalid(ValueError):
    def __init__(self, problems: dict[str, str]):
        super().__init__(_("Some settings are not valid."))
        self.problems = problems


def specs(domain: Domain) -> list[DomainSetting]:
    return backend_class(backends.connection(domain.connection).backend).domain_settings()


def shown_in_megabytes(setting: DomainSetting) -> bool:
    return setting.kind == "int" and setting.unit == "bytes"


def parse_form(domain: Domain, form) -> tuple[dict[str, Any], dict[str, str]]:
    """Values from the submitted form (empty means the backend's default) and typing problems; a
    number typed wrong stays as typed, to be shown again and corrected (it is never saved: a
    problem stops the saving)."""
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for setting in specs(domain):
        raw = form.get(setting.key, "")
        if setting.kind == "bool":
            values[setting.key] = setting.key in form
        elif setting.kind == "list":
            items = form.getlist(setting.key) if setting.choices else raw.replace(",", "\n").splitlines()
            cleaned = [item.strip().lower() if setting.value_format else item.strip() for item in items]
            values[setting.key] = [item for item in cleaned if item] or None
        elif setting.kind == "int":
            text = raw.strip()
            if not text:
                values[setting.key] = None
            elif not (text.isascii() and text.isdigit()):  # "²" and "①" are digits to Python, not to int()
                problems[setting.key], values[setting.key] = _("Enter a whole number."), raw
            elif len(text) > 12:
                problems[setting.key], values[setting.key] = _("That number is far too large."), raw
            else:
                values[setting.key] = int(text) * (MEGABYTE if shown_in_megabytes(setting) else 1)
        else:
            values[setting.key] = raw.strip() or None
    return values, problems


def ownership_problems(domain: Domain, values: dict[str, Any], *, stored: bool = False) -> dict[str, str]:
    """Settings are sent to the backend by the domain's name: only for a domain the account holds
    (proven, not taken since). Those that route mail (domain aliases, a catch-all) may only name
    what the account proved. Each problem as it reads now, or (``stored``) as a ``later`` text."""
    def said(refusal: ownership.NameRefused) -> str:
        return refusal.stored if stored else str(refusal)

    problems: dict[str, str] = {}
    try:
        ownership.require_held(domain)
    except ownership.NameRefused as refusal:
        return {key: said(refusal) for key in values} or {"domain": said(refusal)}
    routing = [key for key in ("domain_aliases", "catch_all") if values.get(key)]
    if not routing:
        return problems
    try:
        ownership.usable_domain(domain.account_id, domain, ownership.ROUTE)
    except ownership.NameRefused as refusal:
        return {key: said(refusal) for key in routing}
    for name in values.get("domain_aliases") or []:
        try:
            ownership.usable_domain(domain.account_id, name, ownership.ROUTE)
        except ownership.NameRefused as refusal:
            problems["domain_aliases"] = later(NOT_AN_ALIAS, domain=name, refusal=refusal.stored)
            if not stored:
                problems["domain_aliases"] = shown(problems["domain_aliases"])
            break
    if values.get("catch_all"):
        # Its local part is a name like any other: "ceo%other.example@here" or a bang path would
        # ask some mail servers to send the domain's mail on to another domain.
        local_part = str(values["catch_all"]).strip().rpartition("@")[0]
        try:
            ownership.validate_local_part(local_part, "catch_all")
        except ownership.NameRefused as refusal:
            problems["catch_all"] = said(refusal)
        else:
            if "+" in local_part:
                # Mail servers deliver name+tag@ to name@ (a review: the portal looked for a mailbox
                # at the tagged address, while the catch-all's mail went to another one's).
                text = later("A catch-all's address takes no +tag: mail servers deliver name+tag@ to name@. Give "
                             "the mailbox's own address.")
                problems["catch_all"] = text if stored else shown(text)
    return problems


NOT_AN_ALIAS = _l("%(domain)s: %(refusal)s Only this account's own proven domains can be aliases.")


def _catch_all_problem(actor: User, domain: Domain, values: dict[str, Any]) -> str | None:
    """A catch-all receives the mail of every address of the domain that has no mailbox, people's
    login addresses among them (a password reset arrives there): only an owner of the account, who
    outranks everyone in it, may point it somewhere new."""
    from portal.roles.services import is_owner

    wanted = values.get("catch_all")
    if not wanted or wanted == (domain.settings or {}).get("catch_all") or is_owner(actor, domain.account_id):
        return None
    return _("Only an owner of the account can set a catch-all: it receives the mail of every address of the "
             "domain without a mailbox, people's login addresses among them.")


def _domain_aliases_problem(actor: User, domain: Domain, values: dict[str, Any]) -> str | None:
    """A domain alias delivers joe@alias to joe@ this domain: the login mail of everyone on the
    alias (a password reset among it) then reaches whoever holds a mailbox here at their local part.
    As for the catch-all, only an owner adds one; anyone who manages domains may remove one."""
    from portal.roles.services import is_owner

    wanted = set(values.get("domain_aliases") or [])
    if not wanted - set((domain.settings or {}).get("domain_aliases") or []) or is_owner(actor, domain.account_id):
        return None
    return _("Only an owner of the account can add a domain alias: the mail of every address on it, people's "
             "login addresses among them, goes to this domain's mailboxes.")


def _chained_aliases_problem(domain: Domain, values: dict[str, Any]) -> str | None:
    """Mail servers follow domain aliases from one to the next (joe@a reaches joe@b, then joe@c),
    while the portal's checks of who receives a login address look one step: no chain is made (a
    review: a member's mailbox at boss@c received boss@a through b unseen)."""
    added = set(values.get("domain_aliases") or []) - set((domain.settings or {}).get("domain_aliases") or [])
    if not added:
        return None
    others = db.session.execute(db.select(Domain).where(
        Domain.account_id == domain.account_id, Domain.id != domain.id, Domain.settings.is_not(None))).scalars().all()
    for other in sorted(others, key=lambda other: other.name):
        if domain.name in aliased_names(other.settings):
            return _("%(domain)s is itself an alias of %(target)s: add these aliases to %(target)s instead (aliases "
                     "do not lead on to further aliases).", domain=domain.name, target=other.name)
        if other.name in added and aliased_names(other.settings):
            return _("%(alias)s has domain aliases of its own (%(names)s): add them here instead, or remove them "
                     "there first (aliases do not lead on to further aliases).", alias=other.name,
                     names=", ".join(sorted(aliased_names(other.settings))))
    return None


def _normalized_aliases(values: dict[str, Any]) -> dict[str, Any]:
    """Domain aliases as domain names are kept (lower case, no trailing dot), whatever path they came by."""
    from portal.domains.names import DomainNameError, normalize

    names = values.get("domain_aliases")
    if not isinstance(names, list):
        return values
    kept = []
    for name in names:
        try:
            kept.append(normalize(str(name)))
        except DomainNameError:
            kept.append(str(name))  # validation says what is wrong with it
    return {**values, "domain_aliases": list(dict.fromkeys(kept)) or None}


def save(actor: User, domain: Domain, values: dict[str, Any]) -> int:
    """Validate and keep the settings, queue their application; how many invitation links ended."""
    values = _normalized_aliases(values)
    problems = validate_domain_settings(specs(domain), values, domain=domain.name)
    if problems:
        # Values of the wrong kind (an API's "domain_aliases": true) stop here: the checks below
        # read them as the settings' types (a review found an HTTP 500).
        raise SettingsInvalid(problems)
    for key, problem in (("catch_all", _catch_all_problem(actor, domain, values)),
                         ("domain_aliases", _domain_aliases_problem(actor, domain, values)
                          or _chained_aliases_problem(domain, values))):
        if problem and key not in problems:
            problems[key] = problem
    problems.update({key: message for key, message in ownership_problems(domain, values).items()
                     if key not in problems})
    if problems:
        raise SettingsInvalid(problems)
    changed = sorted(key for key in values if (domain.settings or {}).get(key) != values[key])
    before = dict(domain.settings or {})
    domain.settings = values
    ended = end_links_newly_routed(domain, before)
    domain.settings_state, domain.settings_hints = PENDING, {}
    domain.settings_message = later("Being applied on the backend.")
    enqueue_once(SETTINGS_KIND, {"domain_id": domain.id}, subject=f"domain-settings:{domain.id}",
                 account=domain.account_id)
    record("domain.settings", account=domain.account_id, target=domain, actor=actor, changed=changed,
           **({"invitations_ended": ended} if ended else {}))
    return ended


def end_links_newly_routed(domain: Domain, before: dict[str, Any]) -> int:
    """A new catch-all receives every address of the domain (and of the domains aliased onto it)
    without a mailbox; a new domain alias sends its addresses here. Pending invitation links
    mailed to such addresses stop working: whoever reads the catch-all or the
    mailbox at that local part could now get them (sending again checks who reads it). How many.
    Only the domain's account's own (see ``expire_links_to``)."""
    from portal.invitations.models import PENDING, Invitation
    from portal.invitations.services import expire_links_to
    from portal.timeutil import utcnow

    after = domain.settings
    names = aliased_names(after) - aliased_names(before)
    if catch_all_address(after) and catch_all_address(after) != catch_all_address(before):
        names |= {domain.name} | aliased_names(after)
    if not names:
        return 0
    addresses = db.session.execute(db.select(Invitation.email).where(
        Invitation.account_id == domain.account_id, Invitation.status == PENDING, Invitation.expires_at > utcnow(),
        db.or_(*(Invitation.email.endswith(f"@{name}", autoescape=True) for name in sorted(names))))).scalars()
    return expire_links_to(set(addresses), domain.account_id)


def mailbox_limit_problem(domain: Domain, current: int) -> str | None:
    """The portal enforces the domain's own limit on mailboxes too."""
    limit = (domain.settings or {}).get("max_users")
    if limit is not None and current >= limit:
        return later_plural("%(domain)s allows at most %(num)d mailbox (see its settings).",
                            "%(domain)s allows at most %(num)d mailboxes (see its settings).", limit,
                            domain=domain.name)
    return None


def _failed(job, message: str) -> None:
    domain = db.session.get(Domain, job.payload.get("domain_id"))
    if domain is not None and domain.settings_state == PENDING:
        domain.settings_state, domain.settings_message = FAILED, message


@handler(SETTINGS_KIND, max_attempts=8, backoff_seconds=30, on_failure=_failed)
def apply_settings(job) -> None:
    domain = db.session.get(Domain, job.payload["domain_id"])
    if domain is None:
        return
    refused = ownership_problems(domain, domain.settings or {}, stored=True)
    if refused:
        # Ownership may have changed since the settings were saved: nothing is routed on a stale claim.
        message = later("%(problems)s", problems=list(refused.values()))
        domain.settings_state, domain.settings_message, domain.settings_hints = FAILED, message, refused
        db.session.commit()
        raise PermanentJobError(message)
    try:
        backends.for_domain(domain).set_domain_settings(domain.name, domain.settings or {})
    except TransientBackendError:
        raise
    except BackendError as error:
        db.session.rollback()
        domain = db.session.get(Domain, job.payload["domain_id"])
        domain.settings_state, domain.settings_message = FAILED, error.message
        domain.settings_hints = dict(error.hints or {})
        db.session.commit()
        raise PermanentJobError(error.message) from None
    domain.settings_state, domain.settings_hints = APPLIED, {}
    domain.settings_message = later("Applied on the backend.")


# -- a domain going: its routing goes from the backend too --------------------------------

CLEAR_KIND = "domain.settings_clear"
ROUTING = {"domain_aliases": [], "catch_all": None}  # each routing setting, and its value for none


def clear_routing(*domains: Domain) -> int:
    """The domains are removed, or their account deleted: the domain aliases and catch-alls their
    settings may have put on the backend go too (jobs, since the rows go now; one statement for
    them all). Every routing setting the backend has is cleared, whatever the domain's settings
    want now: a change still pending, or one that failed, may have left the old routing there.
    Left there, mail to joe@alias kept reaching joe@ the domain, in the mailbox of whichever
    account next proves it. How many jobs."""
    from portal.backends.base import ConfigurationError
    from portal.domains.models import TAKEN

    jobs = []
    for domain in domains:
        # Settings reach the backend only on a proven name the account still holds.
        if domain.verified_at is None or domain.status == TAKEN:
            continue
        try:
            offered = {spec.key for spec in specs(domain)}
        except ConfigurationError:
            continue  # a connection no longer configured: the portal reaches nothing there
        cleared = {key: empty for key, empty in ROUTING.items() if key in offered}
        if cleared:
            jobs.append(({"connection": domain.connection, "name": domain.name, "settings": cleared},
                         f"domain-settings-clear:{domain.name}"))
    return enqueue_many(CLEAR_KIND, jobs)


@handler(CLEAR_KIND, max_attempts=12, backoff_seconds=60, backoff_cap_seconds=3600)
def clear_routing_job(job) -> None:
    """Run later, perhaps once another account (or the same, again) has proven the name: what
    that holder's own settings route is theirs, applied by their own job, and stays."""
    cleared = dict(job.payload["settings"])
    holder = ownership.proven_copy(job.payload["name"])
    if holder is not None and holder.connection == job.payload["connection"]:
        cleared = {key: empty for key, empty in cleared.items() if not (holder.settings or {}).get(key)}
    if not cleared:
        return
    try:
        backends.adapter(job.payload["connection"]).set_domain_settings(job.payload["name"], cleared)
    except TransientBackendError:
        raise
    except BackendError as error:
        raise PermanentJobError(error.message) from None


def _register() -> None:
    from portal.domains import services as domains

    domains.removal_cleanups.append(clear_routing)


_register()
