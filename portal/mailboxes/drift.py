"""Drift: the backend's mailboxes against the portal's, and the two ways to settle each difference.

``adopt`` makes the portal match the backend (import an unknown mailbox, take
its status or quota); ``enforce`` makes the backend match the portal (through
the usual provisioning jobs). Comparing is a job: it lists the backend.

Only real differences are reported. What the backend lists that is not one
is set apart, labelled, and never offered for adoption: the backend's own
system mailboxes (dimail's Open-Xchange context administrator ``oxadmin@``)
and mailboxes it archived (Mail-in-a-Box keeps a removed user's mail), such
as those the portal itself deleted. A mailbox whose creation failed for good
never reached the backend, so it is not "missing" there.
"""

from __future__ import annotations

from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import ForeignKey, String, Text, or_
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from portal.accounts.models import Account
from portal.audit.models import SYSTEM_ACTOR
from portal.audit.services import record
from portal.auth.models import User
from portal.backends import service as backends
from portal.backends.base import BackendError
from portal.domains import services as domains
from portal.domains.models import ENABLED as DOMAIN_ENABLED
from portal.domains.models import Domain
from portal.extensions import db, savepoint
from portal.i18n import _l, labels, later
from portal.jobs.models import QUEUED, RUNNING, Job
from portal.jobs.registry import handler
from portal.jobs.services import enqueue
from portal.mail.services import send
from portal.mailboxes.models import (DELETED, DISABLED, ENABLED, FAILED, PENDING, PROVISIONING, DriftReport, Mailbox,
                                     ProvisioningAttempt, ReleasedMailbox)
from portal.mailboxes.services import MailboxError, _name_problem, _routed, _start, released, released_message
from portal.roles.services import is_owner, members_holding
from portal.timeutil import utcnow

DRIFT_KIND = "domain.drift"
MISSING_ON_BACKEND = "missing_on_backend"
UNKNOWN_TO_PORTAL = "unknown_to_portal"
STATUS_DIFFERS = "status_differs"
QUOTA_DIFFERS = "quota_differs"


class _Texts(dict):
    """Texts by code, each read as a plain string in the language of the moment: a page's, an
    e-mail's recipient's, an API request's."""

    def __getitem__(self, key):
        return str(super().__getitem__(key))

    def get(self, key, default=None):
        return self[key] if key in self else default


LABELS = _Texts({
    MISSING_ON_BACKEND: _l("In the portal, missing on the backend"),
    UNKNOWN_TO_PORTAL: _l("On the backend, unknown to the portal"),
    STATUS_DIFFERS: _l("Enabled on one side, disabled on the other"),
    QUOTA_DIFFERS: _l("Quotas differ"),
})
SCHEDULE = timedelta(days=1)
# What the backend lists that is not a difference.
SYSTEM = "system"
ARCHIVED = "archived"
BROKEN = "broken"
OTHER_DOMAIN = "other_domain"
SET_APART_LABELS = _Texts({
    SYSTEM: _l("The backend's own mailbox"),
    ARCHIVED: _l("Archived on the backend"),
    BROKEN: _l("Half made on the backend"),
    OTHER_DOMAIN: _l("At another domain"),
})
# A side of a difference: a mailbox's status, or archived on the backend.
labels("drift.side", {ENABLED: _l("enabled"), DISABLED: _l("disabled"), FAILED: _l("failed"),
                      PROVISIONING: _l("provisioning"), ARCHIVED: _l("archived"), BROKEN: _l("half made")})


