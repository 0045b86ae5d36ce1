import io
import time

from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from openpyxl import load_workbook

from portal.extensions import db
from portal.users import reports, services
from portal.users.models import UsersReport
from tests.conftest import first_link


def test_report__built_in_the_background_mailed_as_a_link_and_listed(owner, account, domain, make, client, auth,
                                                                     run_jobs, smtp_sink):
    services.create_corporate_user(owner, account, first_name="Jane", last_name="Doe", email="jane@example.org",
                                   personal_mailbox=True)
    make.member(account, make.user("guest@elsewhere.example"), roles=("administrator",))
    db.session.commit()
    auth.login("owner@example.org")
    assert client.post(f"/accounts/{account.id}/users/reports").status_code == 302
    run_jobs()
    message = [m for m in smtp_sink.wait_for("owner@example.org") if "report" in m["Subject"]][0]
    link = first_link(smtp_sink.text(message), "/download").removeprefix("http://localhost")
    download = client.get(link)
    assert download.status_code == 200
    sheet = load_workbook(io.BytesIO(download.data))["Users"]
    rows = {row[1]: row for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert rows["jane@example.org"][2] == "yes" and rows["jane@example.org"][6] == "jane@example.org"
    assert rows["jane@example.org"][3] == "invited, no password yet" and rows["jane@example.org"][7] == "never"
    assert rows["guest@elsewhere.example"][2] == "no" and rows["guest@elsewhere.example"][3] == "active"
    assert rows["guest@elsewhere.example"][4] == "Account Administrator"
    assert rows["owner@example.org"][4] == "Account Owner"
    page = client.get(f"/accounts/{account.id}/users/reports").get_data(as_text=True)
    assert "Download" in page and "/download?signature=" in page


def test_report_link__only_for_those_allowed_and_expires(owner, account, make, client, auth, run_jobs, app):
    report = reports.request_report(owner, account)
    db.session.commit()
    run_jobs()
    db.session.refresh(report)
    link = reports.signed_link(report).removeprefix("http://localhost")
    make.member(account, make.user("plain@example.net"))
    auth.login("plain@example.net")
    assert client.get(link).status_code == 403
    client.post("/logout")
    assert client.get(link).status_code == 302  # to the log-in page
    auth.login("owner@example.org")
    assert client.get(link.split("?")[0] + "?signature=forged").status_code == 410
    class EightDaysAgo(TimestampSigner):
        def get_timestamp(self):
            return int(time.time()) - 8 * 86400

    old = URLSafeTimedSerializer(app.secret_key, salt="users-report", signer=EightDaysAgo).dumps({"report": report.id})
    response = client.get(link.split("?")[0] + f"?signature={old}")
    assert response.status_code == 410 and "has expired" in response.get_data(as_text=True)
    assert client.get(link).status_code == 200
    assert db.session.get(UsersReport, report.id).rows == 1


def test_report__says_who_is_suspended_as_the_users_list_does(owner, account, domain, client, auth, run_jobs):
    """A suspended person with a password read "active" in the report (the list and its export
    said "suspended"); an attacker-side review found it."""
    from portal.timeutil import utcnow

    person, _link = services.create_corporate_user(owner, account, first_name="Sus", last_name="Pended",
                                                   email="sus@example.org", personal_mailbox=False)
    person.password_hash = "set"
    db.session.commit()
    services.suspend(owner, account, person)
    db.session.commit()
    assert person.suspended_at is not None and person.suspended_at <= utcnow()
    report = reports.request_report(owner, account)
    db.session.commit()
    run_jobs()
    db.session.refresh(report)
    auth.login("owner@example.org")
    download = client.get(reports.signed_link(report).removeprefix("http://localhost"))
    rows = {row[1]: row for row in load_workbook(io.BytesIO(download.data))["Users"].iter_rows(min_row=2,
                                                                                              values_only=True)}
    assert rows["sus@example.org"][3] == "suspended" and rows["owner@example.org"][3] == "active"
