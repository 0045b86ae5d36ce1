"""Bulk actions on Users and Mailboxes: confirmed, run as one job with progress, each row through
the same rules as by hand, audited per person; exports of the filtered list."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from portal.accounts.models import Membership
from portal.audit.models import AuditEvent
from portal.bulk.models import BulkRun
from portal.domains.models import ENABLED
from portal.domains.services import add_domain
from portal.extensions import db
from portal.mailboxes.models import Mailbox
from portal.mailboxes.services import create_mailbox
from portal.roles.models import Grant, Role
from portal.roles.services import account_permissions
from portal.users import services as users
from tests.conftest import PASSWORD


@pytest.fixture
def staff(owner, account, make):
    domain = add_domain(owner, account, "corp.example.org", "local")
    domain.status, domain.verified_at = ENABLED, domain.created_at
    db.session.commit()
    people = []
    for n in range(12):
        user, _ = users.create_corporate_user(owner, account, first_name="Staff", last_name=f"Member {n:02d}",
                                              email=f"staff{n:02d}@corp.example.org", personal_mailbox=n < 3)
        people.append(user)
    outsider = make.member(account, make.user("guest@elsewhere.example"))
    db.session.commit()
    return {"domain": domain, "people": people, "outsider": outsider}


def _administrator() -> Role:
    return db.session.execute(db.select(Role).where(Role.system_key == "administrator")).scalar_one()


def _ids(account, *emails) -> list[str]:
    from portal.auth.models import User

    return [str(m) for m in db.session.execute(db.select(Membership.id).join(User, User.id == Membership.user_id)
                                               .where(Membership.account_id == account.id, User.email.in_(emails)))
            .scalars()]


def test_bulk_grant__to_every_person_matching_a_search_after_confirmation(client, auth, account, staff, run_jobs):
    auth.login("owner@example.org")
    role = _administrator()
    form = {"action": "grant_role", "role_id": role.id, "all_matching": "yes", "filter-q": "staff0"}
    page = client.post(f"/accounts/{account.id}/members/bulk", data=form)
    assert page.status_code == 200 and "10 people" in page.get_data(as_text=True), "asks for confirmation first"
    assert db.session.execute(db.select(BulkRun)).first() is None
    response = client.post(f"/accounts/{account.id}/members/bulk", data={**form, "confirmed": "yes"})
    assert response.status_code == 302
    progress = client.get(response.headers["Location"], headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'hx-trigger="load delay:1s"' in progress
    run_jobs()
    run = db.session.execute(db.select(BulkRun)).scalar_one()
    assert (run.status, run.total, run.succeeded, run.failed) == ("done", 10, 10, 0)
    holders = {p.email for p in staff["people"] if "members.view" in account_permissions(p, account)}
    assert holders == {f"staff0{n}@corp.example.org" for n in range(10)}
    audited = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "access.grant_role")).scalars()
    assert len(list(audited)) == 10, "each person's grant is audited as if made by hand"


def test_bulk__ticked_rows_only_and_only_this_accounts(client, auth, account, staff, run_jobs, make):
    other = make.account(make.user("other-owner@example.org"), "Other")
    theirs = make.member(other, make.user("victim@elsewhere.example"))
    ticked = _ids(account, "staff01@corp.example.org", "staff02@corp.example.org") + [str(theirs.id)]
    auth.login("owner@example.org")
    client.post(f"/accounts/{account.id}/members/bulk",
                data={"action": "grant_role", "role_id": _administrator().id, "member": ticked, "confirmed": "yes"})
    run_jobs()
    run = db.session.execute(db.select(BulkRun)).scalar_one()
    assert run.total == 2
    assert db.session.execute(db.select(Grant).where(Grant.membership_id == theirs.id)).first() is None


def test_bulk__refusals_are_listed_and_do_not_stop_the_others(client, auth, account, staff, run_jobs, make):
    helper = make.member(account, make.user("helper@example.org"), permissions=("members.view", "access.grant",
                                                                                 "audit.view"))
    auth.login("helper@example.org")
    ticked = _ids(account, "staff01@corp.example.org", "owner@example.org")
    everything = db.session.execute(db.select(Role).where(Role.system_key == "owner")).scalar_one()
    response = client.post(f"/accounts/{account.id}/members/bulk",
                           data={"action": "remove_role", "role_id": everything.id, "member": ticked,
                                 "confirmed": "yes"})
    assert response.status_code == 302
    run_jobs()
    run = db.session.execute(db.select(BulkRun)).scalar_one()
    assert run.status == "done" and run.failed == 1 and run.succeeded == 1
    assert run.problems[0]["label"] == "owner@example.org" and "do not hold" in run.problems[0]["message"]
    page = client.get(f"/accounts/{account.id}/bulk/{run.id}").get_data(as_text=True)
    assert "owner@example.org" in page and "1</strong> refusal<" in page
    assert helper.user_id  # the helper's own membership is untouched


def test_bulk__an_action_the_actor_may_not_take_is_not_started(client, auth, account, staff, make):
    make.member(account, make.user("viewer@example.org"), permissions=("members.view",))
    auth.login("viewer@example.org")
    response = client.post(f"/accounts/{account.id}/members/bulk",
                           data={"action": "remove", "all_matching": "yes", "confirmed": "yes"})
    assert response.status_code == 403
    assert db.session.execute(db.select(BulkRun)).first() is None


def test_bulk_suspend__signs_out_disables_mailboxes_and_restore_undoes_it(app, client, auth, account, staff,
                                                                         run_jobs):
    from portal.auth.passwords import hash_password

    person = staff["people"][0]
    person.password_hash, person.email_verified_at = hash_password(PASSWORD), person.created_at
    db.session.commit()
    run_jobs()
    theirs = app.test_client()
    assert theirs.post("/login", data={"email": person.email, "password": PASSWORD}).status_code == 302
    auth.login("owner@example.org")
    ticked = _ids(account, person.email)
    client.post(f"/accounts/{account.id}/members/bulk", data={"action": "suspend", "member": ticked,
                                                             "confirmed": "yes"})
    run_jobs()
    run_jobs()
    db.session.expire_all()
    mailbox = db.session.execute(db.select(Mailbox).where(Mailbox.address == person.email)).scalar_one()
    assert person.suspended_at is not None and mailbox.status == "disabled"
    assert theirs.get("/profile").status_code == 302
    login = theirs.post("/login", data={"email": person.email, "password": PASSWORD})
    assert login.status_code == 422 and "suspended" in login.get_data(as_text=True)
    page = client.get(f"/accounts/{account.id}/members?status=suspended").get_data(as_text=True)
    assert person.email in page and "staff01@" not in page
    client.post(f"/accounts/{account.id}/members/bulk", data={"action": "restore", "member": ticked,
                                                             "confirmed": "yes"})
    run_jobs()
    run_jobs()
    db.session.expire_all()
    assert person.suspended_at is None and db.session.get(Mailbox, mailbox.id).status == "enabled"
    assert theirs.post("/login", data={"email": person.email, "password": PASSWORD}).status_code == 302


def test_bulk_mailboxes__disable_every_match(client, auth, owner, account, staff, run_jobs):
    for name in ("sales", "support", "info"):
        create_mailbox(owner, account, staff["domain"], name)
    db.session.commit()
    run_jobs()
    auth.login("owner@example.org")
    response = client.post(f"/accounts/{account.id}/mailboxes/bulk",
                           data={"action": "disable", "all_matching": "yes", "filter-kind": "shared",
                                 "confirmed": "yes"})
    assert response.status_code == 302
    run_jobs()
    run_jobs()
    statuses = dict(db.session.execute(db.select(Mailbox.address, Mailbox.status)).all())
    assert statuses["sales@corp.example.org"] == statuses["info@corp.example.org"] == "disabled"
    assert statuses["staff00@corp.example.org"] == "enabled", "personal mailboxes were not matched"


def test_export__the_filtered_users_list_as_xlsx_and_csv_with_formulas_defused(client, auth, account, staff):
    staff["people"][1].name = '=HYPERLINK("http://evil.example","x")'
    db.session.commit()
    auth.login("owner@example.org")
    response = client.get(f"/accounts/{account.id}/members/export.xlsx?kind=corporate")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(response.data))["Users"]
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert len(rows) == 12 and {row[0] for row in rows} == {p.email for p in staff["people"]}
    evil = next(cell for cell in sheet["B"] if cell.value and str(cell.value).startswith("=HYPER"))
    assert evil.data_type == "s"
    text = client.get(f"/accounts/{account.id}/members/export.csv?q=staff01").data.decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text)))
    assert len(lines) == 2 and lines[1][1].startswith("'=HYPERLINK")
    assert client.get(f"/accounts/{account.id}/members/export.pdf").status_code == 404


def test_overview__says_what_needs_the_admin_in_a_few_statements(client, auth, owner, account, staff, run_jobs):
    mailbox = create_mailbox(owner, account, staff["domain"], "broken")
    db.session.commit()
    mailbox.status, mailbox.status_reason = "failed", "The backend refused it."
    pending = add_domain(owner, account, "later.example.org", "local")
    db.session.commit()
    auth.login("owner@example.org")
    page = client.get(f"/accounts/{account.id}/").get_data(as_text=True)
    assert "Needs your attention" in page and "broken@corp.example.org" in page and "Retry" in page
    assert "later.example.org" in page and pending.status == "pending"
    assert "14</strong> people" in page and "12 corporate users" in page


def test_overview__a_new_account_gets_the_getting_started_checklist(client, auth, account):
    auth.login("owner@example.org")
    page = client.get(f"/accounts/{account.id}/").get_data(as_text=True)
    assert "Getting started" in page and page.count("To do") == 5


def test_export__every_column_as_the_lists_show_it_and_only_what_the_person_may_see(
        client, auth, owner, account, staff, make, run_jobs):
    from portal.roles.services import create_role, grant_mailbox_role
    from portal.timeutil import utcnow

    people = staff["people"]
    role = create_role(owner, account, name="Staff", scope="account", description="", permissions={"members.view"})
    membership = {p.email: db.session.execute(db.select(Membership).where(Membership.user_id == p.id,
                                                                          Membership.account_id == account.id))
                  .scalar_one() for p in people}
    first = membership["staff01@corp.example.org"]
    db.session.add_all([Grant(membership_id=first.id, account_id=first.account_id, role_id=role.id),
                        Grant(membership_id=first.id, account_id=first.account_id, role_id=_administrator().id),
                        Grant(membership_id=first.id, account_id=first.account_id, permission="audit.view")])
    people[3].suspended_at = utcnow()
    people[4].oidc_subject = "sub-4"
    team = create_mailbox(owner, account, staff["domain"], "team", display_name="The Team")
    create_mailbox(owner, account, staff["domain"], "sales", first_name="Sal", last_name="Es")
    create_mailbox(owner, account, staff["domain"], "bare")
    db.session.commit()
    run_jobs()
    auth.login("owner@example.org")
    text = client.get(f"/accounts/{account.id}/members/export.csv").data.decode("utf-8-sig")
    rows = {row[0]: row for row in csv.reader(io.StringIO(text))}
    assert rows["staff01@corp.example.org"][1:7] == [
        "Staff Member 01", "yes", "never signed in", "Account Administrator, Staff", "audit.view", "1"]
    assert rows["staff03@corp.example.org"][3] == "suspended" and rows["staff04@corp.example.org"][3] == "active"
    assert rows["owner@example.org"][2:5] == ["no", "active", "Account Owner"]
    assert rows["staff05@corp.example.org"][4:7] == ["", "", "0"]
    text = client.get(f"/accounts/{account.id}/mailboxes/export.csv").data.decode("utf-8-sig")
    boxes = {row[0]: row for row in csv.reader(io.StringIO(text))}
    assert boxes["team@corp.example.org"][1:6] == ["The Team", "shared", "", "corp.example.org", "Enabled"]
    assert boxes["sales@corp.example.org"][1] == "Sal Es" and boxes["bare@corp.example.org"][1] == ""
    assert boxes["staff00@corp.example.org"][2:4] == ["personal", "staff00@corp.example.org"]
    assert len(boxes) == 1 + 6  # the header, three personal mailboxes and three shared ones
    # A member with no right over the account's mailboxes exports the one they were given, no other.
    grant_mailbox_role(owner, account, staff["outsider"], team.id, db.session.execute(
        db.select(Role).where(Role.system_key == "mailbox_delegate")).scalar_one())
    db.session.commit()
    client.post("/logout")
    auth.login("guest@elsewhere.example")
    text = client.get(f"/accounts/{account.id}/mailboxes/export.csv").data.decode("utf-8-sig")
    assert [row[0] for row in csv.reader(io.StringIO(text))][1:] == ["team@corp.example.org"]
    assert client.get(f"/accounts/{account.id}/members/export.csv").status_code == 403


@pytest.mark.parametrize("path", ["members/export.csv", "members/export.xlsx?kind=corporate",
                                  "mailboxes/export.csv", "mailboxes/export.xlsx?q=box"])
def test_export__as_many_statements_for_many_rows_as_for_few(client, auth, owner, account, path):
    from portal.roles.services import create_role
    from tests.seeding import seed
    from tests.web.test_list_statements import counted

    domain = add_domain(owner, account, "example.org", "local")
    domain.status, domain.verified_at = ENABLED, domain.created_at
    role = create_role(owner, account, name="Staff", scope="account", description="", permissions={"members.view"})
    db.session.commit()
    auth.login("owner@example.org")
    counts, seeded = [], 0
    for size in (3, 40):
        seed(account, domain, role, size, seeded)
        seeded += size
        client.get(f"/accounts/{account.id}/{path}")  # what the process keeps is read before counting
        with counted() as statements:
            response = client.get(f"/accounts/{account.id}/{path}")
        assert response.status_code == 200
        counts.append(len(statements))
    assert counts[0] == counts[1], counts
