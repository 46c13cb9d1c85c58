"""The transactions view through Flask's test client, with real statement files: totals per
currency over everything the filters select, the real count, sort by amount, the account
and spending filters, the charts with their numbers, the counterparties paid most."""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal

import pytest

from pds.http.web.views import transactions
from pds.importer import import_file
from pds.policyfiles.spending import save
from tests.conftest import fixture
from tests.db.test_busy import BUSY, held, shorten_app_waits
from tests.db.test_busy import short_waits as short_waits  # the fixture, used by name
from tests.oauth_kit import csrf

NATIONWIDE = "midata/nationwide-test-midata.csv"
RABOBANK = "bank-csv/rabobank-nl-CSV_A_20180414_112204.csv"
EVERY_BANK_FILE = [
    "midata/midata-spec-example.csv",
    NATIONWIDE,
    "ofx/actual-html-vals.qfx",
    "ofx/asgrim-ofxdata-bb.ofx",
    "ofx/ofxparse-anzcc.ofx",
    "ofx/ofxparse-checking.ofx",
    "ofx/ofxparse-suncorp.ofx",
    "bank-csv/johnlewis-card-uk-MS_JANE_SMITH_01-12-2019_14-12-2019.csv",
    RABOBANK,
    "bank-csv/schwab-checking-us.csv",
    "bank-csv/ubs-ch-fr_trimmed.csv",
    "mt940/abnamro.sta",
    "mt940/asnbank-swift-blocks.txt",
    "mt940/mbank.sta",
    "camt053/camt053.v2.minimal.xml",
    "camt053/camt053.v8.xml",
]
RULES = """
[[rule]]
category = "Eating out"
contains = "coffee"

[[rule]]
category = "Bills"
contains = "broadband"
"""


def load(vault, *names: str) -> None:
    for name in names:
        import_file(vault, fixture(name))


def main_of(html: str) -> str:
    return html.split("<main>")[1].split("</main>")[0]


def shown_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<a href="/records/(\d+)">View', html)]


def totals_rows(html: str) -> list[str]:
    table = html.split('<table class="totals">')[1].split("</table>")[0]
    return re.findall(r"<tr><th scope=\"row\">.*?</tr>", table)


def test_totals_per_currency_never_mixed(kit, vault) -> None:
    load(vault, NATIONWIDE, RABOBANK)
    kit.login()
    page = main_of(kit.http.get("/data/transactions").text)
    assert '<h2 id="totals-title">11 transactions</h2>' in page
    assert totals_rows(page) == [
        '<tr><th scope="row">GBP</th><td class="num">£9.70</td><td class="num">£137.85</td>'
        '<td class="num">-£128.15</td><td class="num">8</td></tr>',
        '<tr><th scope="row">EUR</th><td class="num">€50.00</td><td class="num">€1,087.49</td>'
        '<td class="num">-€1,037.49</td><td class="num">3</td></tr>',
    ]
    # newest first, money out and in in their own columns
    assert shown_ids(page) == [1, 2, 3, 4, 5, 6, 7, 8, 11, 10, 9]
    assert (
        '<td class="num out" data-label="Paid out">£52.00</td>'
        '<td class="num" data-label="Paid in"></td>' in page
    )
    assert (
        '<td class="num" data-label="Paid out"></td>'
        '<td class="num in" data-label="Paid in">£5.00</td>' in page
    )


def test_totals_count_every_selected_record_not_the_page(kit, vault) -> None:
    load(vault, *EVERY_BANK_FILE)
    kit.login()
    page = main_of(kit.http.get("/data/transactions").text)
    expected: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0), 0])
    for rec in vault.records("transactions"):  # the payloads, as `pds records` prints them
        amount = Decimal(rec.payload["amount"])
        sums = expected[rec.payload["currency"]]
        sums[0 if amount > 0 else 1] += abs(amount) if amount else 0
        sums[2] += 1
    assert sum(s[2] for s in expected.values()) == 65
    assert '<h2 id="totals-title">65 transactions</h2>' in page
    assert len(shown_ids(page)) == 50
    assert '<a href="/data/transactions?skip=50">Next 50</a>' in page
    rows = totals_rows(page)
    assert len(rows) == len(expected) == 8
    cells = {
        re.search(r'scope="row">(\w+)<', r)[1]: re.findall(r'<td class="num">([^<]*)</td>', r)
        for r in rows
    }
    assert {c: v[3] for c, v in cells.items()} == {c: str(s[2]) for c, s in expected.items()}
    # midata 5.00 + 9.70 in, 295.00 + 137.85 out; John Lewis card: 1,100.00 paid in, its
    # nine booked purchases 1,385.80 out (its three pending rows are not imported)
    assert cells["GBP"] == ["£1,114.70", "£1,818.65", "-£703.95", "24"]
    assert cells["EUR"][:2] == ["€" + f"{expected['EUR'][0]:,}", "€" + f"{expected['EUR'][1]:,}"]
    assert cells["USD"][:2] == [
        "US$" + f"{expected['USD'][0]:,}",
        "US$" + f"{expected['USD'][1]:,}",
    ]
    rest = main_of(kit.http.get("/data/transactions", query_string={"skip": "50"}).text)
    assert len(shown_ids(rest)) == 15
    assert totals_rows(rest) == rows  # the same totals on every page


