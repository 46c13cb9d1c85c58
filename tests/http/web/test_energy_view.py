"""The energy page on the real Green Button files: usage per day, week or month per
commodity and unit, cost per currency, totals, and the readings in words, never a
meter's Green Button address."""

from __future__ import annotations

import html
import re
import time

import pytest

from pds.importer import import_file
from tests.conftest import fixture
from tests.oauth_kit import seed

HOURLY = fixture("greenbutton/TestGBDataHourlyNineDaysBinnedDaily.xml")
GAS = fixture("greenbutton/opower-gas-billing-2021-05-26_to_2024-04-25.xml")


@pytest.fixture
def new_york(monkeypatch):
    """The machine in US Eastern time, the zone of the sample feed (its days start 05:00Z)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def text(page: str) -> str:
    """What a person reads in the page's main part: tags out, entities decoded."""
    main = page.split("<main>")[1].split("</main>")[0]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", main)))


def numbers(page: str, chart_id: str) -> list[list[str]]:
    """The rows of a chart's numbers table: the label, then a value per series."""
    figure = page.split(f'<figure class="chart" id="{chart_id}">')[1].split("</figure>")[0]
    body = figure.split("<tbody>")[1].split("</tbody>")[0]
    return [
        [html.unescape(c) for c in re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", tr)]
        for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def test_hourly_readings_by_day(kit, vault, new_york) -> None:
    import_file(vault, HOURLY)
    kit.login()
    page = kit.http.get("/data/energy")
    assert page.status_code == 200
    # nine days of hourly readings: days by default, kWh as a bill writes them
    assert '<option value="day" selected>Day</option>' in page.text
    assert " style=" not in page.text  # the strict CSP: no inline style or script
    assert "<script>" not in page.text
    assert re.findall(r'(?:src|href|action)="(https?:)?//', page.text) == []
    assert numbers(page.text, "usage-1") == [
        ["1 Jan 2014", "21.021 kWh"],
        ["2 Jan 2014", "21.021 kWh"],
        ["3 Jan 2014", "22.113 kWh"],
        ["4 Jan 2014", "26.208 kWh"],
        ["5 Jan 2014", "25.116 kWh"],
        ["6 Jan 2014", "21.021 kWh"],
        ["7 Jan 2014", "21.021 kWh"],
        ["8 Jan 2014", "21.021 kWh"],
        ["9 Jan 2014", "21.021 kWh"],
    ]
    words = text(page.text)
    assert "Electricity per day (kWh)" in words
    assert "Electricity Imported 199.563 kWh 216" in words  # the totals table
    assert "Cost of these readings: US$22.06" in words
    assert numbers(page.text, "cost-1")[3] == ["4 Jan 2014", "US$2.06"]
    # the readings in words: start, length, usage with unit, cost with currency
    assert (
        "9 Jan 2014, 23:00:00 1 hour Electricity Imported 0.273 kWh US$0.01 View Record 216"
        in words
    )
    assert "Meter" not in words  # one meter: no meter column
    assert "http" not in words
    assert "services.greenbuttondata.org" not in page.text
    assert len(re.findall(r'<a href="/records/\d+">View', page.text)) == 50
    assert '<a href="/data/energy?skip=50">Next 50</a>' in page.text


def test_one_day_by_week_and_month(kit, vault, new_york) -> None:
    import_file(vault, HOURLY)
    kit.login()
    day = kit.http.get("/data/energy", query_string={"from": "2014-01-04", "to": "2014-01-04"})
    assert numbers(day.text, "usage-1") == [["4 Jan 2014", "26.208 kWh"]]
    assert "Electricity Imported 26.208 kWh 24" in text(day.text)
    assert "Cost of these readings: US$2.06" in text(day.text)
    weeks = kit.http.get("/data/energy", query_string={"by": "week"})
    assert numbers(weeks.text, "usage-1") == [
        ["week of 30 Dec 2013", "115.479 kWh"],
        ["week of 6 Jan 2014", "84.084 kWh"],
    ]
    months = kit.http.get("/data/energy", query_string={"by": "month"})
    assert numbers(months.text, "usage-1") == [["Jan 2014", "199.563 kWh"]]
    bad = kit.http.get("/data/energy", query_string={"by": "fortnight"})
    assert bad.status_code == 400
    assert "by=&#39;fortnight&#39; is not day, week or month" in bad.text


def test_gas_billing_periods_by_month_apart_from_electricity(kit, vault, new_york) -> None:
    import_file(vault, GAS)
    kit.login()
    page = kit.http.get("/data/energy")
    # billing periods of a month: months by default, in therms
    assert '<option value="month" selected>Month</option>' in page.text
    rows = numbers(page.text, "usage-1")
    assert rows[0] == ["May 2021", "37 therm"]
    assert rows[-1] == ["Mar 2024", "91 therm"]
    assert len(rows) == 35
    words = text(page.text)
    assert "Gas Used 3,484 therm 35" in words
    assert "Cost of these readings: US$7,207.11" in words
    assert "26 Mar 2024, 20:00:00 30 days Gas Used 91 therm US$213.14" in words
    assert "23 Feb 2024, 19:00:00 31 days 23 hours Gas Used 133 therm US$310.40" in words
    assert "/v1/" not in page.text

    import_file(vault, HOURLY)
    both = kit.http.get("/data/energy", query_string={"by": "month"})
    words = text(both.text)
    # never one sum of kWh and therms: a chart and a total per commodity and unit
    assert "Electricity per month (kWh)" in words
    assert "Gas per month (therm)" in words
    assert "Electricity Imported 199.563 kWh 216 Gas Used 3,484 therm 35" in words
    assert numbers(both.text, "usage-1")[0] == ["Jan 2014", "199.563 kWh"]
    assert numbers(both.text, "usage-2")[0] == ["May 2021", "37 therm"]
    # one currency: one cost, electricity and gas as stacked series of it
    assert "Cost of these readings: US$7,229.17" in words
    assert numbers(both.text, "cost-1")[0] == ["Jan 2014", "US$22.06", ""]
    # two meters, named by number, never by their addresses
    assert "Meter 1" in words
    assert "Meter 2" in words
    assert "http" not in words
    assert "/v1/" not in both.text


def test_no_reading(kit, vault) -> None:
    kit.login()
    page = kit.http.get("/data/energy")
    assert page.status_code == 200
    words = text(page.text)
    assert "No reading matches these filters." in words
    assert "No record matches." in words


def test_a_record_that_is_no_reading_is_listed_plainly(kit, vault) -> None:
    seed(vault)  # its energy record holds a transaction's fields: no start, value or unit
    kit.login()
    page = kit.http.get("/data/energy")
    assert page.status_code == 200
    words = text(page.text)
    assert "No reading matches these filters." in words
    assert "1 Feb 2024 View Record 7" in words


def test_exported_and_imported_kept_apart(kit, vault, new_york, tmp_path) -> None:
    import_file(vault, HOURLY)
    # the same feed as a meter's export to the grid (ESPI flowDirection 19, "reverse")
    exported = tmp_path / "exported.xml"
    feed = HOURLY.read_text(encoding="utf-8")
    exported.write_text(feed.replace("<flowDirection>1<", "<flowDirection>19<"), "utf-8")
    import_file(vault, exported)
    kit.login()
    page = kit.http.get("/data/energy", query_string={"by": "month"})
    assert numbers(page.text, "usage-1") == [["Jan 2014", "199.563 kWh", "199.563 kWh"]]
    assert '<th scope="col" class="num">Imported</th>' in page.text
    assert '<th scope="col" class="num">Exported</th>' in page.text
    words = text(page.text)
    assert "Electricity Imported 199.563 kWh 216 Electricity Exported 199.563 kWh 216" in words
    # what the export earned is not added to what the import cost
    assert "Cost of these readings: US$22.06 (used), US$22.06 (exported)" in words
    assert numbers(page.text, "cost-1") == [["Jan 2014", "US$22.06", "US$22.06"]]
    assert '<th scope="col" class="num">Electricity, exported</th>' in page.text
