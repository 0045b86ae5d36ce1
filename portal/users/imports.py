"""Mass creation: preview an upload, then carry out its plan in a background job.

The run writes in chunks with bulk inserts and records its progress after
each chunk, so the page (polling) shows rows done, percent and elapsed time,
for every admin of the account and across reloads. A run that is retried, or
the same workbook uploaded again, finds the users it already made and
updates them instead: nobody is created twice.
"""

from __future__ import annotations

import io
from contextlib import nullcontext

from flask_babel import gettext as _
from openpyxl import Workbook, load_workbook
from sqlalchemy import insert, text
from sqlalchemy.dialects import postgresql, sqlite

from portal.accounts.models import Account, Membership
from portal.audit.models import AuditEvent
from portal.audit.services import SOURCE_WORKER, record
from portal.auth.models import User
from portal.extensions import db
from portal.backends import service as backends
from portal.domains.models import Domain
from portal.i18n import _l, for_person, label, labels, later, shown
from portal.jobs.registry import handler, marks_failed
from portal.jobs.services import enqueue, enqueue_many
from portal.mailboxes.models import DELETED, PROVISIONING, Mailbox
from portal.mailboxes.services import PROVISION_KIND, UNDER_WAY, default_protocols
from portal.roles import catalogue
from portal.roles.models import Grant, Role
from portal.roles.services import account_permissions, outranks, system_role
from portal.spreadsheets import cells
from portal.timeutil import utcnow
from portal.users import workbook
from portal.users.models import CHECKING, DONE, FAILED, PREVIEWED, QUEUED, REFUSED, RUNNING, ImportRun
from portal.users.services import ONBOARDING_KIND, take_over_registration, vacant_profile

IMPORT_KIND = "users.import"
PREVIEW_KIND = "users.import_preview"
CHUNK = 500
# What became of each row of the Users sheet (the result workbook's Status column).
CREATED, UPDATED, SKIPPED = "created", "updated", "skipped"
labels("import.row", {CREATED: _l("created"), UPDATED: _l("updated"), SKIPPED: _l("skipped")})


class ImportError_(ValueError):
    """A refusal about an import run; the message says why."""


def run_in_account(account: Account, run_id: int) -> ImportRun | None:
    run = db.session.get(ImportRun, run_id)
    return run if run is not None and run.account_id == account.id else None


def runs_of(account: Account) -> list[ImportRun]:
    return list(db.session.execute(db.select(ImportRun).where(ImportRun.account_id == account.id)
                                   .order_by(ImportRun.id.desc()).limit(20)).scalars())


def receive(actor: User, account: Account, filename: str, data: bytes) -> ImportRun:
    """Keep an upload whose container passes the quick checks, and queue its reading.

    The web request never parses the workbook: reading and validating every row happens in
    the worker (``users.import_preview``), and the page shows the preview when it is ready.
    Raises WorkbookRefused.
    """
    if not filename.lower().endswith(".xlsx"):
        raise workbook.WorkbookRefused(later("Only .xlsx workbooks are accepted."))
    workbook.check_container(data)
    run = ImportRun(account_id=account.id, created_by_id=actor.id, filename=filename[:255], workbook=data,
                    status=CHECKING)
    db.session.add(run)
    db.session.flush()
    enqueue(PREVIEW_KIND, {"run_id": run.id, **_reach_of_request(actor, account)}, subject=f"import:{run.id}",
            account=account)
    record("users.import_upload", account=account, target=run, target_label=filename, actor=actor)
    return run


def _reach_of_request(actor: User, account: Account) -> dict:
    """What this request may hand on beyond what ``actor`` holds, for the preview the worker makes:
    an upload through an API token grants no more than the token's scopes reach (the worker does
    not know the token). Empty for an upload from the pages."""
    from portal.tokens.services import reach

    limit, mailbox_limit = reach(actor.id, account.id), reach(actor.id, account.id, mailbox=True)
    if limit is None and mailbox_limit is None:
        return {}
    return {"limit": sorted(limit) if limit is not None else None,
            "mailbox_limit": sorted(mailbox_limit) if mailbox_limit is not None else None}