@pytest.mark.parametrize(
    ("sort", "ids"),
    [
        ("out", [1, 7, 8, 2, 5, 6, 4, 3]),  # -52.00, -35.00, -26.15, -15.00, -9.70, 1.50, ...
        ("in", [3, 4, 6, 5, 2, 8, 7, 1]),
    ],
)
def test_sorted_by_amount(kit, vault, sort: str, ids: list[int]) -> None:
    load(vault, NATIONWIDE)
    kit.login()
    page = main_of(kit.http.get("/data/transactions", query_string={"sort": sort}).text)
    assert shown_ids(page) == ids
    assert f'<option value="{sort}" selected>' in page


def test_account_filter(kit, vault) -> None:
    load(vault, NATIONWIDE, RABOBANK)
    kit.login()
    page = main_of(
        kit.http.get("/data/transactions", query_string={"account": "NL77RABO0311467415"}).text
    )
    assert '<option value="NL77RABO0311467415" selected>NL77RABO0311467415</option>' in page
    assert '<option value="****12345">****12345</option>' in page  # the other account stays
    assert '<h2 id="totals-title">3 transactions</h2>' in page
    assert shown_ids(page) == [11, 10, 9]
    assert [re.search(r'scope="row">(\w+)<', r)[1] for r in totals_rows(page)] == ["EUR"]


def test_monthly_chart_and_counterparties(kit, vault) -> None:
    load(vault, NATIONWIDE, RABOBANK)
    kit.login()
    page = main_of(kit.http.get("/data/transactions").text)
    assert '<figure class="chart" id="flows-GBP">' in page
    assert '<title id="flows-GBP-title">Money in and out per month (GBP)</title>' in page
    assert (
        '<tr><th scope="row">Jul 2024</th><td class="num">£1.50</td><td class="num">£61.15</td></tr>'
        in page
    )
    assert (
        '<tr><th scope="row">Mar 2018</th><td class="num">€50.00</td>'
        '<td class="num">€1,087.49</td></tr>' in page
    )
    gbp = page.split("<caption>Paid most (GBP)</caption>")[1].split("</table>")[0]
    assert re.findall(r"<tr><td>(.*?)</td><td class=\"num\">(.*?)</td></tr>", gbp) == [
        ("A COFFEE SHOP GB", "£52.00"),
        ("BROADBAND", "£35.00"),
        ("*****************", "£26.15"),
        ("A PARK GB", "£15.00"),
        ("A GARAGE GB", "£9.70"),
    ]
    eur = page.split("<caption>Paid most (EUR)</caption>")[1].split("</table>")[0]
    assert re.findall(r"<tr><td>(.*?)</td><td class=\"num\">(.*?)</td></tr>", eur) == [
        ("W. Koelewijn", "€750.00"),
        ("RENTE LENING", "€337.49"),
    ]


def test_spending_categories_filter_and_chart(kit, vault) -> None:
    save(vault.settings.home, RULES)
    load(vault, NATIONWIDE)
    kit.login()
    page = main_of(kit.http.get("/data/transactions").text)
    assert '<td data-label="Category">Eating out</td>' in page
    assert '<figure class="chart" id="spending-GBP">' in page
    assert (
        '<thead><tr><th scope="col"><span class="visually-hidden">When</span></th>'
        '<th scope="col" class="num">Eating out</th><th scope="col" class="num">Bills</th>'
        '<th scope="col" class="num">No category</th></tr></thead>' in page
    )
    assert (
        '<tr><th scope="row">Jul 2024</th><td class="num">£0.00</td><td class="num">£35.00</td>'
        '<td class="num">£26.15</td></tr>' in page
    )
    bills = main_of(kit.http.get("/data/transactions", query_string={"spending": "Bills"}).text)
    assert '<option value="Bills" selected>Bills</option>' in bills
    assert shown_ids(bills) == [7]
    assert '<h2 id="totals-title">1 transaction</h2>' in bills
    none = main_of(
        kit.http.get("/data/transactions", query_string={"spending": "no\tcategory"}).text
    )
    assert shown_ids(none) == [2, 3, 4, 5, 6, 8]
    assert '<option value="no\tcategory" selected>No category</option>' in none


