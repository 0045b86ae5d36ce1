"""API tokens in headless Chromium: made in Settings, used from outside, revoked."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.browser.helpers import log_in

pytestmark = pytest.mark.browser


def test_tokens__made_in_settings_used_by_a_script_and_revoked(page: Page, live_server, make, problems):
    owner = make.user("owner@example.org", name="Olga Owner")
    account = make.account(owner, "Acme")
    log_in(page, live_server, "owner@example.org")
    page.goto(live_server.url(f"/accounts/{account.id}/settings"))
    page.get_by_role("link", name="API tokens").click()
    expect(page.get_by_role("heading", name="New token")).to_be_visible()
    page.get_by_label("Name").fill("nightly export")
    page.get_by_label("Domains: read").check()
    page.get_by_label("Users and their access: read").check()
    page.get_by_role("button", name="Make the token").click()
    expect(page.get_by_role("heading", name="Token “nightly export” made")).to_be_visible()
    secret = page.locator("code.value").inner_text().strip()
    assert secret.startswith("mpt_")

    api = live_server.url(f"/api/v1/accounts/{account.id}/members")
    session = requests.Session()
    answer = session.get(api, headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert answer.status_code == 200 and answer.json()["items"][0]["email"] == "owner@example.org"
    refused = session.post(live_server.url(f"/api/v1/accounts/{account.id}/roles"), timeout=10,
                           headers={"Authorization": f"Bearer {secret}"}, json={"name": "x", "scope": "account"})
    assert refused.status_code == 403  # read scopes only

    page.goto(live_server.url(f"/accounts/{account.id}/settings/tokens"))
    row = page.get_by_role("row", name="nightly export")
    expect(row).to_contain_text("127.0.0.1")
    expect(page.locator("code.value")).to_have_count(0)  # never shown again
    row.get_by_role("link", name="Revoke…").click()
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("row", name="nightly export")).to_contain_text("Revoked")
    answer = session.get(api, headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert answer.status_code == 401 and answer.headers["Content-Type"] == "application/problem+json"
    assert problems == []
