"""An import's plan is checked against the uploader's rights at the preview and carried out
later: only the uploader may start it, and the rights it hands on are checked again when it runs,
so rights taken away meanwhile do not come back through the old plan (a review)."""

from __future__ import annotations

from flask import current_app

from portal.extensions import db
from portal.i18n import shown
from portal.jobs.worker import Worker
from portal.roles import catalogue
from portal.roles.models import Grant
from portal.roles.services import account_permissions, held_grant, is_owner, revoke_grant, system_role
from portal.users import imports, workbook
from portal.users.models import ImportRun
from tests.mailboxes.conftest import enabled_domain
from tests.users.workbooks import fill


def _preview(actor, account, data) -> ImportRun:
    run = imports.receive(actor, account, "users.xlsx", data)
    db.session.commit()
    Worker(current_app._get_current_object(), name="test-worker").run_due()
    db.session.expire_all()
    run = db.session.get(ImportRun, run.id)
    assert run.status == "previewed" and not run.problem_count, (run.status, shown(run.fatal), run.problems)
    return run


def _result_rows(run: ImportRun) -> dict[str, tuple]:
    import io

    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(run.result)).worksheets[0]
    return {row[2]: row for row in sheet.iter_rows(min_row=2, values_only=True) if row[2]}


def _cut_down_then_run(owner, account, membership, role_key: str, kept: tuple[str, ...], run: ImportRun,
                       run_jobs) -> ImportRun:
    """Another owner takes the uploader's role and leaves them ``kept``; the uploader then starts
    the run previewed before, and the worker carries it out."""
    revoke_grant(owner, account, held_grant(membership, system_role(role_key).id))
    db.session.add_all([Grant(membership_id=membership.id, account_id=account.id, permission=code) for code in kept])
    db.session.commit()
    imports.confirm(membership.user, db.session.get(ImportRun, run.id))
    db.session.commit()
    run_jobs()
    db.session.expire_all()
    return db.session.get(ImportRun, run.id)


def _previewed_by(make, owner, account, email: str, role_key: str, users, account_rows):
    """``email``, holding ``role_key``, previews a workbook of ``users`` and ``account_rows`` (the
    account's domain enabled): their membership and the previewed run."""
    enabled_domain(owner, account, "corp.example.org")
    membership = make.member(account, make.user(email), roles=(role_key,))
    run = _preview(membership.user, account, fill(workbook.template(account), users=users, account_rows=account_rows))
    return membership, run


def test_a_demoted_owner_cannot_make_themself_owner_again_through_an_old_preview(owner, account, make, run_jobs):
    # While an owner, Mallory previews a workbook listing her, and a newcomer, as owners.
    membership, run = _previewed_by(
        make, owner, account, "mallory@corp.example.org", catalogue.OWNER,
        users=[("Mal", "Lory", "mallory@corp.example.org", "N"), ("New", "Comer", "newcomer@corp.example.org", "N")],
        account_rows=[("mallory@corp.example.org", "Account Owner", None),
                      ("newcomer@corp.example.org", "Account Owner", None)])
    mallory = membership.user
    # The other owner cuts her down to creating users; she starts the old preview.
    run = _cut_down_then_run(owner, account, membership, catalogue.OWNER, ("users.create",), run, run_jobs)
    assert run.status == "done" and (run.created, run.updated, run.skipped) == (0, 0, 2)
    assert not is_owner(mallory, account.id)
    assert account_permissions(mallory, account) == frozenset({"users.create"})
    rows = _result_rows(run)
    assert all("no longer holds" in " ".join(str(cell) for cell in rows[address])
               for address in ("mallory@corp.example.org", "newcomer@corp.example.org")), rows


def test_rows_within_the_uploaders_rights_now_still_run(owner, account, make, run_jobs):
    """Only the rows handing on a right taken away are left out: the others are made as planned."""
    membership, run = _previewed_by(
        make, owner, account, "helper@corp.example.org", catalogue.ADMINISTRATOR,
        users=[("Ann", "Able", "ann@corp.example.org", "N"), ("Bob", "Baker", "bob@corp.example.org", "N")],
        account_rows=[("ann@corp.example.org", "Account Administrator", None),
                      ("bob@corp.example.org", None, "users.create")])
    run = _cut_down_then_run(owner, account, membership, catalogue.ADMINISTRATOR, ("users.create", "members.view"),
                             run, run_jobs)
    assert (run.created, run.skipped) == (1, 1)
    from portal.auth.models import User

    bob = db.session.execute(db.select(User).where(User.email == "bob@corp.example.org")).scalar_one()
    assert account_permissions(bob, account) == frozenset({"users.create"})
    assert db.session.execute(db.select(User).where(User.email == "ann@corp.example.org")).scalar_one_or_none() \
        is None


