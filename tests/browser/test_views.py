"""Every category view walked in a real browser, with every real fixture in tests/fixtures/
imported (all connectors) into one vault behind one `pds serve`.

For each category that holds records, at desktop (1100x900) and phone (390x844) width, the
owner opens ``/data/<category>`` (and the other pages of ``VIEW_PAGES``) and the first
record it links to; at phone width, the oldest record of each connector in each category;
at both widths, a search for a word of each category. Every page must answer 200, pass the
axe-core audit (no serious or critical violation, light and dark), ask no host but its own,
draw no CSP complaint or page error, show no Python dict or list text, no ``0001-01-01``, no
``None``, no URL but the text of a link to that very URL, and not scroll sideways. Each page
is screenshotted to tests/browser/screenshots/ by category and width.

What each view shows is checked once per category, by its function in ``FACTS``, against
``pds records --json`` and ``pds status``: the transactions' totals per currency (the sums
of the payloads: GBP in £1,114.70, out £1,818.65 over 24; EUR in €2,896.60, out €4,205.38
over 23; USD in $20.01, out $294.78 over 7; ...), their account filter and each currency's
chart of money in and out per month with its numbers; a line per account and currency for
the balances; the energy totals per commodity and unit (199.563 kWh over 216 readings,
3,484 therm over 35; cost $7,229.17); the patient's summary and the six reference
resources kept out of the health records; the contacts' cards A to Z; the events' months;
the locations' and activity's days. The record page names its category, date and source
file, labels its fields and says that no business has read it.

The module is long because one served vault (its import takes most of a minute) holds
all of this: split, each part would import every fixture again.

``NOT_YET`` lists what a page still shows that it must not, each with its reason; the test
fails both on a problem not listed there and on a listed problem that is gone.

Two browser contexts share the signed-in owner: one as served (the strict CSP enforced, so
that its complaints are seen) for what a person sees, and one with ``bypass_csp``, only so
that axe can be injected (as in test_a11y.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from babel.dates import format_date, format_skeleton
from babel.numbers import format_currency, format_decimal

from pds.http.web.views.balances import kind_name
from tests.servers import free_port, serving
from tests.vault.test_durability import pds_env

from .conftest import Live, Watch, _csp, pds, shot
from .test_a11y import AXE, audit
from .test_owner import sign_in

FIXTURES = Path(__file__).parent.parent / "fixtures"
REFUSED = {
    # The file declares a ReadingType without a unit of measure; the Green Button connector
    # refuses the whole file (tests/connectors/test_greenbutton.py), --skip-bad or not.
    "greenbutton/gas-provider-batch-2024-07-16.xml": (
        "Error: gas-provider-batch-2024-07-16.xml line 662: ReadingType ReadingType/07 has no "
        "uom (unit of measure), so its readings cannot be read\n"
        "Hint: Download the Green Button (ESPI XML) file again from your utility.\n"
    ),
}
CONNECTORS = {
    "activity": ("takeout",),
    "balances": ("camt053", "mt940"),
    "contacts": ("vcard",),
    "energy": ("greenbutton",),
    "events": ("ical",),
    "health": ("applehealth", "fhir"),
    "locations": ("takeout",),
    "transactions": ("bankcsv", "camt053", "midata", "mt940", "ofx"),
}
"""The categories the fixtures fill, and the connectors that fill each."""
CATEGORIES = tuple(CONNECTORS)
COUNTS = {
    "activity": 4,
    "balances": 74,
    "contacts": 8,
    "energy": 251,
    "events": 3,
    "health": 352,
    "locations": 3,
    "transactions": 65,
}
"""What `pds status` counts per category once every fixture is imported."""
WIDTHS = {"desktop": (1100, 900), "phone": (390, 844)}

DICT_TEXT = re.compile(r"""[{\[]['"]|['"]: |['"], ['"]""")
"""Python (or JSON) dict and list text: ``{'``, ``['``, ``': ``, ``', '`` (or with ``"``)."""
YEAR_ONE = re.compile(r"0001-01-01")
NONE_TEXT = re.compile(r"\bNone\b")
URL_TEXT = re.compile(r"https?://[^\s\"'<>]+")

NOT_YET: dict[str, set[tuple[str, str]]] = {
    # test id -> (page, problem) still seen: "view" is /data/<category>, "record" a record,
    # "search" a search; each entry with the reason it is right.
}
VIEW_PAGES = {
    # Every event of the fixtures is past, so the agenda's "Upcoming" (its first page) lists
    # none: the past months are walked too, and their first event opened.
    "events": ("/data/events", "/data/events?when=past"),
}
"""The pages of a category's view walked, the record opened from the last; else the one
``/data/<category>``."""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not AXE.exists(), reason=f"axe-core is not installed: run `npm ci` in {AXE.parents[2]}"
    ),
]


@dataclass
class Walk:
    """The served vault and what the CLI says it holds."""

    live: Live
    status: dict
    files: dict[int, tuple[str, str]]  # source id -> (file name, connector), from the import
    records: dict[str, list[dict]]  # category -> `pds records --json` (oldest first)

    @property
    def base(self) -> str:
        return self.live.base


@dataclass(frozen=True)
class Problem:
    page: str  # "view" or "record"
    kind: str
    detail: str


def fixture_files() -> list[Path]:
    """Every real fixture file (not SOURCES.md, not the vaults of older versions)."""
    return sorted(
        p
        for p in FIXTURES.rglob("*")
        if p.is_file() and p.name != "SOURCES.md" and p.relative_to(FIXTURES).parts[0] != "vaults"
    )


def import_all(env: dict[str, str]) -> dict:
    """Every fixture file in one `pds import`, but each refused one alone, which must fail
    with its message; the summary of the import."""
    files = {p.relative_to(FIXTURES).as_posix(): p for p in fixture_files()}
    assert set(REFUSED) <= set(files), "a refused fixture is gone: update REFUSED"
    good = [str(p) for name, p in files.items() if name not in REFUSED]
    summary = json.loads(pds(env, "import", "--json", *good))
    # camt053.v8.xml repeats three balances of camt053.v2.minimal.xml
    assert [summary[k] for k in ("new", "duplicate", "rejected", "errors")] == [760, 3, 0, []]
    assert sorted(f["file"] for f in summary["files"]) == sorted(Path(p).name for p in good)
    for name, error in REFUSED.items():
        done = subprocess.run(
            [sys.executable, "-m", "pds", "import", "--skip-bad", str(files[name])],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert (done.returncode, done.stderr) == (1, error)
    return summary


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walk]:
    tmp = tmp_path_factory.mktemp("walk")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**pds_env(tmp / "home"), "PDS_ISSUER": base}
    pds(env, "init")
    summary = import_all(env)
    status = json.loads(pds(env, "status", "--json"))
    records: dict[str, list[dict]] = {c: [] for c in status["categories"]}
    for rec in json.loads(pds(env, "records", "--json")):
        records[rec["category"]].append(rec)
    files = {f["source_id"]: (f["file"], f["connector"]) for f in summary["files"]}
    filled = {c: tuple(sorted({files[r["source_id"]][1] for r in records[c]})) for c in records}
    assert status["categories"] == COUNTS
    assert filled == CONNECTORS
    with serving(env, port, tmp / "serve.log", workers=1):
        yield Walk(Live(base, tmp / "home", env, "", ""), status, files, records)


