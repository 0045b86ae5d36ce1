"""axe-core in the browser tests: the WCAG 2.0 and 2.1 A and AA rules, run on the page as it is shown.

axe-core is the npm package pinned in ``tests/package.json`` (``npm ci --prefix tests``, which
``make test`` runs when it is missing); nothing comes from a CDN. The portal's
Content-Security-Policy allows no inline script, so the source is evaluated through the
browser's debugging protocol, which the policy does not govern, rather than added as a
``<script>`` element; the policy under test stays the production one.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from playwright.sync_api import Page

AXE_SOURCE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

_RUN = """async (tags) => {
    const results = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
    return results.violations.map((violation) => ({
        rule: violation.id, impact: violation.impact, help: violation.help,
        nodes: violation.nodes.map((node) => ({target: node.target.join(" "), summary: node.failureSummary})),
    }));
}"""


@cache
def _source() -> str:
    if not AXE_SOURCE.exists():
        raise RuntimeError(f"{AXE_SOURCE} is missing: run `npm ci --prefix tests` (make test does).")
    # Evaluated as an expression: the bundle, then a value the protocol can return.
    return AXE_SOURCE.read_text(encoding="utf-8") + "\n;true"


def violations(page: Page) -> list[dict]:
    """axe's WCAG A and AA violations on ``page`` now."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(_source())
    return page.evaluate(_RUN, WCAG_AA)


def describe(found: list[dict]) -> str:
    lines = []
    for violation in found:
        lines.append(f"- {violation['rule']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"]:
            summary = " ".join((node["summary"] or "").split())
            lines.append(f"    {node['target']}: {summary}")
    return "\n".join(lines)


class AxeAudit:
    """axe on each page and state a test shows, with ``<html lang>`` checked on each; fails once, at the
    end, with every violation found (rule, element, what to fix), so one run lists them all."""

    def __init__(self, page: Page, live_server, language: str) -> None:
        self.page, self.live_server, self.language = page, live_server, language
        self.found: list[str] = []
        self.checked: list[str] = []

    def check(self, what: str) -> None:
        self.page.wait_for_load_state("networkidle")
        lang = self.page.evaluate("document.documentElement.lang")
        assert lang == self.language, f"{what}: <html lang={lang!r}>, expected {self.language!r}"
        found = violations(self.page)
        self.checked.append(what)
        if found:
            self.found.append(f"{what} ({self.page.url}):\n{describe(found)}")

    def visit(self, path: str, what: str, status: int = 200) -> None:
        response = self.page.goto(self.live_server.url(path))
        assert response is not None and response.status == status, \
            f"{what}: {path} answered {response and response.status}"
        self.check(what)

    def assert_clean(self) -> None:
        assert not self.found, (f"axe found WCAG A/AA violations on {len(self.found)} of {len(self.checked)} "
                                f"pages and states ({self.language}):\n\n" + "\n\n".join(self.found))
