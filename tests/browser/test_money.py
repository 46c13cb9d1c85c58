"""The money pages in a real browser, with real statements of every bank connector in the
vault: what a person sees at desktop and phone width (totals per currency, charts with
their numbers, cards on a phone, nothing wider than the screen), the axe-core audit, and no
request to another host."""

from __future__ import annotations

import pytest

from ..conftest import fixture
from .conftest import Live, pds, shot
from .test_a11y import AXE, audit
from .test_owner import sign_in

FILES = [
    "midata/nationwide-test-midata.csv",
    "bank-csv/rabobank-nl-CSV_A_20180414_112204.csv",
    "ofx/ofxparse-checking.ofx",
    "mt940/abnamro.sta",
    "camt053/camt053.v2.minimal.xml",
]
RULES = '[[rule]]\ncategory = "Eating out"\ncontains = "coffee"\n'
PAGES = ["/data/transactions", "/data/transactions?sort=out", "/data/balances"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed (npm ci)"),
]


@pytest.fixture(scope="module")
def money(live: Live) -> Live:
    (live.home / "spending.toml").write_text(RULES, encoding="utf-8")
    for name in FILES:
        pds(live.env, "import", str(fixture(name)))
    return live


@pytest.mark.parametrize("width", [1100, 375])
def test_money_pages_at_desktop_and_phone_width(browser, money: Live, width: int) -> None:
    context = browser.new_context(
        viewport={"width": width, "height": 800}, is_mobile=width < 600, bypass_csp=True
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    found: list[str] = []
    try:
        sign_in(page, money)
        for path in PAGES:
            page.goto(money.base + path)
            text = page.inner_text("main")
            assert "{'" not in text
            assert "0001-01-01" not in text
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, (path, width)
            found += audit(page, f"{path} at {width}px")
            shot(page, f"money-{width}-{path.strip('/').replace('/', '-').replace('?', '-')}")
        page.goto(money.base + "/data/transactions")
        totals = page.locator("table.totals tbody tr")
        assert totals.count() == 3  # GBP, EUR, USD: never added together
        gbp = page.locator("table.totals tbody tr", has_text="GBP")
        assert gbp.inner_text().split("\t") == [
            "GBP",
            "£9.70",
            "£137.85",
            "-£128.15",
            "8",
        ]
        assert page.locator("figure#flows-GBP svg.chart rect.bar").count() > 0
        cell = page.locator("table.money tbody tr").first.locator("td.out")
        assert cell.inner_text() == "£52.00"
        shown = cell.evaluate(
            "td => [getComputedStyle(td).display, getComputedStyle(td, '::before').content]"
        )
        assert shown == (["block", '"Paid out: "'] if width < 600 else ["table-cell", "none"])
        first = page.locator("table.money tbody tr").first
        assert first.locator('td[data-label="Category"]').inner_text() == "Eating out"
        page.goto(money.base + "/data/transactions/rules")
        found += audit(page, f"spending rules at {width}px")
    finally:
        context.close()
    assert found == []
    assert [u for u in requests if not u.startswith(money.base + "/")] == []
