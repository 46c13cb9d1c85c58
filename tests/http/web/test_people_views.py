"""The contacts, events, locations and activity views on the real fixtures: contact cards
in alphabetical order, an agenda by month, and day-by-day timelines, as a person reads them."""

from __future__ import annotations

import html
import re
import time
from datetime import UTC, datetime

import pytest

from pds import clock
from pds.http.web.views import events, timeline
from pds.importer import import_file
from tests.conftest import fixture


@pytest.fixture(autouse=True)
def _utc(monkeypatch) -> None:
    """Times are read in this machine's time zone: make it UTC for exact values."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def main_of(page: str) -> str:
    return page.split("<main>")[1].split("</main>")[0]


def words(fragment: str) -> str:
    """The text a person reads in a piece of the page (tags dropped, spaces collapsed)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def cards(page: str) -> list[str]:
    return re.findall(r'<li class="card">(.*?)</li>', page, re.S)


def load(vault, *paths: str) -> None:
    for path in paths:
        import_file(vault, fixture(path))


VCARDS = ("vcard/John_Doe_ANDROID.vcf", "vcard/John_Doe_IPHONE.vcf", "vcard/rfc6350-example.vcf")


def test_contacts_are_cards_in_alphabetical_order_with_links(kit, vault) -> None:
    load(vault, *VCARDS)
    kit.login()
    page = main_of(kit.http.get("/data/contacts").text)
    found = cards(page)
    assert [re.search(r"<h2>(.*?)</h2>", c, re.S)[1] for c in found] == [
        f'<a href="/records/{n}">{name}</a>'
        for n, name in [
            (2, "jane.doe@company.com"),
            (1, "john.doe@company.com"),
            (7, "Mr. John Richter James Doe Sr."),
            (5, "Ñ Ñ Ñ Ñ"),
            (3, "Ñ Ñ Ñ Ñ Ñ"),
            (4, "Ñ Ñ Ñ Ñ Ñ Ñ Ñ Ñ Ñ Ñ Ñ"),
            (6, "ÑÑÑÑ"),
            (8, "Simon Perreault"),
        ]
    ]
    john, simon = found[2], found[7]
    assert words(john) == (
        "Mr. John Richter James Doe Sr. “Johny” Money Counter, IBM (Accounting) "
        "john.doe@ibm.com 905-555-1234 (mobile) 905-666-1234 (home) 905-777-1234 (work) "
        "905-888-1234 (home, fax) 905-999-1234 (work, fax) 905-111-1234 (pager) 905-222-1234 "
        "Silicon Alley 5 New York New York 12345 United States of America (home) "
        "Street4 Building 6 Floor 8 New York 12345 USA (work) Birthday: 6 Jun 2012"
    )
    assert '<a href="mailto:john.doe@ibm.com">john.doe@ibm.com</a>' in john
    assert '<a href="tel:9055551234">905-555-1234</a>' in john
    assert "Street4<br>Building 6<br>Floor 8<br>New York 12345<br>USA" in john
    assert words(simon) == (
        "Simon Perreault Viagenie simon.perreault@viagenie.ca (work) "
        "+1-418-656-9254;ext=102 (work) +1-418-262-6501 (work, mobile, video, text) "
        "Suite D2-630 2875 Laurier Quebec QC G1V 2M2 Canada (work) Birthday: 3 Feb"
    )
    assert '<a href="tel:+1-418-656-9254;ext=102">+1-418-656-9254;ext=102</a>' in simon
    # an email address that is not one (no @) is text, not a link
    assert '<span class="line">ÑÑÑÑÑÑÑÑÑÑÑÑÑÑ</span>' in found[3]
    assert "8 contacts" in page
    assert re.findall(r'<li><a href="/data/contacts\?letter=(.)"', page) == ["J", "M", "N", "S"]


