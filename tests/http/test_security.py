"""Security review of the owner's web app: every owner page behind sign-in and CSRF (found
by walking the URL map, so a new page cannot forget), sign-out that really ends a session,
the auditor kept out of owner pages, no open redirect, escaping, policy file names."""

from __future__ import annotations

import re

import pytest
from werkzeug.routing import Rule

from pds.http import security
from pds.vault import SourceInfo
from tests.conftest import PASSPHRASE
from tests.factories import prepared, transaction
from tests.oauth_kit import bearer, csrf, pkce, seed

# endpoints that are not the owner's: each checks its caller its own way
NOT_OWNER = {
    "static",
    "web.healthz",
    "owner.login",
    "consent.authorize",  # signs the owner in itself (tests/http/web/test_consent.py)
    "oauth.metadata",
    "oauth.token",
    "oauth.register",
    "oauth.revoke",
    "oauth.introspect",
    "auditor.login",
    "auditor.logout",
    "auditor.log",
    "auditor.proof",
    "auditor.welcome",
    "auditor.verify",
    "auditor.bundle",
}
PLACEHOLDERS = {
    "grant_id": 1,
    "record_id": 1,
    "request_id": 1,
    "job_id": 1,
    "client_id": "x",
    "name": "x",
}


def owner_routes(app) -> list[tuple[str, str]]:
    """(method, url) of every owner page, with placeholder values in the URL."""
    adapter = app.url_map.bind("localhost")
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in NOT_OWNER or rule.rule.startswith(("/api/", "/audit/")):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            values = {a: _placeholder(rule, a) for a in rule.arguments}
            out.append((method, adapter.build(rule.endpoint, values, method=method)))
    return sorted(set(out))


def _placeholder(rule: Rule, arg: str) -> object:
    if arg == "change":
        return "enable"
    if arg == "category":
        return "transactions"
    return PLACEHOLDERS[arg]


def test_the_walk_finds_the_owner_pages(app) -> None:
    found = owner_routes(app)
    assert len(found) == 43
    assert ("POST", "/forget") in found
    assert ("POST", "/data/transactions/rules/apply") in found
    assert ("GET", "/search") in found
    assert ("GET", "/processing/x.json") in found
    assert ("GET", "/jobs/1.json") in found
    assert ("POST", "/policies/x/enable") in found


def test_every_owner_page_needs_the_owner(kit, vault) -> None:
    seed(vault)
    for method, url in owner_routes(kit.app):
        resp = kit.http.open(url, method=method)
        if method == "GET":
            assert resp.status_code == 302, url
            assert resp.headers["Location"].startswith("/login?next="), url
        else:
            assert resp.status_code == 401, (method, url)


def test_every_owner_post_needs_the_csrf_token(kit, vault) -> None:
    seed(vault)
    kit.login()
    before = vault.log.size()
    for method, url in owner_routes(kit.app):
        if method != "POST":
            continue
        resp = kit.http.post(url, data={"category": "energy", "confirm": "energy"})
        assert resp.status_code == 403, url
        assert security.CSRF_MESSAGE in resp.text, url
    assert vault.log.size() == before
    assert vault.status()["records"] == 7


# -- forms sent from another site --------------------------------------------------------------

