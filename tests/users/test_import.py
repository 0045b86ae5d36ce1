import io
import re
import zipfile

import pytest
from openpyxl import load_workbook

from portal.auth.models import User
from portal.extensions import db
from portal.i18n import shown
from portal.jobs.models import Job
from portal.mailboxes.models import Mailbox
from portal.roles.services import account_permissions, mailbox_permissions
from portal.users import imports, workbook
from portal.users.models import DONE
from tests.users.workbooks import fill


def _template(account):
    return workbook.template(account)


def _preview(owner, account, data, name="users.xlsx"):
    """Upload, then let the worker read and validate it, as the page does."""
    from flask import current_app

    from portal.jobs.worker import Worker

    run = imports.receive(owner, account, name, data)
    db.session.commit()
    Worker(current_app._get_current_object(), name="test-worker").run_due()
    db.session.expire_all()
    return db.session.get(type(run), run.id)


def _refusal(owner, account, data, name="users.xlsx") -> str:
    """Why the upload was refused: at once, or once the worker read it."""
    try:
        run = _preview(owner, account, data, name)
    except workbook.WorkbookRefused as refusal:
        db.session.rollback()
        return str(refusal)
    assert run.status == "refused", run.status
    return shown(run.fatal)


def test_template__has_the_sheets_lists_and_this_accounts_mailboxes(owner, account, shared):
    book = load_workbook(io.BytesIO(_template(account)))
    assert book.sheetnames == ["Roles", "Permissions", "Users", "Account", "sales@example.org", "support@example.org"]
    assert [c.value for c in book["Users"][1]] == list(workbook.USERS_HEADER)
    assert book["sales@example.org"]["B1"].value == "sales@example.org"
    roles = [row[0] for row in book["Roles"].iter_rows(min_row=2, values_only=True)]
    assert "Account Administrator" in roles and "Mailbox Delegate" in roles
    assert book["Users"].data_validations.dataValidation[0].formula1 == '"Y,N"'
    assert book["Account"].data_validations.dataValidation


def test_preview__counts_and_writes_nothing(owner, account, shared):
    data = fill(_template(account),
                users=[("Ann", "Able", "ann@example.org", "Y"), ("Bob", "Baker", "bob@example.org", "")],
                account_rows=[("ann@example.org", "Account Administrator", None), ("bob@example.org", None, "audit.view")],
                mailbox_rows={"sales@example.org": [("bob@example.org", "Mailbox Delegate", None)]})
    run = _preview(owner, account, data)
    assert (run.to_create, run.to_update, run.to_skip, run.problem_count, run.fatal) == (2, 0, 0, 0, "")
    assert db.session.execute(db.select(User).where(User.email.like("%@example.org"),
                                                   User.email != "owner@example.org")).first() is None


def test_preview__lists_every_planted_problem_at_once(owner, account, shared):
    data = fill(_template(account), users=[
        ("Ann", "Able", "ann@example.org", "Y"),
        ("", "NoFirst", "nofirst@example.org", "N"),
        ("Dup", "Row", "ann@example.org", "N"),
        ("Bad", "YN", "badyn@example.org", "maybe"),
        ("Form", "=1+1", "formula@example.org", ""),
        ("Long", "x" * 150, "long@example.org", ""),
        ("Cat", "Account", "cat@example.org", ""),
        ("Dan", "Mailbox", "dan@example.org", ""),
        ("Eve", "Ok", "eve@example.org", ""),
    ], account_rows=[
        ("cat@example.org", "No Such Role", None),
        ("ghost@example.org", "Account Administrator", None),
        ("not-an-address", None, "audit.view"),
    ], mailbox_rows={"sales@example.org": [("dan@example.org", None, "account.delete")]})
    run = _preview(owner, account, data)
    found = {(p["sheet"], p["row"], p["column"]) for p in run.problems}
    assert ("Users", 3, "A") in found            # first name missing
    assert ("Users", 4, "C") in found            # duplicate
    assert ("Users", 5, "D") in found            # not Y/N
    assert ("Users", 6, "B") in found            # formula
    assert ("Users", 7, "B") in found            # over-long
    assert ("Account", 2, "B") in found          # unknown role
    assert ("Account", 3, "A") in found          # not on the Users sheet
    assert ("Account", 4, "A") in found          # malformed address
    assert ("sales@example.org", 4, "C") in found  # an account permission on a mailbox sheet
    assert run.to_create == 2  # ann and eve; cat and dan are not created (wrong rows on Account/Mailbox)
    assert run.fatal == ""


