"""axe-core in the browser tests: a page must pass the WCAG 2.0, 2.1 and 2.2 A and AA rules.

axe-core is pinned in ``tests/browser/package-lock.json`` and installed by
``scripts/install --dev`` (``npm ci --prefix tests/browser``).  It reaches the
page over the DevTools protocol, never as a ``<script>`` of the page: as an
init script of the browser context (``install``), or evaluated in a page that
does not have it yet (``check_page`` on any page).  So the node's
Content-Security-Policy, which forbids inline scripts, stays in force and is
not bypassed (``page.add_script_tag`` would be refused by it, rightly).

Any browser test may call ``check_page(page, "what it shows")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, Page

AXE_JS = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]

_RUN = """async (tags) => {
  const result = await window.axe.run(document, {
    runOnly: {type: 'tag', values: tags},
    resultTypes: ['violations'],
  });
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    url: v.helpUrl,
    nodes: v.nodes.map((n) => ({target: n.target.join(' '), summary: n.failureSummary})),
  }));
}"""


def _source() -> str:
    if not AXE_JS.exists():
        raise AssertionError(f"{AXE_JS} is missing: run scripts/install --dev (npm ci)")
    return AXE_JS.read_text(encoding="utf-8")


def install(context: BrowserContext) -> None:
    """Load axe-core in every page this context opens from now on."""
    context.add_init_script(script=_source())


def violations(page: Page) -> list[dict[str, Any]]:
    """The WCAG A/AA violations axe-core finds in the page as it is now."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_source())
    found: list[dict[str, Any]] = page.evaluate(_RUN, WCAG_AA)
    return found


def describe(name: str, found: list[dict[str, Any]]) -> str:
    """A readable list: rule, impact, what it asks, where (CSS selectors), and its help page."""
    lines = [f"{name}: {len(found)} accessibility rule(s) violated (axe-core, WCAG 2.2 AA)"]
    for v in found:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']}  <{v['url']}>")
        for node in v["nodes"][:8]:
            summary = " ".join(str(node["summary"] or "").split())
            lines.append(f"    {node['target']}  — {summary[:300]}")
        if len(v["nodes"]) > 8:
            lines.append(f"    … and {len(v['nodes']) - 8} more")
    return "\n".join(lines)


def check_page(page: Page, name: str) -> None:
    """Fail with the list of violations, if axe-core finds any in ``page``."""
    found = violations(page)
    if found:
        raise AssertionError(describe(name, found))
