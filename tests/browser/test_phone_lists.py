"""Lists on a phone (390 px): each row is a card with every cell under its column's name, the page
never scrolls sideways, and a search brought by htmx is laid out the same way; on a desktop the
same lists stay tables."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from portal.domains.models import ENABLED, Domain
from portal.domains.services import add_domain
from portal.extensions import db
from portal.roles.services import create_role
from tests.browser.helpers import log_in, settled
from tests.seeding import seed

pytestmark = pytest.mark.browser

LISTS = ("members", "mailboxes", "invitations", "audit", "domains", "roles")


@pytest.fixture
def filled(owner, account):
    domain = add_domain(owner, account, "example.org", "local")
    domain.status, domain.verified_at = ENABLED, domain.created_at
    staff = create_role(owner, account, name="Staff", scope="account", description="", permissions={"members.view"})
    db.session.commit()
    seed(account, domain, staff, 40, 10)


def _layout(page: Page) -> dict:
    return page.evaluate("""() => {
        const table = document.querySelector("table.stacked");
        const row = table.querySelector("tbody tr");
        const cells = Array.from(row.children);
        return {overflow: document.documentElement.scrollWidth - window.innerWidth,
                rowDisplay: getComputedStyle(row).display,
                labels: cells.map(cell => cell.getAttribute("data-label")),
                before: getComputedStyle(cells[cells.length - 1], "::before").content,
                // A label on two lines makes its cell taller, not run into the next (a walkthrough:
                // "Dernière connexion" over "Membre depuis"): it is laid out with the cell's content.
                inFlow: cells.every(cell => !cell.hasAttribute("data-label")
                                    || getComputedStyle(cell, "::before").position === "static"),
                tableWidth: table.getBoundingClientRect().width};
    }""")


def test_lists_on_a_phone__rows_are_cards_with_named_cells_and_nothing_scrolls_sideways(
        page: Page, live_server, account, filled):
    log_in(page, live_server, "owner@example.org")
    page.set_viewport_size({"width": 390, "height": 844})
    for path in LISTS:
        page.goto(live_server.url(f"/accounts/{account.id}/{path}"))
        layout = _layout(page)
        assert layout["overflow"] <= 0, (path, layout)
        assert layout["rowDisplay"] == "block" and layout["tableWidth"] <= 390, (path, layout)
        assert all(layout["labels"]) and layout["before"].strip('"') == layout["labels"][-1], (path, layout)
        assert layout["inFlow"], (path, layout)
    page.goto(live_server.url(f"/accounts/{account.id}/members"))
    assert _layout(page)["labels"][:3] == ["Select", "Person", "Name"]  # the sort arrow stays in the header
    page.get_by_label("Search").fill("person1")
    expect(page.locator("#member-list tbody tr")).to_have_count(10)  # of 41: the list swapped by htmx
    settled(page)
    layout = _layout(page)
    assert layout["rowDisplay"] == "block" and all(layout["labels"]) and layout["overflow"] <= 0, layout

    # The records a domain needs are cards too (a walkthrough: their values were cut letter by
    # letter, the column of what was found off to the side).
    domain_id = db.session.execute(db.select(Domain.id).where(Domain.name == "example.org")).scalar_one()
    page.goto(live_server.url(f"/accounts/{account.id}/domains/{domain_id}"))
    layout = _layout(page)
    assert layout["rowDisplay"] == "block" and layout["inFlow"] and layout["overflow"] <= 0, layout
    assert layout["labels"] == ["Name", "Type", "Expected value", "Found", "State"], layout
    # And its check history (it scrolled sideways in its box).
    history = page.evaluate("""() => {
        const table = document.querySelector("[aria-label='Check history'] table");
        return {stacked: table.classList.contains("stacked"), width: table.getBoundingClientRect().width,
                rowDisplay: getComputedStyle(table.querySelector("tbody tr")).display};
    }""")
    assert history["stacked"] and history["rowDisplay"] == "block" and history["width"] <= 390, history

    page.set_viewport_size({"width": 1280, "height": 900})
    assert _layout(page)["rowDisplay"] == "table-row"