CROSS_SITE = [
    {"Origin": "https://evil.test"},
    {"Origin": "http://127.0.0.1:8001"},  # another port of the issuer's host
    {"Origin": "https://127.0.0.1:8000"},  # another scheme
    {"Origin": "http://localhost.evil.test"},
    {"Origin": "garbage"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Sec-Fetch-Site": "cross-site", "Origin": "null"},
    {"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:8000"},
]
# endpoints a form posts to that are not behind owner_required (they check CSRF themselves)
FORM_ENDPOINTS = [
    ("POST", "/login"),
    ("POST", "/auditor/login"),
    ("POST", "/auditor/logout"),
    ("POST", "/auditor/welcome"),
    ("POST", "/auditor/verify"),
]


def _every_form_post(kit) -> list[str]:
    client_id, _ = kit.add_client("Acme Bank")
    consent = kit.authorize_url(client_id, pkce()[1])
    owner = [url for method, url in owner_routes(kit.app) if method == "POST"]
    return [*owner, *(url for _, url in FORM_ENDPOINTS), consent]


@pytest.mark.parametrize("headers", CROSS_SITE, ids=lambda h: " ".join(h.values()))
def test_every_form_post_from_another_site_is_refused(kit, vault, headers) -> None:
    """With the owner signed in and a valid CSRF token, a form the browser marks as sent
    from another site (Sec-Fetch-Site, or an Origin that is not pds's) gets 403."""
    seed(vault)
    urls = _every_form_post(kit)
    kit.login()
    token = csrf(kit.http.get("/grants").text)
    before = (vault.log.size(), vault.status()["records"], count_rows(vault))
    for url in urls:
        data = {"csrf_token": token, "decision": "allow", "passphrase": PASSPHRASE}
        resp = kit.http.post(url, data=data, headers=headers)
        assert resp.status_code == 403, url
        assert security.CROSS_SITE_MESSAGE in resp.text.replace("&#39;", "'"), url
        assert "Location" not in resp.headers, url
    assert (vault.log.size(), vault.status()["records"], count_rows(vault)) == before
    # every POST endpoint but the machine ones (token, revoke, introspect, register, /api)
    adapter = kit.app.url_map.bind("localhost")
    posted = {adapter.match(url.split("?")[0], method="POST")[0] for url in urls}
    forms = {
        r.endpoint
        for r in kit.app.url_map.iter_rules()
        if "POST" in r.methods and r.endpoint.split(".")[0] not in ("oauth", "api")
    }
    assert posted == forms
    assert len(posted) == 24


def count_rows(vault) -> tuple[int, ...]:
    tables = ("grants", "authorization_codes", "clients", "rights_requests", "tokens")
    return tuple(
        vault.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608
        for t in tables
    )


def test_consent_allow_from_another_site_makes_no_grant(kit, vault) -> None:
    client_id, _ = kit.add_client("Acme Bank")
    url = kit.authorize_url(client_id, pkce()[1])
    kit.login()
    token = csrf(kit.http.get(url).text)
    for headers in CROSS_SITE:
        resp = kit.http.post(url, data={"csrf_token": token, "decision": "allow"}, headers=headers)
        assert resp.status_code == 403, headers
        assert "<h1>Refused</h1>" in resp.text
    assert count_rows(vault)[:2] == (0, 0)
    # the same answer from pds's own page goes through
    ok = kit.http.post(
        url,
        data={"csrf_token": token, "decision": "allow"},
        headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
    )
    assert ok.status_code == 303, ok.text
    assert count_rows(vault)[:2] == (1, 1)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "null"},  # Chromium under Referrer-Policy: no-referrer
        {"Origin": "null", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-origin"},  # the issuer
        {"Origin": "HTTP://127.0.0.1:8000"},
        {"Origin": "http://localhost"},  # the origin the request was sent to
        {"Sec-Fetch-Site": "none"},  # typed by the person (a reload)
    ],
)
def test_a_form_post_from_pds_itself_goes_through(kit, vault, headers) -> None:
    kit.login()
    page = kit.http.get("/requests")
    form = {"kind": "access", "business": "Acme Bank", "sent_on": "2020-01-31"}
    made = kit.http.post("/requests", data={**form, "csrf_token": csrf(page.text)}, headers=headers)
    assert made.status_code == 303, made.text
    assert count_rows(vault)[3] == 1


def test_the_machine_endpoints_are_not_form_posts(kit, vault) -> None:
    """/oauth/token, /oauth/register and /api/* answer a cross-site caller as any other."""
    evil = {"Origin": "https://evil.test", "Sec-Fetch-Site": "cross-site"}
    token = kit.http.post("/oauth/token", data={"grant_type": "refresh_token"}, headers=evil)
    assert (token.status_code, token.json["error"]) == (401, "invalid_client")
    reg = kit.http.post(
        "/oauth/register", json={"redirect_uris": ["https://x.example/cb"]}, headers=evil
    )
    assert reg.status_code == 201
    api = kit.http.post("/api/v1/records", json={}, headers=evil)
    assert api.status_code == 401