def test_only_the_uploader_starts_an_import(owner, account, make, run_jobs, client, auth):
    """The owner previewed a workbook granting Administrator and left it; someone who may only create
    users can neither start it from the page nor through the API, and is told why."""
    enabled_domain(owner, account, "corp.example.org")
    make.member(account, make.user("clerk@corp.example.org"), permissions=("users.create",))
    data = fill(workbook.template(account), users=[("Fr", "Iend", "friend@corp.example.org", "N")],
                account_rows=[("friend@corp.example.org", "Account Administrator", None)])
    run = _preview(owner, account, data)
    auth.login("clerk@corp.example.org")
    page = client.get(f"/accounts/{account.id}/users/import/{run.id}").get_data(as_text=True)
    assert "Only owner@example.org, who uploaded this workbook, can start it" in page
    assert f"/users/import/{run.id}/confirm" not in page
    response = client.post(f"/accounts/{account.id}/users/import/{run.id}/confirm")
    assert response.status_code == 409
    assert "Only the person who uploaded this workbook can start it" in response.get_data(as_text=True)
    run_jobs()
    db.session.expire_all()
    assert db.session.get(ImportRun, run.id).status == "previewed"
    auth.logout()
    auth.login(owner.email)
    assert f"/users/import/{run.id}/confirm" in client.get(
        f"/accounts/{account.id}/users/import/{run.id}").get_data(as_text=True)
    assert client.post(f"/accounts/{account.id}/users/import/{run.id}/confirm").status_code == 302


def _start(actor, run: ImportRun, run_jobs) -> ImportRun:
    imports.confirm(actor, db.session.get(ImportRun, run.id))
    db.session.commit()
    run_jobs()
    db.session.expire_all()
    return db.session.get(ImportRun, run.id)


def _one_grant_on(owner, account, run_jobs, name: str):
    """A shared mailbox ``name`` on its own domain, and a preview granting Bob (and nothing to Ann)
    the Mailbox Delegate role on it."""
    from portal.mailboxes import services as mailboxes

    enabled_domain(owner, account, "corp.example.org")
    extra = enabled_domain(owner, account, "extra.example.org")
    box = mailboxes.create_mailbox(owner, account, extra, name)
    db.session.commit()
    run_jobs()
    data = fill(workbook.template(account), users=[("Bob", "Baker", "bob@corp.example.org", "N"),
                                                    ("Ann", "Able", "ann@corp.example.org", "N")],
                mailbox_rows={f"{name}@extra.example.org": [("bob@corp.example.org", "Mailbox Delegate", None)]})
    return extra, box, _preview(owner, account, data)


def _removed_for_good(owner, extra, box, run_jobs) -> None:
    from portal.domains.models import Domain
    from portal.domains.services import remove_domain
    from portal.mailboxes import services as mailboxes
    from portal.mailboxes.models import Mailbox

    mailboxes.delete(owner, db.session.get(Mailbox, box.id))
    db.session.commit()
    run_jobs()
    remove_domain(owner, db.session.get(Domain, extra.id))
    db.session.commit()


def test_a_mailbox_deleted_since_the_preview_gets_no_grant(owner, account, run_jobs):
    """The preview refuses a sheet for a deleted mailbox; the run does too (a review)."""
    from portal.mailboxes import services as mailboxes
    from portal.mailboxes.models import Mailbox

    _extra, box, run = _one_grant_on(owner, account, run_jobs, "board")
    mailboxes.delete(owner, db.session.get(Mailbox, box.id))
    db.session.commit()
    run_jobs()
    run = _start(owner, run, run_jobs)
    assert (run.status, run.created, run.skipped) == ("done", 1, 1)
    assert db.session.execute(db.select(Grant).where(Grant.mailbox_id == box.id)).first() is None


def test_a_mailbox_removed_for_good_since_the_preview_leaves_the_others_to_run(owner, account, make, run_jobs,
                                                                               client, auth):
    """Its row gone (its domain removed), its grant failed the whole run on the foreign key; and where
    the database gives the freed id again (SQLite) to another account's new mailbox, the old plan
    granted on that one: that account then read this account's member, and this one its address."""
    from portal.auth.models import User
    from portal.mailboxes import services as mailboxes

    extra, box, run = _one_grant_on(owner, account, run_jobs, "x")
    _removed_for_good(owner, extra, box, run_jobs)
    other_owner = make.user("other@b.example.net")
    other = make.account(other_owner, "Other")
    theirs = mailboxes.create_mailbox(other_owner, other, enabled_domain(other_owner, other, "b.example.net"),
                                      "secret-project")
    db.session.commit()
    run_jobs()
    run = _start(owner, run, run_jobs)
    assert (run.status, run.created, run.skipped) == ("done", 1, 1)
    assert db.session.execute(db.select(User).where(User.email == "ann@corp.example.org")).scalar_one()
    assert db.session.execute(db.select(Grant).where(Grant.mailbox_id == theirs.id,
                                                     Grant.account_id == account.id)).first() is None
    auth.login(other_owner.email)
    assert "bob@corp.example.org" not in client.get(
        f"/accounts/{other.id}/mailboxes/{theirs.id}").get_data(as_text=True)