def test_a_category_named_dash_is_not_the_no_category_choice(kit, vault) -> None:
    save(vault.settings.home, '[[rule]]\ncategory = "-"\ncontains = "broadband"\n')
    load(vault, NATIONWIDE)
    kit.login()
    dash = main_of(kit.http.get("/data/transactions", query_string={"spending": "-"}).text)
    assert shown_ids(dash) == [7]
    assert dash.count(" selected>") == 1
    assert '<option value="-" selected>-</option>' in dash
    assert '<option value="no\tcategory">No category</option>' in dash
    none = main_of(
        kit.http.get("/data/transactions", query_string={"spending": "no\tcategory"}).text
    )
    assert shown_ids(none) == [1, 2, 3, 4, 5, 6, 8]
    assert none.count(" selected>") == 1
    assert '<option value="-">-</option>' in none
    every = main_of(kit.http.get("/data/transactions").text)
    spending = every.split('id="spending-GBP"')[1].split("</figure>")[0]
    assert (
        '<thead><tr><th scope="col"><span class="visually-hidden">When</span></th>'
        '<th scope="col" class="num">-</th><th scope="col" class="num">No category</th>'
        "</tr></thead>" in spending
    )


def test_balances_a_line_per_account_and_the_latest(kit, vault) -> None:
    load(vault, "mt940/abnamro.sta", "camt053/camt053.v2.minimal.xml")
    kit.login()
    page = main_of(kit.http.get("/data/balances").text)
    titles = re.findall(r'<title id="balances-\d-title">(.*?)</title>', page)
    assert titles == [f"Balance per account ({c})" for c in ("CHF", "EUR", "JPY", "SEK")]
    # one line per account; a day's closing booked balance stands for the day
    assert page.count('<polyline class="line l0"') == 4
    assert page.count('<polyline class="line l1"') == 1
    assert (
        '<tr><th scope="row">23 May 2011</th><td class="num">€876.84</td><td class="num"></td>'
        "</tr>" in page
    )
    latest = page.split("<caption>The latest balance of each account</caption>")[1]
    rows = re.findall(r"<tr><th scope=\"row\">.*?</tr>", latest.split("</table>")[0])
    assert rows == [
        '<tr><th scope="row">NL26VAYB8060476890</th><td class="num">CHF35.00</td>'
        '<td>30 Dec 2014</td><td title="OPAV">Opening available</td></tr>',
        '<tr><th scope="row">517852257</th><td class="num">€1,849.75</td>'
        '<td>24 May 2011</td><td title="ITBD">Interim booked</td></tr>',
        '<tr><th scope="row">NL26VAYB8060476890</th><td class="num">€18.15</td>'
        '<td>30 Dec 2014</td><td title="OPBD">Opening booked</td></tr>',
        '<tr><th scope="row">NL26VAYB8060476890</th><td class="num">-JP¥2,700</td>'
        '<td>31 Dec 2014</td><td title="CLAV">Closing available</td></tr>',
        '<tr><th scope="row">NL26VAYB8060476890</th><td class="num">-SEK27.00</td>'
        '<td>31 Dec 2014</td><td title="CLBD">Closing booked</td></tr>',
    ]
    assert len(shown_ids(page)) == vault.status()["categories"]["balances"] == 8
    types = re.findall(r'<td data-label="Type" title="(\w+)">([^<]*)</td>', page)
    assert sorted(set(types)) == [
        ("CLAV", "Closing available"),
        ("CLBD", "Closing booked"),
        ("ITBD", "Interim booked"),
        ("OPAV", "Opening available"),
        ("OPBD", "Opening booked"),
    ]
    assert len(types) == 8


# -- the spending rules page -----------------------------------------------------------------


