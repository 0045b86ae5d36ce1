"""Acting on many people or mailboxes at once: the admin ticks rows (or takes every row the
filtered list matches), confirms, and one job carries the action out row by row through the
same services as a single change, each row in its own savepoint (a refusal for one person
leaves the others done), each audited as if done by hand, with progress on the page.
"""

from __future__ import annotations

import hashlib
from contextlib import nullcontext
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from portal.accounts.models import Account, Membership
from portal.audit.services import record
from portal.auth.models import User
from portal.bulk.models import DONE, FAILED, MAILBOXES, MEMBERS, QUEUED, RUNNING, BulkRun
from portal.extensions import db, savepoint
from portal.i18n import LABELS, StoredReason, _l, chosen, for_person, label as label_of, later, number, shown
from portal.jobs.registry import handler, marks_failed
from portal.jobs.services import enqueue
from portal.roles import catalogue
from portal.roles.services import AccessError, account_permissions, owner_memberships, role_in_account, system_role
from portal.timeutil import utcnow
from portal.web.inputs import parse_id
from portal.web.lists import Listing

BULK_KIND = "bulk.run"
CHUNK = 100
MAX_PROBLEMS = 500
# Rows ticked on a list's page (50 a page): far more than a person ticks, so that one form cannot
# name a table's worth; every row of a list is "every row the list matches".
MAX_TICKED = 1_000
# The filters a run may keep, per list: those its page offers (anything else is dropped).
LIST_FILTERS = {MEMBERS: ("q", "role", "kind", "mailbox", "status", "sort", "dir"),
                MAILBOXES: ("q", "domain", "status", "kind", "owner", "sort", "dir")}


@dataclass(frozen=True)
class Action:
    permission: str
    label: object  # a lazy text; ``%(role)s`` stands for the role's name
    destructive: bool = False


MEMBER_ACTIONS = {
    "grant_role": Action("access.grant", _l("Grant the role “%(role)s”")),
    "remove_role": Action("access.grant", _l("Take away the role “%(role)s”"), destructive=True),
    "send_onboarding": Action("users.manage", _l("Send onboarding links again")),
    "suspend": Action("users.manage", _l("Suspend (corporate users)"), destructive=True),
    "restore": Action("users.manage", _l("Restore (corporate users)")),
    "remove": Action("members.remove", _l("Remove from the account"), destructive=True),
}
MAILBOX_ACTIONS = {
    "enable": Action("mailboxes.manage", _l("Enable")),
    "disable": Action("mailboxes.manage", _l("Disable"), destructive=True),
    "delete": Action("mailboxes.manage", _l("Delete"), destructive=True),
}
ACTIONS = {MEMBERS: MEMBER_ACTIONS, MAILBOXES: MAILBOX_ACTIONS}
MAILBOX_CHOICES = ("keep", "disable", "delete")


class BulkError(StoredReason, ValueError):
    """The bulk action cannot be started as asked; the message says why."""


def run_in_account(account: Account, run_id: int) -> BulkRun | None:
    run = db.session.get(BulkRun, run_id)
    return run if run is not None and run.account_id == account.id else None


def _listing(target: str, filters: dict[str, str]) -> Listing:
    """The list as it was filtered on the page when "every row matching" was chosen."""
    from portal.accounts.views import member_listing
    from portal.mailboxes.views import mailbox_listing

    return (member_listing if target == MEMBERS else mailbox_listing)(filters)


def _selected_ids(run: BulkRun, actor: User, account: Account) -> list[int]:
    """The rows ticked, or what the filters match now (a run keeps what they matched when it was
    confirmed: ``_owned_ids``)."""
    from portal.accounts.services import member_query
    from portal.mailboxes.services import mailbox_query

    if "ids" in run.selection:
        return [int(value) for value in run.selection["ids"]]
    listing = _listing(run.target, run.selection.get("filters", {}))
    if run.target == MEMBERS:
        query = member_query(account, listing).with_only_columns(Membership.id)
    else:
        from portal.mailboxes.models import Mailbox

        query = mailbox_query(actor, account, listing).with_only_columns(Mailbox.id)
    return list(db.session.execute(query).scalars())


