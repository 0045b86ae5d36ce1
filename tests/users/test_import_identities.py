"""The import creates and renames people no more freely than the pages do (found by attacker-side
reviews): not at an address this account invited or an alias holds, not renaming someone who
holds rights the uploader does not, and taking over a registration nobody confirmed."""

import io

import pytest

from openpyxl import load_workbook

from portal.auth.models import User
from portal.extensions import db
from portal.roles.services import system_role
from portal.users import imports
from portal.users.models import DONE
from tests.users.test_import import _preview, _template
from tests.users.workbooks import fill


def _user(email):
    return db.session.execute(db.select(User).where(User.email == email)).scalar_one_or_none()


def _run(actor, account, run, run_jobs):
    imports.confirm(actor, run)
    db.session.commit()
    run_jobs()
    run_jobs()
    db.session.refresh(run)
    assert run.status == DONE
    result = load_workbook(io.BytesIO(run.result))["Users"]
    return {row[2]: (row[5], row[6]) for row in result.iter_rows(min_row=2, values_only=True)}


def _invite(inviter, account, email):
    from portal.invitations import services as invitations

    invitation = invitations.start(inviter, account, email)
    invitations.add_grant(inviter, invitation, role_id=system_role("administrator").id)
    invitations.send_invitation(inviter, invitation)
    db.session.commit()
    return invitation


def test_not_at_an_address_this_account_invited(owner, account, domain, make, run_jobs):
    _invite(owner, account, "cto@example.org")
    data = fill(_template(account), users=[("C", "To", "cto@example.org", "N", "cto@home.example"),
                                           ("Ann", "Able", "ann@example.org", "N", "ann@home.example")])
    run = _preview(owner, account, data)
    assert (run.to_create, run.to_skip) == (1, 1)
    [skipped] = [u for u in run.plan["users"] if u["skip"]]
    assert skipped["email"] == "cto@example.org" and skipped["skip"] == "invitation_waits"
    statuses = _run(owner, account, run, run_jobs)
    assert statuses["cto@example.org"][0] == "skipped" and "invitation is waiting" in statuses["cto@example.org"][1]
    assert _user("cto@example.org") is None and _user("ann@example.org") is not None


def test_another_accounts_invitation_does_not_make_it_skip_its_own_person(owner, account, domain, make, run_jobs):
    """An attacker-side review: any account could make another's import skip its own people by
    inviting them (the invitation stays theirs to answer, with its own link)."""
    boss = make.user("boss@partner.example")
    _invite(boss, make.account(boss, "Partner"), "cto@example.org")
    run = _preview(owner, account, fill(_template(account), users=[("C", "To", "cto@example.org", "N",
                                                                      "cto@home.example")]))
    assert (run.to_create, run.to_skip) == (1, 0)
    statuses = _run(owner, account, run, run_jobs)
    assert statuses["cto@example.org"][0] == "created" and _user("cto@example.org") is not None


@pytest.mark.parametrize("inviting", ["this account", "another account"])
def test_an_invitation_sent_after_the_preview_is_seen_when_the_import_runs(owner, account, domain, make, run_jobs,
                                                                           inviting):
    run = _preview(owner, account, fill(_template(account), users=[("C", "To", "cto@example.org", "N",
                                                                      "cto@home.example")]))
    assert run.to_create == 1
    boss = make.user("boss@partner.example")
    _invite(*((owner, account) if inviting == "this account" else (boss, make.account(boss, "Partner"))),
            "cto@example.org")
    statuses = _run(owner, account, run, run_jobs)
    if inviting == "this account":
        assert statuses["cto@example.org"][0] == "skipped" and _user("cto@example.org") is None
    else:
        assert statuses["cto@example.org"][0] == "created" and _user("cto@example.org") is not None


