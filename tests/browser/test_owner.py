"""The owner's web app in a real browser: sign in, import by upload, approve a narrowed
consent request from a scripted business, revoke it and watch the business fail, see both
accesses in the history, and a bad policy file's error shown inline. No page may ask any
host but its own, and the browser reports no CSP violation."""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from ..conftest import PASSPHRASE, fixture
from .conftest import Live, Watch, shot

MIDATA = fixture("midata/midata-spec-example.csv")
OFX = fixture("ofx/ofxparse-checking.ofx")
BAD_POLICY = '[[rule]]\nid = "no-socks"\nkind = "deny-category"\ncategory = "socks"\n'


class Business:
    """A scripted business: PKCE authorization request, code exchange, API calls (urllib)."""

    def __init__(self, live: Live) -> None:
        self.live = live
        self.verifier = base64.urlsafe_b64encode(b"v" * 48).decode().rstrip("=")

    def authorize_url(self, scope: str) -> str:
        q = {
            "response_type": "code",
            "client_id": self.live.client_id,
            "redirect_uri": self.live.redirect_uri,
            "scope": scope,
            "state": "browser-state",
            "code_challenge": create_s256_code_challenge(self.verifier),
            "code_challenge_method": "S256",
        }
        return self.live.base + "/oauth/authorize?" + urlencode(q)

    def redeem(self, callback: str) -> dict:
        q = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
        assert (q["state"], q["iss"]) == ("browser-state", self.live.base)
        body = urlencode(
            {
                "grant_type": "authorization_code",
                "code": q["code"],
                "redirect_uri": self.live.redirect_uri,
                "code_verifier": self.verifier,
            }
        ).encode()
        basic = base64.b64encode(f"{self.live.client_id}:{self.live.secret}".encode()).decode()
        req = urllib.request.Request(
            self.live.base + "/oauth/token", body, {"Authorization": "Basic " + basic}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def read(self, token: str, category: str) -> tuple[int, dict]:
        url = f"{self.live.base}/api/v1/records?category={category}"
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


def sign_in(page, live: Live) -> None:
    page.goto(live.base + "/")
    assert page.url == live.base + "/login?next=/"
    shot(page, "01-sign-in")
    page.keyboard.type(PASSPHRASE)  # the passphrase field has the focus
    page.keyboard.press("Enter")
    page.wait_for_url(live.base + "/")


@pytest.mark.slow
def test_owner_journey(page, watch: Watch, live: Live) -> None:
    sign_in(page, live)
    assert page.locator("h1").inner_text() == "Your vault"
    shot(page, "02-home-empty")

    # import a fixture by upload (upload.js: upload progress, then the job's page, whose
    # jobs.js polls and shows the result when the import is done)
    page.get_by_role("link", name="Import", exact=True).click()
    page.get_by_label("File", exact=True).set_input_files(str(MIDATA))
    page.get_by_role("button", name="Import", exact=True).click()
    result = page.locator("#import-result p.ok")
    result.wait_for()
    assert result.inner_text() == (
        "midata-spec-example.csv: 6 new, 0 already present, 0 rejected (midata)"
    )
    assert page.locator("#import-progress").get_attribute("value") is not None
    shot(page, "03-import-done")
    page.get_by_role("link", name="See your data").click()
    page.get_by_role("link", name="transactions").first.click()
    rows = page.locator("table.money tbody tr")  # the transactions, not the totals or charts
    assert rows.count() == 6
    assert "Boots the Chemist" in rows.first.inner_text() or "Boots the Chemist" in page.content()
    page.get_by_label("Search", exact=True).fill("fitness")
    page.get_by_role("button", name="Show").click()
    assert page.locator("table.money tbody tr").count() == 1
    shot(page, "04-data-search")
    page.get_by_role("link", name=re.compile(r"Record \d+")).click()
    assert page.locator("th", has_text="description").count() == 1
    shot(page, "05-record")

    # a scripted business asks for two categories; the owner unticks one and allows
    business = Business(live)
    page.route(live.redirect_uri + "?**", lambda r: r.fulfill(status=200, body="ok"))
    page.goto(business.authorize_url("read:transactions read:energy"))
    assert page.locator("h1").inner_text() == "Browser Bank asks to use your data"
    page.get_by_label("Read your energy").uncheck()
    shot(page, "06-consent")
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(live.redirect_uri + "?**")
    tokens = business.redeem(page.url)
    assert tokens["scope"] == "read:transactions"
    status, body = business.read(tokens["access_token"], "transactions")
    assert (status, len(body["records"])) == (200, 6)

    # the grant on the Businesses page; revoke it (with a confirmation step)
    page.goto(live.base + "/grants")
    row = page.locator("#grant-1")
    assert row.locator("td").nth(1).inner_text() == "Browser Bank"
    assert row.locator("td").nth(2).inner_text() == "read your transactions"
    assert row.locator("td").nth(5).inner_text() == "active"
    shot(page, "07-businesses")
    row.get_by_role("link", name="Revoke…").click()
    shot(page, "08-revoke-confirm")
    page.get_by_role("button", name="Yes, revoke it").click()
    page.wait_for_url(live.base + "/grants")
    assert page.locator("#grant-1 td").nth(5).inner_text() == "revoked"
    status, body = business.read(tokens["access_token"], "transactions")
    assert (status, body["status"]) == (401, 401)

    # both accesses in the history: the chart's bars and the table's rows
    page.get_by_role("link", name="Access history", exact=True).click()
    bars = page.locator("#chart svg rect.bar title")
    got = sorted(bars.nth(i).text_content().split(": ", 1)[1] for i in range(bars.count()))
    assert got == ["Browser Bank, 1", "unknown caller, 1"]
    table = page.locator("#accesses tbody tr")
    assert table.count() == 2
    assert [table.nth(i).locator("td").nth(7).inner_text() for i in range(2)] == [
        "refused",
        "allowed",
    ]
    assert page.locator("#checkpoint-status").inner_text().startswith("Log verified up to entry")
    shot(page, "09-history")

    # a bad policy file: its error inline, nothing saved
    page.get_by_role("link", name="Policies", exact=True).click()
    shot(page, "10-policies")
    page.get_by_role("link", name="Write a new policy file").click()
    page.get_by_label("Name", exact=True).fill("mine")
    page.get_by_label("Rules", exact=True).fill(BAD_POLICY)
    page.get_by_role("button", name="Check and save").click()
    error = page.locator("#policy-error")
    assert error.inner_text() == (
        'mine.toml: rule "no-socks" (rule 1): field "category": "socks" is not a category'
    )
    assert page.get_by_label("Rules", exact=True).get_attribute("aria-invalid") == "true"
    assert not (live.home / "policies" / "mine.toml").exists()
    shot(page, "11-policy-error")

    page.get_by_role("link", name="Your rights").click()
    shot(page, "12-rights")

    assert watch.foreign(live.base) == []
    assert watch.problems == []


@pytest.mark.slow
def test_phone_width_and_keyboard(browser, live: Live) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    try:
        sign_in(page, live)
        for path, name in [("/", "13-phone-home"), ("/history", "14-phone-history")]:
            page.goto(live.base + path)
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, path
            shot(page, name)
        # the skip link is the first stop of the keyboard, and it leads to the content
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    finally:
        context.close()
    assert [u for u in requests if not u.startswith(live.base + "/")] == []


@pytest.mark.slow
def test_upload_without_javascript(browser, live: Live) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, live)
        page.goto(live.base + "/import")
        page.get_by_label("File", exact=True).set_input_files(str(OFX))
        page.get_by_role("button", name="Import", exact=True).click()
        page.wait_for_url(re.compile(re.escape(live.base) + r"/jobs/[0-9]+$"))
        result = page.locator("#import-result p.ok")
        result.wait_for()  # the page refreshes itself (<noscript> meta refresh) until done
        assert result.inner_text() == (
            "ofxparse-checking.ofx: 3 new, 0 already present, 0 rejected (ofx)"
        )
    finally:
        context.close()


