"""Domains and mailboxes in headless Chromium against the live server.

Issue 3: a domain added through the form waits for its ownership record and
becomes enabled from "Check now", the page polling itself while the check
runs. Issue 4: a mailbox made on a pending dimail domain waits, and is created
on dimail exactly once when the domain is enabled. Drift: the comparison page
finds what was changed behind the portal's back and settles it both ways.
Every page involved stays free of console errors and CSP violations.

The dimail emulator here can hold mailbox creation until the test lets it
go, so the mailbox page is seen provisioning and then enabled, rather than
already enabled when it loads. Set ``PORTAL_TEST_SCREENSHOTS`` to a folder to
keep screenshots of the domain, mailbox and drift pages.
"""

from __future__ import annotations

import re
import threading
import uuid

import pytest
from playwright.sync_api import Page, expect

from portal.domains.models import Domain
from portal.extensions import db
from portal.mailboxes import services as mailboxes
from tests.browser.helpers import assert_not_reloaded, log_in, mark_window, open_section, screenshot, sidebar
from tests.domains.conftest import publish_local_mail_records, publish_ownership
from tests.domains.test_dimail_rule import _publish_spec
from tests.emulated import dimail_environ
from tests.mailboxes.conftest import enabled_domain
from tests.servers.emu_dimail import DimailEmulator

pytestmark = pytest.mark.browser

# Long enough for a check or a job to be picked up, run and polled for.
SLOW = 15_000
# The longest the emulator holds a mailbox creation; below the adapter's timeout.
HOLD_SECONDS = 8


class GatedDimail(DimailEmulator):
    """The dimail emulator, with mailbox creation held while the gate is shut."""

    def __init__(self) -> None:
        super().__init__()
        self.creation_gate = threading.Event()
        self.creation_gate.set()

    def handle(self, request):
        if request.method == "POST" and "/mailboxes/" in request.path and "reset_password" not in request.path:
            self.creation_gate.wait(HOLD_SECONDS)
        return super().handle(request)


@pytest.fixture
def dimail():
    with GatedDimail() as emulator:
        yield emulator
        emulator.creation_gate.set()


@pytest.fixture
def app_environ(dimail):
    return dimail_environ(dimail, timeout=HOLD_SECONDS + 4)


@pytest.fixture
def owner(make):
    return make.user("ada@people.example", name="Ada Lovelace")


# -- helpers ------------------------------------------------------------------------------

def _status(page: Page):
    return page.locator(".status-line")


def _history(page: Page):
    return page.locator("#domain-live table:not(.records) tbody tr")


def _add_domain(page: Page, name: str, backend: str) -> None:
    open_section(page, "Domains")
    page.get_by_label("Domain name").fill(name)
    page.get_by_label("Mail backend").select_option(backend)
    page.get_by_role("button", name="Add domain").click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    expect(page.get_by_text(f"{name} added. Publish the ownership record shown below.")).to_be_visible()
    expect(_status(page)).to_contain_text("Pending")


def _wait_for_first_check(page: Page) -> None:
    """The check that runs as the domain is added; manual checks are refused while it is due."""
    expect(_history(page).filter(has_text="added")).to_have_count(1, timeout=SLOW)
    expect(page.locator("main").get_by_text("Checking…")).to_be_hidden()
    expect(page.get_by_role("button", name="Check now")).to_be_enabled()


def _published_challenge(page: Page, name: str) -> str:
    row = page.locator("table.records tbody tr").filter(has_text=f"_portal-challenge.{name}")
    return row.locator("code.value").first.inner_text()


def _domain(name: str) -> Domain:
    db.session.expire_all()
    return db.session.execute(db.select(Domain).where(Domain.name == name)).scalar_one()


# -- issue 3 ----------------------------------------------------------------------------------

def test_domain__added_in_the_form_is_enabled_by_check_now_without_reload(page: Page, live_server, owner, account,
                                                                         dns_zone, problems):
    log_in(page, live_server, owner.email)
    _add_domain(page, "acme.example", "local")
    _wait_for_first_check(page)
    expect(_status(page)).to_contain_text("Pending")
    expect(page.get_by_text("Ownership: not proven yet")).to_be_visible()

    # The ownership record is on the page, as the person would copy it.
    challenge = _published_challenge(page, "acme.example")
    domain = _domain("acme.example")
    assert challenge == domain.challenge
    publish_ownership(dns_zone, domain)
    publish_local_mail_records(dns_zone, domain)
    screenshot(page, "domain-pending")

    mark_window(page)
    page.get_by_role("button", name="Check now").click()
    expect(_status(page)).to_contain_text("Enabled", timeout=SLOW)
    expect(page.locator(".status-card")).to_contain_text(
        "Every record is published and the mail backend accepts the domain.")
    expect(page.get_by_role("alert")).to_have_count(0)  # the manual check was not refused
    expect(page.locator("main").get_by_text("Checking…")).to_be_hidden()
    assert_not_reloaded(page, "the check")

    records = page.locator("table.records tbody tr")
    expect(records).to_have_count(3)  # ownership, MX, SPF
    for index in range(3):
        expect(records.nth(index).locator("td").last).to_contain_text("OK")
    expect(_history(page).filter(has_text="manual")).to_contain_text(re.compile(r"Pending\s*→\s*Enabled"))
    screenshot(page, "domain-enabled")

    open_section(page, "Domains")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="acme.example", exact=True))
    expect(row).to_contain_text("Enabled")
    expect(row).to_contain_text("local")
    assert problems == [], problems


