"""Invitations, corporate self-registration and single sign-on in headless Chromium.

An owner invites an unregistered address with a mailbox role from the pages,
and the invited person registers from the e-mailed link in a browser of their
own; a registered person answers two invitations from their profile's Invites
tab; a person registering with an address on an account's active domain joins
it as a corporate user with a personal mailbox; and a log-in through the
loopback OpenID Connect provider. Every e-mail is read from the real SMTP
sink, sent by the live server's worker.

Set ``PORTAL_TEST_SCREENSHOTS`` to a folder to keep screenshots of the
invitation page and the Invites tab.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from portal.extensions import db
from portal.invitations import services as invitations
from portal.mailboxes import services as mailboxes
from portal.roles.services import system_role
from tests.browser.helpers import confirm_and_log_in, log_in, open_section, register, screenshot, sidebar, watch
from tests.conftest import PASSWORD, first_link
from tests.mailboxes.conftest import enabled_domain
from tests.servers.oidc import OidcProvider

pytestmark = pytest.mark.browser

# Long enough for the worker to pick up a job and run it.
SLOW = 15_000
SSO_LABEL = "Sign in with Corp ID"
SSO_SECRET = "portal-client-secret"


@pytest.fixture(scope="module")
def oidc_provider():
    with OidcProvider() as running:
        yield running


@pytest.fixture
def app_settings(request):
    """Single sign-on only for the tests that ask for the provider; the others keep the plain log-in page."""
    if "oidc_provider" not in request.fixturenames:
        return {}
    provider = request.getfixturevalue("oidc_provider")
    provider.reset()
    return {"OIDC_ISSUER": provider.issuer, "OIDC_CLIENT_ID": "portal", "OIDC_CLIENT_SECRET": SSO_SECRET,
            "OIDC_LABEL": SSO_LABEL}


@pytest.fixture
def owner(make):
    return make.user("olga@acme.example", name="Olga Owner")


@pytest.fixture
def problems(page: Page) -> list[str]:
    """What went wrong in the browser: ``page`` is watched, and any page given to ``watch``; CSP is not watched."""
    seen: list[str] = []
    watch(page, seen)
    return seen


# -- helpers ------------------------------------------------------------------------------

def _switcher(page: Page):
    return page.get_by_role("navigation", name="Accounts")


def _open_switcher(page: Page):
    switcher = _switcher(page)
    switcher.locator("summary").click()
    expect(switcher.get_by_role("link", name="All accounts / new account")).to_be_visible()
    return switcher


def _card(page: Page, heading: str):
    """The card (a ``section``) under the given heading."""
    return page.locator("section.card").filter(has=page.get_by_role("heading", name=heading, exact=True))


def _message(smtp_sink, address: str, subject_part: str):
    [message] = [m for m in smtp_sink.wait_for(address) if subject_part in str(m["Subject"])]
    return message


def _send_invitation(inviter, account, email: str, *roles: str):
    invitation = invitations.start(inviter, account, email)
    for key in roles:
        invitations.add_grant(inviter, invitation, role_id=system_role(key).id)
    invitations.send_invitation(inviter, invitation)
    db.session.commit()
    return invitation


# -- (a) an unregistered address, invited from the pages with a mailbox role ------------------

def test_invitation__unregistered_person_registers_from_the_link_and_sees_the_shared_mailbox(
        page: Page, new_context, live_server, owner, account, smtp_sink, problems):
    domain = enabled_domain(owner, account)
    mailboxes.create_mailbox(owner, account, domain, "team")
    db.session.commit()

    log_in(page, live_server, "olga@acme.example")
    open_section(page, "Users")
    page.locator(".page-header").get_by_role("link", name="New invitation").click()
    expect(page.get_by_role("heading", name="Invitations", exact=True)).to_be_visible()
    page.get_by_label("E-mail address to invite").fill("nina@example.net")
    page.get_by_role("button", name="New invitation").click()

    # The draft's page: give it a mailbox role, then send it.
    expect(page.get_by_role("heading", name=re.compile(r"^nina@example\.net"))).to_be_visible()
    expect(page.locator("h1 .badge")).to_have_text("Draft")
    expect(page.get_by_text("Nothing yet: the person joins with no access.")).to_be_visible()
    mailbox_role = _card(page, "Mailbox access").locator("form").filter(
        has=page.get_by_role("button", name="Add mailbox access"))
    # The mailbox picker searches as one types, instead of listing every mailbox.
    mailbox_role.get_by_label("Find a mailbox").fill("team")
    mailbox_role.get_by_role("radio", name="team@example.org").check()
    mailbox_role.get_by_label("Role", exact=True).select_option(label="Mailbox Delegate")
    mailbox_role.get_by_role("button", name="Add mailbox access").click()
    expect(page.get_by_text("Added to the invitation.")).to_be_visible()
    offers = _card(page, "What the invitation grants")
    expect(offers.get_by_text("Mailbox Delegate on team@example.org")).to_be_visible()
    screenshot(page, "invitation-edit-draft")

    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text("Invitation sent to nina@example.net.")).to_be_visible()
    expect(page.locator("h1 .badge")).to_have_text("Pending")
    expect(page.locator(".page-header").get_by_role("button", name="Resend")).to_be_visible()
    screenshot(page, "invitation-edit-pending")

    # The invited person, in a browser of their own, follows the e-mailed link.
    invitation_mail = _message(smtp_sink, "nina@example.net", "invites you to Acme")
    body = smtp_sink.text(invitation_mail)
    assert "Mailbox Delegate on team@example.org" in body
    link = first_link(body, "/invitations/")
    assert link.startswith(live_server.url("/invitations/"))

    invited = watch(new_context().new_page(), problems)
    invited.goto(link)
    expect(invited.get_by_role("heading", name="Join Acme")).to_be_visible()
    expect(invited.get_by_text("The invitation grants: Mailbox Delegate on team@example.org.")).to_be_visible()
    address = invited.get_by_label("E-mail address")
    expect(address).to_have_value("nina@example.net")
    expect(address).to_have_attribute("readonly", "")
    expect(address).not_to_be_editable()
    invited.get_by_label("Your name").fill("Nina New")
    invited.get_by_label("Password", exact=True).fill(PASSWORD)
    invited.get_by_label("Password again").fill(PASSWORD)
    invited.get_by_role("button", name="Create my profile and accept").click()

    expect(invited.get_by_text("Welcome. You are now a member of Acme.")).to_be_visible()
    expect(invited.get_by_role("heading", name="Acme", exact=True)).to_be_visible()
    expect(invited.get_by_role("navigation", name="You").get_by_role("link", name="Nina New")).to_be_visible()
    open_section(invited, "Mailboxes")
    rows = invited.locator("#mailbox-list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("team@example.org")

    # The inviter hears the answer, and the link is spent.
    page.reload()
    expect(page.locator("h1 .badge")).to_have_text("Accepted")
    assert problems == []
    spent = invited.goto(link)
    assert spent is not None and spent.status == 410
    expect(invited.get_by_role("heading", name="This invitation link no longer works")).to_be_visible()
    outcome = _message(smtp_sink, "olga@acme.example", "accepted")
    assert outcome["Subject"] == "nina@example.net accepted your invitation to Acme"
    assert "Granted: Mailbox Delegate on team@example.org." in smtp_sink.text(outcome)


# -- (b) a registered person answers two invitations from the Invites tab ---------------------

def test_invitations__registered_person_declines_one_and_accepts_the_other_from_the_invites_tab(
        page: Page, live_server, make, owner, account, smtp_sink, problems):
    other_owner = make.user("boss@other.example", name="Boris Boss")
    other = make.account(other_owner, "Other")
    make.user("bob@example.net", name="Bob Builder")
    _send_invitation(owner, account, "bob@example.net", "administrator")
    _send_invitation(other_owner, other, "bob@example.net")

    first, second = smtp_sink.wait_for("bob@example.net", count=2)
    bodies = {str(m["Subject"]): smtp_sink.text(m) for m in (first, second)}
    assert set(bodies) == {"Olga Owner invites you to Acme", "Boris Boss invites you to Other"}
    acme_body = bodies["Olga Owner invites you to Acme"]
    assert "You already have a profile" in acme_body and "Account Administrator" in acme_body

    # The link sends a registered person to log in, then straight to the Invites tab.
    page.goto(first_link(acme_body, "/invitations/"))
    expect(page.get_by_text("Log in as bob@example.net to answer the invitation.")).to_be_visible()
    expect(page.get_by_label("E-mail address")).to_have_value("bob@example.net")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(live_server.url("/profile/invites"))

    tabs = page.get_by_role("navigation", name="Profile")
    expect(tabs.get_by_role("link", name="Invites (2)")).to_have_attribute("aria-current", "page")
    acme, other_card = _card(page, "Acme"), _card(page, "Other")
    expect(acme).to_contain_text("From olga@acme.example")
    expect(acme).to_contain_text("Grants: Account Administrator")
    expect(other_card).to_contain_text("From boss@other.example")
    expect(other_card).to_contain_text("Grants: membership, no access yet")
    screenshot(page, "invites-tab")

    other_card.get_by_role("button", name="Decline").click()
    expect(page.get_by_text("You declined the invitation from Other.")).to_be_visible()
    expect(tabs.get_by_role("link", name="Invites (1)")).to_be_visible()
    expect(_card(page, "Other")).to_have_count(0)

    _card(page, "Acme").get_by_role("button", name="Accept").click()
    expect(page.get_by_text("You joined Acme.")).to_be_visible()
    expect(page).to_have_url(live_server.url(f"/accounts/{account.id}/"))
    expect(page.get_by_role("heading", name="Acme", exact=True)).to_be_visible()
    expect(sidebar(page, "Users")).to_be_visible()  # the administrator role came with it

    switcher = _open_switcher(page)
    expect(switcher.get_by_role("link", name="Acme", exact=True)).to_be_visible()
    expect(switcher.get_by_role("link", name="Other", exact=True)).to_have_count(0)
    page.goto(live_server.url("/profile/invites"))
    expect(page.get_by_text("No pending invitation.")).to_be_visible()
    expect(tabs.get_by_role("link", name="Invites", exact=True)).to_be_visible()

    accepted = _message(smtp_sink, "olga@acme.example", "accepted")
    assert accepted["Subject"] == "bob@example.net accepted your invitation to Acme"
    declined = _message(smtp_sink, "boss@other.example", "declined")
    assert declined["Subject"] == "bob@example.net declined your invitation to Other"
    assert problems == []
    refused = page.goto(live_server.url(f"/accounts/{other.id}/"))
    assert refused is not None and refused.status in (403, 404), refused and refused.status


# -- (c) corporate self-registration -----------------------------------------------------------

def test_self_registration__address_on_an_active_domain_joins_the_account_with_a_personal_mailbox(
        page: Page, new_context, live_server, owner, account, smtp_sink, problems):
    enabled_domain(owner, account)

    log_in(page, live_server, "olga@acme.example")
    sidebar(page, "Settings").click()
    expect(page.get_by_role("heading", name="Account settings")).to_be_visible()
    expect(page.get_by_label("People registering with an address on our active domains join this account")
           ).to_be_checked()
    page.get_by_label("New corporate users get a personal mailbox").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Account settings saved.")).to_be_visible()
    expect(page.get_by_label("New corporate users get a personal mailbox")).to_be_checked()

    person = watch(new_context().new_page(), problems)
    register(person, live_server, "Cora Corp", "cora@example.org")
    link = first_link(smtp_sink.text(smtp_sink.wait_for("cora@example.org")[0]), "/verify/")
    confirm_and_log_in(person, live_server, link, "cora@example.org")

    # Their only account is the one that owns the domain: the portal opens it.
    expect(person).to_have_url(live_server.url(f"/accounts/{account.id}/"))
    expect(person.get_by_role("heading", name="Acme", exact=True)).to_be_visible()
    expect(person.get_by_text("You are a member of this account without any permissions yet.")).to_be_visible()
    expect(_switcher(person).locator("summary")).to_have_text("Acme")
    expect(_open_switcher(person).get_by_role("link", name="Acme", exact=True)).to_be_visible()

    sidebar(person, "Mailboxes").click()
    rows = person.locator("#mailbox-list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("cora@example.org")
    expect(rows.first).to_contain_text("Personal")
    rows.first.get_by_role("link", name="cora@example.org").click()
    expect(person.get_by_role("heading", name="cora@example.org")).to_be_visible()
    expect(person.locator(".status-line")).to_contain_text("Enabled", timeout=SLOW)  # the worker made it

    person.get_by_role("navigation", name="You").get_by_role("link", name="Cora Corp").click()
    expect(person.get_by_role("heading", name="Your profile", exact=True)).to_be_visible()
    expect(person.locator("main")).to_contain_text("cora@example.org")
    expect(person.locator("main .badge", has_text="corporate user")).to_be_visible()
    assert problems == []


# -- (d) single sign-on ----------------------------------------------------------------------

def test_sso__log_in_through_the_provider_lands_signed_in(page: Page, live_server, make, oidc_provider):
    make.user("root@example.net", superadmin=True)
    oidc_provider.register_client("portal", SSO_SECRET, [live_server.url("/login/sso/callback")])
    oidc_provider.login_as(sub="corp-123", email="Ada@Example.net", name="Ada Lovelace")

    page.goto(live_server.url("/login"))
    page.get_by_role("link", name=SSO_LABEL).click()

    # The provider answered straight back to the portal, which opened a session.
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page).to_have_url(live_server.url("/accounts"))
    assert len(oidc_provider.codes_issued) == 1
    assert "code_verifier" in oidc_provider.last_token_request.body.decode()
    page.get_by_role("navigation", name="You").get_by_role("link", name="Ada Lovelace").click()
    expect(page.get_by_role("heading", name="Your profile", exact=True)).to_be_visible()
    expect(page.locator("main")).to_contain_text("ada@example.net")