def test_not_at_an_address_an_alias_holds(owner, account, domain, run_jobs):
    from portal.mailboxes import services as mailboxes

    sales = mailboxes.create_mailbox(owner, account, domain, "sales")
    db.session.commit()
    run_jobs()
    mailboxes.add_alias(owner, db.session.get(type(sales), sales.id), "boss@example.org")
    db.session.commit()
    run = _preview(owner, account, fill(_template(account), users=[("B", "Oss", "boss@example.org", "N",
                                                                      "boss@home.example")]))
    assert run.to_create == 0 and run.plan["users"][0]["skip"] == "alias"
    assert _user("boss@example.org") is None


def test_renames_only_those_the_uploader_outranks(owner, account, domain, make, run_jobs):
    admin = make.user("admin@example.org", name="Ada Admin")
    make.member(account, admin, roles=("administrator",))
    plain = make.user("plain@example.org", name="Pat Plain")
    make.member(account, plain)
    hr = make.user("hr@elsewhere.example")
    make.member(account, hr, permissions=("members.view", "users.create"))
    data = fill(_template(account), users=[("Mallory", "Now", "admin@example.org", "N"),
                                           ("Owner", "Renamed", "owner@example.org", "N"),
                                           ("Pat", "Renamed", "plain@example.org", "N"),
                                           ("Ada", "Admin", "admin2@example.org", "N")])
    run = _preview(hr, account, data)
    skips = {u["email"]: u["skip"] for u in run.plan["users"]}
    assert skips == {"admin@example.org": "outranked", "owner@example.org": "outranked",
                     "plain@example.org": "", "admin2@example.org": ""}
    statuses = _run(hr, account, run, run_jobs)
    assert "rights you do not hold" in statuses["admin@example.org"][1]
    db.session.expire_all()
    assert _user("admin@example.org").name == "Ada Admin" and _user("owner@example.org").name == "Olga Owner"
    assert _user("plain@example.org").name == "Pat Renamed"


def test_the_same_name_again_is_no_rename(owner, account, domain, make):
    admin = make.user("admin@example.org", name="Ada Admin")
    make.member(account, admin, roles=("administrator",))
    hr = make.user("hr@elsewhere.example")
    make.member(account, hr, permissions=("members.view", "users.create"))
    run = _preview(hr, account, fill(_template(account), users=[("Ada", "Admin", "admin@example.org", "N")]))
    assert run.plan["users"][0]["skip"] == "" and run.to_update == 1


def test_takes_over_a_registration_nobody_confirmed(app, owner, account, domain, make, run_jobs):
    make.user("ceo@example.org", verified=False, password="a stranger's password")
    run = _preview(owner, account, fill(_template(account), users=[("Cee", "Eo", "ceo@example.org", "N")]))
    _run(owner, account, run, run_jobs)
    ceo = _user("ceo@example.org")
    assert ceo.is_corporate and ceo.name == "Cee Eo" and ceo.password_hash is None
    assert app.test_client().post("/login", data={"email": "ceo@example.org",
                                                  "password": "a stranger's password"}).status_code == 422


def test_the_run_checks_renames_again(owner, account, domain, make, run_jobs):
    """Found by an attacker-side review: the preview checked who the uploader may rename, the run did
    not. Pat was made an administrator, and CFO created as one, between the preview and the run."""
    from portal.roles.models import Grant
    from portal.users import services as users

    pat = make.user("pat@example.org", name="Pat Plain")
    membership = make.member(account, pat)
    hr = make.user("hr@elsewhere.example")
    make.member(account, hr, permissions=("members.view", "users.create"))
    run = _preview(hr, account, fill(_template(account), users=[("Mallory", "Impostor", "pat@example.org", "N"),
                                                                ("New", "Person", "cfo@example.org", "N",
                                                                 "cfo@home.example")]))
    assert (run.to_create, run.to_update, run.to_skip) == (1, 1, 0)
    db.session.add(Grant(membership_id=membership.id, account_id=account.id, role_id=system_role("administrator").id))
    cfo, _link = users.create_corporate_user(owner, account, first_name="Chief", last_name="Fo",
                                             email="cfo@example.org", personal_mailbox=False)
    cfo_membership = db.session.execute(db.select(type(membership)).where(
        type(membership).user_id == cfo.id)).scalar_one()
    db.session.add(Grant(membership_id=cfo_membership.id, account_id=account.id,
                         role_id=system_role("administrator").id))
    db.session.commit()
    statuses = _run(hr, account, run, run_jobs)
    assert statuses["pat@example.org"][0] == "skipped" and statuses["cfo@example.org"][0] == "skipped"
    db.session.expire_all()
    assert _user("pat@example.org").name == "Pat Plain" and _user("cfo@example.org").name == "Chief Fo"
    assert (run.created, run.updated, run.skipped) == (0, 0, 2)