# -- issue 4 ----------------------------------------------------------------------------------

def test_mailbox__waits_for_its_dimail_domain_and_is_created_once_when_it_is_enabled(
        page: Page, live_server, owner, account, dns_zone, dimail, problems):
    log_in(page, live_server, owner.email)
    _add_domain(page, "corp.example", "corp")
    _wait_for_first_check(page)
    domain_url = page.url

    sidebar(page, "Mailboxes").click()
    page.get_by_role("link", name="New mailbox").click()
    expect(page.get_by_role("heading", name="New mailbox")).to_be_visible()
    page.get_by_label("Address (before the @)").fill("team")
    page.get_by_label("Domain", exact=True).select_option(label="corp.example (pending)")
    expect(page.get_by_label("Shared (a team address)")).to_be_checked()
    expect(page.get_by_label("First name")).to_be_hidden()  # names and owner are for personal mailboxes
    page.get_by_label("Display name").fill("Team Corp")
    page.get_by_role("button", name="Create mailbox").click()

    expect(page.get_by_role("heading", name="team@corp.example")).to_be_visible()
    expect(page.get_by_text("team@corp.example created.")).to_be_visible()
    expect(_status(page)).to_contain_text("Pending")
    expect(page.get_by_text("Waits for corp.example to be enabled; it is created on the backend then.")).to_be_visible()
    mailbox_url = page.url
    screenshot(page, "mailbox-pending")
    assert dimail.creations["team@corp.example"] == 0 and "corp.example" not in dimail.domains

    # The records go up; the person asks for a check rather than wait a minute.
    publish_ownership(dns_zone, _domain("corp.example"))
    _publish_spec(dns_zone, "corp.example")
    dimail.creation_gate.clear()
    page.goto(domain_url)
    mark_window(page)
    page.get_by_role("button", name="Check now").click()
    expect(_status(page)).to_contain_text("Enabled", timeout=SLOW)
    expect(page.get_by_role("alert")).to_have_count(0)
    assert_not_reloaded(page, "the check")
    expect(page.locator("table.records tbody tr")).to_have_count(5)  # ownership + dimail's four
    screenshot(page, "domain-dimail-enabled")

    # The mailbox is being created (dimail holds it); its page follows along by itself.
    page.goto(mailbox_url)
    expect(_status(page)).to_contain_text("Provisioning")
    expect(page.locator("main").get_by_text("Working…")).to_be_visible()
    screenshot(page, "mailbox-provisioning")
    mark_window(page)
    dimail.creation_gate.set()
    expect(_status(page)).to_contain_text("Enabled", timeout=SLOW)
    expect(page.locator("main").get_by_text("Working…")).to_be_hidden()
    assert_not_reloaded(page, "provisioning")
    history = page.locator("#mailbox-live table").last.locator("tbody tr")
    expect(history).to_have_count(1)
    expect(history).to_contain_text("create")
    expect(history).to_contain_text("ok")
    expect(page.get_by_role("button", name="Reveal the password once")).to_be_visible()
    screenshot(page, "mailbox-enabled")

    assert dimail.creations["team@corp.example"] == 1
    assert dimail.mailboxes["team@corp.example"]["displayName"]
    assert problems == [], problems


# -- drift ----------------------------------------------------------------------------------------

@pytest.fixture
def provisioned(owner, account, dns_zone, dimail):
    """An enabled dimail domain with two mailboxes the worker has created on dimail."""
    _publish_spec(dns_zone, "corp.example")
    domain = enabled_domain(owner, account, "corp.example", "corp", dimail)
    publish_ownership(dns_zone, domain)
    boxes = {name: mailboxes.create_mailbox(owner, account, domain, name, first_name="A", last_name="B")
             for name in ("kept", "vanished")}
    db.session.commit()
    return domain, boxes


def _wait_enabled(page: Page, live_server, account, mailbox) -> None:
    page.goto(live_server.url(f"/accounts/{account.id}/mailboxes/{mailbox.id}"))
    expect(_status(page)).to_contain_text("Enabled", timeout=SLOW)


