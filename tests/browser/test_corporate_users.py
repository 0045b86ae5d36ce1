"""Corporate users in headless Chromium against the live server.

Issue 5's acceptance flow: download the workbook template, fill it with
openpyxl (valid rows plus planted errors), upload it, see every planted error
in the preview, fix them, confirm, watch the progress bar reach the end
without a reload, check the result workbook's statuses, then generate the
users report and open its link from the e-mail. And one user made through the
form: the onboarding link shown once, used from another browser, and the
user's Settings tab.

The run page is seen waiting first: two held jobs fill both of the live
worker's slots until the test lets them go, so the page is known to poll
itself from "queued" to the end rather than to load already done. Set
``PORTAL_TEST_SCREENSHOTS`` to a folder to keep screenshots of the preview
with its problems, the finished progress and the Users page.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Page, expect

from portal.extensions import db
from portal.jobs.registry import handler
from portal.jobs.services import enqueue
from tests.browser.helpers import assert_not_reloaded, log_in, mark_window, open_section, screenshot
from tests.conftest import PASSWORD, first_link
from tests.users.conftest import domain, shared  # noqa: F401  (fixtures: an enabled domain and two shared mailboxes)
from tests.users.workbooks import fill

pytestmark = pytest.mark.browser

# Long enough for a job to be picked up, run and polled for by the page.
SLOW = 20_000
HOLD_KIND = "test.browser_hold"
# The longest a held job keeps its slot if a test never lets it go.
HOLD_SECONDS = 30

PEOPLE = [("Ada", "Lovelace"), ("Alan", "Turing"), ("Grace", "Hopper"), ("Edsger", "Dijkstra"),
          ("Barbara", "Liskov"), ("Donald", "Knuth"), ("Margaret", "Hamilton"), ("Dennis", "Ritchie"),
          ("Frances", "Allen"), ("Ken", "Thompson"), ("Radia", "Perlman"), ("John", "McCarthy"),
          ("Karen", "Jones"), ("Tony", "Hoare"), ("Hedy", "Lamarr"), ("Niklaus", "Wirth"),
          ("Sophie", "Wilson"), ("Leslie", "Lamport"), ("Adele", "Goldberg"), ("Robin", "Milner")]
VALID = [(first, last, f"{first.lower()}.{last.lower()}@example.org", "Y" if index % 3 == 0 else "N" if index % 3 == 1
          else "") for index, (first, last) in enumerate(PEOPLE)]
ADDRESSES = [row[2] for row in VALID]
ADMINS = ADDRESSES[:3]
AUDITORS = ADDRESSES[3:5]
WITH_BAD_ROLE = ADDRESSES[5]
SALES_DELEGATES = ADDRESSES[6:9]
SUPPORT_READERS = ADDRESSES[9:11]

# Rows on the Users sheet after the header and the 20 valid users (rows 2 to 21).
NO_FIRST_ROW, DUPLICATE_ROW, BAD_YES_NO_ROW, FORMULA_ROW = 22, 23, 24, 25
PLANTED_USERS = [("", "Nofirst", "nora.nofirst@example.org", "N"),
                 ("Duplicate", "Row", ADDRESSES[1], "N"),
                 ("Maybe", "Baker", "maybe.baker@example.org", "maybe"),
                 ("Fiona", "=1+1", "fiona.formula@example.org", "")]
ACCOUNT_ROWS = ([(email, "Account Administrator", None) for email in ADMINS]
                + [(email, None, "audit.view") for email in AUDITORS])
BAD_ROLE_ROW = len(ACCOUNT_ROWS) + 2
GHOST_ROW = BAD_ROLE_ROW + 1
PLANTED_ACCOUNT = [(WITH_BAD_ROLE, "Chief Wizard", None), ("ghost@example.org", "Account Administrator", None)]
MAILBOX_ROWS = {"sales@example.org": [(email, "Mailbox Delegate", None) for email in SALES_DELEGATES],
                "support@example.org": [(email, None, "mailbox.read") for email in SUPPORT_READERS]}

PLANTED_PROBLEMS = [
    ("Users", NO_FIRST_ROW, "A", "The first name is missing."),
    ("Users", DUPLICATE_ROW, "C", f"{ADDRESSES[1]} is listed twice (first on row 3)."),
    ("Users", BAD_YES_NO_ROW, "D", "“maybe” is not Y, N or empty."),
    ("Users", FORMULA_ROW, "B", "Formulas, and values starting with = + - or @, are not accepted: type the value itself."),
    ("Account", BAD_ROLE_ROW, "B", "There is no account role named “Chief Wizard” (see the Roles sheet)."),
    ("Account", GHOST_ROW, "A", "ghost@example.org is not on the Users sheet."),
]


# -- the held worker --------------------------------------------------------------------

class _Hold:
    started = threading.Semaphore(0)
    gate = threading.Event()


@handler(HOLD_KIND, max_attempts=1)
def _hold_a_slot(job) -> None:
    """Keeps one worker slot busy until the test opens the gate."""
    _Hold.started.release()
    _Hold.gate.wait(HOLD_SECONDS)


class HeldWorker:
    def hold(self) -> None:
        """Fill both of the live worker's slots; return once both are taken."""
        _Hold.gate.clear()
        for _ in range(2):
            enqueue(HOLD_KIND, {})
        db.session.commit()
        for _ in range(2):
            assert _Hold.started.acquire(timeout=SLOW / 1000), "the worker did not take the held jobs"

    def release(self) -> None:
        _Hold.gate.set()


