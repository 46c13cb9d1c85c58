"""An automated accessibility audit (axe-core) of every web page, in a real browser.

Each page is loaded in a browser context made with ``bypass_csp=True``, for one reason only:
so that axe-core (``tests/node/node_modules/axe-core/axe.min.js``, installed by ``npm ci``)
can be injected into it. axe then runs on the page as served, in the dark and the light
colour scheme (``pds.css`` has both); any violation of impact
"serious" or "critical" (contrast below 4.5:1, a control without a name, a duplicated id,
a table header without cells...) fails the test, with the rule, its targets and its help.
Lesser violations are collected in ``LESSER`` and printed (``pytest -s``) for a reviewer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Live
from .test_owner import BAD_POLICY, MIDATA, Business, sign_in

AXE = Path(__file__).parent.parent / "node" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")
LESSER: list[str] = []

pytestmark = pytest.mark.skipif(
    not AXE.exists(), reason=f"axe-core is not installed: run `npm ci` in {AXE.parents[2]}"
)


def audit(page, name: str) -> list[str]:
    """Run axe on the page as it stands, in light then dark colours (the stylesheet has both);
    return its serious and critical violations."""
    page.add_script_tag(path=str(AXE))
    found: list[str] = []
    for scheme in ("dark", "light"):
        page.emulate_media(color_scheme=scheme)
        run = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        for v in run["violations"]:
            targets = [" ".join(map(str, node["target"])) for node in v["nodes"]]
            line = f"{name} ({scheme}): {v['id']} ({v['impact']}) at {targets}: {v['help']}"
            (found if v["impact"] in BLOCKING else LESSER).append(line)
    return found


@pytest.fixture
def context(browser) -> Iterator[object]:
    ctx = browser.new_context(viewport={"width": 1100, "height": 900}, bypass_csp=True)
    try:
        yield ctx
    finally:
        ctx.close()


def new_page(context) -> object:
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def allow(page, live: Live, scope: str, check: list[str] | None = None) -> str:
    """Let the scripted business ask for ``scope``, allow it, and return its access token."""
    business = Business(live)
    page.goto(business.authorize_url(scope))
    if check is not None:
        check += audit(page, "consent")
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(live.redirect_uri + "?**")
    return business.redeem(page.url)["access_token"]


def owner_pages(page, live: Live) -> list[str]:
    """Visit every owner page, with data in it, and audit each."""
    found: list[str] = []

    def visit(path: str, name: str) -> None:
        page.goto(live.base + path)
        assert page.url == live.base + path  # the page itself, not the sign-in page
        found.extend(audit(page, name))

    page.goto(live.base + "/")
    found += audit(page, "sign-in")
    sign_in(page, live)
    visit("/import", "import")
    page.get_by_label("File", exact=True).set_input_files(str(MIDATA))
    page.get_by_role("button", name="Import", exact=True).click()
    page.locator("#import-result p.ok").wait_for()
    found += audit(page, "import (done)")
    for path, name in [
        ("/", "home"),
        ("/data", "data"),
        ("/data/transactions", "category"),
        ("/data/transactions?sort=out", "transactions by amount"),
        ("/data/transactions/rules", "spending rules"),
        ("/data/balances", "balances"),
        ("/data/transactions", "category"),
    ]:
        visit(path, name)
    page.locator("a[href^='/records/']").first.click()
    found += audit(page, "record")
    visit("/search?q=etc", "search")
    visit("/search?q=nothing", "search (no match)")

    page.route(live.redirect_uri + "?**", lambda r: r.fulfill(status=200, body="ok"))
    allow(page, live, "read:transactions read:energy", found)
    visit("/", "home (a grant, an import)")
    visit("/grants", "businesses")
    visit("/grants/1/revoke", "revoke confirmation")
    visit(f"/clients/{live.client_id}/remove", "remove confirmation")
    visit("/clients/new", "register client")
    visit("/policies", "policies")
    visit("/policies/edit", "policy edit")
    page.get_by_label("Name", exact=True).fill("mine")
    page.get_by_label("Rules", exact=True).fill(BAD_POLICY)
    page.get_by_role("button", name="Check and save").click()
    page.locator("#policy-error").wait_for()
    found += audit(page, "policy edit (error)")
    for path, name in [
        ("/history", "history"),
        ("/rights", "rights"),
        ("/export", "export"),
        ("/processing", "processing"),
        (f"/processing/{live.client_id}", "processing (business)"),
    ]:
        visit(path, name)
    visit("/records/999", "not found")
    visit("/profile", "profile")
    page.get_by_label("Email", exact=True).fill("ada@")
    page.get_by_role("button", name="Save profile").click()
    page.locator("#email-error").wait_for()
    found += audit(page, "profile (error)")
    visit("/requests", "requests")
    page.get_by_label("A copy of my data (Article 15)").check()
    page.get_by_label("Business", exact=True).fill("Acme Bank")
    page.get_by_role("button", name="Write the letter").click()
    page.wait_for_url(live.base + "/requests?opened=1")
    found += audit(page, "requests (letter)")
    return found


def auditor_pages(context, token: str, live: Live) -> list[str]:
    page = new_page(context)
    page.goto(live.base + "/auditor/login")
    found = audit(page, "auditor sign-in")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live.base + "/auditor")
    found += audit(page, "auditor log")
    page.get_by_label("Inclusion of entry").fill("1")
    page.get_by_role("button", name="Prove").first.click()
    page.wait_for_url(live.base + "/auditor/proof?**")
    found += audit(page, "auditor proof")
    return found


@pytest.mark.slow
def test_no_serious_accessibility_violations(browser, context, live: Live) -> None:
    page = new_page(context)
    found = owner_pages(page, live)
    token = allow(page, live, "audit:read")
    auditor = browser.new_context(viewport={"width": 1100, "height": 900}, bypass_csp=True)
    try:
        found += auditor_pages(auditor, token, live)
    finally:
        auditor.close()
    print("\n".join(["moderate and minor violations:", *LESSER]))
    assert found == [], "\n".join(found)