def test_rules_page_saves_a_good_file_and_refuses_a_bad_one(kit, vault) -> None:
    kit.login()
    page = kit.http.get("/data/transactions/rules")
    assert page.status_code == 200
    assert "Apply the rules to all transactions" not in page.text  # no file yet
    token = csrf(page.text)
    path = vault.settings.home / "spending.toml"
    no_token = kit.http.post("/data/transactions/rules", data={"text": RULES})
    assert no_token.status_code == 403
    assert not path.exists()
    saved = kit.http.post("/data/transactions/rules", data={"csrf_token": token, "text": RULES})
    assert saved.status_code == 200
    assert (
        "Saved 2 rules. Transactions keep their categories until you apply the rules." in saved.text
    )
    assert path.read_text(encoding="utf-8") == RULES
    bad = '[[rule]]\ncategory = "Fun"\nmatches = "(x"\n'
    refused = kit.http.post("/data/transactions/rules", data={"csrf_token": token, "text": bad})
    assert refused.status_code == 422
    assert (
        '<p class="error" id="rules-error" role="alert">Error: spending.toml: rule 1 '
        "(&#34;Fun&#34;): field &#34;matches&#34;: &#34;(x&#34; is not a regular expression "
        "in RE2 syntax (missing ): (x); the rules use RE2, which has no backreferences or "
        "lookaround</p>" in refused.text
    )
    assert "(x&#34;\n</textarea>" in refused.text  # the text as typed, to fix
    assert path.read_text(encoding="utf-8") == RULES
    actions = [a for a, _ in kit.audit_actions()]
    assert actions.count("spending.rules") == 1


def test_a_rules_file_that_is_not_utf8_is_shown_as_it_is_never_as_the_example(kit, vault) -> None:
    kit.login()
    fresh = kit.http.get("/data/transactions/rules")
    assert "category = &#34;Groceries&#34;\ncontains = &#34;tesco&#34;" in fresh.text  # no file
    assert "has not been changed" not in fresh.text
    path = vault.settings.home / "spending.toml"
    latin1 = b'[[rule]]\ncategory = "Caf\xe9"\ncontains = "coffee"\n'
    path.write_bytes(latin1)
    page = kit.http.get("/data/transactions/rules")
    assert page.status_code == 200
    assert (
        '<p class="warning" role="alert">The rules file cannot be used: '
        f"{path}: not UTF-8 text</p>\n<p>The file has not been changed; the editor below "
        "shows its text. Characters that could not be read as UTF-8 show as \ufffd: saving "
        "writes them so.</p>" in page.text
    )
    textarea = page.text.split("spellcheck", 1)[1]
    textarea = textarea.split(">", 1)[1].split("</textarea>")[0]
    assert textarea == "[[rule]]\ncategory = &#34;Caf\ufffd&#34;\ncontains = &#34;coffee&#34;\n"
    assert path.read_bytes() == latin1
    path.write_text('[[rule]]\ncategory = "X"\n', encoding="utf-8")
    broken = kit.http.get("/data/transactions/rules")
    assert "<p>The file has not been changed; the editor below shows its text.</p>" in broken.text
    assert "[[rule]]\ncategory = &#34;X&#34;\n</textarea>" in broken.text


@pytest.mark.usefixtures("short_waits")
def test_saving_the_rules_while_the_vault_is_busy_changes_nothing(kit, vault) -> None:
    kit.login()
    token = csrf(kit.http.get("/data/transactions/rules").text)
    path = vault.settings.home / "spending.toml"
    save(vault.settings.home, RULES)
    shorten_app_waits(kit)
    newer = RULES + '\n[[rule]]\ncategory = "Rent"\ncontains = "landlord"\n'
    with held(vault):  # an import holds the write lock
        busy = kit.http.post("/data/transactions/rules", data={"csrf_token": token, "text": newer})
    assert busy.status_code == 503
    assert f'<p class="error" role="alert">{BUSY}</p>' in busy.text
    assert path.read_text(encoding="utf-8") == RULES
    assert sorted(p.name for p in path.parent.glob(".spending-*")) == []
    assert [a for a, _ in kit.audit_actions()].count("spending.rules") == 0
    saved = kit.http.post("/data/transactions/rules", data={"csrf_token": token, "text": newer})
    assert saved.status_code == 200
    assert "Saved 3 rules." in saved.text
    assert path.read_text(encoding="utf-8") == newer
    assert [a for a, _ in kit.audit_actions()].count("spending.rules") == 1