@pytest.fixture
def held_worker(live_server):
    while _Hold.started.acquire(blocking=False):
        pass
    yield HeldWorker()
    _Hold.gate.set()


# -- helpers ------------------------------------------------------------------------------

def _create_menu(page: Page, item: str) -> None:
    """Follow one of the Users page's creation links."""
    labels = {"Create users": "Create users from a workbook", "Create user": "Create user"}
    page.locator(".page-header").get_by_role("link", name=labels[item], exact=True).click()


def _upload(page: Page, path: Path) -> None:
    expect(page.get_by_role("heading", name="Create users from a workbook")).to_be_visible()
    page.get_by_label("Workbook (.xlsx)").set_input_files(path)
    page.get_by_role("button", name="Check the workbook").click()
    expect(page.get_by_role("heading", name=path.name)).to_be_visible()


def _tiles(page: Page):
    return page.locator("#import-progress .tile")


def _download(page: Page, tmp_path: Path, trigger) -> Path:
    with page.expect_download() as info:
        trigger()
    download = info.value
    assert download.failure() is None, download.failure()
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    return target


def _fix(source: Path, target: Path) -> None:
    """What the admin does in a spreadsheet program after reading the preview."""
    book = load_workbook(source)
    users, grants = book["Users"], book["Account"]
    assert users[f"C{NO_FIRST_ROW}"].value == "nora.nofirst@example.org"
    users[f"A{NO_FIRST_ROW}"] = "Nora"
    users[f"C{DUPLICATE_ROW}"] = "duplicate.row@example.org"
    users[f"D{BAD_YES_NO_ROW}"] = "Y"
    users[f"B{FORMULA_ROW}"] = "Formby"
    assert grants[f"B{BAD_ROLE_ROW}"].value == "Chief Wizard" and grants[f"A{GHOST_ROW}"].value == "ghost@example.org"
    grants[f"B{BAD_ROLE_ROW}"] = "Account Administrator"
    grants.delete_rows(GHOST_ROW)
    book.save(target)


def _sheet_rows(path: Path, key_column: int) -> tuple[tuple, dict]:
    sheet = load_workbook(path)["Users"]
    header, *rows = list(sheet.iter_rows(values_only=True))
    return header, {row[key_column]: row for row in rows}


# -- the acceptance flow ------------------------------------------------------------------

