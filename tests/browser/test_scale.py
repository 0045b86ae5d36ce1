"""Issue 11 in Chromium: an account of 500 people searched, filtered, paged and given a role in
bulk; the Overview's checklist on a new account; a domain published in one pass enabled with
one "Check now" and no other click. The portal keeps pages here, as it does when deployed: every
list, the Overview and the domain page shown after a change must show the change."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from portal import timeutil
from portal.accounts.models import Membership
from portal.bulk.models import BulkRun
from portal.domains import services as domain_services
from portal.domains.models import ENABLED, Domain
from portal.domains.services import add_domain
from portal.extensions import db
from portal.roles.models import Grant
from portal.roles.services import create_role
from tests.browser.helpers import assert_not_reloaded, log_in, mark_window, open_section, screenshot, settled
from tests.domains.conftest import publish_local_mail_records, publish_ownership
from tests.seeding import seed

pytestmark = pytest.mark.browser
SLOW = 20_000


@pytest.fixture
def app_settings():
    return {"PAGE_CACHE": True}


@pytest.fixture
def crowd(owner, account):
    domain = add_domain(owner, account, "example.org", "local")
    domain.status, domain.verified_at = ENABLED, domain.created_at
    staff = create_role(owner, account, name="Staff", scope="account", description="", permissions={"members.view"})
    auditors = create_role(owner, account, name="Auditors", scope="account", description="",
                           permissions={"audit.view"})
    db.session.commit()
    seed(account, domain, staff, 500, 0)
    return {"staff": staff, "auditors": auditors}


def test_users__search_filter_page_and_grant_a_role_to_every_match(page: Page, live_server, account, crowd,
                                                                   monkeypatch):
    log_in(page, live_server, "owner@example.org")
    open_section(page, "Users")
    rows = page.locator("#member-list tbody tr")
    pager = page.locator("#member-list nav.pager [data-announce]")
    expect(pager).to_have_text("1–50 of 501 people")
    expect(rows).to_have_count(50)

    mark_window(page)
    page.get_by_label("Search").fill("person1")  # person1, person10-19, person100-199
    expect(page).to_have_url(re.compile(r"[?&]q=person1"))
    expect(pager).to_have_text("1–50 of 111 people")
    page.get_by_label("Kind").select_option("corporate")  # every second person seeded is corporate
    expect(pager).to_have_text("1–50 of 55 people")
    page.locator("#member-list nav.pager").get_by_role("link", name="Next →").click()
    expect(pager).to_have_text("51–55 of 55 people")
    expect(rows).to_have_count(5)
    # The last page has no "Next": the focus stays in the pager, on "Previous", by the rows just
    # shown (a walkthrough: it jumped to the heading, far above the table).
    expect(page.locator("#member-list nav.pager").get_by_role("link", name="← Previous")).to_be_focused()
    expect(page).to_have_url(re.compile(r"page=2"))
    assert_not_reloaded(page, "searching, filtering and paging")
    page.go_back()
    expect(pager).to_have_text("1–50 of 55 people")
    # Back asks the server for the whole page (htmx keeps no copy of it): the menus, the heading and
    # the announcer are still there, not the list alone (a walkthrough).
    expect(page.get_by_role("heading", name="Users", exact=True)).to_be_visible()
    expect(page.locator("nav.sidebar")).to_be_visible()
    expect(page.locator("#announcer")).to_have_count(1)
    # Pages are kept for a slice of time: the cache's clock is held still over the two reloads.
    now = timeutil.utcnow()
    monkeypatch.setattr(timeutil, "utcnow", lambda: now)
    page.reload()  # the state is in the URL
    expect(page.get_by_label("Search")).to_have_value("person1")
    expect(pager).to_have_text("1–50 of 55 people")
    # The same page again, nothing changed in between: answered from the page kept.
    assert page.reload().headers.get("x-portal-cache") == "hit"
    monkeypatch.undo()
    listed = page.url

    bulk = page.get_by_role("group", name="With the selected people")
    bulk.get_by_label(re.compile(r"^All 55 matching")).check()
    bulk.get_by_label("Action").select_option("grant_role")
    bulk.get_by_label("Role", exact=True).select_option(label="Auditors")
    page.get_by_role("button", name="Apply…").click()
    expect(page.get_by_role("heading", name="Grant the role “Auditors”")).to_be_visible()
    expect(page.get_by_text("55 people")).to_be_visible()
    page.get_by_role("button", name=re.compile(r"^Grant the role “Auditors”: 55")).click()
    progress = page.locator("#bulk-progress")
    expect(progress).to_contain_text("55 of 55", timeout=SLOW)
    expect(progress).to_contain_text("Done")
    screenshot(page, "bulk-grant-done")
    db.session.expire_all()
    run = db.session.execute(db.select(BulkRun)).scalar_one()
    assert (run.succeeded, run.failed) == (55, 0)
    holders = db.session.execute(db.select(db.func.count()).select_from(Grant).join(
        Membership, Membership.id == Grant.membership_id).where(
        Membership.account_id == account.id, Grant.role_id == crowd["auditors"].id)).scalar_one()
    assert holders == 55

    page.goto(live_server.url(f"/accounts/{account.id}/members?role={crowd['auditors'].id}"))
    expect(pager).to_have_text("1–50 of 55 people")
    # The list kept before the grant is not shown again: every row now holds the role.
    assert page.goto(listed).headers.get("x-portal-cache") != "hit"
    expect(rows.filter(has_text="Auditors")).to_have_count(50)


def test_lists__the_filter_button_and_enter_swap_the_list_alone(page: Page, live_server, account, crowd):
    """A walkthrough: pressing "Filter" (or Enter in the search field) put a second copy of the whole
    page, menus and heading, inside the list, on every list page: the form had the list as its
    target but no request of its own, so the page-wide boost asked for the whole page."""
    log_in(page, live_server, "owner@example.org")
    open_section(page, "Users")
    pager = page.locator("#member-list nav.pager [data-announce]")
    mark_window(page)
    page.get_by_label("Kind").select_option("corporate")
    expect(pager).to_have_text("1–50 of 250 people")
    settled(page)
    page.get_by_role("button", name="Filter").click()
    settled(page)
    expect(pager).to_have_text("1–50 of 250 people")
    expect(page.locator("h1")).to_have_count(1)
    expect(page.locator("nav.sidebar")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"kind=corporate"))
    page.get_by_label("Search").fill("person1")
    page.get_by_label("Search").press("Enter")
    settled(page)
    expect(pager).to_have_text("1–50 of 55 people")
    expect(page.locator("h1")).to_have_count(1)
    expect(page.locator("#member-list")).to_have_count(1)
    assert_not_reloaded(page, "the Filter button")

    open_section(page, "Audit log")
    page.get_by_label("Kind of action").select_option("member")
    settled(page)
    page.get_by_role("button", name="Filter").click()
    settled(page)
    expect(page.locator("h1")).to_have_count(1)
    expect(page.locator("nav.sidebar")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"family=member"))


def test_forms__after_a_refused_form_reloading_or_a_language_change_leads_back_to_its_page(
        page: Page, live_server, account, owner):
    """A walkthrough: after a refused form (a domain name that is none), the address bar showed the
    form's POST address (/domains/new), and reloading, or changing the language, answered 405 and
    lost the page: a GET there now leads to the page above it; after a refused then accepted new
    mailbox, the address bar shows the mailbox's page."""
    log_in(page, live_server, "owner@example.org")
    open_section(page, "Domains")
    domains_url = page.url
    page.get_by_label("Domain name").fill("not a domain")
    page.get_by_role("button", name="Add domain").click()
    expect(page.get_by_text("Enter just the domain name")).to_be_visible()
    settled(page)
    page.reload()
    expect(page.get_by_role("heading", name="Domains", exact=True)).to_be_visible()
    assert page.url == domains_url
    page.get_by_label("Domain name").fill("not a domain")
    page.get_by_role("button", name="Add domain").click()
    expect(page.get_by_text("Enter just the domain name")).to_be_visible()
    settled(page)
    page.get_by_role("button", name="Français").click()
    expect(page.get_by_role("heading", name="Domaines", exact=True)).to_be_visible()
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Domains", exact=True)).to_be_visible()

    domain = add_domain(owner, account, "example.org", "local")
    domain.status, domain.verified_at = ENABLED, domain.created_at
    db.session.commit()
    open_section(page, "Mailboxes")
    page.get_by_role("link", name="New mailbox").click()
    expect(page.get_by_role("heading", name="New mailbox")).to_be_visible()
    settled(page)
    form_url = page.url
    page.get_by_label("Address (before the @)").fill("no spaces allowed")
    page.get_by_role("button", name="Create mailbox").click()
    expect(page.locator("[aria-invalid=true]").first).to_be_visible()
    settled(page)
    assert page.url == form_url  # the form's own address, a page too
    page.get_by_label("Address (before the @)").fill("sales")
    page.get_by_role("button", name="Create mailbox").click()
    expect(page.get_by_text("sales@example.org created.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/mailboxes/\d+$"))