def _limit(payload: dict, key: str) -> frozenset[str] | None:
    value = payload.get(key)
    return frozenset(value) if value is not None else None


def _in_language_of(person):
    """Work for ``person`` in their language; without them, in the job's."""
    return for_person(person) if person is not None else nullcontext()


def _preview_failed(job, message: str) -> None:
    run = db.session.get(ImportRun, job.payload.get("run_id"))
    if run is not None and run.status == CHECKING:
        run.status, run.fatal = REFUSED, later("The workbook could not be read: %(reason)s", reason=message)


@handler(PREVIEW_KIND, max_attempts=2, backoff_seconds=10, on_failure=_preview_failed)
def preview(job) -> None:
    """Validate the whole workbook; store the plan and every problem, or why it was refused.
    What is written in words is written in the language of the person who uploaded it."""
    run = db.session.get(ImportRun, job.payload["run_id"])
    if run is None or run.status != CHECKING:
        return
    account = db.session.get(Account, run.account_id)
    actor = run.created_by
    try:
        if actor is None:
            raise workbook.WorkbookRefused(later("The person who uploaded the workbook no longer has a profile."))
        with for_person(actor):
            plan = workbook.plan(actor, account, workbook.read(run.workbook), limit=_limit(job.payload, "limit"),
                                 mailbox_limit=_limit(job.payload, "mailbox_limit"))
    except workbook.WorkbookRefused as refusal:
        run.status, run.fatal = REFUSED, refusal.stored
        record("users.import_refused", account=account, target=run, target_label=run.filename, actor=actor,
               reason=refusal.stored)
        return
    counts = plan.counts
    run.plan, run.problems = plan.as_dict(), [p.as_dict() for p in plan.problems[:workbook.SHOWN_PROBLEMS]]
    run.problem_count, run.fatal, run.total = plan.problem_count, plan.fatal, plan.rows
    run.to_create, run.to_update, run.to_skip = counts["create"], counts["update"], counts["skip"]
    run.status = PREVIEWED
    record("users.import_preview", account=account, target=run, target_label=run.filename, actor=actor, **counts,
           problems=plan.problem_count)


def confirm(actor: User, run: ImportRun) -> None:
    if run.status != PREVIEWED:
        raise ImportError_(_("This import was already started."))
    if run.created_by_id != actor.id:
        # The preview was checked against the uploader's rights: started by someone else, it would
        # hand on rights in the uploader's name that the one starting it may not hold (a review).
        raise ImportError_(_("Only the person who uploaded this workbook can start it: its preview was checked "
                             "against their rights."))
    if run.fatal:
        raise ImportError_(shown(run.fatal))
    if not run.to_create and not run.to_update:
        raise ImportError_(_("Nothing to create or update: fix the problems and upload again."))
    run.status = QUEUED
    # ``by``: the result is written in the language of the person who started the run.
    # Started through an API token, the run hands on no more than the token reaches, as its preview.
    reach = _reach_of_request(actor, db.session.get(Account, run.account_id))
    enqueue(IMPORT_KIND, {"run_id": run.id, "by": actor.id, **reach}, subject=f"import:{run.id}",
            account=run.account_id)
    record("users.import_start", account=run.account_id, target=run, target_label=run.filename, actor=actor)


# -- the run ------------------------------------------------------------------------