def test_import__template_planted_errors_fix_progress_result_and_report_link(
        page: Page, live_server, held_worker, owner, account, shared, smtp_sink, tmp_path):
    log_in(page, live_server, "owner@example.org")
    open_section(page, "Users")
    _create_menu(page, "Create users")

    template = _download(page, tmp_path, lambda: page.get_by_role("link", name="Download the template").click())
    assert template.name == "users-template.xlsx"
    assert load_workbook(template).sheetnames == ["Roles", "Permissions", "Users", "Account",
                                                  "sales@example.org", "support@example.org"]
    planted = tmp_path / "staff.xlsx"
    planted.write_bytes(fill(template.read_bytes(), users=VALID + PLANTED_USERS,
                             account_rows=ACCOUNT_ROWS + PLANTED_ACCOUNT, mailbox_rows=MAILBOX_ROWS))

    # Every planted error at once, with where it is and what is wrong.
    _upload(page, planted)
    expect(_tiles(page)).to_have_text(["19 to create", "0 to update", "5 to skip", "6 problems"])
    expect(page.get_by_role("heading", name="Problems (6)")).to_be_visible()
    problems = page.locator("#import-progress table tbody tr")
    expect(problems).to_have_count(len(PLANTED_PROBLEMS))
    for sheet, row, column, message in PLANTED_PROBLEMS:
        expect(problems.filter(has_text=message).locator("td")).to_have_text([sheet, str(row), column, message])
    expect(page.get_by_text("The 5 rows with problems will not be created.")).to_be_visible()
    screenshot(page, "import-preview-problems")

    # Fixed, the same workbook passes clean.
    page.get_by_role("link", name="Fix the workbook and upload again").click()
    fixed = tmp_path / "staff-fixed.xlsx"
    _fix(planted, fixed)
    _upload(page, fixed)
    expect(_tiles(page)).to_have_text(["24 to create", "0 to update", "0 to skip", "0 problems"])
    expect(page.get_by_role("table")).to_have_count(0)

    # Confirmed while the worker is busy: the page waits, then polls itself to the end.
    run_url = page.url
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if request.url == run_url
            and request.headers.get("hx-request") and not request.headers.get("hx-boosted") else None)
    held_worker.hold()
    page.get_by_role("button", name="Create 24 users").click()
    progress = page.get_by_role("progressbar", name="Import progress")
    expect(progress).to_have_attribute("aria-valuenow", "0")
    expect(page.locator(".progress")).to_contain_text("0 of 24 rows · 0%")
    expect(page.locator(".status-line")).to_have_text("Status: Queued")
    mark_window(page)

    held_worker.release()
    expect(progress).to_have_attribute("aria-valuenow", "100", timeout=SLOW)
    expect(page.locator(".progress")).to_contain_text("24 of 24 rows · 100%")
    expect(page.locator(".status-line")).to_have_text("Status: Done")
    expect(_tiles(page)).to_have_text(["24 created", "0 updated", "0 skipped"])
    assert_not_reloaded(page, "the progress polling")
    assert page.url == run_url
    assert polls, "the page never polled: it loaded already done"
    screenshot(page, "import-progress-done")

    result = _download(page, tmp_path,
                       lambda: page.get_by_role("link", name="Download the result workbook").click())
    header, statuses = _sheet_rows(result, key_column=2)
    assert header[4:] == ("Recovery address (optional)", "Status", "Message")
    expected = ADDRESSES + ["nora.nofirst@example.org", "duplicate.row@example.org", "maybe.baker@example.org",
                            "fiona.formula@example.org"]
    assert sorted(statuses) == sorted(expected)
    assert {email: row[5] for email, row in statuses.items()} == {email: "created" for email in expected}

    open_section(page, "Users")
    for email in expected:
        expect(page.locator("tbody tr", has_text=email)).to_contain_text("corporate")
    expect(page.locator("tbody tr", has_text=ADMINS[0])).to_contain_text("Account Administrator")
    expect(page.locator("tbody tr", has_text=WITH_BAD_ROLE)).to_contain_text("Account Administrator")
    expect(page.locator("tbody tr", has_text=AUDITORS[0])).to_contain_text("Read the audit log")
    screenshot(page, "users-page")

    # The report: built in the background, mailed as a link that downloads it.
    page.get_by_role("link", name="Users report").click()
    expect(page.get_by_role("heading", name="Users reports")).to_be_visible()
    page.get_by_role("button", name="Generate report").click()
    expect(page.get_by_text("The report is being generated")).to_be_visible()
    smtp_sink.wait_for("owner@example.org", timeout=SLOW / 1000)
    [message] = [m for m in smtp_sink.to("owner@example.org") if "users report" in m["Subject"]]
    link = first_link(smtp_sink.text(message), "/download")
    assert link.startswith(live_server.url(f"/accounts/{account.id}/users/reports/"))
    expect(page.locator("#report-list tbody tr").first).to_contain_text("Done", timeout=SLOW)
    expect(page.locator("#report-list tbody tr").first).to_contain_text("25")

    report = _download(page, tmp_path, lambda: page.evaluate("url => { window.location.href = url; }", link))
    assert re.fullmatch(r"users-report-\d{8}-\d{4}\.xlsx", report.name)
    header, rows = _sheet_rows(report, key_column=1)
    assert header[:5] == ("Name", "E-mail", "Corporate", "Status", "Account roles")
    assert set(rows) == set(expected) | {"owner@example.org"}
    for email in expected:
        assert rows[email][2:4] == ("yes", "invited, no password yet"), rows[email]
    assert rows["ada.lovelace@example.org"][0] == "Ada Lovelace"
    assert rows["fiona.formula@example.org"][0] == "Fiona Formby"
    for email in ADMINS + [WITH_BAD_ROLE]:
        assert rows[email][4] == "Account Administrator"
    for email in AUDITORS:
        assert rows[email][5] == "audit.view"
    for email in SALES_DELEGATES:
        assert "sales@example.org" in rows[email][6]
    for email in SUPPORT_READERS:
        assert "support@example.org" in rows[email][6]
    for first, last, email, personal in VALID:
        assert (email in (rows[email][6] or "")) == (personal == "Y"), rows[email]
    assert rows["owner@example.org"][4] == "Account Owner"