def test_an_uploader_suspended_before_the_run_hands_on_nothing(owner, account, make, run_jobs, client, auth):
    """Nothing is done, and the import's page says the uploader is suspended, as a bulk run's does
    (each row was skipped as if its rights were "no longer held")."""
    from portal.audit.models import AuditEvent
    from portal.auth.models import User
    from portal.users.models import FAILED
    from portal.users.services import suspend

    enabled_domain(owner, account, "corp.example.org")
    admin = make.user("admin@corp.example.org", name="Ad Min")
    make.member(account, admin, roles=("administrator",))
    admin.is_corporate, admin.corporate_account_id = True, account.id
    db.session.commit()
    data = fill(workbook.template(account), users=[("New", "Admin", "new@corp.example.org", "N")],
                account_rows=[("new@corp.example.org", "Account Administrator", None)])
    run = _preview(admin, account, data)
    imports.confirm(admin, db.session.get(ImportRun, run.id))
    db.session.commit()
    suspend(owner, account, db.session.get(User, admin.id))  # before the worker gets to it
    db.session.commit()
    run_jobs()
    db.session.expire_all()
    done = db.session.get(ImportRun, run.id)
    assert (done.status, done.created, done.updated) == (FAILED, 0, 0)
    assert db.session.execute(db.select(User).where(User.email == "new@corp.example.org")).scalar_one_or_none() \
        is None
    auth.login("owner@example.org")
    page = client.get(f"/accounts/{account.id}/users/import/{run.id}").get_data(as_text=True)
    assert "The import stopped: admin@corp.example.org is suspended; nothing was done." in page
    entry = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "users.import_done")).scalar_one()
    assert "is suspended" in shown(entry.details["refused"]) and entry.details["created"] == 0


def test_a_token_starts_a_preview_within_its_own_reach_only(owner, account, run_jobs, client):
    """Started through an imports-only token, a preview made on the pages hands on no role that
    token's scopes do not reach, as an upload through it would not."""
    from portal.auth.models import User
    from portal.tokens import services as tokens

    enabled_domain(owner, account, "corp.example.org")
    data = fill(workbook.template(account), users=[("New", "Admin", "new@corp.example.org", "N"),
                                                    ("Plain", "User", "plain@corp.example.org", "N")],
                account_rows=[("new@corp.example.org", "Account Administrator", None)])
    run = _preview(owner, account, data)
    _, raw = tokens.create(owner, account, name="imports bot", scopes={"imports:write"}, expires_at=None)
    db.session.commit()
    response = client.post(f"/api/v1/accounts/{account.id}/imports/{run.id}/confirm",
                           headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 202
    run_jobs()
    db.session.expire_all()
    assert (db.session.get(ImportRun, run.id).created, db.session.get(ImportRun, run.id).skipped) == (1, 1)
    assert db.session.execute(db.select(User).where(User.email == "new@corp.example.org")).scalar_one_or_none() \
        is None


def test_the_template_names_only_the_mailboxes_the_downloader_may_give_access_to(owner, account, make, client,
                                                                                 auth, run_jobs):
    import io

    from openpyxl import load_workbook

    from portal.mailboxes import services as mailboxes

    domain = enabled_domain(owner, account, "example.org")
    mailboxes.create_mailbox(owner, account, domain, "director-confidential")
    team = mailboxes.create_mailbox(owner, account, domain, "team")
    clerk = make.member(account, make.user("clerk@example.org"), permissions=("users.create",))
    db.session.add(Grant(membership_id=clerk.id, account_id=account.id, mailbox_id=team.id,
                         role_id=system_role(catalogue.MAILBOX_OWNER).id))
    db.session.commit()
    run_jobs()

    def named(email: str) -> set[str]:
        auth.logout()
        auth.login(email)
        book = load_workbook(io.BytesIO(client.get(f"/accounts/{account.id}/users/import/template").data))
        return {sheet["B1"].value for sheet in book.worksheets if sheet["A1"].value == "Mailbox"}

    assert named("clerk@example.org") == {"team@example.org"}
    assert named(owner.email) == {"team@example.org", "director-confidential@example.org"}
