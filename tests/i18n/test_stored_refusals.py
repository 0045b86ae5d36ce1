"""Refusals kept for others to read later, read in each reader's language: why a personal mailbox
was not made (in the audit log), why a workbook was refused (on the import's page and in the audit
log) and why a bulk action left someone out (on the run's page), whatever the language of whoever
caused them."""

from __future__ import annotations

import html

from flask import current_app

from portal.audit.models import AuditEvent
from portal.bulk.models import BulkRun
from portal.extensions import db
from portal.i18n import in_language, shown
from portal.jobs.worker import Worker
from portal.roles.models import Role
from portal.users import corporate, imports
from portal.users.models import ImportRun
from tests.accounts.test_bulk import _confirm, _ids, staff  # noqa: F401  (fixture: staff)
from tests.mailboxes.conftest import enabled_domain


def _both(stored: str) -> tuple[str, str]:
    with in_language("en"):
        english = shown(stored)
    with in_language("fr"):
        french = shown(stored)
    return english, french


def _reader(make, account, email: str, locale: str):
    person = make.user(email)
    person.locale = locale
    make.member(account, person, roles=("owner",))
    db.session.commit()
    return person


def _page(client, auth, email: str, path: str) -> str:
    auth.logout()
    auth.login(email)
    answer = client.get(path)
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def test_a_personal_mailbox_refused_reads_in_each_readers_language(client, auth, owner, account, make):
    domain = enabled_domain(owner, account)
    domain.settings = {"max_users": 0}
    jane = make.user("jane@example.org", name="Jane Doe")
    actor = _reader(make, account, "french-admin@example.net", "fr")
    with in_language("fr"):  # the refusal is met in its actor's language
        assert corporate.make_corporate(jane, domain, personal_mailbox=True, actor=actor) is None
    db.session.commit()
    event = db.session.execute(db.select(AuditEvent).where(
        AuditEvent.action == "user.personal_mailbox_refused")).scalar_one()
    english, french = _both(event.details["reason"])
    assert english == "example.org allows at most 0 mailboxes (see its settings)."
    assert french != english and "example.org" in french
    _reader(make, account, "english-admin@example.net", "en")
    read_in_english = _page(client, auth, "english-admin@example.net", f"/accounts/{account.id}/audit")
    read_in_french = _page(client, auth, "french-admin@example.net", f"/accounts/{account.id}/audit")
    assert html.escape(english, quote=False) in read_in_english
    assert html.escape(french, quote=False) in read_in_french and html.escape(english, quote=False) not in read_in_french


def test_a_refused_workbook_reads_in_each_readers_language(client, auth, owner, account, make):
    uploader = _reader(make, account, "french-admin@example.net", "fr")
    with in_language("fr"):
        run = imports.receive(uploader, account, "users.xlsx", _workbook_without_a_users_sheet())
    db.session.commit()
    Worker(current_app._get_current_object(), name="test-worker").run_due()
    db.session.expire_all()
    run = db.session.get(ImportRun, run.id)
    assert run.status == "refused"
    english, french = _both(run.fatal)
    assert english.startswith("The workbook has no “Users” sheet") and french != english
    event = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "users.import_refused")).scalar_one()
    assert _both(event.details["reason"]) == (english, french)
    _reader(make, account, "english-admin@example.net", "en")
    path = f"/accounts/{account.id}/users/import/{run.id}"
    assert html.escape(english) in _page(client, auth, "english-admin@example.net", path)
    assert html.escape(french) in _page(client, auth, "french-admin@example.net", path)


def _workbook_without_a_users_sheet() -> bytes:
    import io

    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "Something else"
    book.active.append(["a", "b"])
    output = io.BytesIO()
    book.save(output)
    return output.getvalue()


def test_a_bulk_refusal_reads_in_each_readers_language(client, auth, account, staff, run_jobs, make):  # noqa: F811
    helper = make.user("helper@example.org")
    helper.locale = "fr"
    make.member(account, helper, permissions=("members.view", "access.grant"))
    db.session.commit()
    auth.login("helper@example.org")
    everything = db.session.execute(db.select(Role).where(Role.system_key == "owner")).scalar_one()
    _confirm(client, f"/accounts/{account.id}/members/bulk",
             data={"action": "grant_role", "role_id": everything.id,
                   "member": _ids(account, "staff01@corp.example.org")})
    run_jobs()
    run = db.session.execute(db.select(BulkRun)).scalar_one()
    assert run.failed == 1
    english, french = _both(run.problems[0]["message"])
    assert english.startswith("You cannot grant permissions you do not hold yourself")
    assert french.startswith("Vous ne pouvez pas attribuer des droits que vous ne détenez pas")
    path = f"/accounts/{account.id}/bulk/{run.id}"
    assert html.escape(french, quote=False) in _page(client, auth, "helper@example.org", path)
    assert html.escape(english, quote=False) in _page(client, auth, "owner@example.org", path)