def test_contacts_by_initial_letter_and_search(kit, vault) -> None:
    load(vault, *VCARDS)
    kit.login()
    under_s = main_of(kit.http.get("/data/contacts?letter=S").text)
    assert [words(c).split(" Viagenie")[0] for c in cards(under_s)] == ["Simon Perreault"]
    assert "1 contact under S" in under_s
    assert '<a href="/data/contacts?letter=S" aria-current="page">S</a>' in under_s
    ibm = main_of(kit.http.get("/data/contacts?q=ibm").text)
    assert [re.search(r'">(.*?)</a></h2>', c)[1] for c in cards(ibm)] == [
        "Mr. John Richter James Doe Sr."
    ]
    none = main_of(kit.http.get("/data/contacts?q=nobody").text)
    assert "<li>No contact matches.</li>" in none
    assert "0 contacts" in none


ICS = (
    "icalendar/alarm_google_future.ics",
    "icalendar/alarm_thunderbird_future.ics",
    "icalendar/issue_350_podio.ics",
)


def agenda(page: str) -> list[tuple[str, list[str]]]:
    months = re.findall(r"<h2>(.*?)</h2>\s*<ul class=\"agenda\">(.*?)</ul>", page, re.S)
    return [
        (month, [words(e) for e in re.findall(r'<li class="event">(.*?)</li>', body, re.S)])
        for month, body in months
    ]


def test_events_agenda_by_month_upcoming_from_today_and_past(kit, vault, monkeypatch) -> None:
    load(vault, *ICS)
    kit.login()
    monkeypatch.setattr(clock, "utcnow", lambda: datetime(2024, 10, 10, 9, 0, tzinfo=UTC))
    upcoming = main_of(kit.http.get("/data/events").text)
    assert agenda(upcoming) == [
        ("Oct 2024", ["23 Oct 2024 15:00–16:00 (Europe/London) event with alarms"])
    ]
    assert '<a href="/data/events" aria-current="page">Upcoming</a>' in upcoming
    past = main_of(kit.http.get("/data/events?when=past").text)
    assert agenda(past) == [
        ("Oct 2024", ["4 Oct 2024 18:15–19:00 (UTC) event with alarms"]),
        ("Feb 2022", ['22 Feb 2022 18:30–19:30 (UTC) Termin 4353 und"so" At online']),
    ]
    assert '<input type="hidden" name="when" value="past">' in past  # a search stays in the past
    searched = main_of(kit.http.get("/data/events?when=past&q=termin").text)
    assert [m for m, _ in agenda(searched)] == ["Feb 2022"]
    assert '<input type="hidden" name="when"' not in upcoming
    monkeypatch.setattr(clock, "utcnow", lambda: datetime(2026, 1, 1, 9, 0, tzinfo=UTC))
    later = main_of(kit.http.get("/data/events").text)
    assert agenda(later) == []
    assert "Nothing coming up. See past months for earlier events." in later
    chosen = main_of(kit.http.get("/data/events?from=2022-01-01&to=2022-12-31").text)
    assert [m for m, _ in agenda(chosen)] == ["Feb 2022"]


def test_recurrence_and_all_day_in_words(app) -> None:
    with app.test_request_context():
        assert events.repeats("FREQ=WEEKLY") == "every week"
        assert events.repeats("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR") == (
            "every 2 weeks on Monday, Wednesday and Friday"
        )
        assert events.repeats("FREQ=MONTHLY;COUNT=10") == "every month, 10 times"
        assert events.repeats("FREQ=YEARLY;UNTIL=20300101T000000Z") == (
            "every year, until 1 Jan 2030"
        )
        assert events.repeats("FREQ=DAILY;INTERVAL=3") == "every 3 days"
        # the fixtures' time-zone rules: not simple, so the rule itself
        rule = "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU"
        assert events.repeats(rule) == rule
        assert events.all_day("2024-10-23", "2024-10-24") == "All day"
        assert events.all_day("2024-10-23", "2024-10-26") == "All day, until 25 Oct 2024"
        assert events.time_range("2024-10-23T23:00:00", "2024-10-24T01:00:00") == (
            "23:00 – 01:00 on 24 Oct 2024"
        )


def days(page: str) -> list[tuple[str, str]]:
    return [
        (heading, words(body))
        for heading, body in re.findall(
            r'<section class="timeline-day">\s*<h2>(.*?)</h2>(.*?)</section>', page, re.S
        )
    ]


