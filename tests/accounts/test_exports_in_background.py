"""Exports of lists longer than ``AT_ONCE`` rows: asked for with a POST, written by a job as the
list was filtered, downloaded from their page by whoever asked alone, while they may still see the
list, and erased after a day."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook

from portal.audit.models import AuditEvent
from portal.bulk import exports
from portal.bulk.models import ExportRun
from portal.domains.models import ENABLED
from portal.domains.services import add_domain
from portal.extensions import db
from portal.i18n import shown
from portal.jobs.models import Job
from portal.roles.services import create_role, grant_role
from portal.timeutil import utcnow
from portal.users import services as users


@pytest.fixture
def staff(owner, account, make, monkeypatch):
    """Twelve corporate users, three with a personal mailbox, and a member from elsewhere; lists of
    more than five rows are exported in the background."""
    monkeypatch.setattr(exports, "AT_ONCE", 5)
    domain = add_domain(owner, account, "corp.example.org", "local")
    domain.status, domain.verified_at = ENABLED, domain.created_at
    db.session.commit()
    for n in range(12):
        users.create_corporate_user(owner, account, first_name="Staff", last_name=f"Member {n:02d}",
                                    email=f"staff{n:02d}@corp.example.org", personal_mailbox=n < 3)
    make.member(account, make.user("guest@elsewhere.example"))
    db.session.commit()
    return domain


def _ask(client, account, target: str, fmt: str, **filters):
    """The list page's export button pressed, with the list's state as its hidden fields."""
    return client.post(f"/accounts/{account.id}/{target}/exports",
                       data={"format": fmt, **{f"filter-{k}": v for k, v in filters.items()}})


def test_a_long_list_offers_a_background_export_and_a_get_writes_nothing(client, auth, account, staff):
    auth.login("owner@example.org")
    page = client.get(f"/accounts/{account.id}/members").get_data(as_text=True)
    assert f'action="/accounts/{account.id}/members/exports"' in page and "written in the background: 14 rows" in page
    assert f"/accounts/{account.id}/members/export.csv" not in page
    # The old link (a bookmark) asks to confirm with a POST, and no file is written or queued.
    answer = client.get(f"/accounts/{account.id}/members/export.csv?kind=corporate")
    text = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "attachment" not in answer.headers.get("Content-Disposition", "")
    assert 'name="filter-kind" value="corporate"' in text and 'value="csv"' in text
    assert db.session.execute(db.select(ExportRun)).first() is None
    # A short list (a search matching two people) downloads at once, as before.
    short = client.get(f"/accounts/{account.id}/members?q=staff01")
    assert f"/accounts/{account.id}/members/export.csv?q=staff01" in short.get_data(as_text=True)
    now = client.get(f"/accounts/{account.id}/members/export.csv?q=staff01")
    assert "attachment" in now.headers["Content-Disposition"] and now.headers["Cache-Control"] == "no-store"


def test_the_job_writes_the_list_as_filtered_and_only_its_asker_downloads_it(client, auth, account, staff, run_jobs,
                                                                               make):
    auth.login("owner@example.org")
    answer = _ask(client, account, "members", "xlsx", kind="corporate", sort="email", dir="desc", bogus="x")
    assert answer.status_code == 302
    run = db.session.execute(db.select(ExportRun)).scalar_one()
    assert run.filters == {"kind": "corporate", "sort": "email", "dir": "desc"} and run.status == "queued"
    waiting = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "being written" in waiting and 'hx-trigger="load delay:1s"' in waiting and "Download" not in waiting
    assert run_jobs() >= 1
    done = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "12 rows" in done and "hx-trigger" not in done
    download = client.get(f"/accounts/{account.id}/exports/{run.id}/download")
    assert download.status_code == 200 and download.headers["Cache-Control"] == "no-store"
    assert f'filename="users-{account.id}.xlsx"' in download.headers["Content-Disposition"]
    rows = list(load_workbook(io.BytesIO(download.data))["Users"].iter_rows(min_row=2, values_only=True))
    assert [row[0] for row in rows] == [f"staff{n:02d}@corp.example.org" for n in range(11, -1, -1)]
    event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "bulk.export")).scalar_one()
    assert event.details == {"format": "xlsx", "selection": "every row matching the filters"}
    # Another administrator of the account finds nothing there.
    make.member(account, make.user("admin2@example.org"), roles=("administrator",))
    client.post("/logout")
    auth.login("admin2@example.org")
    assert client.get(f"/accounts/{account.id}/exports/{run.id}").status_code == 404
    assert client.get(f"/accounts/{account.id}/exports/{run.id}/download").status_code == 404


def test_mailboxes_are_exported_as_the_asker_may_see_them(client, auth, account, staff, run_jobs, owner):
    from portal.mailboxes.services import create_mailbox

    for n in range(4):
        create_mailbox(owner, account, staff, f"team{n}", display_name=f"=Team {n}")
    db.session.commit()
    auth.login("owner@example.org")
    answer = _ask(client, account, "mailboxes", "csv", kind="shared")
    run_jobs()
    run = db.session.execute(db.select(ExportRun)).scalar_one()
    text = client.get(f"/accounts/{account.id}/exports/{run.id}/download").data.decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text)))
    assert answer.status_code == 302 and [line[0] for line in lines[1:]] == [
        f"team{n}@corp.example.org" for n in range(4)]
    assert lines[1][1] == "'=Team 0"  # a formula stays text
    # A member who sees no mailbox may ask, and gets what they see: nothing.
    client.post("/logout")
    auth.login("guest@elsewhere.example")
    _ask(client, account, "mailboxes", "csv")
    run_jobs()
    theirs = db.session.execute(db.select(ExportRun).order_by(ExportRun.id.desc())).scalars().first()
    assert theirs.status == "done" and theirs.rows == 0


def test_an_asker_who_lost_the_right_before_the_run_or_the_download_gets_nothing(client, auth, owner, account,
                                                                                  staff, run_jobs, make):
    viewer = make.member(account, make.user("viewer@example.org"))
    role = create_role(owner, account, name="Viewers", scope="account", description="", permissions={"members.view"})
    grant = grant_role(owner, account, viewer, role)
    db.session.commit()
    auth.login("viewer@example.org")
    assert _ask(client, account, "members", "csv").status_code == 302
    first = db.session.execute(db.select(ExportRun)).scalar_one()
    db.session.delete(grant)
    db.session.commit()
    run_jobs()
    db.session.refresh(first)
    assert first.status == "failed" and first.content is None and first.rows == 0
    assert shown(first.error) == "viewer@example.org may no longer see this list; nothing was written."
    assert "may no longer see this list" not in client.get(f"/accounts/{account.id}/exports/{first.id}").get_data(
        as_text=True)  # the page is gone with the right (404)
    # Given the right again, an export is written; the right taken away once more, or the asker
    # suspended, it can be neither seen nor downloaded.
    grant = grant_role(owner, account, viewer, role)
    db.session.commit()
    _ask(client, account, "members", "csv")
    run_jobs()
    second = db.session.execute(db.select(ExportRun).where(ExportRun.id != first.id)).scalar_one()
    assert second.status == "done" and second.rows == 15
    assert client.get(f"/accounts/{account.id}/exports/{second.id}/download").status_code == 200
    db.session.delete(grant)
    db.session.commit()
    assert client.get(f"/accounts/{account.id}/exports/{second.id}/download").status_code == 404
    assert client.get(f"/accounts/{account.id}/exports/{second.id}").status_code == 404


def test_the_file_is_erased_after_a_day(client, auth, account, staff, run_jobs):
    auth.login("owner@example.org")
    _ask(client, account, "members", "csv")
    run_jobs()
    run = db.session.execute(db.select(ExportRun)).scalar_one()
    erase = db.session.execute(db.select(Job).where(Job.kind == exports.ERASE_KIND)).scalar_one()
    assert erase.run_at - run.finished_at == timedelta(hours=exports.KEEP_HOURS)
    assert run_jobs() == 0  # not due yet
    # A day later (the job brought forward: other jobs here repeat themselves as time passes).
    erase.run_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert run_jobs() == 1
    db.session.refresh(run)
    assert run.erased and run.content is None
    download = client.get(f"/accounts/{account.id}/exports/{run.id}/download")
    assert download.status_code == 302 and download.headers["Location"].endswith(f"/exports/{run.id}")
    assert "has been erased" in client.get(download.headers["Location"]).get_data(as_text=True)


@pytest.mark.parametrize("data, status", [
    ({"format": "pdf"}, 422), ({"format": ""}, 422), ({"format": "csv", "filter-q": "x" * 5000}, 302),
    ({"format": "csv", "filter-sort": "id; drop table users", "filter-role": "<script>", "filter-page": "9"}, 302),
    ({"format": ["csv", "xlsx"]}, 302), ({"format": "csv", "filter-q": "a\x00b"}, 400)])
def test_hostile_forms_get_a_clear_answer(client, auth, account, staff, data, status):
    auth.login("owner@example.org")
    answer = client.post(f"/accounts/{account.id}/members/exports", data=data)
    assert answer.status_code == status
    if status == 422:
        assert "Choose Excel or CSV." in answer.get_data(as_text=True)
    if status == 302:
        run = db.session.execute(db.select(ExportRun)).scalar_one()
        assert set(run.filters) <= {"q", "role", "kind", "mailbox", "status", "sort", "dir"}
        assert len(run.filters.get("q", "")) <= 254 and run.filters.get("sort") in (None, "email")
    # Without the CSRF token nothing is queued.
    assert client.post(f"/accounts/{account.id}/members/exports", data={"format": "csv"}, csrf=False).status_code == 400
    assert db.session.execute(db.select(db.func.count(ExportRun.id))).scalar_one() == (answer.status_code == 302)


@pytest.mark.parametrize("target, fmt", [("members", "xlsx"), ("mailboxes", "csv")])
def test_the_job_makes_as_many_statements_for_many_rows_as_for_few(client, auth, owner, account, run_jobs, target,
                                                                    fmt, monkeypatch):
    from tests.seeding import statements_at_two_sizes

    monkeypatch.setattr(exports, "AT_ONCE", 1)
    auth.login("owner@example.org")

    def ask(size):
        run_jobs()  # what the seeding queued
        assert _ask(client, account, target, fmt).status_code == 302

    def write(size):
        assert run_jobs() == 1
        run = db.session.execute(db.select(ExportRun).order_by(ExportRun.id.desc())).scalars().first()
        assert run.status == "done" and run.rows >= size

    counts = statements_at_two_sizes(owner, account, write, before=ask)
    assert counts[0] == counts[1] and counts[0] > 5, counts


def test_an_export_that_cannot_be_written_says_why_on_its_page(client, auth, account, staff, run_jobs, monkeypatch):
    from portal.jobs.registry import PermanentJobError

    def broken(*args):
        raise PermanentJobError("the disk is full")

    monkeypatch.setattr(exports, "write", broken)
    auth.login("owner@example.org")
    page = _ask(client, account, "members", "csv").headers["Location"]
    run_jobs()
    run = db.session.execute(db.select(ExportRun)).scalar_one()
    assert run.status == "failed" and run.finished_at is not None and "the disk is full" in run.error
    text = client.get(page).get_data(as_text=True)
    assert "It stopped: the disk is full" in text and "hx-trigger" not in text and "Download" not in text


def test_the_sidebar_shows_the_list_an_export_or_a_bulk_run_concerns(client, auth, account, staff):
    auth.login("owner@example.org")
    page = client.get(_ask(client, account, "mailboxes", "csv").headers["Location"]).get_data(as_text=True)
    assert f'href="/accounts/{account.id}/mailboxes" aria-current="page"' in page
    page = client.get(f"/accounts/{account.id}/members/export.csv").get_data(as_text=True)
    assert f'href="/accounts/{account.id}/members" aria-current="page"' in page
    # Elsewhere, as before: on the domains list neither is the current page.
    page = client.get(f"/accounts/{account.id}/domains").get_data(as_text=True)
    assert f'href="/accounts/{account.id}/domains" aria-current="page"' in page
    assert 'mailboxes" aria-current' not in page and 'members" aria-current' not in page


def test_a_mailboxes_export_written_seeing_every_mailbox_needs_it_still(client, auth, owner, account, staff,
                                                                        run_jobs, make):
    from portal.mailboxes.services import create_mailbox

    for n in range(6):
        create_mailbox(owner, account, staff, f"team{n}")
    viewer = make.member(account, make.user("viewer@example.org"))
    role = create_role(owner, account, name="Mail viewers", scope="account", description="",
                       permissions={"mailboxes.view"})
    grant = grant_role(owner, account, viewer, role)
    db.session.commit()
    auth.login("viewer@example.org")
    _ask(client, account, "mailboxes", "csv")
    run_jobs()
    run = db.session.execute(db.select(ExportRun)).scalar_one()
    assert run.every_mailbox and run.rows == 9
    download = f"/accounts/{account.id}/exports/{run.id}/download"
    assert client.get(download).status_code == 200
    db.session.delete(grant)
    db.session.commit()
    assert client.get(download).status_code == 404  # its list page shows them none now


def test_a_mailboxes_export_written_from_grants_needs_each_of_them_still(client, auth, owner, account, staff,
                                                                         run_jobs, make):
    """Someone who sees only the mailboxes granted to them downloads their export while they still
    see each of them: a grant taken away (or its role no longer showing the mailbox) takes the file
    with it; a grant added since does not."""
    from portal.mailboxes.services import create_mailbox
    from portal.roles.models import Role
    from portal.roles.services import grant_mailbox_role

    delegate = db.session.execute(db.select(Role).where(Role.system_key == "mailbox_delegate")).scalar_one()
    helper = make.member(account, make.user("helper@example.org"))
    boxes = [create_mailbox(owner, account, staff, f"team{n}") for n in range(7)]
    grants = [grant_mailbox_role(owner, account, helper, box.id, delegate) for box in boxes[:6]]
    db.session.commit()
    auth.login("helper@example.org")
    _ask(client, account, "mailboxes", "csv")
    run_jobs()
    run = db.session.execute(db.select(ExportRun)).scalar_one()
    assert run.rows == 6 and not run.every_mailbox and run.granted_mailboxes == sorted(box.id for box in boxes[:6])
    download = f"/accounts/{account.id}/exports/{run.id}/download"
    assert client.get(download).status_code == 200
    grant_mailbox_role(owner, account, helper, boxes[6].id, delegate)
    db.session.commit()
    assert client.get(download).status_code == 200
    db.session.delete(grants[2])
    db.session.commit()
    assert client.get(download).status_code == 404
    assert "Download" not in client.get(f"/accounts/{account.id}/exports/{run.id}").get_data(as_text=True)


def test_the_same_export_asked_twice_is_one_and_a_person_has_few_on_their_way(client, auth, account, staff):
    auth.login("owner@example.org")
    first = _ask(client, account, "members", "csv", kind="corporate").headers["Location"]
    assert _ask(client, account, "members", "csv", kind="corporate").headers["Location"] == first
    assert _ask(client, account, "members", "xlsx").status_code == 302
    assert _ask(client, account, "mailboxes", "csv").status_code == 302
    refused = _ask(client, account, "members", "csv", q="staff")
    assert refused.status_code == 429 and "3 exports on their way" in refused.get_data(as_text=True)
    assert db.session.execute(db.select(db.func.count(ExportRun.id))).scalar_one() == 3


def test_erasing_the_file_forgets_the_search(client, auth, account, staff, run_jobs):
    auth.login("owner@example.org")
    _ask(client, account, "members", "csv", q="staff01")
    run_jobs()
    erase = db.session.execute(db.select(Job).where(Job.kind == exports.ERASE_KIND)).scalar_one()
    erase.run_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    run_jobs()
    run = db.session.execute(db.select(ExportRun)).scalar_one()
    assert run.erased and run.filters == {}
