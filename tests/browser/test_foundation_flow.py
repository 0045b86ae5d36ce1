"""The foundation's flows in headless Chromium against the live server.

Register, confirm the address from the real SMTP sink, log in, create an
account, build a custom role with the permission picker, grant it to a member,
and read both in the audit log; the same core flow with JavaScript off; and
every main page free of console errors and Content-Security-Policy violations.

Set ``PORTAL_TEST_SCREENSHOTS`` to a folder to keep screenshots of the role
editor and the audit log for a look at the layout.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from portal.auth.models import User
from portal.domains.models import ENABLED
from portal.domains.services import add_domain
from portal.extensions import db
from tests.browser.helpers import (assert_not_reloaded, confirm_and_log_in, log_in, mark_window, register,
                                   open_section, screenshot, settled, sidebar)
from tests.conftest import first_link

pytestmark = pytest.mark.browser

ROLE_NAME = "Auditors"


def _permission(page: Page, code: str):
    """The picker's checkbox for one permission; its label shows the code."""
    return page.get_by_role("checkbox", name=code)


def _legend(page: Page):
    return page.locator("#permission-picker legend")


def _joined(make, account_name: str, email: str) -> None:
    """``email`` becomes a member of the account, as accepting an invitation would make them."""
    from portal.accounts.models import Account

    account = db.session.execute(db.select(Account).where(Account.name == account_name)).scalar_one()
    make.member(account, db.session.execute(db.select(User).where(User.email == email)).scalar_one())


def test_foundation__register_verify_build_role_grant_it_and_audit_it(page: Page, live_server, make, smtp_sink):
    make.user("root@example.org", superadmin=True)
    make.user("grace@example.org", name="Grace Hopper")

    # Register, confirm the address from the message the worker sent and log in;
    # a person without accounts lands on the accounts page.
    register(page, live_server, "Ada Lovelace", "ada@example.org")
    [message] = smtp_sink.wait_for("ada@example.org")
    confirm_and_log_in(page, live_server, first_link(smtp_sink.text(message), "/verify/"), "ada@example.org")
    expect(page).to_have_url(live_server.url("/accounts"))

    page.get_by_label("Account name").fill("Analytical Engines")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Analytical Engines")).to_be_visible()
    expect(page.get_by_text("You are its owner.")).to_be_visible()

    # A custom role, built with the live permission search.
    sidebar(page, "Roles").click()
    page.get_by_role("link", name="New account role").click()
    expect(page.get_by_role("heading", name="New account role")).to_be_visible()
    page.get_by_label("Name", exact=True).fill(ROLE_NAME)
    page.get_by_label("Description").fill("Read who did what.")
    _permission(page, "members.view").check()

    editor_url = page.url
    mark_window(page)
    page.get_by_label("Search permissions").fill("audit")
    expect(page.get_by_role("checkbox")).to_have_count(2)  # audit.view, and members.view kept in view
    expect(_permission(page, "audit.view")).to_be_visible()
    expect(_legend(page)).to_have_text(re.compile(r"1 selected, 1 of them hidden by the filter"))
    assert page.url == editor_url
    assert_not_reloaded(page, "the search")
    expect(page.get_by_label("Name", exact=True)).to_have_value(ROLE_NAME)

    _permission(page, "audit.view").check()
    page.get_by_label("Search permissions").fill("")
    expect(_permission(page, "members.view")).to_be_checked()
    expect(_permission(page, "audit.view")).to_be_checked()
    expect(_legend(page)).to_have_text(re.compile(r"\(2 selected\)"))
    assert_not_reloaded(page, "the search")
    screenshot(page, "role-editor")

    page.get_by_role("button", name="Save role").click()
    expect(page.get_by_text(f"Role “{ROLE_NAME}” created.")).to_be_visible()
    expect(page.get_by_role("heading", name="Permissions (2)")).to_be_visible()
    permissions = page.locator("ul.permission-list")
    expect(permissions).to_contain_text("audit.view")
    expect(permissions).to_contain_text("members.view")

    # The other person joined (people join by accepting an invitation; that flow has its own
    # tests): find them in the Users list and grant them the role.
    _joined(make, "Analytical Engines", "grace@example.org")
    open_section(page, "Users")
    page.get_by_label("Search").fill("grace")
    expect(page.locator("#member-list tbody tr")).to_have_count(1)
    page.get_by_role("link", name="grace@example.org").click()
    expect(page.get_by_role("heading", name="Grace Hopper")).to_be_visible()
    page.get_by_role("combobox", name="Add role").select_option(label=ROLE_NAME)
    page.get_by_role("button", name="Add role").click()
    expect(page.get_by_text(f"grace@example.org now has the role “{ROLE_NAME}”.")).to_be_visible()

    # Both changes are in the audit log, and the action filter narrows to each.
    sidebar(page, "Audit log").click()
    rows = page.locator("#events tbody tr")
    expect(rows.filter(has_text="role.create")).to_have_count(1)
    expect(rows.filter(has_text="access.grant_role")).to_have_count(1)
    expect(rows.filter(has_text="role.create")).to_contain_text(ROLE_NAME)
    expect(rows.filter(has_text="access.grant_role")).to_contain_text("grace@example.org")
    expect(rows.filter(has_text="access.grant_role")).to_contain_text(f"role: {ROLE_NAME}")
    screenshot(page, "audit-log")

    settled(page)  # a choice made before htmx settled the boosted page would send no request
    mark_window(page)
    kind = page.get_by_label("Kind of action")
    kind.select_option("role")
    expect(page).to_have_url(re.compile(r"[?&]family=role"))
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("role.create")
    expect(rows).to_contain_text("ada@example.org")

    settled(page)
    kind.select_option("access")
    expect(page).to_have_url(re.compile(r"[?&]family=access"))
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("access.grant_role")
    assert_not_reloaded(page, "the audit filter")


