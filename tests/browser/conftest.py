"""Fixtures of the browser tests: a watch on what goes wrong in the browser.

"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import watch


@pytest.fixture
def problems(page: Page) -> list[str]:
    """Console errors, uncaught page errors and CSP violations seen by ``page``."""
    seen: list[str] = []
    watch(page, seen, csp=True)
    return seen


@pytest.fixture
def visit(page: Page, live_server, problems):
    """Open a page of the live server: it answers 200, shows ``heading``, and nothing has gone wrong so far."""
    def visit(path: str, heading: str) -> None:
        response = page.goto(live_server.url(path))
        assert response is not None and response.status == 200, f"{path} answered {response and response.status}"
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        page.wait_for_load_state("networkidle")
        assert problems == [], f"{path}: {problems}"

    return visit
