"""What the browser tests do the same way: log in, reach a page, watch for errors, keep screenshots.

Set ``PORTAL_TEST_SCREENSHOTS`` to a folder to keep the screenshots the tests take.
"""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD

# Reports each Content-Security-Policy violation to ``window.__reportCspViolation``.
_REPORT_CSP_VIOLATIONS = """
    document.addEventListener("securitypolicyviolation", (event) => {
      window.__reportCspViolation(`${event.violatedDirective} blocked ${event.blockedURI}`
                                  + ` at ${event.sourceFile}:${event.lineNumber}`);
    });
"""


def screenshot(page: Page, name: str) -> None:
    folder = os.environ.get("PORTAL_TEST_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def log_in(page: Page, live_server, email: str) -> None:
    page.goto(live_server.url("/login"))
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def register(page: Page, live_server, name: str, email: str) -> None:
    """Fill in the registration form; the portal then asks to confirm the address."""
    page.goto(live_server.url("/register"))
    page.get_by_label("Your name").fill(name)
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()


def confirm_and_log_in(page: Page, live_server, link: str, email: str) -> None:
    """Follow the e-mailed confirmation ``link`` of ``email``, then log in from the page it leads to."""
    assert link.startswith(live_server.url("/verify/"))
    page.goto(link)
    page.get_by_role("button", name="Confirm my address").click()
    expect(page.get_by_text("Your address is confirmed.")).to_be_visible()
    expect(page.get_by_label("E-mail address")).to_have_value(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def sidebar(page: Page, name: str):
    """The account sidebar's link ``name``."""
    return page.get_by_role("navigation", name="Account").get_by_role("link", name=name, exact=True)


def open_section(page: Page, name: str) -> None:
    """Follow the sidebar's link ``name`` to the page of the same heading, and wait until htmx has
    settled it."""
    sidebar(page, name).click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    settled(page)


def settled(page: Page) -> None:
    """Wait until no htmx request, swap or settle is under way. htmx gives swapped-in content its
    behaviour when it settles (20 ms after the swap): a field typed into before that (as a test
    can, a person cannot) sends no request."""
    expect(page.locator(".htmx-request, .htmx-swapping, .htmx-settling")).to_have_count(0)


def mark_window(page: Page) -> None:
    """Mark the window, so that ``assert_not_reloaded`` can tell it was kept."""
    page.evaluate("window.__notReloaded = true")


def assert_not_reloaded(page: Page, what: str) -> None:
    assert page.evaluate("window.__notReloaded") is True, f"{what} reloaded the page"


def watch(page: Page, seen: list[str], *, csp: bool = False) -> Page:
    """Record ``page``'s console errors and uncaught errors in ``seen`` (an error status logs one too);
    with ``csp``, its Content-Security-Policy violations as well."""
    page.on("console", lambda message: seen.append(f"console error: {message.text} ({message.location.get('url')})")
            if message.type == "error" else None)
    page.on("pageerror", lambda error: seen.append(f"page error: {error} ({page.url})"))
    if csp:
        page.expose_function("__reportCspViolation", lambda violation: seen.append(f"CSP: {violation}"))
        page.add_init_script(_REPORT_CSP_VIOLATIONS)
    return page