def test_rows_are_bounded_in_all_the_sheets_together(app, owner, account, domain, monkeypatch):
    """Found by an attacker-side review: 245 sheets of up to the row limit each (every one naming the
    same mailbox) made a 224 kB upload cost the worker 940 MB and 56 s to preview."""
    from tests.users.test_import import _refusal

    from openpyxl import load_workbook

    monkeypatch.setitem(app.config["PORTAL"], "IMPORT_MAX_ROWS", 100)
    book = load_workbook(io.BytesIO(_template(account)))
    for number in range(13):  # 13 sheets of 100 rows: none over the limit, 1,300 in all (over 3 x 100 + 1,000)
        sheet = book.create_sheet(f"copy {number}")
        sheet.append(["Mailbox", "sales@example.org"])
        for row in range(99):
            sheet.append([f"p{row}@example.org", "Mailbox Delegate", None])
    buffer = io.BytesIO()
    book.save(buffer)
    assert "filled rows in all its sheets" in _refusal(owner, account, buffer.getvalue())


def test_problems_beyond_those_shown_are_counted_not_kept(owner, account, domain, monkeypatch):
    from portal.users import workbook

    monkeypatch.setattr(workbook, "SHOWN_PROBLEMS", 3)
    users = [("", "NoFirst", f"n{n}@example.org", "N") for n in range(8)]
    run = _preview(owner, account, fill(_template(account), users=users))
    assert run.problem_count == 8 and len(run.problems) == 3


def test_a_low_row_limit_bounds_the_people_not_the_templates_own_reference_sheets(app, owner, account, domain,
                                                                                   monkeypatch):
    """Below about 40 rows, the template's own Permissions sheet was over the per-sheet limit:
    no workbook, not even the template filled with one person, could be imported."""
    from tests.users.test_import import _refusal

    monkeypatch.setitem(app.config["PORTAL"], "IMPORT_MAX_ROWS", 5)
    users = [("Ann", "Lee", f"ann{n}@example.org", "") for n in range(5)]
    run = _preview(owner, account, fill(_template(account), users=users))
    assert run.status != "refused" and not run.fatal, run.fatal
    nine = [("Ann", "Lee", f"ann{n}@example.org", "") for n in range(9)]
    assert "more than 5 rows" in _refusal(owner, account, fill(_template(account), users=nine))


def test_only_an_owner_gives_the_owner_role_in_a_workbook(owner, account, domain, make):
    """A deputy holding every permission one by one made an imported user an owner (and chose the
    recovery address its onboarding link went to)."""
    from portal.roles import catalogue

    deputy = make.member(account, make.user("deputy@example.net"),
                         permissions=tuple(sorted(catalogue.codes(catalogue.ACCOUNT))))
    data = fill(_template(account), users=[("Mal", "Lory", "mallory@example.org", "N")],
                account_rows=[("mallory@example.org", "Account Owner", None)])
    refused = _preview(deputy.user, account, data)
    assert [problem["code"] for problem in refused.problems] == ["owner_role_not_yours"]
    allowed = _preview(owner, account, data)
    assert allowed.problem_count == 0, allowed.problems