def signed_in(browser, walk: Walk, **options: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1100, "height": 900}, **options)
    try:
        page = context.new_page()
        sign_in(page, walk.live)
        page.close()
        yield context
    finally:
        context.close()


@pytest.fixture(scope="module")
def served(browser, walk: Walk) -> Iterator[object]:
    """The owner's browser, the strict CSP enforced."""
    yield from signed_in(browser, walk)


@pytest.fixture(scope="module")
def auditing(browser, walk: Walk) -> Iterator[object]:
    """The owner's browser with ``bypass_csp``, only to inject axe."""
    yield from signed_in(browser, walk, bypass_csp=True)


def new_page(context, width: str, watch: Watch | None = None) -> object:
    w, h = WIDTHS[width]
    page = context.new_page()
    page.set_viewport_size({"width": w, "height": h})
    page.set_default_timeout(15_000)
    if watch is not None:
        page.on("request", lambda r: watch.requests.append(r.url))
        page.on("pageerror", lambda e: watch.problems.append(f"page error: {e}"))
        page.on("console", lambda m: watch.problems.append(m.text) if _csp(m.text) else None)
    return page


def text_problems(page, where: str) -> list[Problem]:
    """What the visible text must not hold: dict or list text, year 1, None, and any URL
    but the text of a link to that very URL."""
    text = page.inner_text("body")
    linked = set(
        page.eval_on_selector_all(
            "a[href]",
            "links => links.map(a => a.innerText.trim())"
            ".filter((t, i) => t === links[i].getAttribute('href'))",
        )
    )
    found = []
    for kind, pattern in [("dict text", DICT_TEXT), ("0001-01-01", YEAR_ONE), ("None", NONE_TEXT)]:
        hits = list(pattern.finditer(text))
        if hits:
            first = text[max(0, hits[0].start() - 40) : hits[0].end() + 40]
            found.append(Problem(where, kind, f"{len(hits)} times, first in {first!r}"))
    urls = sorted({u for u in URL_TEXT.findall(text) if u not in linked})
    if urls:
        found.append(Problem(where, "URL as text", ", ".join(urls)))
    return found