def test_preview__a_user_off_the_active_domains_fails_the_whole_import(owner, account, domain):
    data = fill(_template(account), users=[("Ann", "Able", "ann@example.org", ""),
                                           ("Out", "Side", "out@elsewhere.example", "")])
    run = _preview(owner, account, data)
    assert "not on an active domain" in shown(run.fatal) and "out@elsewhere.example" in shown(run.fatal)
    with pytest.raises(imports.ImportError_):
        imports.confirm(owner, run)


@pytest.mark.parametrize("name, data, message", [
    ("users.csv", b"a,b,c", "Only .xlsx"),
    ("users.xlsx", b"this is not a zip at all", "not an .xlsx workbook"),
    ("users.xlsx", None, "no workbook part"),
    ("users.xlsx", "bomb", "zip bomb"),
])
def test_upload__broken_files_are_refused_whole_with_the_reason(owner, account, name, data, message):
    if data is None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("hello.txt", "hi")
        data = buffer.getvalue()
    elif data == "bomb":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("xl/workbook.xml", "<workbook/>")
            archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (150 * 1024 * 1024))
        data = buffer.getvalue()
    assert re.search(message, _refusal(owner, account, data, name))


def test_upload__missing_sheets_are_refused(owner, account, domain):
    def drop(book):
        del book["Account"]

    assert "no “Account” sheet" in _refusal(owner, account, fill(_template(account), edit=drop), "u.xlsx")


def test_run__creates_users_access_mailboxes_and_onboarding_then_a_result_workbook(owner, account, shared, run_jobs,
                                                                                   smtp_sink):
    data = fill(_template(account),
                users=[("Ann", "Able", "ann@example.org", "Y"), ("Bob", "Baker", "bob@example.org", ""),
                       ("Cat", "Bad", "cat@example.org", "N")],
                account_rows=[("ann@example.org", "Account Administrator", None),
                              ("bob@example.org", None, "audit.view"), ("cat@example.org", "Nope", None)],
                mailbox_rows={"sales@example.org": [("bob@example.org", "Mailbox Delegate", None)]})
    run = _preview(owner, account, data)
    imports.confirm(owner, run)
    db.session.commit()
    run_jobs()
    run_jobs()
    db.session.refresh(run)
    assert run.status == DONE and (run.created, run.updated, run.skipped, run.done, run.total) == (2, 0, 1, 3, 3)
    ann = db.session.execute(db.select(User).where(User.email == "ann@example.org")).scalar_one()
    bob = db.session.execute(db.select(User).where(User.email == "bob@example.org")).scalar_one()
    assert ann.is_corporate and "members.view" in account_permissions(ann, account)
    assert account_permissions(bob, account) == {"audit.view"}
    assert mailbox_permissions(bob, account, shared[0].id) >= {"mailbox.read", "mailbox.send_as"}
    personal = db.session.execute(db.select(Mailbox).where(Mailbox.address == "ann@example.org")).scalar_one()
    assert personal.status == "enabled" and personal.owner_id == ann.id
    assert db.session.execute(db.select(User).where(User.email == "cat@example.org")).first() is None
    assert smtp_sink.wait_for("ann@example.org")
    assert "/welcome/" in smtp_sink.text(smtp_sink.to("ann@example.org")[0])
    assert smtp_sink.to("bob@example.org") == [], "bob has no mailbox: a link would go nowhere he reads"
    onboarding = db.session.execute(db.select(Job).where(Job.kind == "users.onboarding")).scalars().all()
    assert all("token" not in str(job.payload) for job in onboarding)
    result = load_workbook(io.BytesIO(run.result))["Users"]
    statuses = {row[2]: (row[5], row[6]) for row in result.iter_rows(min_row=2, values_only=True)}
    assert statuses["ann@example.org"][0] == "created" and statuses["cat@example.org"][0] == "skipped"
    assert "Account" in statuses["cat@example.org"][1]
    assert "e-mailed to their mailbox" in statuses["ann@example.org"][1]
    assert "send them an onboarding link" in statuses["bob@example.org"][1]


