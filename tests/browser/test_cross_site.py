"""Form posts in a real Chromium: the page's own forms go through (Chromium sends
``Origin: null`` under ``Referrer-Policy: no-referrer``), and the same form, CSRF token and all, submitted from a page of another
origin (another port of the same host: same-site) is refused with 403 and changes nothing."""

from __future__ import annotations

import json
import sqlite3

import pytest

from pds.http.security import CROSS_SITE_MESSAGE

from .conftest import Live, shot
from .test_owner import Business, sign_in


def _grants(live: Live) -> int:
    with sqlite3.connect(live.home / "vault.db") as conn:
        return conn.execute("SELECT count(*) FROM grants").fetchone()[0]


@pytest.mark.slow
def test_own_form_goes_through_and_the_same_form_from_another_site_does_not(
    page, live: Live
) -> None:
    posts: list[dict[str, str]] = []
    page.on(
        "request",
        lambda r: posts.append({"url": r.url, **r.all_headers()}) if r.method == "POST" else None,
    )
    sign_in(page, live)
    business = Business(live)
    page.route(live.redirect_uri + "?**", lambda r: r.fulfill(status=200, body="ok"))

    # another site shows the consent form (with a valid CSRF token) and the owner clicks
    url = business.authorize_url("read:energy")
    page.goto(url)
    consent = page.locator("form", has=page.get_by_role("button", name="Allow"))
    form = consent.evaluate("f => f.outerHTML")
    token = consent.locator("input[name=csrf_token]").get_attribute("value")
    assert token
    assert token in form
    before = _grants(live)
    port = int(live.base.rsplit(":", 1)[1])
    evil = f"http://127.0.0.1:{port + 1}/prize"  # same host, another port: same-site
    html = form.replace('action="/oauth/authorize', f'action="{live.base}/oauth/authorize')
    page.route(evil, lambda r: r.fulfill(status=200, content_type="text/html", body=html))
    page.goto(evil)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Allow").click()
    assert answer.value.status == 403
    assert CROSS_SITE_MESSAGE in page.content().replace("&#39;", "'")
    shot(page, "17-cross-site-refused")
    sent = posts[-1]
    # SameSite=Lax does not keep the session cookie off a same-site post: the Origin does it
    assert sent["origin"] == f"http://127.0.0.1:{port + 1}"
    assert sent["cookie"].startswith("pds_session=")
    assert _grants(live) == before

    # the owner's own consent page: the same click is allowed
    page.goto(url)
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(live.redirect_uri + "?**")
    sent = posts[-1]
    assert sent["origin"] == "null", json.dumps(sent)  # Referrer-Policy: no-referrer
    assert _grants(live) == before + 1
    assert "read:energy" in business.redeem(page.url)["scope"]