@pytest.mark.parametrize("url", ["/login", "/auditor/login", "consent"])
def test_a_form_without_its_csrf_token_is_refused_with_403(kit, vault, url) -> None:
    if url == "consent":
        client_id, _ = kit.add_client("Acme Bank")
        url = kit.authorize_url(client_id, pkce()[1])
        kit.login()
        kit.http.get(url)
    for data in ({}, {"csrf_token": "forged"}):
        resp = kit.http.post(url, data={"decision": "allow", "passphrase": PASSPHRASE, **data})
        assert resp.status_code == 403, url
        assert security.CSRF_MESSAGE in resp.text
    assert count_rows(vault)[:2] == (0, 0)


def test_owner_pages_are_not_cached_or_framed(kit, vault) -> None:
    seed(vault)
    kit.login()
    for method, url in owner_routes(kit.app):
        if method != "GET":
            continue
        resp = kit.http.get(url)
        if resp.status_code != 200 or resp.mimetype != "text/html":
            continue
        assert resp.headers["Cache-Control"] == "no-store", url
        assert resp.headers["X-Frame-Options"] == "DENY", url
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"], url
        assert resp.headers["Referrer-Policy"] == "no-referrer", url


# -- sessions -------------------------------------------------------------------------------


def test_a_session_cookie_copied_before_sign_out_is_dead_after_it(kit, vault) -> None:
    kit.login()
    stolen = kit.http.get_cookie("pds_session").value
    page = kit.http.get("/grants")
    assert page.status_code == 200
    out = kit.http.post("/logout", data={"csrf_token": csrf(page.text)})
    assert (out.status_code, out.headers["Location"]) == (303, "/login")
    thief = kit.app.test_client()
    thief.set_cookie("pds_session", stolen)
    resp = thief.get("/grants")
    assert (resp.status_code, resp.headers["Location"]) == (302, "/login?next=/grants")
    # signing in again works, with a fresh session
    assert kit.login("/grants").status_code == 303
    assert kit.http.get("/grants").status_code == 200
    assert thief.get("/grants").status_code == 302


def _auditor_client(kit):
    client_id, secret = kit.add_client("Auditor Ltd")
    token = kit.tokens(client_id, secret, scope="audit:read")["access_token"]
    browser = kit.app.test_client()
    page = browser.get("/auditor/login")
    resp = browser.post(
        "/auditor/login", data={"csrf_token": csrf(page.text), "access_token": token}
    )
    assert (resp.status_code, resp.headers["Location"]) == (303, "/auditor")
    return browser, token


def test_the_auditor_reaches_no_owner_page_and_no_record(kit, vault) -> None:
    seed(vault)
    browser, token = _auditor_client(kit)
    for method, url in owner_routes(kit.app):
        resp = browser.open(url, method=method)
        assert resp.status_code in (302, 401), (method, url)
    log = browser.get("/auditor")
    assert log.status_code == 200
    assert "Tesco" not in log.text  # a seeded record's counterparty
    # the audit:read token itself reads no records through the API
    api = kit.http.get("/api/v1/records?category=transactions", headers=bearer(token))
    assert api.status_code == 403


def test_auditor_sign_out_kills_copies_and_strangers_cannot_sign_auditors_out(kit) -> None:
    browser, _ = _auditor_client(kit)
    stranger = kit.app.test_client()
    page = stranger.get("/auditor/login")
    resp = stranger.post("/auditor/logout", data={"csrf_token": csrf(page.text)})
    assert resp.status_code == 303
    assert browser.get("/auditor").status_code == 200  # still signed in
    stolen = browser.get_cookie("pds_session").value
    page = browser.get("/auditor")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    out = browser.post("/auditor/logout", data={"csrf_token": token.group(1)})
    assert out.status_code == 303
    copy = kit.app.test_client()
    copy.set_cookie("pds_session", stolen)
    gone = copy.get("/auditor")
    assert (gone.status_code, gone.headers["Location"]) == (302, "/auditor/login")


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/x",
        "/\\evil.example",
        "https://evil.example/",
        "/\t/evil.example",
        "javascript:alert(1)",
        "evil.example",
    ],
)
def test_sign_in_never_redirects_to_another_site(kit, target: str) -> None:
    resp = kit.login(target)
    assert (resp.status_code, resp.headers["Location"]) == (303, "/")