class DriftSetApart(db.Model):
    """A mailbox a comparison found on the backend and set apart: not a difference, never adopted.

    It belongs to its report (``report.set_apart``), as the differences do.
    """

    __tablename__ = "drift_set_apart"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("drift_reports.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(254))
    kind: Mapped[str] = mapped_column(String(16))  # system | archived | broken | other_domain
    note: Mapped[str] = mapped_column(Text, default="")

    report = relationship(DriftReport, backref=backref(
        "set_apart", cascade="all, delete-orphan", passive_deletes=True, order_by="DriftSetApart.address",
        lazy="selectin"))

    @property
    def label(self) -> str:
        return SET_APART_LABELS[self.kind]


def latest_report(domain: Domain) -> DriftReport | None:
    return db.session.execute(db.select(DriftReport).where(DriftReport.domain_id == domain.id)
                              .order_by(DriftReport.id.desc()).limit(1)).scalar_one_or_none()


def comparing(domain: Domain) -> bool:
    return db.session.execute(db.select(Job.id).where(
        Job.kind == DRIFT_KIND, Job.subject == f"drift:{domain.id}", Job.status.in_((QUEUED, RUNNING)),
        Job.run_at <= utcnow() + timedelta(seconds=5))).first() is not None


def request_comparison(domain: Domain, *, notify: bool = False, delay: timedelta = timedelta(0)) -> Job:
    if not backends.capabilities(domain.connection).mailbox_list:
        raise MailboxError(_("The %(backend)s backend cannot list its mailboxes, so drift cannot be checked.",
                             backend=domain.connection))
    return enqueue(DRIFT_KIND, {"domain_id": domain.id, "notify": notify}, delay_seconds=delay.total_seconds(),
                   subject=f"drift:{domain.id}", account=domain.account_id)


def compare(domain: Domain) -> tuple[list[dict], list[dict]]:
    """(differences, set apart) between the backend's mailboxes of ``domain`` and the portal's."""
    remote = {box.address.lower(): box for box in backends.for_domain(domain).list_mailboxes(domain.name)}
    local = {box.address: box for box in db.session.execute(db.select(Mailbox).where(
        Mailbox.domain_id == domain.id, Mailbox.status.not_in((PENDING, DELETED)))).scalars()}
    never_created = _never_created([box for box in local.values() if box.status == FAILED])
    found = []
    for address, mailbox in sorted(local.items()):
        if mailbox.id in never_created:
            continue
        theirs = remote.get(address)
        portal_side = {"status": mailbox.status, "quota_bytes": mailbox.quota_bytes}
        if theirs is None or theirs.extra.get("archived") or theirs.extra.get("broken"):
            # Half made on the backend, it is not usable: as good as missing (creating it again
            # says what the backend's operator must do).
            backend_side = None if theirs is None else {
                "status": BROKEN if theirs.extra.get("broken") else ARCHIVED, "quota_bytes": None}
            found.append({"address": address, "kind": MISSING_ON_BACKEND, "portal": portal_side,
                          "backend": backend_side})
            continue
        backend_side = {"status": ENABLED if theirs.active else DISABLED, "quota_bytes": theirs.quota_bytes}
        if theirs.extra.get("admin") and not mailbox.backend_admin:
            # The server's administrator, made so behind the portal's back: its password opens every
            # mailbox there, so only owners may get it (``_require_outranks_holder``), from now on.
            mailbox.backend_admin = True
            record("mailbox.backend_admin_found", account=domain.account_id, target=mailbox,
                   actor_label=SYSTEM_ACTOR)
        if mailbox.status in (ENABLED, DISABLED) and backend_side["status"] != mailbox.status:
            found.append({"address": address, "kind": STATUS_DIFFERS, "portal": portal_side, "backend": backend_side})
        if mailbox.quota_bytes is not None and theirs.quota_bytes != mailbox.quota_bytes:
            found.append({"address": address, "kind": QUOTA_DIFFERS, "portal": portal_side, "backend": backend_side})
    elsewhere = dict(db.session.execute(db.select(Mailbox.address, Mailbox.status).where(
        Mailbox.domain_id == domain.id, Mailbox.status.in_((PENDING, DELETED)))).all())
    set_apart = []
    for address, theirs in sorted(remote.items()):
        if address in local:
            continue
        if not at_domain(address, domain):
            # Listed with this domain's mailboxes but at another name (a review: a backend listing
            # another account's address here had it adopted into this account, whose admins then
            # set its password and deleted it under the other account's mailbox).
            set_apart.append({"address": address, "kind": OTHER_DOMAIN, "note": _(
                "The backend listed it with the mailboxes of %(domain)s: the portal adopts only addresses at the "
                "domain it compares.", domain=domain.unicode_name)})
        elif theirs.system:
            set_apart.append({"address": address, "kind": SYSTEM, "note": (
                _("%(name)s: the backend keeps it for itself; it is not the portal's to adopt.",
                  name=theirs.display_name) if theirs.display_name else
                _("A system account: the backend keeps it for itself; it is not the portal's to adopt."))})
        elif theirs.extra.get("broken"):
            set_apart.append({"address": address, "kind": BROKEN, "note": _(
                "The backend lists it as broken (half made): it cannot be adopted; its operator must repair or "
                "remove it.")})
        elif theirs.extra.get("archived"):
            set_apart.append({"address": address, "kind": ARCHIVED, "note": (
                _("Deleted in the portal; the backend keeps its mail, and creating the address again restores it.")
                if elsewhere.get(address) == DELETED else
                _("Removed on the backend, which keeps its mail; the portal has no such mailbox."))})
        elif elsewhere.get(address) != PENDING:
            found.append({"address": address, "kind": UNKNOWN_TO_PORTAL, "portal": None,
                          "backend": {"status": ENABLED if theirs.active else DISABLED,
                                      "quota_bytes": theirs.quota_bytes, "display_name": theirs.display_name,
                                      "admin": bool(theirs.extra.get("admin"))}})
    return found, set_apart


def at_domain(address: str, domain: Domain) -> bool:
    """Whether ``address`` is at ``domain``'s name, as the portal writes addresses (ASCII, lower case):
    one @, something before it (a review: x@other@domain would have been adopted as it was)."""
    local, at, name = address.partition("@")
    return bool(local and at) and name.lower() == domain.name


def _never_created(failed: list[Mailbox]) -> set[int]:
    """The failed mailboxes that never reached the backend: their last attempt was a create that
    failed, or they never had one (refused before provisioning)."""
    if not failed:
        return set()
    ids = [box.id for box in failed]
    last = db.select(db.func.max(ProvisioningAttempt.id)).where(
        ProvisioningAttempt.mailbox_id.in_(ids)).group_by(ProvisioningAttempt.mailbox_id)
    last_operation = dict(db.session.execute(db.select(ProvisioningAttempt.mailbox_id, ProvisioningAttempt.operation)
                                             .where(ProvisioningAttempt.id.in_(last))).all())
    return {box_id for box_id in ids if last_operation.get(box_id, "create") == "create"}


def run_comparison(domain: Domain, notify: bool) -> DriftReport:
    try:
        found, set_apart = compare(domain)
    except BackendError as error:
        report = DriftReport(domain_id=domain.id, error=error.message)
    else:
        report = DriftReport(domain_id=domain.id, differences=found)
        report.set_apart = [DriftSetApart(**item) for item in set_apart]
    db.session.add(report)
    if notify and report.differences:
        _mail_admins(domain, report)
    return report


def _mail_admins(domain: Domain, report: DriftReport) -> None:
    account = db.session.get(Account, domain.account_id)
    for user in members_holding(account, "mailboxes.manage"):
        send(user.email, "drift_report", for_account=account, account=account, domain=domain, report=report,
             labels=LABELS, user=user)


@handler(DRIFT_KIND, max_attempts=3, backoff_seconds=60)
def drift_job(job) -> None:
    domain = db.session.get(Domain, job.payload["domain_id"])
    if domain is None or domain.status != DOMAIN_ENABLED:
        return
    run_comparison(domain, job.payload.get("notify", False))
    if job.payload.get("notify"):
        # The scheduled comparison keeps itself going, one a day per enabled domain.
        request_comparison(domain, notify=True, delay=SCHEDULE)


def schedule_daily(domain: Domain) -> None:
    """Activation hook: start the daily comparison of a domain that can be compared."""
    if backends.capabilities(domain.connection).mailbox_list and not db.session.execute(
            db.select(Job.id).where(Job.kind == DRIFT_KIND, Job.subject == f"drift:{domain.id}",
                                    Job.status == QUEUED)).first():
        request_comparison(domain, notify=True, delay=SCHEDULE)


# -- settling ----------------------------------------------------------------------------

def _find(report: DriftReport, address: str, kind: str) -> dict:
    for item in report.differences:
        if item["address"] == address and item["kind"] == kind:
            return item
    raise MailboxError(_("That difference is no longer in the latest report; compare again."))


def settle(actor: User, domain: Domain, report: DriftReport, address: str, kind: str, how: str) -> str:
    item = _find(report, address, kind)
    mailbox = db.session.execute(db.select(Mailbox).where(Mailbox.address == address,
                                                          Mailbox.domain_id == domain.id)).scalar_one_or_none()
    if kind != UNKNOWN_TO_PORTAL and (mailbox is None or mailbox.status not in (ENABLED, DISABLED, "failed")):
        # The portal's side changed since the comparison (deleted, being provisioned).
        raise MailboxError(_("%(address)s changed since the comparison; compare again.", address=address))
    if how == "adopt":
        message = _adopt(actor, domain, item, mailbox)
    elif how == "enforce":
        message = _enforce(item, mailbox)
    else:
        raise MailboxError(_("Choose adopt or enforce."))
    report.differences = [d for d in report.differences if not (d["address"] == address and d["kind"] == kind)]
    record(f"drift.{how}", account=domain.account_id, target=mailbox or domain, actor=actor, address=address,
           difference=kind)
    return message


def _adopt(actor: User, domain: Domain, item: dict, mailbox: Mailbox | None) -> str:
    backend_side = item["backend"]
    if item["kind"] == UNKNOWN_TO_PORTAL:
        if not at_domain(item["address"], domain):
            # A comparison made before such addresses were set apart (``compare``).
            raise MailboxError(_("%(address)s is not at %(domain)s: the portal adopts only addresses at the domain it "
                                 "compares.", address=item["address"], domain=domain.unicode_name))
        admin = bool(backend_side.get("admin"))
        if "admin" not in backend_side and not is_owner(actor, domain.account_id):
            # A comparison from before the privilege was read: it may be the server's administrator.
            raise MailboxError(_("%(address)s changed since the comparison; compare again.", address=item["address"]))
        if admin and not is_owner(actor, domain.account_id):
            # Its password opens every mailbox of the server (a review: an Administrator adopted the
            # box's own administrator as a plain mailbox, took its password and set the Owner's).
            raise MailboxError(_("%(address)s is the server's administrator: only an owner of the account may bring it "
                                 "into the portal.", address=item["address"]))
        # As for a mailbox made in the portal: not at someone's login address (or the catch-all's
        # name) unless the rules allow it (whoever gets its password would read their resets).
        kind, owner = (mailbox.kind, mailbox.owner) if mailbox is not None else ("shared", None)
        problem = _name_problem(domain, item["address"], kind, owner)
        if problem:
            raise MailboxError(problem)
        if mailbox is not None and mailbox.status == DELETED:
            # The portal deleted it, the backend still (or again) has it: it is back.
            mailbox.status, mailbox.want_active = backend_side["status"], backend_side["status"] == ENABLED
            mailbox.quota_bytes, mailbox.status_reason = backend_side["quota_bytes"], later("Adopted from the backend.")
            mailbox.backend_admin = admin
            _routed(domain, item["address"])
            return _("%(address)s is back in the portal.", address=item["address"])
        if mailbox is not None:
            raise MailboxError(_("%(address)s changed since the comparison; compare again.", address=item["address"]))
        left = released(domain.connection, item["address"], domain.account_id)
        if left is not None:
            raise MailboxError(released_message(left))
        local_part = item["address"].split("@", 1)[0]
        imported = Mailbox(account_id=domain.account_id, domain_id=domain.id, local_part=local_part,
                           address=item["address"], kind="shared", display_name=backend_side.get("display_name") or "",
                           quota_bytes=backend_side["quota_bytes"], status=backend_side["status"],
                           want_active=backend_side["status"] == ENABLED, backend_admin=admin,
                           status_reason=later("Adopted from the backend."))
        db.session.add(imported)
        _routed(domain, item["address"])
        return _("%(address)s is now in the portal.", address=item["address"])
    if item["kind"] == MISSING_ON_BACKEND:
        mailbox.status, mailbox.status_reason = DELETED, later("Gone from the backend; adopted as deleted.")
        return _("%(address)s is marked deleted, as on the backend.", address=item["address"])
    if item["kind"] == STATUS_DIFFERS:
        mailbox.status = backend_side["status"]
        mailbox.want_active = mailbox.status == ENABLED
        if mailbox.status == ENABLED:
            return _("%(address)s is now enabled in the portal, as on the backend.", address=item["address"])
        return _("%(address)s is now disabled in the portal, as on the backend.", address=item["address"])
    mailbox.quota_bytes = backend_side["quota_bytes"]
    return _("The portal now has the backend's quota for %(address)s.", address=item["address"])


def _enforce(item: dict, mailbox: Mailbox | None) -> str:
    if item["kind"] == UNKNOWN_TO_PORTAL:
        raise MailboxError(_("The portal has nothing to enforce for a mailbox it does not know: adopt it, "
                             "or delete it on the backend."))
    operation = {MISSING_ON_BACKEND: "create", STATUS_DIFFERS: "set_active", QUOTA_DIFFERS: "set_quota"}[item["kind"]]
    _start(mailbox, operation)
    return _("%(address)s: the backend is being brought in line with the portal.", address=item["address"])


def settled_by_all(domain: Domain, report: DriftReport | None, how: str) -> list[dict]:
    """The differences "adopt all" or "enforce all" acts on: not a mailbox unknown to the portal
    when enforcing (nothing to push), nor one another account left there when adopting (its mail is
    that account's people's, see ``_adopt``). One statement, however many differences: the
    addresses left on the domain by others, matched here (one per 500 made 26 statements for 10,000)."""
    items = list(report.differences) if report else []
    unknown = {item["address"] for item in items if item["kind"] == UNKNOWN_TO_PORTAL}
    left_by_others: set[str] = set()
    if how == "adopt" and unknown:
        left = db.select(ReleasedMailbox.address).where(
            ReleasedMailbox.connection == domain.connection,
            or_(ReleasedMailbox.account_id.is_(None), ReleasedMailbox.account_id != domain.account_id))
        at_domain = "%@" + domain.name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        left_by_others = unknown & set(db.session.execute(
            left.where(ReleasedMailbox.address.like(at_domain, escape="\\"))).scalars())
        # A backend that listed an address of another form (not at the domain's name as the portal
        # writes it) has it looked up as it is, as before: none of the backends does.
        elsewhere = sorted(address for address in unknown if not address.endswith("@" + domain.name))
        for start in range(0, len(elsewhere), 500):
            left_by_others.update(db.session.execute(
                left.where(ReleasedMailbox.address.in_(elsewhere[start:start + 500]))).scalars())
    return [item for item in items if not (item["kind"] == UNKNOWN_TO_PORTAL
                                           and (how == "enforce" or item["address"] in left_by_others))]


def settle_all(actor: User, domain: Domain, report: DriftReport, how: str) -> tuple[int, list[str]]:
    """Settle every difference ``settled_by_all`` offers; one refused (a backend mailbox at someone's
    login address, say) stays in the report, to be settled by itself. How many were settled, and the
    addresses refused."""
    done, refused = 0, []
    for item in settled_by_all(domain, report, how):
        try:
            with savepoint():
                settle(actor, domain, report, item["address"], item["kind"], how)
        except MailboxError:
            refused.append(item["address"])
            continue
        done += 1
    return done, refused


domains.activation_hooks.append(schedule_daily)