def test_run__rows_with_problems_end_as_the_preview_said_with_what_to_fix(owner, account, domain, run_jobs):
    """A walkthrough: the preview said "4 to skip", the result "2 skipped, 2 failed" (rows the preview
    could not read were "failed"), and the result workbook said only "this row has problems"."""
    data = fill(_template(account), users=[("Ann", "Able", "ann@example.org", ""),
                                           ("", "Nofirst", "nofirst@example.org", ""),
                                           ("Yan", "Maybe", "maybe@example.org", "maybe"),
                                           ("Bad", "Address", "not an address", ""),
                                           ("Ann", "Again", "ann@example.org", "")])
    run = _preview(owner, account, data)
    assert (run.to_create, run.to_update, run.to_skip) == (1, 0, 4)
    imports.confirm(owner, run)
    db.session.commit()
    run_jobs()
    db.session.refresh(run)
    assert (run.created, run.updated, run.skipped, run.failed) == (1, 0, 4, 0)
    rows = list(load_workbook(io.BytesIO(run.result))["Users"].iter_rows(min_row=2, values_only=True))
    outcome = {row[1]: (row[5], row[6]) for row in rows}
    assert outcome["Able"][0] == "created"
    assert {status for name, (status, _message) in outcome.items() if name != "Able"} == {"skipped"}
    assert "The first name is missing" in outcome["Nofirst"][1]
    assert "“maybe” is not Y, N or empty" in outcome["Maybe"][1]
    assert "not an address" in outcome["Address"][1] and "row 2" in outcome["Again"][1]


def test_run__the_same_workbook_again_creates_no_duplicates(owner, account, domain, run_jobs):
    data = fill(_template(account), users=[("Ann", "Able", "ann@example.org", "Y")])
    for expected in ((1, 0), (0, 1)):
        run = _preview(owner, account, data)
        imports.confirm(owner, run)
        db.session.commit()
        run_jobs()
        db.session.refresh(run)
        assert (run.created, run.updated) == expected
    assert db.session.execute(db.select(db.func.count()).select_from(User)
                              .where(User.email == "ann@example.org")).scalar_one() == 1
    assert db.session.execute(db.select(db.func.count()).select_from(Mailbox)).scalar_one() == 1