def test_locations_timeline_groups_reports_into_visits_per_day(kit, vault) -> None:
    load(vault, "google-takeout/Location_History.json", "google-takeout/Records_2024_format.json")
    kit.login()
    page = main_of(kit.http.get("/data/locations").text)
    assert days(page) == [
        (
            "18 Jul 2015",
            "2 reports, 1 visit 23:57–23:58 Near 37.696, -121.929 2 reports, within 43–45 m",
        ),
        ("18 Jul 2014", "1 report, 1 visit 14:59 Near 35.132, -112.243 1 report, within 10 m"),
    ]
    assert '<a href="/records/1">Near 37.696, -121.929</a>' in page
    oldest = main_of(kit.http.get("/data/locations?order=oldest").text)
    assert [d for d, _ in days(oldest)] == ["18 Jul 2014", "18 Jul 2015"]


def test_activity_timeline_says_host_names_not_urls(kit, vault) -> None:
    load(vault, "google-takeout/My_Activity_Maps.json", "google-takeout/My_Activity_Search.json")
    kit.login()
    page = main_of(kit.http.get("/data/activity").text)
    assert days(page) == [
        (
            "30 May 2019",
            "15:37 Search Visited data liberation - How to download Google Search history? - "
            "Web ... webapps.stackexchange.com "
            '15:37 Search Searched for "myactivity" google export google.com '
            "05:17 Maps Viewed area around Pheba google.com "
            "05:16 Maps Searched for Oktibbeha County Lake, Mississippi, USA google.co.uk",
        )
    ]
    assert "https://" not in page
    assert "http://" not in page


def test_timeline_pages_by_days(kit, vault, monkeypatch) -> None:
    load(vault, "google-takeout/Location_History.json", "google-takeout/Records_2024_format.json")
    kit.login()
    monkeypatch.setattr(timeline, "DAYS", 1)
    first = main_of(kit.http.get("/data/locations").text)
    assert [d for d, _ in days(first)] == ["18 Jul 2015"]
    assert '<a href="/data/locations?skip=1">Next 1 day</a>' in first
    second = main_of(kit.http.get("/data/locations?skip=1").text)
    assert [d for d, _ in days(second)] == ["18 Jul 2014"]
    assert '<a href="/data/locations">Back to the start</a>' in second
    assert "Next 1 day" not in second


def test_host_names_and_rounded_places(app) -> None:
    with app.test_request_context():
        assert timeline.host("https://www.google.com/url?q=https://example.org/a&usg=x") == (
            "example.org"
        )
        assert timeline.host("not a url") == ""
        assert timeline.rounded("-121.9287261") == "-121.929"
        assert timeline.rounded(None) == "?"


@pytest.mark.parametrize(
    "path",
    [
        "/data/contacts",
        "/data/events?when=past",
        "/data/locations",
        "/data/activity",
        "/records/7",
        "/records/9",
        "/records/12",
        "/records/14",
    ],
)
def test_people_pages_hold_no_dict_text_no_year_one_and_no_foreign_link(kit, vault, path) -> None:
    load(vault, *VCARDS, *ICS, "google-takeout/Location_History.json")
    load(vault, "google-takeout/My_Activity_Search.json")
    kit.login()
    page = kit.http.get(path)
    assert page.status_code == 200
    assert "No business has read this record." in page.text or "/records/" not in path
    text = main_of(page.text)
    assert "{'" not in text
    assert "['" not in text
    assert "0001-01-01" not in text
    assert " style=" not in page.text
    assert "<script>" not in page.text
    assert re.findall(r'(?:src|href|action)="(https?:)?//', page.text) == []


@pytest.mark.parametrize(
    ("category", "files", "skip"),
    [
        ("contacts", VCARDS, "50"),
        ("events", ICS, "500"),
        ("activity", ("google-takeout/My_Activity_Search.json",), "1"),
    ],
)
def test_past_the_last_page_links_to_the_first(kit, vault, category, files, skip) -> None:
    load(vault, *files)
    kit.login()
    page = main_of(kit.http.get(f"/data/{category}", query_string={"skip": skip}).text)
    assert f'Past the last page. <a href="/data/{category}">Go to the first page</a>' in page
    first = main_of(kit.http.get(f"/data/{category}").text)
    assert "Past the last page." not in first