@pytest.mark.browser_context_args(java_script_enabled=False, viewport={"width": 1280, "height": 700})
def test_users__paging_without_scripts_shows_the_list_not_the_top_of_the_page(page: Page, live_server, account,
                                                                              crowd):
    """Without JavaScript a pager's link loads the whole page: scrolled to the list, where the
    reader was, rather than to the top, menus and filters first (a walkthrough)."""
    log_in(page, live_server, "owner@example.org")
    page.goto(live_server.url(f"/accounts/{account.id}/members"))
    page.locator("#member-list nav.pager").get_by_role("link", name="Next →").click()
    expect(page.locator("#member-list nav.pager [data-announce]")).to_have_text("51–100 of 501 people")
    assert page.evaluate("document.getElementById('member-list').getBoundingClientRect().top") == pytest.approx(0, abs=2)
    assert page.evaluate("window.scrollY") > 0


def test_overview__a_new_account_shows_what_to_do_first(page: Page, live_server, owner):
    log_in(page, live_server, "owner@example.org")
    page.goto(live_server.url("/accounts"))
    page.get_by_label("Account name").fill("Fresh Start")
    page.get_by_role("button", name="Create account").click()
    checklist = page.get_by_role("region", name="Getting started")
    expect(checklist).to_be_visible()
    for step in ("Add a domain", "Prove it is yours", "Publish its mail records", "Create the first mailbox",
                 "Invite someone"):
        expect(checklist).to_contain_text(step)
    expect(checklist.get_by_text("To do")).to_have_count(5)
    checklist.get_by_role("link", name="Add a domain").click()
    expect(page.get_by_role("heading", name="Domains")).to_be_visible()


