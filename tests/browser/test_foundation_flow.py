"""The foundation's flows in headless Chromium against the live server.

Register, confirm the address from the real SMTP sink, log in, create an
account, build a custom role with the permission picker, grant it to a member,
and read both in the audit log; the same core flow with JavaScript off; and
every main page free of console errors and Content-Security-Policy violations.

Set ``PORTAL_TEST_SCREENSHOTS`` to a folder to keep screenshots of the role
editor and the audit log for a look at the layout.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD, first_link

pytestmark = pytest.mark.browser

ROLE_NAME = "Auditors"


def _screenshot(page: Page, name: str) -> None:
    folder = os.environ.get("PORTAL_TEST_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def _log_in(page: Page, live_server, email: str) -> None:
    page.goto(live_server.url("/login"))
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def _permission(page: Page, code: str):
    """The picker's checkbox for one permission; its label shows the code."""
    return page.get_by_role("checkbox", name=code)


def _sidebar(page: Page, name: str):
    return page.get_by_role("navigation", name="Account").get_by_role("link", name=name, exact=True)


def _legend(page: Page):
    return page.locator("#permission-picker legend")


def test_foundation__register_verify_build_role_grant_it_and_audit_it(page: Page, live_server, make, smtp_sink):
    make.user("root@example.org", superadmin=True)
    make.user("grace@example.org", name="Grace Hopper")

    # Register, then confirm the address from the message the worker sent.
    page.goto(live_server.url("/register"))
    page.get_by_label("Your name").fill("Ada Lovelace")
    page.get_by_label("E-mail address").fill("ada@example.org")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()

    [message] = smtp_sink.wait_for("ada@example.org")
    link = first_link(smtp_sink.text(message), "/verify/")
    assert link.startswith(live_server.url("/verify/"))
    page.goto(link)
    page.get_by_role("button", name="Confirm my address").click()
    expect(page.get_by_text("Your address is confirmed.")).to_be_visible()
    expect(page.get_by_label("E-mail address")).to_have_value("ada@example.org")

    # Log in; a person without accounts lands on the accounts page.
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(live_server.url("/accounts"))

    page.get_by_label("Account name").fill("Analytical Engines")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Analytical Engines")).to_be_visible()
    expect(page.get_by_text("You are its owner.")).to_be_visible()

    # A custom role, built with the live permission search.
    _sidebar(page, "Roles").click()
    page.get_by_role("link", name="New account role").click()
    expect(page.get_by_role("heading", name="New account role")).to_be_visible()
    page.get_by_label("Name", exact=True).fill(ROLE_NAME)
    page.get_by_label("Description").fill("Read who did what.")
    _permission(page, "members.view").check()

    editor_url = page.url
    page.evaluate("window.__notReloaded = true")
    page.get_by_label("Search permissions").fill("audit")
    expect(page.get_by_role("checkbox")).to_have_count(1)
    expect(_permission(page, "audit.view")).to_be_visible()
    expect(_legend(page)).to_have_text(re.compile(r"1 selected, 1 not shown by the filter"))
    assert page.url == editor_url
    assert page.evaluate("window.__notReloaded") is True, "the search reloaded the page"
    expect(page.get_by_label("Name", exact=True)).to_have_value(ROLE_NAME)

    _permission(page, "audit.view").check()
    page.get_by_label("Search permissions").fill("")
    expect(_permission(page, "members.view")).to_be_checked()
    expect(_permission(page, "audit.view")).to_be_checked()
    expect(_legend(page)).to_have_text(re.compile(r"\(2 selected\)"))
    assert page.evaluate("window.__notReloaded") is True
    _screenshot(page, "role-editor")

    page.get_by_role("button", name="Save role").click()
    expect(page.get_by_text(f"Role “{ROLE_NAME}” created.")).to_be_visible()
    expect(page.get_by_role("heading", name="Permissions (2)")).to_be_visible()
    permissions = page.locator("ul.permission-list")
    expect(permissions).to_contain_text("audit.view")
    expect(permissions).to_contain_text("members.view")

    # Add the other person and grant them the role.
    _sidebar(page, "Users").click()
    page.get_by_label("E-mail address of a registered person").fill("grace@example.org")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_text("grace@example.org is now a member.")).to_be_visible()
    expect(page.get_by_role("heading", name="Grace Hopper")).to_be_visible()
    page.get_by_role("combobox", name="Add role").select_option(label=ROLE_NAME)
    page.get_by_role("button", name="Add role").click()
    expect(page.get_by_text(f"grace@example.org now has the role “{ROLE_NAME}”.")).to_be_visible()

    # Both changes are in the audit log, and the action filter narrows to each.
    _sidebar(page, "Audit log").click()
    rows = page.locator("#events tbody tr")
    expect(rows.filter(has_text="role.create")).to_have_count(1)
    expect(rows.filter(has_text="access.grant_role")).to_have_count(1)
    expect(rows.filter(has_text="role.create")).to_contain_text(ROLE_NAME)
    expect(rows.filter(has_text="access.grant_role")).to_contain_text("grace@example.org")
    expect(rows.filter(has_text="access.grant_role")).to_contain_text(f"role: {ROLE_NAME}")
    _screenshot(page, "audit-log")

    page.evaluate("window.__notReloaded = true")
    action = page.get_by_label("Action")
    action.select_option("role.create")
    expect(page).to_have_url(re.compile(r"[?&]action=role\.create"))
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("role.create")
    expect(rows).to_contain_text("ada@example.org")

    action.select_option("access.grant_role")
    expect(page).to_have_url(re.compile(r"[?&]action=access\.grant_role"))
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("access.grant_role")
    assert page.evaluate("window.__notReloaded") is True, "the audit filter reloaded the page"


