"""Two-factor sign-in in headless Chromium, with its virtual authenticator standing in for a
phone's or a laptop's passkeys (DevTools protocol, WebAuthn domain).

The portal is opened as http://localhost:<port>: browsers refuse passkeys on an IP address, and
the live server's configured address is 127.0.0.1, so this also shows that the relying party is
the host the browser sees.
"""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from playwright.sync_api import Page, expect

from portal.extensions import db
from portal.roles import catalogue
from portal.security.models import Passkey
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def _virtual_authenticator(page: Page) -> str:
    devtools = page.context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    added = devtools.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True}})
    return added["authenticatorId"]


def _password_step(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def _click_passkey_button(page: Page, name: str) -> None:
    """Once passkeys.js has run (a deferred script): clicked before it, under a loaded CI machine, the
    form was sent without a passkey and the portal answered that passkeys need JavaScript."""
    button = page.get_by_role("button", name=name)
    expect(button).to_be_visible()  # on the page that has it, whose load is then waited for
    page.wait_for_load_state("load")
    button.click()


def _logged_in(page: Page) -> None:
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def _log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


def test_two_factor__enrol_an_app_and_a_passkey_then_log_in_with_each_and_with_a_recovery_code(
        page: Page, live_server, make, problems):
    make.user("ada@example.org", name="Ada Lovelace")
    base = f"http://localhost:{live_server.port}"
    _virtual_authenticator(page)

    _password_step(page, base, "ada@example.org")
    _logged_in(page)
    page.get_by_role("link", name="Ada Lovelace").click()
    page.get_by_role("navigation", name="Profile").get_by_role("link", name="Security").click()
    expect(page.get_by_role("heading", name="Two-factor sign-in Off")).to_be_visible()

    # The authenticator app: the key read from the page, the codes computed as the app would.
    page.get_by_role("button", name="Set up an authenticator app").click()
    expect(page.get_by_role("heading", name="Set up an authenticator app")).to_be_visible()
    expect(page.get_by_role("img", name="QR code to scan")).to_be_visible()
    app = pyotp.TOTP(page.locator("#app-secret").inner_text().replace(" ", ""))
    page.get_by_label("Code from your authenticator app").fill(app.now())
    page.get_by_role("button", name="Turn on the authenticator app").click()
    expect(page.get_by_role("heading", name="Two-factor sign-in is on")).to_be_visible()
    recovery_codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(recovery_codes) == 10
    page.get_by_role("link", name="I have kept them: continue").click()
    expect(page.get_by_role("heading", name="Two-factor sign-in On")).to_be_visible()

    # A passkey, made by the virtual authenticator through static/js/passkeys.js.
    page.get_by_label("Name of the passkey").fill("Chromium")
    _click_passkey_button(page, "Add a passkey")
    expect(page.get_by_text("The passkey “Chromium” is added.")).to_be_visible()
    expect(page.get_by_role("cell", name="Chromium", exact=True)).to_be_visible()
    assert db.session.execute(db.select(Passkey.rp_id)).scalar_one() == "localhost"
    _log_out(page)

    # The password alone opens nothing; the app's next code does.
    _password_step(page, base, "ada@example.org")
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    page.get_by_label("Code from your authenticator app").fill(app.at(time.time() + 30))
    page.get_by_role("button", name="Continue").click()
    _logged_in(page)
    _log_out(page)

    # The passkey.
    _password_step(page, base, "ada@example.org")
    _click_passkey_button(page, "Use a passkey")
    _logged_in(page)
    _log_out(page)

    # A recovery code, once.
    _password_step(page, base, "ada@example.org")
    page.get_by_text("Use a recovery code").click()
    page.get_by_label("Recovery code").fill(recovery_codes[0])
    page.get_by_role("button", name="Use this recovery code").click()
    _logged_in(page)
    expect(page.get_by_text("You used a recovery code: 9 left.")).to_be_visible()
    assert problems == [], problems


def test_two_factor__the_account_policy_sends_an_administrator_without_a_factor_to_enrolment(
        page: Page, live_server, make, problems):
    owner = make.user("owner@example.org")
    account = make.account(owner, "Acme")
    account.require_two_factor = True
    make.member(account, make.user("bob@example.org", name="Bob"), roles=(catalogue.ADMINISTRATOR,))
    db.session.commit()
    base = f"http://localhost:{live_server.port}"

    _password_step(page, base, "bob@example.org")
    _logged_in(page)
    page.goto(f"{base}/accounts/{account.id}/members")
    expect(page).to_have_url(re.compile(r"/profile/security\?"))
    expect(page.get_by_text("Set up two-factor sign-in to go on.")).to_be_visible()
    expect(page.get_by_text("Acme requires the members who administer it to use two-factor sign-in.")).to_be_visible()

    # Enrolling there opens the account's pages again, and takes Bob where he was going.
    _virtual_authenticator(page)
    page.get_by_label("Name of the passkey").fill("Laptop")
    _click_passkey_button(page, "Add a passkey")
    expect(page.get_by_role("heading", name="Two-factor sign-in is on")).to_be_visible()
    page.get_by_role("link", name="I have kept them: continue").click()
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    assert problems == [], problems