def seen(page, status: int, where: str, watch: Watch, base: str) -> list[Problem]:
    """The checks of what the page, as loaded in the served context, shows and did."""
    found = [] if status == 200 else [Problem(where, "status", str(status))]
    found += text_problems(page, where)
    wide = page.evaluate("document.documentElement.scrollWidth")
    if wide > page.evaluate("document.documentElement.clientWidth"):
        found.append(Problem(where, "scrolls", f"sideways: {wide}px wide"))
    found += [Problem(where, "foreign request", u) for u in watch.foreign(base)]
    found += [Problem(where, "browser complaint", p) for p in watch.problems]
    return found


def audited(context, width: str, url: str, where: str, name: str) -> list[Problem]:
    page = new_page(context, width)
    try:
        page.goto(url)
        assert page.url == url, f"{name}: {url} led to {page.url}"
        return [Problem(where, "axe", line) for line in audit(page, name)]
    finally:
        page.close()


def compare(test_id: str, found: list[Problem]) -> None:
    """The problems seen are exactly those ``NOT_YET`` lists for this test."""
    expected = NOT_YET.get(test_id, set())
    new = [f"{p.page}: {p.kind}: {p.detail}" for p in found if (p.page, p.kind) not in expected]
    gone = sorted(expected - {(p.page, p.kind) for p in found})
    assert (new, gone) == ([], []), "\n".join(
        [*new, *(f"fixed, remove from NOT_YET[{test_id!r}]: {g}" for g in gone)]
    )


def look(page, context, url: str, where: str, name: str, watch: Watch, walk: Walk, width: str):
    """Open ``url`` in ``page`` (served) and in the auditing context: its problems."""
    watch.requests.clear()
    watch.problems.clear()
    response = page.goto(url)
    assert page.url == url, f"{url} led to {page.url}"
    found = seen(page, response.status, where, watch, walk.base)
    shot(page, name)
    return found + audited(context, width, url, where, name)


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("category", CATEGORIES)
def test_category_view(served, auditing, walk: Walk, category: str, width: str) -> None:
    watch = Watch()
    page = new_page(served, width, watch)
    try:
        found = []
        for n, path in enumerate(VIEW_PAGES.get(category, (f"/data/{category}",))):
            name = f"{category}-{width}" + (f"-{n + 1}" if n else "")
            found += look(page, auditing, walk.base + path, "view", name, watch, walk, width)

        link = page.locator("main a[href^='/records/']").first
        target = walk.base + link.get_attribute("href")
        watch.requests.clear()
        watch.problems.clear()
        with page.expect_response(target) as opened:
            link.click()
        page.wait_for_load_state()
        assert page.url == target
        assert page.locator("h1").inner_text() == "Record " + target.rsplit("/", 1)[1]
        name = f"{category}-record-{width}"
        found += seen(page, opened.value.status, "record", watch, walk.base)
        shot(page, name)
        found += audited(auditing, width, target, "record", name)
        compare(f"{category}-{width}", found)
    finally:
        page.close()