class _Writer:
    """Bulk writes for one chunk of planned users."""

    def __init__(self, run: ImportRun, account: Account):
        # Ids and texts, not objects: every chunk commits, and an object read again costs a query a chunk.
        self.run_id, self.account_id = run.id, account.id
        self.actor_id = run.created_by_id
        self.actor_label = run.created_by.email if run.created_by else "system"
        personal_role = db.session.get(Role, account.personal_mailbox_role_id) if account.personal_mailbox_role_id else None
        self.personal_role_id = (personal_role or system_role(catalogue.MAILBOX_OWNER)).id
        domains = db.session.execute(db.select(Domain).where(Domain.account_id == account.id)).scalars().all()
        self.domain_ids = {domain.name: domain.id for domain in domains}
        self.protocols = {domain.name: default_protocols(domain) for domain in domains}
        # Domains where making a deleted address again restores its archived mail, for an uploader
        # who does not manage the account's mailboxes (see mailboxes.services.create_mailbox).
        manages = run.created_by is not None and "mailboxes.manage" in account_permissions(run.created_by, account)
        self.archives_kept = set() if manages else {
            domain.id for domain in domains if backends.capabilities(domain.connection).mailbox_delete_archives}
        # Created without a recovery address or a personal mailbox: they need a link from an administrator.
        self.need_link = 0

    def chunk(self, planned: list[dict], outcome: dict[int, tuple[str, str]]) -> None:
        """Write one chunk. New people, memberships and mailboxes are inserted in one statement each, which
        skips the rows whose unique key is already taken; only those are looked up. (Looking up every
        address of the chunk first costs a scan of the growing users table per chunk: the run then grows
        faster than its rows.)"""
        now = utcnow()
        inserted = db.session.execute(_insert_skipping_taken(User.__table__, "email").returning(User.id, User.email), [{
            "email": p["email"], "name": f"{p['first_name']} {p['last_name']}", "is_corporate": True,
            "recovery_email": p.get("recovery_email"),
            "recovery_set_by_id": self.actor_id if p.get("recovery_email") else None,
            "recovery_set_at": now if p.get("recovery_email") else None,
            "corporate_account_id": self.account_id, "timezone": "UTC", "phone": "", "created_at": now,
            "is_superadmin": False,
        } for p in planned]).all()
        ids = {email: user_id for user_id, email in inserted}
        fresh = set(ids)
        taken = [p["email"] for p in planned if p["email"] not in fresh]
        existing = {u.email: u for u in db.session.execute(db.select(User).where(User.email.in_(taken))).scalars()} \
            if taken else {}
        refused = self._outranked(existing, planned)
        if refused:
            # Given more rights since the preview, or made meanwhile: as at the preview, renaming them
            # is for whoever holds every right they hold.
            for p in planned:
                if p["email"] in refused:
                    outcome[p["row"]] = (SKIPPED, workbook.skip_message({"skip": "outranked"}))
            planned = [p for p in planned if p["email"] not in refused]
            existing = {email: user for email, user in existing.items() if email not in refused}
            if not planned:
                return
        for email, user in existing.items():
            ids[email] = user.id
            if vacant_profile(user):
                # A registration nobody confirmed (a stranger's, perhaps), or a profile never signed
                # into: taken over as one by one, its links (an onboarding link shown to whoever
                # made it before) retired.
                take_over_registration(user)
            if not user.is_corporate or user.corporate_account_id != self.account_id:
                user.is_corporate, user.corporate_account_id = True, self.account_id
        for p in planned:
            user = existing.get(p["email"])
            if user is not None:
                user.name = f"{p['first_name']} {p['last_name']}"
        # Only people who had a profile may already be members, with grants.
        members = {m.user_id: m.id for m in db.session.execute(db.select(Membership).where(
            Membership.account_id == self.account_id,
            Membership.user_id.in_([user.id for user in existing.values()]))).scalars()} if existing else {}
        held = {(g.membership_id, g.role_id, g.permission, g.mailbox_id) for g in db.session.execute(
            db.select(Grant).where(Grant.membership_id.in_(list(members.values())))).scalars()} if members else set()
        missing = [(user_id, email) for email, user_id in ids.items() if user_id not in members]
        if missing:
            for membership_id, user_id in db.session.execute(
                    insert(Membership.__table__).returning(Membership.id, Membership.user_id),
                    [{"account_id": self.account_id, "user_id": user_id, "email": email, "created_at": now}
                     for user_id, email in missing]):
                members[user_id] = membership_id
        grants = []

        def want(membership_id, role_id, permission, mailbox_id):
            key = (membership_id, role_id, permission, mailbox_id)
            if key not in held:
                held.add(key)
                grants.append({"membership_id": membership_id, "account_id": self.account_id, "role_id": role_id,
                               "permission": permission, "mailbox_id": mailbox_id, "granted_by_id": self.actor_id,
                               "created_at": now})

        mailbox_ids = self._personal_mailboxes([p for p in planned if p["personal_mailbox"]], ids, now)
        for p in planned:
            membership_id = members[ids[p["email"]]]
            for role_id in p["roles"]:
                want(membership_id, role_id, None, None)
            for code in p["permissions"]:
                want(membership_id, None, code, None)
            for mailbox_id, role_id, code in p["mailbox_grants"]:
                want(membership_id, role_id, code, mailbox_id)
            if p["email"] in mailbox_ids:
                want(membership_id, self.personal_role_id, None, mailbox_ids[p["email"]])
        if grants:
            # Core insert: the ORM would split rows whose None columns differ into single INSERTs.
            db.session.execute(insert(Grant.__table__), grants)
        # The onboarding link goes where only the person reads it: their recovery address, else
        # their new personal mailbox once it works. Anyone else needs a link from an administrator.
        reachable = {p["email"] for p in planned if p.get("recovery_email") or p["email"] in mailbox_ids}
        created = [p for p in planned if p["email"] in fresh and p["email"] in reachable]
        if created:
            enqueue_many(ONBOARDING_KIND, [({"user_id": ids[p["email"]]}, f"user:{ids[p['email']]}") for p in created],
                         account=self.account_id, now=now)
        db.session.execute(insert(AuditEvent.__table__), [{
            "at": now, "actor_id": self.actor_id, "actor_label": self.actor_label, "account_id": self.account_id,
            "action": "user.create_corporate" if p["email"] in fresh else "user.update_corporate",
            "target_type": "user", "target_id": str(ids[p["email"]]), "target_label": p["email"],
            "source": SOURCE_WORKER, "ip": "", "user_agent": "", "details": {"import": self.run_id, "row": p["row"]},
        } for p in planned])
        for p in planned:
            if p["email"] not in fresh:
                outcome[p["row"]] = (UPDATED, _("already had a profile"))
            elif p.get("recovery_email"):
                outcome[p["row"]] = (CREATED, _("their onboarding link is e-mailed to %(email)s",
                                                email=p["recovery_email"]))
            elif p["email"] in mailbox_ids:
                outcome[p["row"]] = (CREATED, _("their onboarding link is e-mailed to their mailbox once it works"))
            else:
                self.need_link += 1
                outcome[p["row"]] = (CREATED, _("no mailbox to e-mail a link to: send them an onboarding link "
                                                "from their page"))

    def _outranked(self, existing: dict[str, User], planned: list[dict]) -> set[str]:
        """The addresses of people the row would rename whom the uploader does not outrank (now)."""
        names = {p["email"]: f"{p['first_name']} {p['last_name']}" for p in planned}
        renamed = [user for email, user in existing.items() if names.get(email) != user.name]
        if not renamed:
            return set()
        actor = db.session.get(User, self.actor_id) if self.actor_id else None
        account = db.session.get(Account, self.account_id)
        return {user.email for user in renamed if actor is None or not outranks(actor, account, user, elsewhere=False)}

    def _personal_mailboxes(self, wanted: list[dict], ids: dict[str, int], now) -> dict[str, int]:
        """Make the personal mailboxes no mailbox holds the address of yet, each with its provisioning job;
        return their ids by address. A mailbox deleted earlier gives its address back (as when one is
        made by hand: the backend may restore what it archived)."""
        if not wanted:
            return {}
        under_way = later(UNDER_WAY["create"])
        rows = {p["email"]: {
            "account_id": self.account_id, "domain_id": self.domain_ids[p["email"].rsplit("@", 1)[1]],
            "local_part": p["email"].split("@", 1)[0], "address": p["email"], "kind": "personal",
            "owner_id": ids[p["email"]], "first_name": p["first_name"], "last_name": p["last_name"],
            "display_name": f"{p['first_name']} {p['last_name']}", "status": PROVISIONING,
            "protocols": self.protocols[p["email"].rsplit("@", 1)[1]], "backend_admin": False,
            "status_reason": under_way, "want_active": True, "created_at": now,
            "updated_at": now,
        } for p in wanted}
        statement = _insert_skipping_taken(Mailbox.__table__, "domain_id", "address").returning(
            Mailbox.id, Mailbox.address)
        mailbox_ids = {address: mailbox_id
                       for mailbox_id, address in db.session.execute(statement, list(rows.values()))}
        taken = [address for address in rows if address not in mailbox_ids]
        if taken:
            removed = db.session.execute(db.delete(Mailbox).where(
                Mailbox.account_id == self.account_id, Mailbox.address.in_(taken), Mailbox.status == DELETED,
                Mailbox.domain_id.not_in(self.archives_kept)).returning(Mailbox.address)).scalars().all()
            if removed:
                mailbox_ids.update({address: mailbox_id for mailbox_id, address in db.session.execute(
                    statement, [rows[address] for address in removed])})
        if mailbox_ids:
            enqueue_many(PROVISION_KIND, [({"mailbox_id": mailbox_id, "operation": "create"}, f"mailbox:{mailbox_id}")
                                          for mailbox_id in mailbox_ids.values()], account=self.account_id, now=now)
        return mailbox_ids


