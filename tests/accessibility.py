"""Accessibility checks of a page open in the browser test (tests/test_book.py).

* axe-core (pinned in package.json; ``make assets`` copies it to ``_offline/axe/``, outside
  the served site) is injected into the page and run with the WCAG 2.0 and 2.1 A and AA
  rules; every violation is saved in ``_build/axe/<page>.json`` and the serious and
  critical ones fail the test;
* every image of the page's content (chapter figures, the widgets' pictures) has alt text
  of at least a sentence that is not a file name.
"""
import json
from pathlib import Path

from .conftest import REPO

AXE = REPO / "_offline" / "axe" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
FAILING = ("serious", "critical")
RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: "tag", values: arguments[0]}, resultTypes: ["violations"]})
  .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                           nodes: v.nodes.map(n => n.target.join(" "))}))),
        e => done("axe failed: " + e));
"""
# content images whose alt is missing, a file name, or shorter than a sentence of 4 words
UNDESCRIBED_IMAGES = r"""
return Array.from(document.querySelectorAll("article img")).filter(i => {
  const alt = (i.getAttribute("alt") || "").trim();
  return alt.split(/\s+/).length < 4 || /\.(png|jpe?g|svg)\b|_images\//.test(alt);
}).map(i => (i.getAttribute("alt") || "(no alt)").slice(0, 80) + " | " + i.src.slice(0, 60));
"""


def axe_violations(browser, save_as: Path) -> list[dict]:
    """Run axe-core on the open page; save and return its violations (all impacts)."""
    if not AXE.is_file():
        raise FileNotFoundError(f"{AXE} is missing: run `make assets` (npm ci copies axe-core)")
    browser.set_script_timeout(120)
    browser.execute_script(AXE.read_text())
    violations = browser.execute_async_script(RUN_AXE, TAGS)
    if isinstance(violations, str):
        raise RuntimeError(violations)
    save_as.parent.mkdir(parents=True, exist_ok=True)
    save_as.write_text(json.dumps(violations, indent=1))
    return violations


def failing(violations: list[dict]) -> str:
    """The serious and critical violations, one line each with up to three of their nodes."""
    return "\n".join(f"  {v['id']} ({v['impact']}, {len(v['nodes'])} nodes): {v['help']}; "
                     + ", ".join(v["nodes"][:3]) for v in violations if v["impact"] in FAILING)
