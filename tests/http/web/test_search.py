"""/search: every category at once, grouped, whole words; the box in every page's header;
and the category page's filter, through the same index."""

from __future__ import annotations

import re

from pds import db as dbmod
from pds.importer import import_file
from pds.vault import SourceInfo
from tests.conftest import fixture
from tests.factories import prepared, transaction
from tests.oauth_kit import seed


def main_of(html: str) -> str:
    return html.split("<main>")[1].split("</main>")[0]


def links(html: str) -> list[str]:
    return re.findall(r'<a href="([^"]+)"', main_of(html))


def test_search_needs_the_owner(kit, vault) -> None:
    resp = kit.http.get("/search?q=shop")
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/login?next=")


def test_an_empty_query_shows_the_form_only(kit, vault) -> None:
    seed(vault)
    kit.login()
    page = kit.http.get("/search", query_string={"q": "   "})
    assert page.status_code == 200
    html = main_of(page.text)
    assert '<input id="search-all" name="q" type="search" value="">' in html
    assert "<h2" not in html
    assert "Nothing matches" not in html


def test_results_are_grouped_by_category_newest_first(kit, vault) -> None:
    ids = seed(vault)
    kit.login()
    page = kit.http.get("/search", query_string={"q": "GBP"})
    html = main_of(page.text)
    assert re.findall(r"<h2[^>]*>(.*?)</h2>", html) == [
        "energy: 1 match",
        "transactions: 6 matches",
    ]
    assert links(page.text) == [f"/records/{i}" for i in [ids[6], *reversed(ids[:6])]]
    assert f'<a href="/records/{ids[5]}">5 Jun 2024: SHOP 6 · -£6.00 · VIS</a>' in html
    assert "Show all" not in html
    one = main_of(kit.http.get("/search", query_string={"q": "shop  R3"}).text)
    assert re.findall(r"<h2[^>]*>(.*?)</h2>", one) == ["transactions: 1 match"]
    assert f'<a href="/records/{ids[2]}">5 Mar 2024: SHOP 3 · -£3.00 · VIS</a>' in one


def test_more_than_ten_matches_link_to_the_category_page(kit, vault) -> None:
    items = [prepared(transaction(f"2024-01-{d:02d}", "-1.00", f"LUNCH {d}")) for d in range(1, 13)]
    vault.ingest(SourceInfo("test", "l.csv", b"l"), [items])
    kit.login()
    html = main_of(kit.http.get("/search", query_string={"q": "lunch"}).text)
    assert re.findall(r"<h2[^>]*>(.*?)</h2>", html) == ["transactions: 12 matches"]
    assert len(re.findall(r'<a href="/records/', html)) == 10
    assert '<a href="/data/transactions?q=lunch">Show all 12</a>' in html
    whole = kit.http.get("/data/transactions", query_string={"q": "lunch"})
    assert len(re.findall(r'<a href="/records/(\d+)"', whole.text)) == 12


def test_no_match_says_so(kit, vault) -> None:
    seed(vault)
    kit.login()
    html = main_of(kit.http.get("/search", query_string={"q": "<b>sho</b>"}).text)
    assert "<p>Nothing matches “&lt;b&gt;sho&lt;/b&gt;”.</p>" in html
    assert 'value="&lt;b&gt;sho&lt;/b&gt;"' in html


def test_every_owner_page_has_the_search_box(kit, vault) -> None:
    kit.login()
    for path in ["/", "/data", "/search"]:
        header = kit.http.get(path).text.split("<header>")[1].split("</header>")[0]
        assert (
            '<form method="get" action="/search" role="search" class="site-search" '
            'aria-label="Search all your records">'
        ) in header
        assert '<input id="site-search" name="q" type="search" placeholder="Search">' in header


def test_the_category_filter_matches_whole_words_through_the_index(kit, vault) -> None:
    ids = seed(vault)
    kit.login()

    def shown(**query) -> list[int]:
        page = kit.http.get("/data/transactions", query_string=query)
        return [int(i) for i in re.findall(r'<a href="/records/(\d+)"', page.text)]

    newest = ids[5::-1]  # the six transactions, newest first, as the page is unfiltered
    assert shown(q="shop") == newest == shown()
    assert shown(q="shop", order="oldest") == ids[:6]
    assert shown(q="SHOP r4") == [ids[3]]
    assert shown(q="sho") == []  # whole words: no longer a part of one
    assert shown(q="shop", **{"from": "2024-02-01", "to": "2024-04-05"}) == ids[3:0:-1]
    assert shown(q="shop", source="1") == newest
    assert shown(q="shop", source="2") == []
    assert shown(q="shop", skip="4") == newest[4:]
    with dbmod.transaction(vault.conn):
        vault.conn.execute("DELETE FROM search_terms")  # the filter reads the index only
    assert shown(q="shop") == []
    assert shown() == newest


def found(kit, query: str) -> list[str]:
    html = main_of(kit.http.get("/search", query_string={"q": query}).text)
    return re.findall(r'<a href="/records/\d+">([^<]*)</a>', html)


def test_lines_are_written_as_the_pages_write_them(kit, vault) -> None:
    for name in (
        "greenbutton/TestGBDataHourlyNineDaysBinnedDaily.xml",
        "apple-health/tdda-export6s3sample.xml",
        "fhir/synthea-r4-transaction-bundle.json",
        "vcard/John_Doe_IPHONE.vcf",
        "midata/nationwide-test-midata.csv",
        "google-takeout/My_Activity_Maps.json",
    ):
        import_file(vault, fixture(name))
    kit.login()
    assert found(kit, "coffee") == ["19 Jul 2025: A COFFEE SHOP GB · -£52.00 · Visa purchase"]
    # a contact has no date of its own: its line has none; its birthday as a date
    assert found(kit, "john") == ["Mr. John Richter James Doe Sr. · Money Counter · 6 Jun 2012"]
    assert found(kit, "hkquantitytypeidentifierstepcount")[:3] == [
        "13 Sept 2014: Steps · 282",
        "13 Sept 2014: Steps · 216",
        "13 Sept 2014: Steps · 320",
    ]
    assert found(kit, "sodium")[1] == "22 Apr 2019: Observation · Sodium · 137.031 mmol/L"
    maps = found(kit, "pheba")
    assert maps == ["30 May 2019: Viewed area around Pheba · Maps · 30 May 2019, 05:17:16"]
    assert found(kit, "electricity")[0] == "10 Jan 2014: 0.273 kWh · Electricity · US$0.01"


def test_nothing_matches_repeats_a_long_query_shortened(kit, vault) -> None:
    seed(vault)
    kit.login()
    html = main_of(kit.http.get("/search", query_string={"q": "x" * 150}).text)
    assert f"<p>Nothing matches “{'x' * 59}…”.</p>" in html
    title = kit.http.get("/search", query_string={"q": "x" * 150}).text
    assert f"<title>Search for “{'x' * 59}…”" in title
    assert f'value="{"x" * 150}"' in html