@handler(IMPORT_KIND, max_attempts=3, backoff_seconds=30, on_failure=marks_failed(ImportRun, "run_id"))
def run_import(job) -> None:
    """Carry out the plan; the result workbook (and what is stored in words) is written in the
    language of the person who started the run."""
    run = db.session.get(ImportRun, job.payload["run_id"])
    if run is None or run.status in (DONE, FAILED):
        return
    starter = db.session.get(User, job.payload["by"]) if job.payload.get("by") else None
    with _in_language_of(starter or run.created_by):
        _run(run, _limit(job.payload, "limit"), _limit(job.payload, "mailbox_limit"))


def _run(run: ImportRun, limit: frozenset[str] | None = None, mailbox_limit: frozenset[str] | None = None) -> None:
    account = db.session.get(Account, run.account_id)
    uploader = run.created_by
    if uploader is None or uploader.suspended_at is not None:
        # Suspended (or gone) since confirming, the uploader holds nothing: nothing is done, as for a
        # bulk run, and the page says why rather than skipping every row for rights "no longer held".
        run.status, run.finished_at = FAILED, utcnow()
        run.error = (later("The person who started this no longer has a profile.") if uploader is None else
                     later("%(email)s is suspended; nothing was done.", email=uploader.email))
        record("users.import_done", account=account, target=run, target_label=run.filename, source=SOURCE_WORKER,
               created=0, updated=0, skipped=0, refused=run.error)
        return
    run.status, run.started_at = RUNNING, run.started_at or utcnow()
    run.done = run.created = run.updated = run.skipped = run.need_link = 0
    db.session.commit()
    planned = run.plan["users"]
    # An invitation sent, or an alias made, since the preview: checked again now.
    creating = [p for p in planned if not p["skip"] and p["action"] == "create"]
    waiting, aliased = workbook.held_elsewhere([p["email"] for p in creating], account.id)
    for p in creating:
        if p["email"] in waiting or p["email"] in aliased:
            p["skip"], p["skip_values"] = "invitation_waits" if p["email"] in waiting else "alias", {}
    # The rights the preview checked, checked again now: the uploader may have lost some since (a
    # review: an owner cut down to creating users ran an old preview that made them owner again).
    beyond = _beyond_rights(run.created_by, account, [p for p in planned if not p["skip"]], limit, mailbox_limit)
    for p in planned:
        if p["email"] in beyond:
            p["skip"], p["skip_values"] = "rights_changed", {}
    outcome: dict[int, tuple[str, str]] = {}
    problems = _row_problems(run)
    for p in planned:
        if p["skip"]:
            reason = workbook.skip_message(p)
            outcome[p["row"]] = (SKIPPED, _("%(reason)s: %(problems)s", reason=reason, problems=problems[p["row"]])
                                 if p["row"] in problems else reason)
    todo = [p for p in planned if not p["skip"]]
    writer = _Writer(run, account)
    run.skipped = len(planned) - len(todo)
    # Rows the preview could not read at all were never going to run: they count as done.
    run.done = run.total - len(todo)
    for start in range(0, len(todo), CHUNK):
        writer.chunk(todo[start:start + CHUNK], outcome)
        run.done += len(todo[start:start + CHUNK])
        db.session.commit()  # progress is visible after every chunk
        if start == 0 and len(todo) > CHUNK:  # one chunk: nothing is inserted after it
            _analyze_after_first_chunk()
    run.created = sum(1 for status, _message in outcome.values() if status == CREATED)
    run.need_link = writer.need_link
    run.updated = sum(1 for status, _message in outcome.values() if status == UPDATED)
    run.result, unread = result_workbook(run, outcome, problems)
    run.skipped = sum(1 for status, _message in outcome.values() if status == SKIPPED) + unread
    run.failed = 0
    run.status, run.finished_at = DONE, utcnow()
    record("users.import_done", account=account, target=run, target_label=run.filename, source=SOURCE_WORKER,
           created=run.created, updated=run.updated, skipped=run.skipped)