def prepare(actor: User, account: Account, target: str, form) -> BulkRun:
    """The run the submitted list form asks for, checked and counted, not saved yet."""
    actions = ACTIONS[target]
    action = form.get("action", "")
    if action not in actions:
        raise BulkError(later("Choose what to do."))
    if actions[action].permission not in account_permissions(actor, account):
        raise AccessError(later("You do not hold the permission this action needs."))
    params: dict = {}
    if action in ("grant_role", "remove_role"):
        role = role_in_account(account, parse_id(form.get("role_id")) or 0)
        if role is None or role.scope != catalogue.ACCOUNT:
            raise BulkError(later("Choose an account role."))
        params = {"role_id": role.id, "role": role.name}
    if action == "remove":
        choice = form.get("mailboxes", "keep")
        params["mailboxes"] = choice if choice in MAILBOX_CHOICES else "keep"
        from portal.users.services import may_delete_mailboxes

        if params["mailboxes"] == "delete" and not may_delete_mailboxes(actor, account):
            raise BulkError(later("Deleting their mailboxes needs the right to manage mailboxes, which you do not "
                                  "hold: keep or disable them instead."))
    if form.get("all_matching") == "yes":
        kept = LIST_FILTERS[target]
        selection = {"filters": {name: form.get(f"filter-{name}", "")[:254] for name in kept
                                 if form.get(f"filter-{name}")}}
    else:
        ticked = form.getlist(_row_field(target))
        if len(ticked) > MAX_TICKED:
            raise BulkError(later("Tick at most %(count)s rows; to act on more, choose every row the list matches.",
                                  count=number(MAX_TICKED)))
        ids = sorted({number for number in (parse_id(value) for value in ticked) if number})
        if not ids:
            raise BulkError(later("Tick the rows to act on, or choose every row the list matches."))
        selection = {"ids": ids}
    run = BulkRun(account_id=account.id, created_by_id=actor.id, target=target, action=action, params=params,
                  selection=selection)
    ids = _owned_ids(run, actor, account)
    if not ids:
        raise BulkError(later("None of the chosen rows is in this account any more."))
    run.total = len(ids)
    if "filters" in selection:
        # The run acts on the rows the filters match now, those confirmed (and whose owners were
        # checked for), not on whoever matches when the job runs: a role given to an owner meanwhile
        # must not add them to a removal nobody confirmed for them.
        run.selection = {**selection, "matched": ids}
    return run


def rows_digest(run: BulkRun) -> str:
    """A digest of the rows the run acts on, for its confirmation page to carry: confirmed, the
    run starts only if it still acts on the same rows."""
    ids = run.selection.get("matched") or run.selection.get("ids") or []
    return hashlib.sha256(",".join(str(value) for value in sorted(ids)).encode()).hexdigest()[:32]


def _row_field(target: str) -> str:
    return "member" if target == MEMBERS else "mailbox"


def _owned_ids(run: BulkRun, actor: User, account: Account) -> list[int]:
    """The selected ids that belong to the account (ticked ids from a form are only a wish)."""
    from portal.mailboxes.models import Mailbox

    if "matched" in run.selection:  # the account's own rows, resolved when the run was confirmed
        return [int(value) for value in run.selection["matched"]]
    ids = _selected_ids(run, actor, account)
    if "ids" not in run.selection:
        return ids
    model = Membership if run.target == MEMBERS else Mailbox
    return list(db.session.execute(db.select(model.id).where(model.id.in_(ids), model.account_id == account.id)
                                   .order_by(model.id)).scalars())


def label(run: BulkRun) -> str:
    """The action as people read it, in their language (a system role named in it too)."""
    return shown(stored_label(run))


def stored_label(run: BulkRun) -> str:
    """The action as the audit log keeps it: read later in each reader's language (a walkthrough:
    a French Overview read "Action groupée terminée Grant the role “Account Administrator”")."""
    role = run.params.get("role")
    params = {"role": LABELS.get(("role", role), role)} if role is not None else {}
    return later(ACTIONS[run.target][run.action].label, **params)


