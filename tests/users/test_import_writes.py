"""How the import run writes: new people, memberships and mailboxes are inserted without looking each
address up first; only the rows whose address was taken are read, so the run costs the same per chunk
however many people the portal already has."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from flask import current_app
from sqlalchemy import event

from portal.accounts.models import Membership
from portal.auth.models import User
from portal.extensions import db
from portal.jobs.models import Job
from portal.jobs.worker import Worker
from portal.mailboxes import services as mailboxes
from portal.mailboxes.models import DELETED, Mailbox
from portal.roles.models import Grant
from portal.roles.services import account_permissions
from portal.users import imports, workbook
from tests.users.test_import import _preview
from tests.users.workbooks import fill


@pytest.fixture
def looked_up(app):
    """SELECTs of users, memberships, grants and mailboxes, by table."""
    seen: Counter[str] = Counter()

    def count(conn, cursor, statement, parameters, context, executemany):
        table = re.match(r"SELECT\b.*?\bFROM\s+(\w+)", statement, re.S)
        if table and table.group(1) in ("users", "memberships", "grants", "mailboxes"):
            seen[table.group(1)] += 1

    event.listen(db.engine, "before_cursor_execute", count)
    yield seen
    event.remove(db.engine, "before_cursor_execute", count)


def _run(owner, account, run_jobs, users, account_rows=(), looked_up=None):
    """Preview and confirm the workbook, then run the import job alone (counting its reads in
    ``looked_up``), then the jobs it queued."""
    run = _preview(owner, account, fill(workbook.template(account), users=users, account_rows=list(account_rows)))
    assert not run.problem_count and not run.fatal, run.problems or run.fatal
    imports.confirm(owner, run)
    db.session.commit()
    if looked_up is not None:
        looked_up.clear()
    worker = Worker(current_app._get_current_object(), name="test-worker")
    job_id, token = worker.claim()
    assert db.session.get(Job, job_id).kind == imports.IMPORT_KIND
    assert worker.run_job(job_id, token) == "done"
    reads = +looked_up if looked_up is not None else None
    run_jobs()
    db.session.refresh(run)
    return run, reads


def test_run__reads_no_more_rows_for_more_chunks_of_new_people(owner, account, domain, run_jobs, looked_up,
                                                               monkeypatch):
    monkeypatch.setattr(imports, "CHUNK", 2)
    reads = []
    for count, prefix in ((2, "few"), (8, "many")):
        run, read = _run(owner, account, run_jobs, [("A", "B", f"{prefix}{n}@example.org", "Y") for n in range(count)],
                         looked_up=looked_up)
        assert (run.created, run.updated) == (count, 0)
        reads.append(read)

    assert reads[0] == reads[1], "one chunk or four: the same reads"
    assert db.session.execute(db.select(db.func.count()).select_from(Mailbox)
                              .where(Mailbox.kind == "personal")).scalar_one() == 10


def test_run__someone_with_a_profile_is_updated_keeping_their_membership_and_grants(owner, account, domain, run_jobs,
                                                                                  make):
    ann = make.user("ann@example.org", name="Old name")
    make.member(account, ann, permissions=("audit.view",))

    run, _ = _run(owner, account, run_jobs, [("Ann", "Able", "ann@example.org", "N"),
                                             ("Bob", "Baker", "bob@example.org", "N")],
                  account_rows=[("ann@example.org", None, "audit.view"), ("ann@example.org", None, "members.view"),
                                ("bob@example.org", None, "audit.view")])

    assert (run.created, run.updated) == (1, 1)
    db.session.refresh(ann)
    assert (ann.name, ann.is_corporate, ann.corporate_account_id) == ("Ann Able", True, account.id)
    memberships = db.session.execute(db.select(Membership).where(Membership.user_id == ann.id)).scalars().all()
    assert len(memberships) == 1
    grants = db.session.execute(db.select(Grant.permission).where(Grant.membership_id == memberships[0].id)).scalars()
    assert sorted(grants) == ["audit.view", "members.view"], "the grant held already is not made twice"
    bob = db.session.execute(db.select(User).where(User.email == "bob@example.org")).scalar_one()
    assert account_permissions(bob, account) == {"audit.view"}


def test_run__each_membership_carries_its_members_address(owner, account, domain, run_jobs, make):
    """A member already, someone with a profile who is not a member, someone new: every membership of
    the account has its person's address (the Users list sorts by it)."""
    make.member(account, make.user("ann@example.org"))
    make.user("cyd@example.org")

    _run(owner, account, run_jobs, [("Ann", "Able", "ann@example.org", "N"), ("Cyd", "Cole", "cyd@example.org", "N"),
                                    ("Bob", "Baker", "bob@example.org", "N")])

    pairs = db.session.execute(db.select(Membership.email, User.email).join(User, User.id == Membership.user_id)
                               .where(Membership.account_id == account.id)).all()
    assert sorted(pairs) == sorted((email, email) for email in
                                   (owner.email, "ann@example.org", "bob@example.org", "cyd@example.org"))