RECORD_PAGES = [(c, k) for c, connectors in CONNECTORS.items() for k in connectors]


@pytest.mark.parametrize(
    ("category", "connector"), RECORD_PAGES, ids=[f"{c}-{k}" for c, k in RECORD_PAGES]
)
def test_record_page(served, auditing, walk: Walk, category: str, connector: str) -> None:
    """The oldest record of each connector in each category, at phone width: its category,
    date, source file, its fields by their labels (no payload key), and that no business
    has read it."""
    rec = next(r for r in walk.records[category] if walk.files[r["source_id"]][1] == connector)
    watch = Watch()
    page = new_page(served, "phone", watch)
    try:
        url = f"{walk.base}/records/{rec['id']}"
        name = f"{category}-{connector}-record-phone"
        found = look(page, auditing, url, "record", name, watch, walk, "phone")
        assert page.locator("h1").inner_text() == f"Record {rec['id']}"
        about = page.locator("dl.about:not(.what)")
        dated = category != "contacts"  # a contact's date is only its import day: not shown
        assert about.locator("dt").all_inner_texts() == [
            "Category",
            *(["Date"] if dated else []),
            "Source file",
            "Added to your vault",
        ]
        shown = about.locator("dd").all_inner_texts()
        category_link, source = shown[0], shown[2 if dated else 1]
        assert (category_link, source) == (category, walk.files[rec["source_id"]][0])
        assert about.locator("dd a").get_attribute("href") == f"/data/{category}"
        if dated:
            assert shown[1] != rec["occurred_at"]  # written for a person (or "undated")
        labels = page.locator("table.fields-table th").all_inner_texts()
        assert labels, rec
        assert [t for t in labels if "_" in t or t in rec["payload"]] == []  # labels, not keys
        assert page.locator("main p", has_text="No business has read this record.").count() == 1
        compare(f"{category}-{connector}", found)
    finally:
        page.close()


# What holds for one category, from the real fixtures, computed from `pds records --json`.
# Each takes a signed-in page (desktop, en-US: amounts and dates as babel writes them for
# en_US) and the walk.


def goto(page, walk: Walk, path: str) -> None:
    assert page.goto(walk.base + path).status == 200


def linked(page, walk: Walk, path: str, links: str = "main a[href^='/records/']") -> list[int]:
    """The ids of the records ``links`` point at on ``path``, in order, following "Next"."""
    ids: list[int] = []
    url = walk.base + path
    while True:
        assert page.goto(url).status == 200
        hrefs = page.eval_on_selector_all(links, "ls => ls.map(a => a.getAttribute('href'))")
        ids += [int(h.rsplit("/", 1)[1]) for h in hrefs]
        following = page.locator(".pager a", has_text="Next")
        if following.count() == 0:
            return ids
        url = following.evaluate("a => a.href")


def newest_first(walk: Walk, category: str) -> list[int]:
    """Its records newest first: the reverse of `pds records` (oldest first)."""
    return [r["id"] for r in reversed(walk.records[category])]


def in_overview(page, walk: Walk, category: str) -> None:
    """The overview of /data counts as many as `pds status`."""
    goto(page, walk, "/data")
    link = page.get_by_role("link", name=category, exact=True)
    row = page.locator("main tbody tr").filter(has=link)
    assert row.locator("td").all_inner_texts() == [category, str(COUNTS[category])]