@pytest.mark.slow
def test_auditor_sees_the_log_and_no_data(browser, page, watch: Watch, live: Live) -> None:
    sign_in(page, live)
    business = Business(live)
    page.route(live.redirect_uri + "?**", lambda r: r.fulfill(status=200, body="ok"))
    page.goto(business.authorize_url("audit:read"))
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(live.redirect_uri + "?**")
    token = business.redeem(page.url)["access_token"]
    context = browser.new_context()
    auditor = context.new_page()
    requests: list[str] = []
    auditor.on("request", lambda r: requests.append(r.url))
    try:
        auditor.goto(live.base + "/auditor/login")
        auditor.get_by_label("Access token").fill(token)
        auditor.get_by_role("button", name="Sign in").click()
        auditor.wait_for_url(live.base + "/auditor")
        assert auditor.locator("h1").inner_text() == "The access log"
        assert token not in auditor.content()
        shot(auditor, "15-auditor-log")
        auditor.get_by_label("Inclusion of entry").fill("1")
        auditor.get_by_role("button", name="Prove").first.click()
        assert auditor.locator("h1").inner_text() == "Inclusion proof"
        shot(auditor, "16-auditor-proof")
        auditor.goto(live.base + "/data")
        assert auditor.url == live.base + "/login?next=/data"
    finally:
        context.close()
    assert [u for u in requests if not u.startswith(live.base + "/")] == []
    assert watch.foreign(live.base) == []
