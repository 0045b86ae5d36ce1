"""What a fifth attacker-side review found, each held now: a formula reaching a spreadsheet that
splits a CSV line on ';', a settings value of the wrong kind answering 500, a NUL in a header
answering 500 on PostgreSQL, link secrets in the request log, and mailboxes listed to a member who
may not open them."""

from __future__ import annotations

import csv
import io
import logging

import pytest

from portal.domains.models import ENABLED
from portal.domains.services import add_domain
from portal.extensions import db
from portal.mailboxes.services import create_mailbox
from portal.roles.services import create_role, grant_mailbox_role
from portal.spreadsheets import FORMULA_STARTS
from portal.tokens import services as tokens
from tests.api.conftest import WRITE_SCOPES, bearer


@pytest.fixture
def domain(owner, account):
    domain = add_domain(owner, account, "example.org", "local")
    domain.status, domain.verified_at = ENABLED, domain.created_at
    db.session.commit()
    return domain


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_a_csv_export_holds_no_formula_whichever_separator_splits_it(client, auth, owner, account, domain, make,
                                                                       delimiter):
    make.member(account, make.user("mallory@outside.example", name="x;=2+3;"))
    role = create_role(owner, account, name="Staff, -1+1", scope="account", description="", permissions={"audit.view"})
    from portal.roles.services import grant_role, membership_of

    grant_role(owner, account, membership_of(owner, account), role)
    create_mailbox(owner, account, domain, "team", display_name="Team;@SUM(1)|+1")
    db.session.commit()
    auth.login("owner@example.org")
    for target in ("members", "mailboxes"):
        text = client.get(f"/accounts/{account.id}/{target}/export.csv").data.decode("utf-8-sig")
        cells = [cell for row in csv.reader(io.StringIO(text), delimiter=delimiter) for cell in row]
        assert not [cell for cell in cells if cell.startswith(FORMULA_STARTS)], (target, cells)
        # Read as written (commas, every cell quoted), the names are whole, marked as text.
        rows = list(csv.reader(io.StringIO(text)))
        assert all(line.startswith('"') for line in text.splitlines())
        names = {cell for row in rows for cell in row}
        assert ("x;'=2+3;" in names) if target == "members" else ("Team;'@SUM(1)|'+1" in names)


@pytest.mark.parametrize("name", [" =2+3", "\u00a0=2+3", "\u3000=2+3", "\u200b=2+3", "\uff1d2+3", "\t=2+3"])
def test_a_csv_export_holds_no_formula_once_a_spreadsheet_trims_spaces(client, auth, account, make, name):
    make.member(account, make.user("eve@elsewhere.example", name=name))
    auth.login("owner@example.org")
    text = client.get(f"/accounts/{account.id}/members/export.csv").data.decode("utf-8-sig")
    for delimiter in (",", ";"):
        cells = [cell.strip(" \t\u00a0\u3000\u200b") for row in csv.reader(io.StringIO(text), delimiter=delimiter)
                 for cell in row]
        assert not [cell for cell in cells if cell.startswith(FORMULA_STARTS + ("\uff1d",))], cells


def test_a_nul_in_an_uploads_file_name_is_refused(client, auth, owner, account):
    auth.login("owner@example.org")
    answer = client.post(f"/accounts/{account.id}/users/import", content_type="multipart/form-data",
                         data={"workbook": (io.BytesIO(b"PK"), "a\x00b.xlsx")})
    assert answer.status_code == 400 and "NUL" in answer.get_data(as_text=True)


@pytest.mark.parametrize("value", [True, 1, -1, 1.5, "x", {"a": 1}, ["example.net", 3]])
def test_a_settings_value_of_the_wrong_kind_is_refused_not_an_error(client, owner, account, domain, value):
    _, raw = tokens.create(owner, account, name="automation", scopes=set(WRITE_SCOPES), expires_at=None)
    db.session.commit()
    answer = client.put(f"/api/v1/accounts/{account.id}/domains/{domain.id}/settings",
                        json={"values": {"domain_aliases": value}}, headers=bearer(raw))
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert (db.session.get(type(domain), domain.id).settings or {}).get("domain_aliases") in (None, [])


@pytest.mark.parametrize("header", ["User-Agent", "Idempotency-Key", "X-Anything"])
def test_a_nul_in_a_header_is_refused_before_anything_is_stored(client, auth, owner, account, header):
    from portal.auth.models import UserSession

    # Made first: what the test itself records would read the last request's headers.
    _, raw = tokens.create(owner, account, name="automation", scopes=set(WRITE_SCOPES), expires_at=None)
    db.session.commit()
    answer = client.post("/login", data={"email": "owner@example.org", "password": "x"},
                         headers={header: "a\x00b"})
    assert answer.status_code == 400 and "NUL" in answer.get_data(as_text=True)
    answer = client.post(f"/api/v1/accounts/{account.id}/roles", headers={**bearer(raw), header: "a\x00b"},
                         json={"name": "Helpers", "scope": "account", "permissions": ["audit.view"]})
    assert answer.status_code == 400
    assert db.session.execute(db.select(UserSession)).first() is None