def test_rules_page_applies_the_rules_to_every_transaction(kit, vault) -> None:
    load(vault, NATIONWIDE)  # imported before there were rules
    kit.login()
    page = kit.http.get("/data/transactions/rules")
    token = csrf(page.text)
    kit.http.post("/data/transactions/rules", data={"csrf_token": token, "text": RULES})
    before = main_of(kit.http.get("/data/transactions").text)
    assert '<td data-label="Category">Bills</td>' not in before
    no_token = kit.http.post("/data/transactions/rules/apply")
    assert no_token.status_code == 403
    done = kit.http.post("/data/transactions/rules/apply", data={"csrf_token": token})
    assert done.status_code == 200
    assert "Applied the rules to 8 transactions: 2 have a category." in done.text
    save(vault.settings.home, RULES.split("\n\n")[1])  # the Bills rule alone
    one = kit.http.post("/data/transactions/rules/apply", data={"csrf_token": token})
    assert "Applied the rules to 8 transactions: 1 has a category." in one.text
    save(vault.settings.home, RULES)
    kit.http.post("/data/transactions/rules/apply", data={"csrf_token": token})
    after = main_of(kit.http.get("/data/transactions").text)
    assert '<td data-label="Category">Bills</td>' in after
    assert '<td data-label="Category">Eating out</td>' in after
    (vault.settings.home / "spending.toml").write_text('[[rule]]\ncategory = "X"\n')
    broken = kit.http.get("/data/transactions/rules")
    assert (
        "The rules file cannot be used: "
        f"{vault.settings.home}/spending.toml: rule 1 (&#34;X&#34;): needs contains or matches"
        in broken.text
    )
    refused = kit.http.post("/data/transactions/rules/apply", data={"csrf_token": token})
    assert refused.status_code == 422
    still = main_of(kit.http.get("/data/transactions").text)
    assert '<td data-label="Category">Bills</td>' in still


def test_paging_by_amount_stops_at_the_cap_and_says_so(kit, vault, monkeypatch) -> None:
    monkeypatch.setattr(transactions, "SORT_CAP", 3)
    monkeypatch.setattr(transactions, "MONTHS", 3)
    load(vault, NATIONWIDE)
    kit.login()
    first = main_of(kit.http.get("/data/transactions", query_string={"sort": "out"}).text)
    note = (
        "Sorted by amount, the pages go as far as the first 3 transactions; narrow the "
        "filters to reach the others."
    )
    assert note in first
    far = main_of(
        kit.http.get("/data/transactions", query_string={"sort": "out", "skip": "50"}).text
    )
    assert "<caption>Transactions 4 to 8</caption>" in far
    assert shown_ids(far) == [2, 5, 6, 4, 3]
    assert "Next 50" not in far
    assert '<h2 id="totals-title">8 transactions</h2>' in far
    months = "The charts show the last 3 months of these transactions; the totals count them all."
    assert months in first
    flows = first.split('id="flows-GBP"')[1].split("</figure>")[0]
    assert re.findall(r'<tr><th scope="row">(.*?)</th>', flows) == [
        "May 2025",
        "Jun 2025",
        "Jul 2025",
    ]
    unsorted = main_of(kit.http.get("/data/transactions").text)
    assert note not in unsorted


@pytest.mark.parametrize("source", ["99999999999999999999", "0", "-5", "9223372036854775808"])
def test_a_source_no_source_can_have_matches_no_record(kit, vault, source: str) -> None:
    load(vault, NATIONWIDE)
    kit.login()
    for category in (
        "transactions",
        "balances",
        "contacts",
        "energy",
        "health",
        "events",
        "activity",
        "profile",
    ):
        r = kit.http.get(f"/data/{category}", query_string={"source": source})
        assert r.status_code == 200, category
    page = main_of(kit.http.get("/data/transactions", query_string={"source": source}).text)
    assert shown_ids(page) == []
    assert '<tr><td colspan="7">No transaction matches.</td></tr>' in page
    ok = main_of(kit.http.get("/data/transactions", query_string={"source": "1"}).text)
    assert len(shown_ids(ok)) == 8


@pytest.mark.parametrize(("skip", "shown"), [("8", "8"), ("100000000000000000000", "1000000000")])
def test_past_the_last_page(kit, vault, skip: str, shown: str) -> None:
    load(vault, NATIONWIDE)
    kit.login()
    page = main_of(kit.http.get("/data/transactions", query_string={"skip": skip}).text)
    assert shown_ids(page) == []
    assert "<caption>Transactions</caption>" in page
    assert (
        '<tr><td colspan="7">Past the last page. '
        '<a href="/data/transactions">Go to the first page</a></td></tr>' in page
    )
    assert " to " not in page.split("<caption>")[1].split("</caption>")[0]
    table = main_of(kit.http.get("/data/profile", query_string={"skip": skip}).text)
    assert f"0 records after the first {int(shown):,}" in table
    assert "Past the last page." in table
    last = main_of(kit.http.get("/data/transactions", query_string={"skip": "7"}).text)
    assert "<caption>Transactions 8 to 8</caption>" in last