def test_import_pages__upload_preview_confirm_progress_and_result(owner, account, domain, client, auth, run_jobs):
    auth.login("owner@example.org")
    template = client.get(f"/accounts/{account.id}/users/import/template")
    assert template.status_code == 200 and template.mimetype.endswith("spreadsheetml.sheet")
    data = fill(template.data, users=[("Ann", "Able", "ann@example.org", "")])
    response = client.post(f"/accounts/{account.id}/users/import",
                           data={"workbook": (io.BytesIO(data), "staff.xlsx")}, content_type="multipart/form-data")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Reading and checking every row" in page and 'hx-trigger="load delay:1s"' in page
    run_jobs()
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "1</strong> to create" in page
    response = client.post(response.headers["Location"] + "/confirm")
    assert response.status_code == 302
    fragment = client.get(response.headers["Location"], headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="import-progress"') and 'hx-trigger="load delay:1s"' in fragment
    run_jobs()
    fragment = client.get(response.headers["Location"], headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "1 of 1 rows" in fragment and "100%" in fragment and "Download the result workbook" in fragment
    result = client.get(response.headers["Location"] + "/result.xlsx")
    assert result.status_code == 200
    response = client.post(f"/accounts/{account.id}/users/import",
                           data={"workbook": (io.BytesIO(b"garbage"), "staff.xlsx")}, content_type="multipart/form-data")
    assert response.status_code == 422 and "not an .xlsx workbook" in response.get_data(as_text=True)


def test_preview__personal_mailboxes_beyond_the_domains_limit_are_refused(owner, account, domain):
    domain.settings = {"max_users": 1}
    db.session.commit()
    data = fill(_template(account), users=[("Ann", "Able", "ann@example.org", "Y"),
                                           ("Bob", "Baker", "bob@example.org", "Y")])
    run = _preview(owner, account, data)
    assert run.to_create == 1 and run.to_skip == 1
    assert any("at most 1 mailboxes" in p["message"] and p["row"] == 3 for p in run.problems)


def test_preview__counts_add_up_to_the_rows_of_the_users_sheet(owner, account, domain):
    data = fill(_template(account), users=[("Ann", "Able", "ann@example.org", ""), ("Bob", "Baker", "not an address", ""),
                                           ("Ann", "Again", "ann@example.org", ""), ("Cat", "", "cat@example.org", "")])
    run = _preview(owner, account, data)
    assert run.total == 4
    assert (run.to_create, run.to_update, run.to_skip) == (1, 0, 3)
    assert run.to_create + run.to_update + run.to_skip == run.total


def test_recovery_column__the_link_goes_there_and_the_result_says_so(owner, account, domain, run_jobs, smtp_sink):
    data = fill(_template(account), users=[("Ann", "Able", "ann@example.org", "N", "ann.private@elsewhere.example"),
                                           ("Bob", "Baker", "bob@example.org", "N", ""),
                                           ("Cat", "Cole", "cat@example.org", "N", "cat@example.org")])
    run = _preview(owner, account, data)
    assert (run.to_create, run.to_skip) == (2, 1)
    assert any("outside the user's domain" in p["message"] for p in run.problems)
    imports.confirm(owner, run)
    db.session.commit()
    run_jobs()
    run_jobs()
    db.session.refresh(run)
    [message] = smtp_sink.wait_for("ann.private@elsewhere.example")
    assert "/welcome/" in smtp_sink.text(message)
    assert smtp_sink.to("bob@example.org") == []
    ann = db.session.execute(db.select(User).where(User.email == "ann@example.org")).scalar_one()
    assert ann.recovery_email == "ann.private@elsewhere.example" and ann.recovery_set_by_id == owner.id
    result = load_workbook(io.BytesIO(run.result))["Users"]
    messages = {row[2]: row[6] for row in result.iter_rows(min_row=2, values_only=True)}
    assert "ann.private@elsewhere.example" in messages["ann@example.org"]
    assert "send them an onboarding link" in messages["bob@example.org"]


def test_import_page__says_how_many_people_created_need_a_link_from_the_admin(owner, account, domain, run_jobs,
                                                                                client, auth):
    """A walkthrough: the page said "2 created", and only the result workbook said that one of them
    could not sign in without a link from the admin."""
    data = fill(_template(account), users=[("Ann", "Able", "ann@example.org", "N", "ann.private@elsewhere.example"),
                                           ("Bob", "Baker", "bob@example.org", "N", ""),
                                           ("Dan", "Dune", "dan@example.org", "N", "")])
    run = _preview(owner, account, data)
    imports.confirm(owner, run)
    db.session.commit()
    run_jobs()
    db.session.refresh(run)
    assert (run.created, run.need_link) == (3, 2)
    auth.login("owner@example.org")
    page = client.get(f"/accounts/{account.id}/users/import/{run.id}").get_data(as_text=True)
    assert "2 people created need a link from you to sign in." in page
    listed = re.search(r'href="([^"]*status=needs_link[^"]*)"', page).group(1).replace("&amp;", "&")
    # Those two alone: Ann has a recovery address (a walkthrough: the list showed her too).
    people = client.get(listed).get_data(as_text=True)
    assert "1–2 of 2 people" in people and "bob@example.org" in people and "ann@example.org" not in people


def test_preview__first_and_last_names_fit_the_full_name_together(owner, account, shared):
    """Two names of 100 characters each passed, and the import kept a full name of 201 characters in
    a column of 200 (PostgreSQL refused the whole chunk)."""
    data = fill(_template(account), users=[("a" * 100, "b" * 100, "long@example.org", ""),
                                           ("a" * 99, "b" * 100, "fits@example.org", "")])
    run = _preview(owner, account, data)
    assert [(p["row"], p["column"]) for p in run.problems] == [(2, "B")]
    assert "together are at most 199" in run.problems[0]["message"]
    assert run.to_create == 1


def test_import_pages__a_page_answering_a_post_does_not_reload_itself_onto_it(owner, account, domain, client, auth):
    """A second Confirm click (no scripts) answered the progress page with its reload, which sent a
    GET to the confirm URL (405). Only a page read with GET reloads itself."""
    run = _preview(owner, account, fill(_template(account), users=[("Ann", "Able", "ann@example.org", "")]))
    auth.login("owner@example.org")
    url = f"/accounts/{account.id}/users/import/{run.id}/confirm"
    assert client.post(url).status_code == 302
    second = client.post(url)
    assert second.status_code == 409 and 'http-equiv="refresh"' not in second.get_data(as_text=True)
    shown = client.get(f"/accounts/{account.id}/users/import/{run.id}").get_data(as_text=True)
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in shown


def _add_mailboxes(account, domain, local_parts, kind="shared"):
    """Mailboxes by the hundred, fast: Core inserts, as a large account has them."""
    from sqlalchemy import insert

    from portal.timeutil import utcnow

    now = utcnow()
    db.session.execute(insert(Mailbox), [{
        "account_id": account.id, "domain_id": domain.id, "local_part": local_part,
        "address": f"{local_part}@{domain.name}", "kind": kind, "status": "enabled", "status_reason": "",
        "want_active": True, "backend_admin": False, "password_lost": False, "first_name": "", "last_name": "",
        "display_name": "", "created_at": now, "updated_at": now} for local_part in local_parts])
    db.session.commit()


def test_template__holds_a_bounded_number_of_mailbox_sheets_and_a_copied_sheet_imports(owner, account, domain):
    """The template held a sheet, with its own lists, for every mailbox: 37 s and 21 MB for
    10,000. It holds at most MAILBOX_SHEETS, shared mailboxes first, makes as many statements
    whatever the number of mailboxes, and a sheet the admin copies for another mailbox imports."""
    from tests.sql import on_each_statement

    bound = workbook.MAILBOX_SHEETS
    _add_mailboxes(account, domain, [f"team{n:03d}" for n in range(bound + 5)])
    _add_mailboxes(account, domain, ["aaa-personal"], kind="personal")  # first by address, but personal
    account_id, domain_id, owner_id = account.id, domain.id, owner.id
    db.session.expunge_all()  # as a new request has it
    account, owner = db.session.get(type(account), account_id), db.session.get(type(owner), owner_id)
    few: list[str] = []
    with on_each_statement(few.append):
        data = _template(account)
    book = load_workbook(io.BytesIO(data))
    boxes = [sheet for sheet in book.worksheets if sheet["A1"].value == "Mailbox"]
    assert [sheet["B1"].value for sheet in boxes] == [f"team{n:03d}@example.org" for n in range(bound)]
    assert "copy a mailbox sheet" in book["Users"]["A1"].comment.text
    assert "another mailbox" in boxes[0]["B1"].comment.text

    # One more grant on an included mailbox, one on a sheet copied for a mailbox the template left out.
    added = book.copy_worksheet(boxes[0])
    added["B1"] = f"team{bound + 3:03d}@example.org"
    added.append(["ann@example.org", None, "mailbox.read"])
    boxes[1].append(["ann@example.org", "Mailbox Delegate", None])
    book["Users"].append(["Ann", "Able", "ann@example.org", ""])
    output = io.BytesIO()
    book.save(output)
    run = _preview(owner, account, output.getvalue())
    assert (run.status, run.to_create, run.problem_count, run.fatal) == ("previewed", 1, 0, ""), run.problems
    grants = run.plan["users"][0]["mailbox_grants"]
    ids = dict(db.session.execute(db.select(Mailbox.address, Mailbox.id).where(Mailbox.account_id == account.id)).all())
    assert sorted((mailbox_id, permission) for mailbox_id, _role, permission in grants) == sorted(
        [(ids["team001@example.org"], None), (ids[f"team{bound + 3:03d}@example.org"], "mailbox.read")])

    _add_mailboxes(account, db.session.get(type(domain), domain_id), [f"zz-more{n:04d}" for n in range(300)])  # after the first shared ones
    db.session.expunge_all()
    account = db.session.get(type(account), account_id)
    many: list[str] = []
    with on_each_statement(many.append):
        larger = _template(account)
    assert len(many) == len(few), "\n".join(["FEW"] + few + ["MANY"] + many)
    assert load_workbook(io.BytesIO(larger)).sheetnames == book.sheetnames[:-1]
    assert len(larger) < 2 * len(data)


def test_recovery_column__an_address_a_mailbox_of_the_account_receives_is_a_problem_of_its_row(owner, account,
                                                                                                domain, run_jobs,
                                                                                                smtp_sink):
    """A review: the preview took a shared mailbox of the account as someone's recovery address, and
    the result said their link was mailed there while the mailing was refused for its readers. Its
    readers would get the person's links: the row is a problem, as on the user's form."""
    from portal.mailboxes import services as mailboxes
    from tests.mailboxes.conftest import enabled_domain

    team = enabled_domain(owner, account, "team.example")
    desk = mailboxes.create_mailbox(owner, account, team, "desk")
    db.session.commit()
    run_jobs()
    data = fill(_template(account), users=[("Ann", "Able", "ann@example.org", "N", "DESK@team.example"),
                                           ("Bob", "Baker", "bob@example.org", "N", "bob.private@elsewhere.example")])
    run = _preview(owner, account, data)
    assert (run.to_create, run.to_skip) == (1, 1) and run.to_create + run.to_update + run.to_skip == run.total
    [problem] = [p for p in run.problems if p["row"] == 2]
    assert problem["column"] == "E" and "desk@team.example is received by a mailbox of this account" in \
        problem["message"]
    imports.confirm(owner, run)
    db.session.commit()
    run_jobs()
    run_jobs()
    assert db.session.execute(db.select(User).where(User.email == "ann@example.org")).first() is None
    assert smtp_sink.to("desk@team.example") == []
    assert smtp_sink.wait_for("bob.private@elsewhere.example")


def test_preview__an_address_in_look_alike_forms_is_a_problem_not_a_person_apart(owner, account, domain):
    """A review: full-width ｄｕｐ@ was planned as a user apart from dup@, looking the same; a name
    in plain or decomposed accented letters is one address (kept composed)."""
    from portal.auth.addresses import checked_address

    data = fill(_template(account), users=[("Dee", "Up", "dup@example.org", "N"),
                                           ("Dee", "Wide", "\uff44\uff55\uff50@example.org", "N"),
                                           ("Jo", "Se", "jose\u0301@example.org", "N")])
    run = _preview(owner, account, data)
    assert (run.to_create, run.to_skip) == (2, 1)
    [problem] = [p for p in run.problems if p["row"] == 3]
    assert "look-alike forms of characters" in problem["message"]
    assert checked_address("Jos\u00e9@Example.org") == checked_address("jose\u0301@example.org") == "jos\u00e9@example.org"
