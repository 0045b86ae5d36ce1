"""Account deletion in headless Chromium, and what a corporate user sees afterwards."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from portal.extensions import db
from portal.users import services as users
from tests.browser.helpers import log_in
from tests.conftest import PASSWORD
from tests.mailboxes.conftest import enabled_domain

pytestmark = pytest.mark.browser


def test_lifecycle__owner_deletes_the_account_and_the_corporate_user_keeps_a_locked_profile(
        page: Page, browser, live_server, make, smtp_sink):
    from portal.auth.passwords import hash_password
    from portal.timeutil import utcnow

    owner = make.user("owner@example.org", name="Olga Owner")
    account = make.account(owner, "Acme")
    enabled_domain(owner, account)
    jane, _ = users.create_corporate_user(owner, account, first_name="Jane", last_name="Doe",
                                          email="jane@example.org", personal_mailbox=False)
    jane.password_hash, jane.email_verified_at = hash_password(PASSWORD), utcnow()
    db.session.commit()

    log_in(page, live_server, "owner@example.org")
    page.goto(live_server.url(f"/accounts/{account.id}/settings"))
    page.get_by_role("link", name="Delete the account…").click()
    expect(page.get_by_role("heading", name="Delete the account Acme?")).to_be_visible()
    page.get_by_label("Type the account's name to confirm").fill("Acme Inc")
    page.get_by_role("button", name="Delete the account").click()
    expect(page.get_by_text("Type the account's name, Acme, exactly to confirm.")).to_be_visible()
    expect(page.get_by_label("Type the account's name to confirm")).to_have_value("Acme Inc")
    page.get_by_label("Type the account's name to confirm").fill("Acme")
    page.get_by_role("button", name="Delete the account").click()
    expect(page.get_by_text("The account Acme was deleted")).to_be_visible()
    expect(page.get_by_role("heading", name="Your accounts")).to_be_visible()
    expect(page.get_by_role("link", name="Acme")).to_have_count(0)
    smtp_sink.wait_for("jane@example.org")

    corporate = browser.new_context()
    jane_page = corporate.new_page()
    log_in(jane_page, live_server, "jane@example.org")
    jane_page.goto(live_server.url("/profile"))
    expect(jane_page.locator(".badge", has_text="corporate user")).to_be_visible()
    expect(jane_page.get_by_text("managed by your organisation")).to_be_visible()
    expect(jane_page.get_by_role("link", name="Delete my profile…")).to_have_count(0)
    jane_page.goto(live_server.url("/accounts"))
    expect(jane_page.get_by_text("you cannot create one")).to_be_visible()
    expect(jane_page.get_by_role("button", name="Create account")).to_have_count(0)
    jane_page.goto(live_server.url("/profile/delete"))
    expect(jane_page.get_by_text("it cannot be deleted here")).to_be_visible()
    expect(jane_page.get_by_role("button", name="Delete my profile")).to_have_count(0)
    corporate.close()
