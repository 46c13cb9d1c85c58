"""An invited auditor in a real browser: `pds audit invite` prints a link; opening it signs the
auditor in (its secret, in the fragment, is posted by auditor-welcome.js under the strict
CSP and leaves the address bar); the log is a table, filtered by business; "Verify now"
reports its three checks in words; the spent link no longer works. No request leaves the
vault's host, and axe-core finds nothing serious, at desktop and at phone width."""

from __future__ import annotations

import json

import pytest

from .conftest import Live, Watch, pds, shot
from .test_a11y import AXE, audit

pytestmark = pytest.mark.skipif(
    not AXE.exists(), reason=f"axe-core is not installed: run `npm ci` in {AXE.parents[2]}"
)


def invite(live: Live, name: str) -> dict:
    return json.loads(pds(live.env, "audit", "invite", name, "--days", "2", "--json"))


def entries_rows(page) -> list[str]:
    """The Who and Action cells of each row of the entries table."""
    return page.eval_on_selector_all(
        "table.auditor-log tbody tr",
        "rows => rows.map(r => [...r.querySelectorAll('td')].slice(2, 4)"
        ".map(td => td.textContent.trim()).join(' '))",
    )


@pytest.mark.slow
def test_invited_auditor_opens_the_link_filters_and_verifies(
    page, watch: Watch, live: Live, browser
) -> None:
    invited = invite(live, "Browser Auditor")
    assert invited["link"].startswith(live.base + "/auditor/welcome#")
    page.goto(invited["link"])
    page.locator("table.auditor-log").wait_for()  # the script posted the link's secret
    assert page.url == live.base + "/auditor"
    assert page.locator("h1").inner_text() == "The access log"
    assert page.locator("table.auditor-log caption").inner_text() == "Access log entries"
    shot(page, "auditor-01-log")
    page.get_by_label("Business").select_option(label="Browser Bank")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"{live.base}/auditor?client={live.client_id}**")
    assert entries_rows(page) == ["Browser Bank client.register"]
    page.get_by_label("Entry to prove").fill("0")
    page.get_by_role("button", name="Verify now").click()
    page.wait_for_url(live.base + "/auditor/verify")
    assert page.locator("h1").inner_text() == "The access log verifies"
    found = page.locator("ul.checks li").all_inner_texts()
    assert found[0].startswith("Signed checkpoint: holds. The newest checkpoint is validly ")
    assert found[1].startswith("Consistency with what you saw: nothing to check. This is your ")
    assert found[2].startswith("Inclusion of an entry: holds. Entry 0 (vault.init at ")
    shot(page, "auditor-02-verified")
    # The link is spent: a second browser gets the refusal, and no loop of posts.
    other = browser.new_context()
    try:
        again = other.new_page()
        again.goto(invited["link"])
        again.wait_for_selector("p.error")
        assert (
            again.locator("p.error")
            .inner_text()
            .startswith("That sign-in link was already used, has expired or was revoked.")
        )
        assert again.url == live.base + "/auditor/welcome"
    finally:
        other.close()
    assert watch.problems == []
    assert watch.foreign(live.base) == []
    assert not [u for u in watch.requests if invited["link"].split("#")[1] in u]


@pytest.mark.slow
def test_auditor_pages_pass_axe_at_desktop_and_phone_width(browser, live: Live) -> None:
    invited = invite(live, "Axe Auditor")
    found: list[str] = []
    for width, height in ((1100, 900), (390, 844)):
        ctx = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
        try:
            page = ctx.new_page()
            page.set_default_timeout(15_000)
            page.goto(live.base + "/auditor/welcome")
            found += audit(page, f"auditor welcome {width}")
            if width == 1100:  # only the fragment changes: the script posts it too
                page.goto(invited["link"])
            else:  # the link is spent: the phone signs in with the token
                page.goto(live.base + "/auditor/login")
                page.get_by_label("Access token").fill(invited["token"])
                page.get_by_role("button", name="Sign in").click()
            page.locator("table.auditor-log").wait_for()
            assert page.url == live.base + "/auditor"
            found += audit(page, f"auditor log {width}")
            widths = page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert widths[0] <= widths[1], widths  # never scrolls sideways
            if width == 390:
                shot(page, "auditor-03-phone")
                display = page.eval_on_selector(
                    "table.auditor-log tbody tr", "tr => getComputedStyle(tr).display"
                )
                assert display == "block"
            page.get_by_role("button", name="Verify now").click()
            page.wait_for_url(live.base + "/auditor/verify")
            found += audit(page, f"auditor verify {width}")
        finally:
            ctx.close()
    assert found == []