def touches_an_owner(actor: User, account: Account, run: BulkRun) -> bool:
    """Whether the run takes the Owner role from people or removes an owner from the account:
    what, done by hand, needs a session whose password was confirmed a moment ago."""
    if run.target != MEMBERS:
        return False
    if run.action == "remove_role":
        return run.params["role_id"] == system_role(catalogue.OWNER).id
    if run.action == "remove":
        return not set(owner_memberships(account)).isdisjoint(_owned_ids(run, actor, account))
    return False


def repeated(actor: User, account: Account, key: str) -> BulkRun | None:
    """The run this person already started from the same confirmation (``key``), if any: the same
    form posted again (a double click, a page sent again) starts nothing new."""
    return db.session.execute(db.select(BulkRun).where(
        BulkRun.created_by_id == actor.id, BulkRun.run_key == key, BulkRun.account_id == account.id)
    ).scalar_one_or_none()


def start(actor: User, account: Account, run: BulkRun, key: str) -> BulkRun:
    """Save and queue the run. Two requests at once with one confirmation's ``key``: the database
    refuses the second's run (IntegrityError), which then finds the first's with ``repeated``."""
    run.run_key = key
    db.session.add(run)
    db.session.flush()
    enqueue(BULK_KIND, {"run_id": run.id}, subject=f"bulk:{run.id}", account=account)
    record("bulk.start", account=account, target=run, target_label=stored_label(run), actor=actor, rows=run.total,
           selection="every row matching the filters" if "filters" in run.selection else "rows ticked")
    return run


# -- the job -----------------------------------------------------------------------

def _act_on_member(run: BulkRun, actor: User, account: Account, membership: Membership,
                   held: frozenset[str]) -> bool:
    """Do the run's action for one member; False when they were already as asked (nothing done)."""
    from portal.accounts.services import remove_member
    from portal.roles.services import grant_role, held_grant, revoke_grant
    from portal.users import services as users

    user = membership.user
    if run.action == "grant_role":
        role = role_in_account(account, run.params["role_id"])
        if role is None:
            raise BulkError(later("The role “%(role)s” no longer exists.", role=label_of(run.params["role"], "role")))
        held_already = held_grant(membership, role.id) is not None
        grant_role(actor, account, membership, role)  # checks the actor may grant it, held already or not
        return not held_already
    if run.action == "remove_role":
        grant = held_grant(membership, run.params["role_id"])
        if grant is None:
            return False
        revoke_grant(actor, account, grant)
        return True
    if run.action == "send_onboarding":
        users.send_onboarding(actor, account, user, may_show=False)
        return True
    if run.action in ("suspend", "restore"):
        # Asked of someone already so, the service says so and changes nothing.
        already = (user.suspended_at is not None) == (run.action == "suspend")
        if run.action == "suspend":
            users.suspend(actor, account, user)
        else:
            users.restore(actor, account, user)
        return not already
    if users.is_corporate_of(user, account):
        # By hand, removing a corporate user (and choosing what becomes of their mailboxes) is
        # the users page's, which needs users.manage; the members page removes other people.
        if "users.manage" not in held:
            raise AccessError(later("Removing a corporate user needs the permission to manage users."))
        users.remove_corporate_user(actor, account, membership, run.params["mailboxes"])
        return True
    if user.id == actor.id:
        raise AccessError(later("You cannot remove yourself this way."))
    remove_member(actor, account, membership)
    return True


def _act_on_mailbox(run: BulkRun, actor: User, mailbox) -> bool:
    """Do the run's action for one mailbox; False when it was already as asked (nothing done)."""
    from portal.mailboxes import services as mailboxes

    if run.action == "delete":
        mailboxes.delete(actor, mailbox)
        return True
    wanted = run.action == "enable"
    if mailbox.want_active == wanted and mailbox.status in ("enabled", "disabled"):
        return False
    mailboxes.set_active(actor, mailbox, wanted)
    return True


@handler(BULK_KIND, max_attempts=3, backoff_seconds=30, on_failure=marks_failed(BulkRun, "run_id"))
def run_bulk(job) -> None:
    run = db.session.get(BulkRun, job.payload["run_id"])
    if run is None or run.status in (DONE, FAILED):
        return
    account = db.session.get(Account, run.account_id)
    actor = run.created_by
    # Its refusals are read by whoever confirmed it: in their language, when they chose one (else
    # the account's, which the job runs in).
    with for_person(actor) if actor is not None and chosen(actor.locale) else nullcontext():
        _carry_out_run(run, account, actor)