def test_drift__compare_finds_planted_differences_and_settles_them_both_ways(
        page: Page, live_server, owner, account, dimail, provisioned, problems):
    domain, boxes = provisioned
    log_in(page, live_server, owner.email)
    for mailbox in boxes.values():
        _wait_enabled(page, live_server, account, mailbox)
    assert dimail.creations == {"kept@corp.example": 1, "vanished@corp.example": 1}

    with dimail.lock:
        del dimail.mailboxes["vanished@corp.example"]
        dimail.mailboxes["stranger@corp.example"] = {
            "givenName": "Ghost", "surName": "Box", "displayName": "Ghost Box", "active": "yes",
            "uuid": str(uuid.uuid4()), "password": "x" * 12}

    open_section(page, "Domains")
    page.get_by_role("link", name="corp.example", exact=True).click()
    expect(_status(page)).to_contain_text("Enabled")
    page.get_by_role("link", name="Compare with backend").click()
    expect(page.get_by_role("heading", name="Backend and portal compared")).to_be_visible()
    expect(page.get_by_text("Not compared yet.")).to_be_visible()

    mark_window(page)
    page.get_by_role("button", name="Compare now").click()
    rows = page.locator("#drift-live table tbody tr")
    expect(rows).to_have_count(2, timeout=SLOW)
    missing = rows.filter(has_text="vanished@corp.example")
    unknown = rows.filter(has_text="stranger@corp.example")
    expect(missing).to_contain_text("In the portal, missing on the backend")
    expect(unknown).to_contain_text("On the backend, unknown to the portal")
    expect(unknown.get_by_role("button", name="Enforce")).to_have_count(0)
    expect(page.locator("main").get_by_text("Comparing…")).to_be_hidden()
    assert_not_reloaded(page, "the comparison")
    screenshot(page, "drift-differences")

    missing.get_by_role("button", name="Enforce").click()
    expect(page.get_by_text("vanished@corp.example: the backend is being brought in line with the portal.")
           ).to_be_visible()
    expect(rows).to_have_count(1)
    unknown.get_by_role("button", name="Adopt").click()
    expect(page.get_by_text("stranger@corp.example is now in the portal.")).to_be_visible()
    expect(page.get_by_text("No difference: the backend and the portal agree.")).to_be_visible()
    assert_not_reloaded(page, "settling")  # boosted forms: the body is swapped, the window kept

    # Enforcing re-created the mailbox on dimail through the worker.
    _wait_enabled(page, live_server, account, boxes["vanished"])
    assert "vanished@corp.example" in dimail.mailboxes
    assert dimail.creations["vanished@corp.example"] == 2
    assert "stranger@corp.example" not in dimail.creations  # adopted, never created by the portal

    open_section(page, "Mailboxes")
    listed = page.locator("#mailbox-list tbody tr")
    expect(listed).to_have_count(3)
    expect(listed.filter(has_text="stranger@corp.example")).to_contain_text("Enabled")
    expect(listed.filter(has_text="vanished@corp.example")).to_contain_text("Enabled")

    # Compared again, the two sides agree.
    page.goto(live_server.url(f"/accounts/{account.id}/domains/{domain.id}/drift"))
    with page.expect_response(lambda response: response.url.endswith("/drift/compare")):
        page.get_by_role("button", name="Compare now").click()
    expect(page.locator("main").get_by_text("Comparing…")).to_be_hidden(timeout=SLOW)
    expect(page.get_by_text("No difference: the backend and the portal agree.")).to_be_visible()
    expect(rows).to_have_count(0)
    assert problems == [], problems


# -- console and CSP --------------------------------------------------------------------------------

def test_domain_and_mailbox_pages__have_no_console_errors_or_csp_violations(
        page: Page, live_server, owner, account, dimail, provisioned, problems, visit):
    domain, boxes = provisioned
    base = f"/accounts/{account.id}"

    log_in(page, live_server, owner.email)
    visit(f"{base}/domains", "Domains")
    visit(f"{base}/domains/{domain.id}", "corp.example")
    expect(_history(page).filter(has_text="added")).to_have_count(1, timeout=SLOW)
    expect(page.get_by_role("button", name="Check now")).to_be_enabled()
    page.get_by_role("button", name="Check now").click()  # an htmx swap, then polling
    expect(_history(page).filter(has_text="manual")).to_have_count(1, timeout=SLOW)
    visit(f"{base}/mailboxes", "Mailboxes")
    page.get_by_label("Owner").fill("nobody")  # the live filter, an htmx swap
    expect(page).to_have_url(re.compile(r"[?&]owner=nobody"))
    expect(page.get_by_text("No mailbox matches these filters.")).to_be_visible()
    visit(f"{base}/mailboxes/new", "New mailbox")
    visit(f"{base}/mailboxes/{boxes['kept'].id}", "kept@corp.example")
    expect(_status(page)).to_contain_text("Enabled", timeout=SLOW)
    visit(f"{base}/domains/{domain.id}/drift", "Backend and portal compared")
    page.get_by_role("button", name="Compare now").click()
    expect(page.get_by_text("No difference: the backend and the portal agree.")).to_be_visible(timeout=SLOW)
    page.wait_for_load_state("networkidle")
    assert problems == [], problems