def test_link_secrets_are_not_written_to_the_request_log(live_server, caplog):
    import requests

    secret = "s3cr3t-t0ken-never-logged"
    with caplog.at_level(logging.INFO):
        for path in (f"/password/reset/{secret}", f"/welcome/{secret}", f"/verify/{secret}",
                     f"/invitations/{secret}/register", f"/accounts/1/users/reports/1/download?signature={secret}"):
            requests.get(live_server.url(path), timeout=10, allow_redirects=False)
        logging.getLogger("gunicorn.access").info('%(h)s "%(r)s"', {"h": "1.2.3.4", "r": f"GET /welcome/{secret}"})
    lines = [record.getMessage() for record in caplog.records]
    assert [line for line in lines if "/password/reset/[redacted]" in line]  # the request lines were logged
    assert not [line for line in lines if secret in line], lines


def test_a_member_sees_in_lists_only_the_mailboxes_they_may_open(client, auth, owner, account, domain, make):
    from portal.roles.models import Grant, Role

    team = create_mailbox(owner, account, domain, "team")
    sales = create_mailbox(owner, account, domain, "sales")
    member = make.member(account, make.user("helper@elsewhere.example"))
    db.session.add(Grant(membership_id=member.id, account_id=account.id, mailbox_id=team.id,
                         permission="mailbox.send_as"))
    sender = create_role(owner, account, name="Sender", scope="mailbox", description="",
                         permissions={"mailbox.send_as"})
    viewer = create_role(owner, account, name="Viewer", scope="mailbox", description="",
                         permissions={"mailbox.view", "mailbox.send_as"})
    grant_mailbox_role(owner, account, member, sales.id, sender)
    db.session.commit()
    auth.login("helper@elsewhere.example")

    def listed() -> dict[str, list[str]]:
        page = client.get(f"/accounts/{account.id}/mailboxes").get_data(as_text=True)
        text = client.get(f"/accounts/{account.id}/mailboxes/export.csv").data.decode("utf-8-sig")
        return {"page": [name for name in ("team@example.org", "sales@example.org") if name in page],
                "export": [row[0] for row in csv.reader(io.StringIO(text))][1:]}

    assert listed() == {"page": [], "export": []}
    assert client.get(f"/accounts/{account.id}/mailboxes/{team.id}").status_code == 403
    grant_mailbox_role(owner, account, member, sales.id, viewer)
    grant_mailbox_role(owner, account, member, team.id, db.session.execute(
        db.select(Role).where(Role.system_key == "mailbox_delegate")).scalar_one())
    db.session.commit()
    assert listed() == {"page": ["team@example.org", "sales@example.org"],
                        "export": ["sales@example.org", "team@example.org"]}


def test_a_database_error_does_not_name_its_values(app):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    with pytest.raises(DBAPIError) as error:
        db.session.execute(text("SELECT * FROM no_such_table WHERE v = :v"), {"v": "s3cret-value"})
    db.session.rollback()
    assert "no_such_table" in str(error.value) and "s3cret-value" not in str(error.value)


def test_a_manager_of_every_mailbox_lists_every_mailbox(client, auth, owner, account, domain, make):
    create_mailbox(owner, account, domain, "team")
    create_mailbox(owner, account, domain, "sales")
    member = make.member(account, make.user("manager@elsewhere.example"))
    role = create_role(owner, account, name="Mail managers", scope="account", description="",
                       permissions={"mailboxes.manage"})
    from portal.roles.services import grant_role

    grant_role(owner, account, member, role)
    db.session.commit()
    auth.login("manager@elsewhere.example")
    page = client.get(f"/accounts/{account.id}/mailboxes").get_data(as_text=True)
    assert "team@example.org" in page and "sales@example.org" in page


def test_pages_behind_a_link_secret_send_no_referer_and_log_lines_hide_it_anywhere(client):
    import secrets as random

    from portal.web.logs import redact

    secret = random.token_urlsafe(32)
    assert client.get(f"/password/reset/{secret}").headers["Referrer-Policy"] == "no-referrer"
    assert client.get(f"/login?next=/invitations/{secret}").headers["Referrer-Policy"] == "no-referrer"
    assert client.get("/login").headers["Referrer-Policy"] == "same-origin"
    for line in (f'"GET /static/css/portal.css HTTP/1.1" 200 "http://host:8000/password/reset/{secret}"',
                 f'"GET /login?next=%2Finvitations%2F{secret}%2Fregister HTTP/1.1"',
                 f'"GET /login?next=/accounts/1/users/reports/1/download%3Fsignature%3D{secret} HTTP/1.1"',
                 f"/login/sso/callback?code={secret}&state={secret}"):
        assert secret not in redact(line), line
    assert redact("/accounts/1/invitations/5/send") == "/accounts/1/invitations/5/send"
