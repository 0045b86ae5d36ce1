"""Accessibility in headless Chromium: axe-core's WCAG 2.0/2.1 A and AA rules on every main page
and state, in English and in French; the core flows with the keyboard alone; pages at 320 px.

Pages are reached and forms sent by their structure (ids, names, addresses) rather than by their
words, so the same walk runs in both languages; each page is checked with ``<html lang>`` right.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from portal.bulk import exports
from portal.extensions import db
from portal.invitations import services as invitations
from portal.mailboxes import services as mailboxes
from portal.roles import services as roles
from portal.roles.catalogue import ACCOUNT, ADMINISTRATOR
from portal.tokens import services as tokens
from portal.users import services as users
from portal.users import workbook
from tests.browser.axe import AxeAudit, describe, violations
from tests.browser.test_corporate_users import held_worker  # noqa: F401  (fixture: both worker slots held)
from tests.conftest import PASSWORD, first_link
from tests.mailboxes.conftest import enabled_domain
from tests.users.workbooks import fill

pytestmark = pytest.mark.browser

SLOW = 20_000
LANGUAGES = ["en", "fr"]


def _submit(page: Page, form: str) -> None:
    """Send the form ``form`` (a CSS selector) with its last submit button, and wait for the page it leads to."""
    page.locator(form).locator("button[type=submit]").last.click()
    page.wait_for_load_state("networkidle")


def _submit_wrong(page: Page, form: str) -> None:
    """Send ``form`` as it is (empty or wrong): the page comes back saying what to fix."""
    _submit(page, form)
    expect(page.locator("main [aria-invalid=true], main .error, main .alert-error").first).to_be_visible()


def _log_in(page: Page, live_server, email: str) -> None:
    page.goto(live_server.url("/login"))
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    _submit(page, "main form")
    expect(page.locator("form[action='/logout'] button")).to_be_visible()


# -- the scene: an account with something on every page ------------------------------------------

@pytest.fixture
def scene(make, owner, account):
    domain = enabled_domain(owner, account)
    grace = make.user("grace@elsewhere.example", name="Grace Hopper")
    member = make.member(account, grace, roles=(ADMINISTRATOR,))
    jane, _ = users.create_corporate_user(owner, account, first_name="Jane", last_name="Doe",
                                          email="jane@example.org", personal_mailbox=True)
    sales = mailboxes.create_mailbox(owner, account, domain, "sales", display_name="Sales team")
    role = roles.create_role(owner, account, name="Auditors", scope=ACCOUNT, description="Read who did what.",
                             permissions={"audit.view", "members.view"})
    draft = invitations.start(owner, account, "guest@elsewhere.example")
    invitations.add_grant(owner, draft, role_id=role.id)
    sent = invitations.start(owner, account, "newbie@elsewhere.example")
    invitations.add_grant(owner, sent, role_id=role.id)
    invitations.send_invitation(owner, sent)
    _, welcome = users.create_corporate_user(owner, account, first_name="Joe", last_name="Bloggs",
                                             email="joe@example.org", personal_mailbox=False)
    token, _ = tokens.create(owner, account, name="nightly export", scopes={"domains:read"}, expires_at=None)
    db.session.commit()
    corporate = roles.membership_of(jane, account)
    return {"account": account, "domain": domain, "member": member, "corporate": corporate, "sales": sales,
            "role": role, "draft": draft, "token": token, "welcome": welcome}


# -- axe on every page ------------------------------------------------------------------------------

@pytest.mark.parametrize("language", LANGUAGES)
def test_accessibility__every_page_and_state_has_no_wcag_a_or_aa_violation(
        page: Page, live_server, held_worker, owner, scene, language, tmp_path, problems, smtp_sink, monkeypatch):
    audit = AxeAudit(page, live_server, language)
    account, domain = scene["account"], scene["domain"]
    base = f"/accounts/{account.id}"

    # Before signing in, the language comes from the footer's switch.
    page.goto(live_server.url("/login"))
    if language != "en":
        page.locator(f"footer button[value={language}]").click()
        expect(page.locator("html")).to_have_attribute("lang", language)
    audit.check("log-in")
    page.locator("#email").fill(owner.email)
    page.locator("#password").fill("not the password")
    _submit_wrong(page, "main form")
    audit.check("log-in with an error")
    audit.visit("/register", "register")
    _submit_wrong(page, "main form")
    audit.check("register with errors")
    audit.visit("/password/forgot", "forgot password")
    audit.visit("/password/reset/not-a-token", "password reset link no longer valid", status=410)
    [invitation] = smtp_sink.wait_for("newbie@elsewhere.example", timeout=SLOW / 1000)
    page.goto(first_link(smtp_sink.text(invitation), "/invitations/"))
    expect(page).to_have_url(re.compile(r"/register$"))
    audit.check("register from an invitation")
    _submit_wrong(page, "main form:not(.decline)")
    audit.check("register from an invitation, with errors")
    page.locator("main form.decline button").click()
    expect(page.locator("main h1")).to_have_text("Invitation declined" if language == "en" else "Invitation déclinée")
    audit.check("invitation declined from its link")
    audit.visit(urlsplit(scene["welcome"]).path, "welcome: choose a password")
    audit.visit("/accessibility", "accessibility statement, signed out")

    owner.locale = language
    db.session.commit()
    _log_in(page, live_server, owner.email)
    audit.visit("/accounts", "accounts list")
    audit.visit("/profile", "profile")
    audit.visit("/profile/invites", "profile invitations")
    audit.visit("/profile/security", "security (two-factor)")
    audit.visit("/profile/security/app", "authenticator app set-up")
    audit.visit(f"{base}/", "overview")

    # Domains: the list, the form with errors, a domain being checked, then checked.
    audit.visit(f"{base}/domains", "domains list")
    _submit_wrong(page, "form[action$='/domains/new']")
    audit.check("new domain form with errors")
    held_worker.hold()
    page.locator("#name").fill("pending.example")
    _submit(page, "form[action$='/domains/new']")
    expect(page.locator("#domain-live[hx-get]")).to_have_count(1)
    audit.check("domain page while checking")
    held_worker.release()
    expect(page.locator("#domain-live[hx-trigger='load delay:1s']")).to_have_count(0, timeout=SLOW)
    expect(page.locator("#announcer")).to_contain_text(page.locator("#domain-live .status-line .badge").inner_text())
    audit.check("domain page, checked")
    audit.visit(f"{base}/domains/{domain.id}", "enabled domain page")
    audit.visit(f"{base}/domains/{domain.id}/settings", "domain settings")
    audit.visit(f"{base}/domains/{domain.id}/remove", "confirm: remove a domain")

    # Mailboxes.
    audit.visit(f"{base}/mailboxes", "mailboxes list")
    audit.visit(f"{base}/mailboxes/{scene['sales'].id}", "mailbox page")
    audit.visit(f"{base}/mailboxes/new", "new mailbox form")
    _submit_wrong(page, "form.mailbox-form")
    audit.check("new mailbox form with errors")
    audit.visit(f"{base}/mailboxes/{scene['sales'].id}/delete", "confirm: delete a mailbox")

    # Users and their access.
    audit.visit(f"{base}/members", "users list")
    page.locator("#member-list-q").fill("example")
    expect(page).to_have_url(re.compile(r"[?&]q=example"))
    page.locator("#filter-kind").select_option("corporate")
    expect(page).to_have_url(re.compile(r"[?&]kind=corporate"))
    audit.check("users list with filters")
    expect(page.locator("#announcer")).to_contain_text(page.locator("#member-list [data-announce]").inner_text())
    page.locator(f"input[name=member][value='{scene['corporate'].id}']").check()
    _submit(page, "form.bulk")
    audit.check("confirm: a bulk action")
    _submit(page, "main form")
    expect(page.locator("#bulk-progress[hx-get]")).to_have_count(0, timeout=SLOW)
    audit.check("a bulk action's result")
    # A list longer than the portal writes at once (here, any) is exported in the background.
    monkeypatch.setattr(exports, "AT_ONCE", 1)
    audit.visit(f"{base}/members/export.xlsx", "confirm: export a long list")
    _submit(page, "main form")
    expect(page.locator("#export-progress a[download]")).to_be_visible(timeout=SLOW)
    audit.check("a list's export, written")
    monkeypatch.undo()
    audit.visit(f"{base}/members/{scene['member'].id}", "a user's access")
    audit.visit(f"{base}/members/{scene['member'].id}/advanced", "a user's single permissions")
    audit.visit(f"{base}/members/{scene['member'].id}/mailboxes", "a user's mailbox access")
    audit.visit(f"{base}/members/{scene['corporate'].id}/settings", "a corporate user's settings")
    audit.visit(f"{base}/members/{scene['member'].id}/remove", "confirm: remove a member")
    audit.visit(f"{base}/members/{scene['corporate'].id}/remove-user", "confirm: remove a corporate user")
    audit.visit(f"{base}/users/new", "create a user")
    _submit_wrong(page, "main form")
    audit.check("create a user with errors")
    audit.visit(f"{base}/users/reports", "users reports")

    # Invitations.
    audit.visit(f"{base}/invitations", "invitations list")
    _submit_wrong(page, "#new-invitation form")
    audit.check("new invitation with errors")
    audit.visit(f"{base}/invitations/{scene['draft'].id}", "invitation draft")
    audit.visit(f"{base}/invitations/{scene['draft'].id}/revoke", "confirm: discard an invitation")

    # Roles and permissions.
    audit.visit(f"{base}/roles", "roles list")
    audit.visit(f"{base}/roles/{scene['role'].id}", "a role")
    audit.visit(f"{base}/roles/{scene['role'].id}/edit", "edit a role")
    audit.visit(f"{base}/roles/new?scope=account", "new role")
    _submit_wrong(page, "main form")
    audit.check("new role with errors")
    audit.visit(f"{base}/roles/{scene['role'].id}/delete", "confirm: delete a role")
    audit.visit(f"{base}/permissions", "permissions")

    # Settings, API tokens, audit log.
    audit.visit(f"{base}/settings", "settings")
    audit.visit(f"{base}/settings/tokens", "API tokens")
    _submit_wrong(page, f"form[action='{base}/settings/tokens']")
    audit.check("new API token with errors")
    audit.visit(f"{base}/settings/tokens/{scene['token'].id}/revoke", "confirm: revoke a token")
    audit.visit(f"{base}/audit", "audit log")

    # The import: upload, a preview with problems, progress, result.
    audit.visit(f"{base}/users/import", "import upload")
    planted = tmp_path / "staff.xlsx"
    planted.write_bytes(fill(workbook.template(account), users=[
        ("Ada", "Lovelace", "ada@example.org", "Y"), ("", "Nofirst", "nora@example.org", "N")]))
    page.locator("#workbook").set_input_files(planted)
    _submit(page, "main form[enctype]")
    expect(page.locator("#import-progress[hx-get]")).to_have_count(0, timeout=SLOW)
    audit.check("import preview with problems")
    held_worker.hold()
    _submit(page, "#import-progress form")
    expect(page.locator("#import-progress progress")).to_be_visible()
    audit.check("import progress")
    held_worker.release()
    expect(page.locator("#import-progress progress")).to_have_attribute("value", "100", timeout=SLOW)
    expect(page.locator("#import-progress[hx-get]")).to_have_count(0, timeout=SLOW)
    audit.check("import result")

    audit.visit(f"{base}/delete", "confirm: delete the account")
    _submit_wrong(page, "main form")
    audit.check("delete the account with an error")
    audit.visit(f"{base}/no-such-page", "not found (404)", status=404)
    audit.visit("/accessibility", "accessibility statement")
    audit.assert_clean()
    assert [problem for problem in problems if problem.startswith("CSP")] == []


# -- the keyboard alone -----------------------------------------------------------------------------

_FOCUS = """() => {
    const element = document.activeElement;
    if (!element || element === document.body) { return {where: "the page's body", shown: false}; }
    const style = getComputedStyle(element);
    const where = element.tagName.toLowerCase() + (element.id ? "#" + element.id : "")
                  + (element.getAttribute("href") ? `[href=${element.getAttribute("href")}]` : "")
                  + (element.getAttribute("name") ? `[name=${element.getAttribute("name")}]` : "");
    return {where, shown: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2};
}"""


def _focused(page: Page, selector: str) -> bool:
    return page.evaluate("(selector) => !!document.activeElement && document.activeElement.matches(selector)",
                         selector)


def _tab_to(page: Page, selector: str, *, backwards: bool = False, limit: int = 60) -> None:
    """Press Tab (Shift+Tab) until the element ``selector`` has the focus; every stop on the way shows it."""
    key = "Shift+Tab" if backwards else "Tab"
    stops = []
    for _ in range(limit):
        page.keyboard.press(key)
        focus = page.evaluate(_FOCUS)
        stops.append(focus["where"])
        assert focus["shown"], f"the focus on {focus['where']} is not visible"
        if _focused(page, selector):
            return
    raise AssertionError(f"{selector} not reached with {key} in {limit} presses: {stops}")


def _assert_focus(page: Page, selector: str) -> None:
    expect(page.locator(selector)).to_be_focused()


def _assert_new_page_focus(page: Page) -> None:
    """A new page has the focus on what the action did (its flash messages), else on its heading."""
    expect(page.locator("main .flashes, main h1").first).to_be_focused()


def _go(page: Page, live_server, path: str) -> None:
    """Press Enter on the focused link or button: the page ``path`` comes, with the focus at its start."""
    page.keyboard.press("Enter")
    expect(page).to_have_url(live_server.url(path))
    _assert_new_page_focus(page)


@pytest.fixture
def workbook_file(tmp_path, account, scene):
    path = tmp_path / "newcomers.xlsx"
    path.write_bytes(fill(workbook.template(account), users=[
        ("Ada", "Lovelace", "ada@example.org", "Y"), ("Alan", "Turing", "alan@example.org", "N")]))
    return path


def test_keyboard__sign_in_add_domain_invite_create_mailbox_and_import_with_the_keyboard_alone(
        page: Page, live_server, held_worker, owner, scene, workbook_file, smtp_sink, problems):
    account, domain = scene["account"], scene["domain"]
    base = f"/accounts/{account.id}"
    keys = page.keyboard
    # File choosers intercepted from the start: switched on only when first awaited, the
    # interception could come after the key that opens one.
    page.on("filechooser", lambda chooser: None)

    # Sign in: the address field has the focus when the page opens.
    page.goto(live_server.url("/login"))
    _assert_focus(page, "#email")
    keys.type(owner.email)
    _tab_to(page, "#password")
    keys.type(PASSWORD)
    _tab_to(page, "main form button[type=submit]")
    keys.press("Enter")
    expect(page.locator("form[action='/logout'] button")).to_be_visible()
    _assert_new_page_focus(page)

    # Add a domain; sent empty first, the focus goes to the field to fix.
    _tab_to(page, "nav.sidebar a[href$='/domains']", backwards=True)
    _go(page, live_server, f"{base}/domains")
    _tab_to(page, "form[action$='/domains/new'] button[type=submit]")
    keys.press("Enter")
    _assert_focus(page, "#name[aria-invalid=true]")
    keys.type("keyboard.example")
    _tab_to(page, "form[action$='/domains/new'] button[type=submit]")
    keys.press("Enter")
    expect(page.locator("main h1")).to_have_text("keyboard.example")
    _assert_focus(page, "main .flashes")  # "keyboard.example added…"

    # Invite someone with a role.
    _tab_to(page, "nav.sidebar a[href$='/invitations']", backwards=True)
    _go(page, live_server, f"{base}/invitations")
    _tab_to(page, "#email")
    keys.type("newcomer@elsewhere.example")
    _tab_to(page, "#new-invitation button[type=submit]")
    keys.press("Enter")
    expect(page.locator("main h1")).to_contain_text("newcomer@elsewhere.example")
    _tab_to(page, "#account-role")
    keys.type(scene["role"].name)
    expect(page.locator("#account-role")).to_have_value(str(scene["role"].id))
    _tab_to(page, "form:has(#account-role) button[type=submit]")
    keys.press("Enter")
    expect(page.locator("main .card ul.plain")).to_contain_text(scene["role"].name)
    _tab_to(page, "form[action$='/send'] button[type=submit]")
    keys.press("Enter")
    smtp_sink.wait_for("newcomer@elsewhere.example", timeout=SLOW / 1000)
    expect(page.locator("form[action$='/resend'] button")).to_be_visible()

    # Create a shared mailbox (the kind chosen by default).
    _tab_to(page, "nav.sidebar a[href$='/mailboxes']", backwards=True)
    _go(page, live_server, f"{base}/mailboxes")
    _tab_to(page, "a[href$='/mailboxes/new']")
    _go(page, live_server, f"{base}/mailboxes/new")
    _tab_to(page, "#local_part")
    keys.type("team")
    _tab_to(page, "#domain")
    keys.type(domain.name)
    expect(page.locator("#domain")).to_have_value(str(domain.id))
    _tab_to(page, "#display_name")
    keys.type("The team")
    _tab_to(page, "form.mailbox-form > button[type=submit]")
    held_worker.hold()
    keys.press("Enter")
    expect(page.locator("main h1")).to_have_text(f"team@{domain.name}")
    _assert_new_page_focus(page)
    expect(page.locator("#mailbox-live[hx-get]")).to_have_count(1)  # provisioning, the page follows it
    held_worker.release()
    expect(page.locator("#mailbox-live[hx-get]")).to_have_count(0, timeout=SLOW)
    expect(page.locator("#announcer")).to_contain_text(page.locator("#mailbox-live .status-line .badge").inner_text())
    _assert_new_page_focus(page)  # kept while the page followed the provisioning

    # Upload a workbook, read the preview, confirm, and follow the import to its end.
    _tab_to(page, "nav.sidebar a[href$='/members']", backwards=True)
    _go(page, live_server, f"{base}/members")
    _tab_to(page, "a[href$='/users/import']")
    _go(page, live_server, f"{base}/users/import")
    _tab_to(page, "#workbook")
    with page.expect_file_chooser() as chooser:
        keys.press("Space")
    chooser.value.set_files(workbook_file)
    _tab_to(page, "main form[enctype] button[type=submit]")
    keys.press("Enter")
    expect(page.locator("main h1")).to_have_text(workbook_file.name)
    confirm = page.locator("#import-progress form button[type=submit]")
    expect(confirm).to_be_visible(timeout=SLOW)
    _tab_to(page, "#import-progress form button[type=submit]")
    keys.press("Enter")
    expect(page.locator("#import-progress progress")).to_have_attribute("value", "100", timeout=SLOW)
    expect(page.locator("#import-progress[hx-get]")).to_have_count(0, timeout=SLOW)
    expect(page.locator("#import-progress .tiles strong").first).to_have_text("2")
    expect(page.locator("#announcer")).to_contain_text(page.locator("#import-progress .status-line").inner_text())
    assert [problem for problem in problems if problem.startswith("CSP")] == []


# -- 320 px wide -------------------------------------------------------------------------------------

_WIDEST = """() => {
    const wide = [];
    for (const element of document.body.querySelectorAll("*")) {
        const box = element.getBoundingClientRect();
        if (box.right > document.documentElement.clientWidth + 1 && !element.closest(".table-scroll")
                && element.checkVisibility()) {
            wide.push(`${element.tagName.toLowerCase()}${element.id ? "#" + element.id : ""}`
                      + `${element.className && typeof element.className === "string" ? "." + element.className.trim().split(/\\s+/).join(".") : ""}`
                      + ` right=${Math.round(box.right)}`);
        }
    }
    return wide.slice(0, 8);
}"""


@pytest.mark.browser_context_args(viewport={"width": 320, "height": 640})
def test_accessibility__main_pages_fit_320_px_without_scrolling_sideways(page: Page, live_server, owner, scene):
    account, domain = scene["account"], scene["domain"]
    base = f"/accounts/{account.id}"
    too_wide, found = [], []

    def fits(path: str) -> None:
        page.goto(live_server.url(path))
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 320:
            too_wide.append(f"{path}: {width} px wide; {page.evaluate(_WIDEST)}")
        # Narrow, tables scroll in their boxes: each must still be reachable and readable.
        violating = violations(page)
        if violating:
            found.append(f"{path}:\n{describe(violating)}")

    fits("/login")
    fits("/register")
    _log_in(page, live_server, owner.email)
    for path in ["/accounts", "/profile", "/profile/security", f"{base}/", f"{base}/domains",
                 f"{base}/domains/{domain.id}", f"{base}/domains/{domain.id}/settings", f"{base}/mailboxes",
                 f"{base}/mailboxes/{scene['sales'].id}", f"{base}/mailboxes/new", f"{base}/members",
                 f"{base}/members/{scene['member'].id}", f"{base}/members/{scene['member'].id}/mailboxes",
                 f"{base}/users/new", f"{base}/users/import", f"{base}/invitations",
                 f"{base}/invitations/{scene['draft'].id}", f"{base}/roles", f"{base}/roles/{scene['role'].id}",
                 f"{base}/roles/{scene['role'].id}/edit", f"{base}/permissions", f"{base}/settings",
                 f"{base}/settings/tokens", f"{base}/audit", f"{base}/delete", "/accessibility"]:
        fits(path)
    assert not too_wide, "pages wider than 320 px:\n" + "\n".join(too_wide)
    assert not found, "axe at 320 px:\n" + "\n\n".join(found)
