"""The owner's pages at phone width (390 × 844, a common phone): each table of the Home,
Businesses, Access history and Requests pages shows its rows as blocks, one under the other,
each cell under its column's name; the page never scrolls sideways; the access chart's
words stay readable; and the axe-core audit finds nothing serious at that width either."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .conftest import Live, shot
from .test_a11y import AXE, allow, audit
from .test_owner import MIDATA, Business, sign_in

PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.skipif(
    not AXE.exists(), reason=f"axe-core is not installed: run `npm ci` in {AXE.parents[2]}"
)

LAYOUT = """([selector, caption]) => {
  const tables = [...document.querySelectorAll(selector)].filter(
    (t) => caption === null || (t.caption && t.caption.textContent.trim() === caption));
  const rows = tables.flatMap((t) => [...t.querySelectorAll(':scope > tbody > tr')]);
  return {
    page: [document.documentElement.scrollWidth, document.documentElement.clientWidth],
    rows: rows.map((tr) => {
      const box = tr.getBoundingClientRect();
      const cells = [...tr.querySelectorAll(':scope > td')];
      return {
        display: getComputedStyle(tr).display,
        top: Math.round(box.top),
        bottom: Math.round(box.bottom),
        right: Math.round(box.right),
        cells: cells.map((td) => [
          getComputedStyle(td).display,
          getComputedStyle(td, '::before').content,
          Math.round(td.getBoundingClientRect().left),
          td.textContent.trim() === '',
        ]),
      };
    }),
  };
}"""


@pytest.fixture
def phone(browser) -> Iterator[object]:
    context = browser.new_context(viewport=PHONE, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


def layout(page, selector: str, caption: str | None = None) -> dict:
    """The page's width and the rows of the tables ``selector`` (with that caption) finds."""
    return page.evaluate(LAYOUT, [selector, caption])


def stacked(found: dict, labels: list[str]) -> None:
    """Rows are blocks one under the other, each cell a block under its label, left-aligned;
    an empty cell is left out."""
    rows = found["rows"]
    assert rows, "no row to look at"
    for row in rows:
        assert row["display"] == "block"
        assert [c[0] for c in row["cells"]] == ["none" if c[3] else "block" for c in row["cells"]]
        assert [c[1] for c in row["cells"]] == [f'"{label}"' for label in labels]
        shown = [c for c in row["cells"] if not c[3]]
        assert len({c[2] for c in shown}) == 1  # every cell starts at the same left edge
        assert row["right"] <= PHONE["width"]
    for above, below in zip(rows, rows[1:], strict=False):
        assert below["top"] >= above["bottom"]


@pytest.mark.slow
def test_tables_become_lists_at_phone_width(phone, live: Live) -> None:
    page = phone
    sign_in(page, live)
    page.goto(live.base + "/import")
    page.get_by_label("File", exact=True).set_input_files(str(MIDATA))
    page.get_by_role("button", name="Import", exact=True).click()
    page.locator("#import-result p.ok").wait_for()
    page.route(live.redirect_uri + "?**", lambda r: r.fulfill(status=200, body="ok"))
    token = allow(page, live, "read:transactions")
    business = Business(live)
    assert business.read(token, "transactions")[0] == 200
    assert business.read("not-a-token", "transactions")[0] == 401
    page.goto(live.base + "/requests")
    page.get_by_label("Business", exact=True).fill("Acme Bank")
    page.get_by_role("button", name="Write the letter").click()
    page.wait_for_url(live.base + "/requests?opened=1")

    found: list[str] = []
    home_columns = {
        "Records by category": ["Category", "Records"],
        "Sources": ["File", "Format", "Records", "Imported"],
        "Businesses with live grants": ["Business", "What it may do", "Purpose", "Until"],
        "Last accesses (all)": ["When (UTC)", "Who", "What", "Category", "Decision"],
    }
    page.goto(live.base + "/")
    for caption, labels in home_columns.items():
        stacked(layout(page, "table.list", caption), labels)
    assert layout(page, "none")["page"][0] <= layout(page, "none")["page"][1]
    shot(page, "phone-home")
    found += audit(page, "home (phone)")

    page.goto(live.base + "/grants")
    grant = ["#", "Business", "What it may do", "Purpose", "Until (UTC)", "Status", "Actions"]
    stacked(layout(page, "table.grants"), grant)
    client = ["Name", "Client id", "Checked by you", "Registered (UTC)", "Actions"]
    stacked(layout(page, "#clients"), client)
    width, seen = layout(page, "none")["page"]
    assert width <= seen
    shot(page, "phone-businesses")
    found += audit(page, "businesses (phone)")

    page.goto(live.base + "/history")
    access = ["#", "When (UTC)", "Who", "Call", "Category", "Records", "Purpose", "Decision"]
    stacked(layout(page, "#accesses"), [*access, "Why"])
    assert page.locator("#accesses tbody tr").count() == 2
    width, seen = layout(page, "none")["page"]
    assert width <= seen
    # the chart fits the screen and its axis words are drawn at 18 units of 640: 10px or more
    chart = page.locator("#chart svg.chart").bounding_box()
    assert chart is not None
    assert chart["width"] <= PHONE["width"]
    tick = page.locator("#chart svg.chart text.tick").first.bounding_box()
    assert tick is not None
    assert tick["height"] >= 10
    shot(page, "phone-history")
    found += audit(page, "history (phone)")

    page.goto(live.base + "/requests")
    width, seen = layout(page, "none")["page"]
    assert width <= seen
    assert page.locator("section.request").count() == 1
    shot(page, "phone-requests")
    found += audit(page, "requests (phone)")
    assert found == [], "\n".join(found)