def offers_its_sources(page, walk: Walk, category: str) -> None:
    """The source filter offers the files that hold this category, and only those."""
    held = sorted({r["source_id"] for r in walk.records[category]})
    options = page.locator("#source option").all_inner_texts()
    assert options == ["All sources", *(walk.files[s][0] for s in held)]


def common(page, walk: Walk, category: str) -> None:
    in_overview(page, walk, category)
    goto(page, walk, f"/data/{category}")
    offers_its_sources(page, walk, category)


def rows(page, table: str) -> list[list[str]]:
    """The text of the cells (th and td) of each body row of ``table`` (also in a closed
    ``details``, as a chart's numbers are)."""
    return [
        [t.strip() for t in r.locator("th, td").all_text_contents()]
        for r in page.locator(f"{table} tbody tr").all()
    ]


def money(amount: Decimal, currency: str) -> str:
    return format_currency(amount, currency, locale="en_US")


def month_label(month: str) -> str:
    return format_skeleton("yMMM", date(int(month[:4]), int(month[5:7]), 1), locale="en_US")


def months_to(last: str, first: str, most: int) -> list[str]:
    """The months ``first`` to ``last`` ("2024-03"), at most the ``most`` last ones."""
    y, m = int(last[:4]), int(last[5:7])
    out = []
    while len(out) < most and f"{y:04d}-{m:02d}" >= first:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out[::-1]


CHART_MONTHS = 36
"""The transactions' charts draw the last 36 months of each currency."""


def transactions(page, walk: Walk) -> None:
    """Every transaction newest first; per currency (most transactions first) the totals in
    and out are the sums of the payloads' amounts; the account filter keeps that account's;
    per currency a chart of money in and out per month with its numbers table."""
    common(page, walk, "transactions")
    recs = walk.records["transactions"]
    assert linked(page, walk, "/data/transactions", "table.money a") == newest_first(
        walk, "transactions"
    )
    per: dict[str, list] = {}
    for r in recs:
        p = r["payload"]
        t = per.setdefault(p["currency"], [Decimal(0), Decimal(0), 0, {}])
        amount = Decimal(p["amount"])
        t[0 if amount > 0 else 1] += amount
        t[2] += 1
        flows = t[3].setdefault(r["occurred_at"][:7], [Decimal(0), Decimal(0)])
        flows[0 if amount > 0 else 1] += amount
    order = sorted(per, key=lambda c: (-per[c][2], c))
    assert order == ["GBP", "EUR", "USD", "CHF", "PLN", "AUD", "CAD", "BRL"]
    goto(page, walk, "/data/transactions")
    assert rows(page, "table.totals") == [
        [c, money(i, c), money(-o, c), money(i + o, c), str(n)]
        for c, (i, o, n, _) in ((c, per[c]) for c in order)
    ]
    assert rows(page, "table.totals")[0] == ["GBP", "£1,114.70", "£1,818.65", "-£703.95", "24"]
    for c in order:
        figure = page.locator(f"figure#flows-{c}")
        assert figure.locator("svg > title").text_content() == (f"Money in and out per month ({c})")
        flows = per[c][3]
        months = months_to(max(flows), min(flows), CHART_MONTHS)
        assert rows(page, f"figure#flows-{c} details.numbers table") == [
            [
                month_label(m),
                money(flows.get(m, [0, 0])[0], c),
                money(-flows.get(m, [0, 0])[1], c),
            ]
            for m in months
        ], c
        assert page.locator(f"figure#spending-{c}").count() == 1
    account = "NL26VAYB8060476890"
    held = [r for r in recs if r["payload"]["account"] == account]
    goto(page, walk, f"/data/transactions?account={account}")
    assert page.locator("#account").input_value() == account
    total = sum(Decimal(r["payload"]["amount"]) for r in held)
    assert rows(page, "table.totals") == [
        ["EUR", money(total, "EUR"), money(Decimal(0), "EUR"), money(total, "EUR"), "2"]
    ]
    assert rows(page, "table.totals") == [["EUR", "€17.70", "€0.00", "€17.70", "2"]]
    assert sorted(linked(page, walk, f"/data/transactions?account={account}")) == sorted(
        r["id"] for r in held
    )