def test_run__a_personal_mailbox_at_the_address_of_a_deleted_one_is_made_again(owner, account, domain, run_jobs):
    shared = mailboxes.create_mailbox(owner, account, domain, "ann")
    db.session.commit()
    run_jobs()
    mailboxes.delete(owner, shared)
    db.session.commit()
    run_jobs()
    assert db.session.get(Mailbox, shared.id).status == DELETED

    run, _ = _run(owner, account, run_jobs, [("Ann", "Able", "ann@example.org", "Y")])

    assert run.created == 1
    mailbox = db.session.execute(db.select(Mailbox).where(Mailbox.address == "ann@example.org")).scalar_one()
    assert (mailbox.kind, mailbox.owner.email) == ("personal", "ann@example.org") and mailbox.status != DELETED


def test_preview__a_cell_with_an_invisible_character_is_refused_and_accents_and_emoji_are_kept(owner, account,
                                                                                               domain):
    run = _preview(owner, account, fill(workbook.template(account), users=[
        ("Ann\tMarie", "Able", "ann@example.org", "N"),
        ("Bob", "Ba\nker", "bob@example.org", "N"),
        ("Zoë", "Ångström 🙂", "zoe@example.org", "N"),
    ]))

    found = {(p["sheet"], p["row"], p["column"]) for p in run.problems}
    assert found == {("Users", 2, "A"), ("Users", 3, "B")}
    assert run.to_create == 1


def test_run__postgresql_analyzes_the_tables_it_fills_after_the_first_chunk(owner, account, domain, run_jobs,
                                                                            monkeypatch):
    """The database checks each grant's membership with a plan it makes once per connection; on tables
    it has no statistics for, that plan read every membership of the account for each check (an
    import of 10,000 people: 15 s instead of 5). The import refreshes them once its first chunk is in."""
    from sqlalchemy import text

    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite checks foreign keys through the parent's unique index")

    def analyzed() -> dict[str, int]:
        db.session.commit()  # a new transaction reads the statistics anew
        return dict(db.session.execute(text(
            "SELECT relname, analyze_count FROM pg_stat_user_tables WHERE relname = ANY(:tables)"
        ), {"tables": list(imports.ANALYZED)}).all())

    monkeypatch.setattr(imports, "CHUNK", 2)
    before = analyzed()
    run, _ = _run(owner, account, run_jobs, [("A", "B", f"chunked{n}@example.org", "Y") for n in range(5)])
    assert run.created == 5
    after = analyzed()
    assert set(after) == {"memberships", "users", "mailboxes"}
    assert all(after[table] == before.get(table, 0) + 1 for table in after), (before, after)
    # A workbook of one chunk is done when its statistics would be refreshed: none are (ANALYZE
    # samples the whole tables, and waits behind a vacuum of them).
    run, _ = _run(owner, account, run_jobs, [("A", "B", f"single{n}@example.org", "Y") for n in range(2)])
    assert run.created == 2 and analyzed() == after