@pytest.mark.browser_context_args(java_script_enabled=False)
def test_foundation__role_editor_and_grant_work_without_javascript(page: Page, live_server, make):
    owner = make.user("owner@example.org")
    make.user("member@example.org")
    account = make.account(owner, "Plain HTML")
    log_in(page, live_server, "owner@example.org")
    assert page.evaluate("typeof window.htmx") == "undefined", "scripts ran"

    page.goto(live_server.url(f"/accounts/{account.id}/roles"))
    page.get_by_role("link", name="New account role").click()
    page.get_by_label("Name", exact=True).fill("Members desk")
    _permission(page, "members.view").check()
    page.get_by_label("Search permissions").fill("invite")
    page.get_by_role("button", name="Filter").click()

    # The whole page came back from the server with the tick and the name kept; the ticked
    # permission the search hides is still listed, ticked.
    expect(page.get_by_role("heading", name="New account role")).to_be_visible()
    expect(page.get_by_label("Search permissions")).to_have_value("invite")
    expect(_legend(page)).to_have_text(re.compile(r"1 selected, 1 of them hidden by the filter"))
    expect(_permission(page, "members.view")).to_be_checked()
    expect(page.get_by_label("Name", exact=True)).to_have_value("Members desk")
    _permission(page, "users.invite").check()

    page.get_by_label("Search permissions").fill("")
    page.get_by_role("button", name="Filter").click()
    expect(_permission(page, "members.view")).to_be_checked()
    expect(_permission(page, "users.invite")).to_be_checked()
    expect(_permission(page, "audit.view")).not_to_be_checked()

    page.get_by_role("button", name="Save role").click()
    expect(page.get_by_text("Role “Members desk” created.")).to_be_visible()
    expect(page.get_by_role("heading", name="Permissions (2)")).to_be_visible()

    make.member(account, db.session.execute(db.select(User).where(User.email == "member@example.org")).scalar_one())
    page.goto(live_server.url(f"/accounts/{account.id}/members"))
    page.get_by_label("Search").fill("member@")
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name="member@example.org").click()
    page.get_by_role("combobox", name="Add role").select_option(label="Members desk")
    page.get_by_role("button", name="Add role").click()
    expect(page.get_by_text("member@example.org now has the role “Members desk”.")).to_be_visible()


def test_foundation__pages_have_no_console_errors_or_csp_violations(page: Page, live_server, make, problems, visit):
    owner = make.user("owner@example.org")
    account = make.account(owner, "Clean Console")
    membership = make.member(account, make.user("member@example.org"))

    base = f"/accounts/{account.id}"
    visit("/login", "Log in")
    log_in(page, live_server, "owner@example.org")
    visit("/accounts", "Your accounts")
    visit(f"{base}/roles", "Roles")
    visit(f"{base}/roles/new?scope=account", "New account role")
    page.get_by_label("Search permissions").fill("audit")  # an htmx swap, under the same policy
    expect(page.get_by_role("checkbox")).to_have_count(1)
    visit(f"{base}/permissions", "Permission catalogue")
    page.get_by_label("Search").fill("mailbox")
    expect(page).to_have_url(re.compile(r"[?&]q=mailbox"))
    visit(f"{base}/members", "Users")
    page.get_by_label("Search").fill("member")  # the list swapped as one types, then by its button
    expect(page).to_have_url(re.compile(r"[?&]q=member"))
    settled(page)
    page.get_by_role("button", name="Filter").click()
    settled(page)
    # Enter sends the form once (a walkthrough: the field's own request, aborted by the form's,
    # logged htmx:sendAbort), and Back asks for the page again without a complaint.
    page.get_by_label("Search").press("Enter")
    settled(page)
    page.go_back()
    settled(page)
    page.wait_for_load_state("networkidle")
    visit(f"{base}/members/{membership.id}", "member@example.org")
    domain = add_domain(owner, account, "clean.example", "local")
    domain.status, domain.verified_at = ENABLED, domain.created_at
    db.session.commit()
    visit(f"{base}/mailboxes/new", "New mailbox")
    page.get_by_label("Personal").check()
    page.get_by_label("Find the owner").fill("member")
    page.get_by_role("button", name="Find").click()
    settled(page)
    visit(f"{base}/audit", "Audit log")
    page.get_by_label("Kind of action").select_option("account")
    expect(page).to_have_url(re.compile(r"[?&]family=account"))
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