def balances(page, walk: Walk) -> None:
    """Every balance newest first; a chart per currency with a line per account; the latest
    balance table has one line per account and currency, each the balance its file gave
    for that account on its last day."""
    common(page, walk, "balances")
    recs = walk.records["balances"]
    assert linked(page, walk, "/data/balances", "table.money a") == newest_first(walk, "balances")
    goto(page, walk, "/data/balances")
    pairs: dict[tuple[str, str], list[dict]] = {}
    for r in recs:
        pairs.setdefault((r["payload"]["account"], r["payload"]["currency"]), []).append(r)
    currencies = sorted({c for _, c in pairs})
    titles = page.locator("main figure.chart svg > title").all_text_contents()
    assert titles == [f"Balance per account ({c})" for c in currencies]
    assert titles == [f"Balance per account ({c})" for c in ("CHF", "EUR", "JPY", "PLN", "SEK")]
    eur = page.locator("main figure.chart").nth(1).locator("ul.legend li").all_inner_texts()
    assert [t.strip() for t in eur] == sorted(a for a, c in pairs if c == "EUR")
    latest = rows(page, "table.latest")
    assert len(latest) == len(pairs) == 7
    shown = set()
    for account, amount, day, kind in latest:
        (pair,) = [
            (a, c)
            for (a, c), rs in pairs.items()
            if a == account
            for r in rs
            if r["occurred_at"][:10] == max(x["occurred_at"][:10] for x in rs)
            and kind_name(r["payload"]["type"]) == kind
            and money(Decimal(r["payload"]["amount"]), c) == amount
        ]
        last = max(r["occurred_at"][:10] for r in pairs[pair])
        assert day == format_date(date.fromisoformat(last), "medium", locale="en_US")
        shown.add(pair)
    assert shown == set(pairs)
    assert latest[3] == ["NL81ASNB9999999999", "€501.23", "Jan 31, 2020", "Closing booked"]


def energy(page, walk: Walk) -> None:
    """Every reading newest first; a usage chart per commodity and unit, and the totals per
    commodity the sums of the readings (electricity in Wh, written in kWh); the cost."""
    common(page, walk, "energy")
    recs = walk.records["energy"]
    assert linked(page, walk, "/data/energy", "table.readings a") == newest_first(walk, "energy")
    goto(page, walk, "/data/energy")
    used: dict[tuple[str, str], list] = {}
    for r in recs:
        t = used.setdefault((r["payload"]["commodity"], r["payload"]["unit"]), [Decimal(0), 0])
        t[0] += Decimal(r["payload"]["value"])
        t[1] += 1
    assert set(used) == {("electricity", "Wh"), ("gas", "therm")}
    kwh = used["electricity", "Wh"][0] / 1000
    assert rows(page, "table.energy-totals") == [
        ["Electricity", "Imported", f"{format_decimal(kwh, locale='en_US')} kWh", "216"],
        ["Gas", "Used", f"{format_decimal(used['gas', 'therm'][0], locale='en_US')} therm", "35"],
    ]
    assert [used[k][1] for k in sorted(used)] == [216, 35]
    assert rows(page, "table.energy-totals")[0][2] == "199.563 kWh"
    cost = sum(Decimal(r["payload"]["cost"]) for r in recs if r["payload"]["cost"])
    assert page.locator(".energy-cost").inner_text() == (
        f"Cost of these readings: {money(cost, 'USD')}"
    )
    assert money(cost, "USD") == "$7,229.17"
    titles = page.locator("main figure.chart svg > title").all_text_contents()
    assert titles == [
        "Electricity per month (kWh)",
        "Gas per month (therm)",
        "Cost per month (USD)",
    ]
    assert page.locator("main figure.chart details.numbers table").count() == 3


REFERENCES = {"Organization", "Practitioner", "Medication", "Device", "Location"}