def test_domain__published_in_one_pass_is_enabled_after_one_check_now(page: Page, live_server, account, dns_zone,
                                                                      monkeypatch):
    monkeypatch.setattr(domain_services, "WATCH_INTERVAL", domain_services.timedelta(seconds=1))
    log_in(page, live_server, "owner@example.org")
    open_section(page, "Domains")
    page.get_by_label("Domain name").fill("example.org")
    page.get_by_role("button", name="Add domain").click()
    records = page.locator("table.records tbody")
    # Every record is listed from the start, not only the ownership record.
    expect(records).to_contain_text("_portal-challenge.example.org", timeout=SLOW)
    expect(records).to_contain_text("mail.example.org", timeout=SLOW)
    expect(records).to_contain_text("v=spf1 mx ~all")
    mark_window(page)
    page.get_by_role("button", name="Check now").click()
    expect(page.locator("#domain-live[hx-trigger]")).to_have_count(1)  # the page keeps checking by itself

    domain = db.session.execute(db.select(Domain)).scalar_one()
    publish_ownership(dns_zone, domain)
    publish_local_mail_records(dns_zone, domain)
    expect(page.locator(".status-line .badge")).to_have_text("Enabled", timeout=SLOW)
    assert_not_reloaded(page, "waiting for the domain")
    expect(page.get_by_role("button", name="Check now")).to_be_enabled()
    screenshot(page, "domain-enabled-in-one-pass")