# -- one user through the form ------------------------------------------------------------

def test_create_user__link_shown_once_used_in_another_browser_then_settings(
        page: Page, live_server, new_context, owner, account, domain):
    log_in(page, live_server, "owner@example.org")
    open_section(page, "Users")
    _create_menu(page, "Create user")
    expect(page.get_by_role("heading", name="Create user")).to_be_visible()
    page.get_by_label("First name").fill("Grace")
    page.get_by_label("Last name").fill("Hopper")
    page.get_by_label("E-mail address").fill("grace@example.org")
    expect(page.get_by_label("Recovery address (outside the domain)")).to_have_value("")
    # No mailbox and no recovery address: the link can only go through the administrator.
    page.get_by_label("Create a personal mailbox").uncheck()
    page.get_by_role("button", name="Create", exact=True).click()

    expect(page.get_by_role("heading", name="Grace Hopper is ready")).to_be_visible()
    secret = page.get_by_role("alert").filter(has_text="Onboarding link")
    expect(secret).to_contain_text("It is shown this once")
    link = secret.locator("code").inner_text().strip()
    assert link.startswith(live_server.url("/welcome/")), link
    token = link.rsplit("/", 1)[1]

    # Nowhere else shows the link again.
    page.locator("main").get_by_role("link", name="Settings", exact=True).click()
    expect(page.get_by_role("heading", name="Grace Hopper")).to_be_visible()
    expect(page.get_by_text("Grace Hopper has not set a password yet.")).to_be_visible()
    assert token not in page.content()

    # The new user opens the link in a browser of their own.
    theirs = new_context().new_page()
    theirs.goto(link)
    expect(theirs.get_by_role("heading", name="Welcome")).to_be_visible()
    theirs.get_by_label("Password", exact=True).fill(PASSWORD)
    theirs.get_by_label("Password again").fill(PASSWORD)
    theirs.get_by_role("button", name="Save and log in").click()
    expect(theirs.get_by_text("Your password is set. Welcome.")).to_be_visible()
    expect(theirs.get_by_role("button", name="Log out")).to_be_visible()
    expect(theirs.get_by_role("navigation", name="You")).to_contain_text("Grace Hopper")
    expect(theirs.get_by_role("navigation", name="Accounts")).to_contain_text("Acme")
    response = theirs.goto(link)
    assert response is not None and response.status == 410, "the link worked twice"

    # The admin finds them on the Users page; only corporate users have a Settings tab.
    open_section(page, "Users")
    page.locator("main").get_by_role("link", name="owner@example.org").click()
    tabs = page.get_by_role("navigation", name="Access scope")
    expect(tabs.get_by_role("link", name="Account")).to_be_visible()
    expect(tabs.get_by_role("link", name="Settings")).to_have_count(0)
    open_section(page, "Users")
    row = page.locator("tbody tr", has_text="grace@example.org")
    expect(row).to_contain_text("corporate")
    row.get_by_role("link", name="grace@example.org").click()
    page.get_by_role("navigation", name="Access scope").get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="Grace Hopper")).to_be_visible()
    expect(page.get_by_text("Last log-in:")).to_be_visible()
    expect(page.get_by_text("has not set a password yet")).to_have_count(0)
    expect(page.get_by_label("Time zone")).to_have_value("UTC")
    page.get_by_label("Time zone").select_option("Europe/Paris")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Settings saved.")).to_be_visible()
    expect(page.get_by_label("Time zone")).to_have_value("Europe/Paris")
    expect(page.get_by_label("First name")).to_have_value("Grace")
