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

    answer = client.post("/login", data={"email": "owner@example.org", "password": "x"},
                         headers={header: "a\x00b"})
    assert answer.status_code == 400 and "NUL" in answer.get_data(as_text=True)
    _, raw = tokens.create(owner, account, name="automation", scopes=set(WRITE_SCOPES), expires_at=None)
    db.session.commit()
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