def health(page, walk: Walk) -> None:
    """The patient's summary from the Patient resource; the reference resources (undated:
    0001-01-01) named under "People and places"; neither in the records table, which lists
    every other record newest first (the undated goals and prescription last)."""
    common(page, walk, "health")
    recs = walk.records["health"]
    undated = [r for r in recs if r["occurred_at"].startswith("0001-01-01")]
    refs = [r for r in undated if r["payload"]["type"] in REFERENCES]
    (patient,) = [r for r in recs if r["payload"]["type"] == "Patient"]
    assert len(refs) == 6
    listed = linked(
        page, walk, "/data/health", "section[aria-labelledby='records'] a[href^='/records/']"
    )
    assert listed == [
        i
        for i in newest_first(walk, "health")
        if i not in {patient["id"], *(r["id"] for r in refs)}
    ]
    assert {r["payload"]["type"] for r in undated if r["id"] in listed} == {
        "Goal",
        "MedicationRequest",
    }
    goto(page, walk, "/data/health")
    assert (
        page.locator("#places").inner_text() == f"People and places in your records ({len(refs)})"
    )
    names = page.eval_on_selector_all("ul.places a", "ls => ls.map(a => a.getAttribute('href'))")
    assert sorted(int(h.rsplit("/", 1)[1]) for h in names) == sorted(r["id"] for r in refs)
    resource = patient["payload"]["resource"]
    (name,) = resource["name"]
    born = date.fromisoformat(resource["birthDate"])
    summary = page.locator("dl.patient")
    assert summary.locator("dt").all_inner_texts()[:2] == ["Name", "Born"]
    assert summary.locator("dd").all_inner_texts()[:3] == [
        " ".join([*name["prefix"], *name["given"], name["family"]]),
        format_date(born, "medium", locale="en_US"),
        resource["gender"],
    ]
    assert summary.locator("dd a").get_attribute("href") == f"/records/{patient['id']}"


def contacts(page, walk: Walk) -> None:
    """A card per contact, A to Z by the name it shows, each linking its record."""
    common(page, walk, "contacts")
    assert sorted(linked(page, walk, "/data/contacts")) == sorted(
        r["id"] for r in walk.records["contacts"]
    )
    goto(page, walk, "/data/contacts")
    assert page.locator("li.card h2").all_inner_texts() == [
        "jane.doe@company.com",
        "john.doe@company.com",
        "Mr. John Richter James Doe Sr.",
        "Ñ Ñ Ñ Ñ",
        "Ñ Ñ Ñ Ñ Ñ",
        "Ñ Ñ Ñ Ñ Ñ Ñ Ñ Ñ Ñ Ñ Ñ",
        "ÑÑÑÑ",
        "Simon Perreault",
    ]
    assert page.locator("p.count").inner_text() == "8 contacts"


def events(page, walk: Walk) -> None:
    """Nothing upcoming (every event is past); the past months newest first, each under its
    month's heading."""
    common(page, walk, "events")
    assert page.locator("main section.agenda-month").count() == 0
    goto(page, walk, "/data/events?when=past")
    months: dict[str, list[int]] = {}
    for r in reversed(walk.records["events"]):
        months.setdefault(month_label(r["payload"]["start_local"][:7]), []).append(r["id"])
    assert page.locator("section.agenda-month h2").all_inner_texts() == list(months)
    assert list(months) == ["Oct 2024", "Feb 2022"]
    for n, ids in enumerate(months.values()):
        section = page.locator("section.agenda-month").nth(n)
        hrefs = section.locator("a[href^='/records/']").evaluate_all(
            "ls => ls.map(a => a.getAttribute('href'))"
        )
        assert hrefs == [f"/records/{i}" for i in ids]