@pytest.mark.browser_context_args(java_script_enabled=False)
def test_foundation__role_editor_and_grant_work_without_javascript(page: Page, live_server, make):
    owner = make.user("owner@example.org")
    make.user("member@example.org")
    account = make.account(owner, "Plain HTML")
    _log_in(page, live_server, "owner@example.org")
    assert page.evaluate("typeof window.htmx") == "undefined", "scripts ran"

    page.goto(live_server.url(f"/accounts/{account.id}/roles"))
    page.get_by_role("link", name="New account role").click()
    page.get_by_label("Name", exact=True).fill("Members desk")
    _permission(page, "members.view").check()
    page.get_by_label("Search permissions").fill("add")
    page.get_by_role("button", name="Filter").click()

    # The whole page came back from the server with the tick and the name kept.
    expect(page.get_by_role("heading", name="New account role")).to_be_visible()
    expect(page.get_by_label("Search permissions")).to_have_value("add")
    expect(_permission(page, "members.view")).to_have_count(0)
    expect(_legend(page)).to_have_text(re.compile(r"1 selected, 1 not shown by the filter"))
    expect(page.get_by_label("Name", exact=True)).to_have_value("Members desk")
    _permission(page, "members.add").check()

    page.get_by_label("Search permissions").fill("")
    page.get_by_role("button", name="Filter").click()
    expect(_permission(page, "members.view")).to_be_checked()
    expect(_permission(page, "members.add")).to_be_checked()
    expect(_permission(page, "audit.view")).not_to_be_checked()

    page.get_by_role("button", name="Save role").click()
    expect(page.get_by_text("Role “Members desk” created.")).to_be_visible()
    expect(page.get_by_role("heading", name="Permissions (2)")).to_be_visible()

    page.goto(live_server.url(f"/accounts/{account.id}/members"))
    page.get_by_label("E-mail address of a registered person").fill("member@example.org")
    page.get_by_role("button", name="Add member").click()
    page.get_by_role("combobox", name="Add role").select_option(label="Members desk")
    page.get_by_role("button", name="Add role").click()
    expect(page.get_by_text("member@example.org now has the role “Members desk”.")).to_be_visible()


def test_foundation__pages_have_no_console_errors_or_csp_violations(page: Page, live_server, make):
    owner = make.user("owner@example.org")
    account = make.account(owner, "Clean Console")
    membership = make.member(account, make.user("member@example.org"))
    problems: list[str] = []

    def on_console(message) -> None:
        if message.type == "error":
            problems.append(f"console error: {message.text} ({message.location.get('url')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.expose_function("__reportCspViolation", lambda violation: problems.append(f"CSP: {violation}"))
    page.add_init_script("""
        document.addEventListener("securitypolicyviolation", (event) => {
          window.__reportCspViolation(`${event.violatedDirective} blocked ${event.blockedURI}`
                                      + ` at ${event.sourceFile}:${event.lineNumber}`);
        });
    """)

    def visit(path: str, heading: str) -> None:
        response = page.goto(live_server.url(path))
        assert response is not None and response.status == 200, f"{path} answered {response and response.status}"
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        page.wait_for_load_state("networkidle")
        assert problems == [], f"{path}: {problems}"

    base = f"/accounts/{account.id}"
    visit("/login", "Log in")
    _log_in(page, live_server, "owner@example.org")
    visit("/accounts", "Your accounts")
    visit(f"{base}/roles", "Roles")
    visit(f"{base}/roles/new?scope=account", "New account role")
    page.get_by_label("Search permissions").fill("audit")  # an htmx swap, under the same policy
    expect(page.get_by_role("checkbox")).to_have_count(1)
    visit(f"{base}/permissions", "Permission catalogue")
    page.get_by_label("Search").fill("mailbox")
    expect(page).to_have_url(re.compile(r"[?&]q=mailbox"))
    visit(f"{base}/members", "Users")
    visit(f"{base}/members/{membership.id}", "member@example.org")
    visit(f"{base}/audit", "Audit log")
    page.get_by_label("Action").select_option("account.create")
    expect(page).to_have_url(re.compile(r"[?&]action=account\.create"))
    page.wait_for_load_state("networkidle")
    assert problems == [], problems


def test_foundation__browser_finds_an_icon(page: Page, live_server, make):
    make.user("root@example.org", superadmin=True)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.location.get("url", ""))
            if message.type == "error" else None)
    page.goto(live_server.url("/login"))
    page.wait_for_load_state("networkidle")
    assert errors == []