def _carry_out_run(run: BulkRun, account: Account, actor: User | None) -> None:
    from portal.mailboxes.models import Mailbox
    from portal.mailboxes.services import MailboxError
    from portal.users.services import UserError

    # Checked again now: the run may have waited in the queue while its author lost the right.
    # A suspended author holds nothing meanwhile (as their API tokens).
    held = account_permissions(actor, account) if actor is not None and actor.suspended_at is None \
        else frozenset()
    if ACTIONS[run.target][run.action].permission not in held:
        run.status, run.finished_at = FAILED, utcnow()
        # Read on the run's page and, by every admin, in the audit log: kept for each reader's language.
        run.error = (later("The person who started this no longer has a profile.") if actor is None else
                     later("%(email)s is suspended; nothing was done.", email=actor.email)
                     if actor.suspended_at is not None else
                     later("%(email)s no longer holds the permission this action needs; nothing was done.",
                           email=actor.email))
        record("bulk.done", account=account, target=run, target_label=stored_label(run), actor=actor, succeeded=0,
               failed=0, refused=run.error)
        return
    ids = _owned_ids(run, actor, account)
    if run.status == RUNNING and "resume_at" in run.params:
        # An attempt that stopped part-way (a worker gone, a database error): the rows it went
        # through are counted already, and going through them again would count its own changes as
        # rows that were already as asked.
        start, gone, problems = run.params["resume_at"], run.params["gone"], list(run.problems)
    else:
        start, gone, problems = 0, 0, []
        # The rows are fixed for the attempts to come, so that each resumes where the last stopped.
        run.selection = {**run.selection, "matched": ids}
        run.status, run.total, run.done, run.problems = RUNNING, len(ids), 0, []
        run.succeeded = run.unchanged = run.failed = 0
        run.params = {**run.params, "resume_at": 0, "gone": 0}
        db.session.commit()
    model = Membership if run.target == MEMBERS else Mailbox
    for start_at in range(start, len(ids), CHUNK):
        wanted = ids[start_at:start_at + CHUNK]
        # Rows of the account that existed when the run was confirmed: one removed since is not
        # counted, and its id taken by a newer row (SQLite gives a freed highest id again, in this
        # account or another) does not make the newcomer part of a run nobody confirmed for them.
        chunk = db.session.execute(db.select(model).where(
            model.id.in_(wanted), model.account_id == account.id, model.created_at <= run.created_at)
            .order_by(model.id)).scalars().all()
        gone += len(wanted) - len(chunk)
        for row in chunk:
            name = row.user.email if run.target == MEMBERS else row.address
            try:
                with savepoint():
                    changed = (_act_on_member(run, actor, account, row, held) if run.target == MEMBERS
                               else _act_on_mailbox(run, actor, row))
                if changed:
                    run.succeeded += 1
                else:
                    run.unchanged += 1
            except (AccessError, UserError, MailboxError, BulkError) as refusal:
                run.failed += 1
                if len(problems) < MAX_PROBLEMS:
                    # A refusal kept as a ``later`` text reads in each reader's language.
                    problems.append({"label": name, "id": row.id,
                                     "message": refusal.stored if isinstance(refusal, StoredReason) else str(refusal)})
            except IntegrityError:  # another request made the same change at that moment (a grant held once)
                run.failed += 1
                if len(problems) < MAX_PROBLEMS:
                    problems.append({"label": name, "id": row.id, "message": _(
                        "Someone else changed this at the same moment: nothing was done here. Check it, "
                        "and run the action again for them if it is still needed.")})
        run.done, run.total = min(start_at + CHUNK, len(ids)) - gone, len(ids) - gone
        run.problems = list(problems)
        run.params = {**run.params, "resume_at": start_at + CHUNK, "gone": gone}
        db.session.commit()  # progress is visible after every chunk, and where to resume
    run.status, run.finished_at = DONE, utcnow()
    record("bulk.done", account=account, target=run, target_label=stored_label(run), actor=actor,
           succeeded=run.succeeded, unchanged=run.unchanged, failed=run.failed)