def _beyond_rights(uploader: User | None, account: Account, planned: list[dict],
                   limit: frozenset[str] | None = None, mailbox_limit: frozenset[str] | None = None) -> set[str]:
    """The addresses of the rows that would hand on a right the uploader does not hold now (within
    what the API token that started the run reaches: ``limit``, ``mailbox_limit``), or on a mailbox
    that is no longer one of the account's, or that the uploader may no longer create (suspended,
    gone, or without the right). The same rules as the preview's (``workbook._plan_grants``); each
    role and mailbox is looked at once."""
    from portal.roles.services import is_owner, mailbox_permissions_of

    if uploader is None or uploader.suspended_at is not None:  # (``_run`` does nothing for them)
        return {p["email"] for p in planned}
    held = account_permissions(uploader, account)
    if limit is not None:
        held &= limit
    if "users.create" not in held:
        return {p["email"] for p in planned}
    # The plan keeps mailbox ids: one deleted since, or whose id now names another row (SQLite
    # gives a freed highest id again), is none of this account's to grant on (a review).
    named = {mailbox_id for p in planned for mailbox_id, _role_id, _code in p["mailbox_grants"]}
    live = set(db.session.execute(db.select(Mailbox.id).where(
        Mailbox.id.in_(named), Mailbox.account_id == account.id, Mailbox.status != DELETED)).scalars()) \
        if named else set()
    owner = is_owner(uploader, account.id)
    wanted = {role_id for p in planned for role_id in p["roles"]} | {
        role_id for p in planned for _mailbox_id, role_id, _code in p["mailbox_grants"] if role_id}
    roles = {role.id: role for role in db.session.execute(db.select(Role).where(
        Role.id.in_(wanted), db.or_(Role.account_id == account.id, Role.system_key.is_not(None)))).scalars()} \
        if wanted else {}
    on_mailbox = {mailbox_id: rights & mailbox_limit if mailbox_limit is not None else rights
                  for mailbox_id, rights in mailbox_permissions_of(uploader, account, live).items()}

    def within(mailbox_id: int | None) -> frozenset[str]:
        if mailbox_id is None:
            return held
        rights = on_mailbox.get(mailbox_id, frozenset())  # not one of the account's live mailboxes: none
        return rights if "mailbox.access" in rights else frozenset()

    def may_give(mailbox_id: int | None, role_id: int | None, code: str | None) -> bool:
        rights = within(mailbox_id)
        if mailbox_id is not None and not rights:
            return False
        if role_id is not None:
            role = roles.get(role_id)
            return role is not None and role.permissions <= rights and (role.system_key != catalogue.OWNER or owner)
        return code is not None and code in rights

    return {p["email"] for p in planned
            if not all(may_give(None, role_id, None) for role_id in p["roles"])
            or not all(may_give(None, None, code) for code in p["permissions"])
            or not all(may_give(mailbox_id, role_id, code) for mailbox_id, role_id, code in p["mailbox_grants"])}