# -- escaping -------------------------------------------------------------------------------

NASTY = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_a_business_name_and_record_text_are_escaped_everywhere(kit, vault) -> None:
    client_id, secret = kit.add_client(NASTY)
    token = kit.tokens(client_id, secret, scope="read:transactions")["access_token"]
    assert kit.http.get("/api/v1/records?category=transactions", headers=bearer(token)).json
    item = prepared(transaction("2024-01-05", "-1.00", NASTY, reference=NASTY))
    vault.ingest(SourceInfo("test", "nasty.csv", b"nasty"), [[item]])
    record_id = vault.conn.execute("SELECT max(id) FROM records").fetchone()[0]
    # kit.tokens signed the owner in (on the consent page)
    pages = [
        "/",
        "/grants",
        "/processing",
        f"/processing/{client_id}",
        "/history",
        "/data/transactions",
        "/data/transactions?q=script",
        f"/records/{record_id}",
    ]
    for path in pages:
        page = kit.http.get(path)
        assert page.status_code == 200, path
        assert "<script>alert" not in page.text, path
        assert "<img src=x" not in page.text, path
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
    assert escaped in kit.http.get(f"/records/{record_id}").text
    assert escaped in kit.http.get("/history").text  # the chart's legend and the table


# -- policy file names ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../x", "/etc/x", "x\x00y", "a/b", "..", "X", "a.toml"])
def test_a_policy_name_cannot_leave_the_policies_folder(kit, vault, name: str) -> None:
    kit.login()
    page = kit.http.get("/policies/edit")
    text = '[[rule]]\nid = "p1"\nkind = "deny-category"\ncategory = "health"\n'
    resp = kit.http.post(
        "/policies/edit", data={"name": name, "text": text, "csrf_token": csrf(page.text)}
    )
    assert resp.status_code == 422
    expected = f"&#34;{name}&#34; is not a policy name: use lower-case letters, digits and dashes"
    assert f'<p class="error" id="policy-error" role="alert">{expected}</p>' in resp.text
    home = vault.settings.home
    assert not (home / "policies").exists() or list((home / "policies").iterdir()) == []
    assert not (home.parent / "x.toml").exists()


def test_saving_a_policy_replaces_a_symlink_instead_of_following_it(kit, vault, tmp_path) -> None:
    outside = tmp_path / "outside.toml"
    outside.write_text("# not the vault's\n")
    folder = vault.settings.home / "policies"
    folder.mkdir()
    (folder / "mine.toml").symlink_to(outside)
    kit.login()
    page = kit.http.get("/policies/edit")
    text = '[[rule]]\nid = "p1"\nkind = "deny-category"\ncategory = "health"\n'
    resp = kit.http.post("/policies/edit/mine", data={"text": text, "csrf_token": csrf(page.text)})
    assert resp.status_code == 303
    assert outside.read_text() == "# not the vault's\n"
    assert not (folder / "mine.toml").is_symlink()
    assert (folder / "mine.toml").read_text() == text


def test_strict_transport_security_only_when_served_over_https(settings, vault) -> None:
    from pds.http.app import create_app

    plain = create_app(settings, vault.keyring).test_client().get("/healthz")
    assert "Strict-Transport-Security" not in plain.headers
    https = create_app(
        settings.with_overrides(issuer="https://vault.example"), vault.keyring
    ).test_client()
    resp = https.get("/healthz")
    assert resp.headers["Strict-Transport-Security"] == "max-age=31536000"