def timeline(page, walk: Walk, category: str) -> list[tuple[str, list[int]]]:
    """The day headings of a timeline, newest day first, each with the records it links;
    what the records say, grouped by their day (UTC here), newest first."""
    goto(page, walk, f"/data/{category}")
    days: dict[str, list[int]] = {}
    for r in reversed(walk.records[category]):
        day = format_date(date.fromisoformat(r["occurred_at"][:10]), "medium", locale="en_US")
        days.setdefault(day, []).append(r["id"])
    shown = []
    for section in page.locator("section.timeline-day").all():
        hrefs = section.locator("a[href^='/records/']").evaluate_all(
            "ls => ls.map(a => a.getAttribute('href'))"
        )
        shown.append((section.locator("h2").inner_text(), [int(h[9:]) for h in hrefs]))
    assert [d for d, _ in shown] == list(days)
    return shown


def locations(page, walk: Walk) -> None:
    """A heading per day, its reports counted and grouped into visits."""
    common(page, walk, "locations")
    shown = timeline(page, walk, "locations")
    assert shown == [("Jul 18, 2015", [383]), ("Jul 18, 2014", [389])]
    assert page.locator("p.day-summary").all_inner_texts() == [
        "2 reports, 1 visit",
        "1 report, 1 visit",
    ]


def activity(page, walk: Walk) -> None:
    """A heading per day, each thing done that day linked, newest first."""
    common(page, walk, "activity")
    shown = timeline(page, walk, "activity")
    assert shown == [("May 30, 2019", newest_first(walk, "activity"))]
    assert page.locator("ul.timeline .host").all_inner_texts() == [
        "webapps.stackexchange.com",
        "google.com",
        "google.com",
        "google.co.uk",
    ]


FACTS: dict[str, Callable[[object, Walk], None]] = {
    f.__name__: f
    for f in (transactions, balances, energy, health, contacts, events, locations, activity)
}


@pytest.mark.parametrize("category", CATEGORIES)
def test_category_facts(served, walk: Walk, category: str) -> None:
    page = new_page(served, "desktop")
    try:
        FACTS[category](page, walk)
    finally:
        page.close()


SEARCHES = {
    "transactions": "coffee",
    "balances": "CLAV",
    "energy": "therm",
    "health": "Ibuprofen",
    "contacts": "Viagenie",
    "events": "Termin",
    "locations": "WIFI",
    "activity": "Pheba",
}
"""A word per category that its records hold."""


def holding(walk: Walk, word: str) -> dict[str, set[int]]:
    """Per category, the records whose payload holds ``word`` as a whole word, any case."""
    pattern = re.compile(rf"\b{re.escape(word)}\b", re.IGNORECASE)
    found: dict[str, set[int]] = {}
    for category, recs in walk.records.items():
        ids = {
            r["id"] for r in recs if pattern.search(json.dumps(r["payload"], ensure_ascii=False))
        }
        if ids:
            found[category] = ids
    return found


@pytest.mark.parametrize("width", list(WIDTHS))
def test_search(served, auditing, walk: Walk, width: str) -> None:
    """A word per category finds its records, in that category's group, counted; the
    search page passes the checks of every page at both widths."""
    watch = Watch()
    page = new_page(served, width, watch)
    found: list[Problem] = []
    try:
        for category, word in SEARCHES.items():
            url = f"{walk.base}/search?q={word}"
            found += look(
                page, auditing, url, "search", f"search-{category}-{width}", watch, walk, width
            )
            expected = holding(walk, word)
            assert category in expected, word
            groups = page.locator("main section").all()
            assert [g.locator("h2").inner_text() for g in groups] == [
                f"{c}: {len(ids)} match" + ("" if len(ids) == 1 else "es")
                for c, ids in expected.items()
            ], word
            for g, ids in zip(groups, expected.values(), strict=True):
                hrefs = g.locator("li a").evaluate_all("ls => ls.map(a => a.getAttribute('href'))")
                listed = {int(h.rsplit("/", 1)[1]) for h in hrefs}
                more = g.locator("a", has_text="Show all")
                if more.count():
                    assert more.inner_text() == f"Show all {len(ids)}", word
                    assert listed < ids, word
                else:
                    assert listed == ids, word
        compare(f"search-{width}", found)
    finally:
        page.close()