# The tables whose rows the database looks up for each row the import inserts (foreign keys).
ANALYZED = ("memberships", "users", "mailboxes")


def _analyze_after_first_chunk() -> None:
    """PostgreSQL: refresh the statistics of the tables the import fills once its first chunk is in.
    The database checks each grant's membership (a foreign key on membership and account) with a
    plan made once per connection; on a table it has no statistics for (a new portal, an account's
    first import) every index starting with the account looked as good as the key, and with one of
    them each check read every membership of the account made so far: 10,000 people took 15 s
    instead of 5, 50,000 four minutes. With statistics the plan is remade and reads the key."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text(f"ANALYZE {', '.join(ANALYZED)}"))
        db.session.commit()


def _insert_skipping_taken(table, *unique_columns: str):
    """INSERT that skips the rows whose unique key (``unique_columns``) is taken: with RETURNING, the rows it
    returns are the ones it made. (The portal runs on PostgreSQL or SQLite, which both have ON CONFLICT.)"""
    construct = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return construct(table).on_conflict_do_nothing(index_elements=list(unique_columns))


def _row_problems(run: ImportRun) -> dict[int, str]:
    """What the preview found wrong in each row of the Users sheet, in the current language (of the
    problems it kept: the first ``workbook.SHOWN_PROBLEMS``)."""
    users = next((problem["sheet"] for problem in run.problems or [] if problem.get("sheet") and
                  workbook.find_sheet([problem["sheet"]], workbook.USERS)), None)
    found: dict[int, list[str]] = {}
    for problem in run.problems or []:
        if problem.get("sheet") == users and isinstance(problem.get("row"), int):
            found.setdefault(problem["row"], []).append(workbook.problem_message(problem))
    # Each message is a sentence of its own ("….; …" read badly in the result workbook).
    return {row: " ".join(messages) for row, messages in found.items()}


def result_workbook(run: ImportRun, outcome: dict[int, tuple[str, str]],
                    problems: dict[int, str] | None = None) -> tuple[bytes, int]:
    """The uploaded Users rows with a Status and a Message column, in the current language, and how
    many rows the preview could not read (skipped, as the preview said, with what is wrong)."""
    problems = _row_problems(run) if problems is None else problems
    source = load_workbook(io.BytesIO(run.workbook), read_only=True, data_only=True)
    out = Workbook(write_only=True)
    sheet = out.create_sheet(workbook.sheet_name(workbook.USERS))
    unread = 0
    try:
        users = workbook.find_sheet(source.sheetnames, workbook.USERS)
        for number, values in enumerate(source[users].iter_rows(values_only=True, max_col=5), start=1):
            if not any(value not in (None, "") for value in values):
                continue
            if number == 1:
                sheet.append(cells(sheet, list(values) + [_("Status"), _("Message")]))
                continue
            if number not in outcome:
                unread += 1
            status, message = outcome.get(number, (SKIPPED, problems.get(number) or _("this row has problems "
                                                                                       "(see the preview)")))
            sheet.append(cells(sheet, list(values) + [label(status, "import.row"), message]))
    finally:
        source.close()
    buffer = io.BytesIO()
    out.save(buffer)
    return buffer.getvalue(), unread


