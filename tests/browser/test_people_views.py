"""The contacts, events, locations and activity views and a record page in a real browser,
at desktop and phone width: the axe-core audit (serious and critical violations fail), no
request to another host, no CSP complaint, and nothing wider than a phone's screen."""

from __future__ import annotations

import pytest

from tests.conftest import fixture

from .conftest import Live, pds, shot
from .test_a11y import AXE, audit
from .test_owner import sign_in

pytestmark = pytest.mark.skipif(
    not AXE.exists(), reason=f"axe-core is not installed: run `npm ci` in {AXE.parents[2]}"
)
FILES = (
    "vcard/John_Doe_IPHONE.vcf",
    "vcard/rfc6350-example.vcf",
    "icalendar/alarm_thunderbird_future.ics",
    "icalendar/issue_350_podio.ics",
    "google-takeout/Location_History.json",
    "google-takeout/My_Activity_Search.json",
)
PAGES = (
    ("/data/contacts", "contacts"),
    ("/data/events?when=past", "events (past months)"),
    ("/data/locations", "locations"),
    ("/data/activity", "activity"),
    ("/records/1", "record (contact)"),
)


@pytest.mark.parametrize(("width", "height"), [(1100, 900), (375, 740)])
def test_people_views_pass_axe_at_desktop_and_phone_width(
    browser, live: Live, width: int, height: int
) -> None:
    for path in FILES:
        pds(live.env, "import", str(fixture(path)))
    context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    requests: list[str] = []
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("request", lambda r: requests.append(r.url))
        sign_in(page, live)
        found: list[str] = []
        for path, name in PAGES:
            page.goto(live.base + path)
            assert page.url == live.base + path
            found += audit(page, f"{name} at {width}px")
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= width, f"{name} is {wide}px wide at {width}px"
            shot(page, f"people-{name.split()[0]}-{width}")
        assert found == []
    finally:
        context.close()
    assert [u for u in requests if not u.startswith(live.base + "/")] == []
