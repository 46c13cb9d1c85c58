"""Owner login and the consent page: CSRF, framing headers, back-off, narrowing, cookies."""

from __future__ import annotations

import json
import re

import pytest

from pds.http.app import create_app
from pds.http.limits import LoginThrottle
from pds.http.security import CSP, session_key
from pds.oauth import store
from tests.conftest import PASSPHRASE
from tests.oauth_kit import CB, csrf, pkce, query

FRAMING = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def headers_of(resp) -> dict[str, str]:
    return {k: resp.headers.get(k) for k in FRAMING}


def test_framing_headers_on_login_and_consent(kit) -> None:
    assert "frame-ancestors 'none'" in CSP
    login = kit.http.get("/login")
    assert headers_of(login) == FRAMING
    assert '<label for="passphrase">Passphrase</label>' in login.text
    assert '<button type="submit">Sign in</button>' in login.text
    assert "<script" not in login.text
    assert "http" not in login.text.split("<main>")[1]
    client_id, _ = kit.add_client()
    _, challenge = pkce()
    kit.login()
    consent = kit.http.get(kit.authorize_url(client_id, challenge))
    assert consent.status_code == 200
    assert headers_of(consent) == FRAMING
    error = kit.http.get(kit.authorize_url("pds-nobody", challenge))
    assert headers_of(error) == FRAMING


def test_approve_without_csrf_is_refused(kit, vault) -> None:
    client_id, _ = kit.add_client()
    _, challenge = pkce()
    url = kit.authorize_url(client_id, challenge)
    kit.login()
    assert kit.http.get(url).status_code == 200
    for data in ({"decision": "allow"}, {"decision": "allow", "csrf_token": "forged"}):
        resp = kit.http.post(url, data=data)
        assert resp.status_code == 403
        assert "Location" not in resp.headers
        assert "This form has expired or did not come from pds." in resp.text
    assert vault.conn.execute("SELECT count(*) FROM grants").fetchone()[0] == 0
    assert vault.conn.execute("SELECT count(*) FROM authorization_codes").fetchone()[0] == 0


def test_login_without_csrf_is_refused(kit) -> None:
    resp = kit.http.post("/login", data={"passphrase": PASSPHRASE})
    assert resp.status_code == 403
    assert "pds_session" not in resp.headers.get("Set-Cookie", "") or "owner_at" not in resp.text


def test_signed_out_post_to_authorize_is_refused(kit) -> None:
    client_id, _ = kit.add_client()
    _, challenge = pkce()
    resp = kit.http.post(kit.authorize_url(client_id, challenge), data={"decision": "allow"})
    assert resp.status_code == 401
    assert "Location" not in resp.headers


def test_failed_logins_back_off_but_never_lock_out(kit, app) -> None:
    now = [1000.0]
    app.extensions["pds_login_throttle"] = LoginThrottle(clock=lambda: now[0])
    page = kit.http.get("/login")
    token = csrf(page.text)

    def attempt(passphrase: str):
        return kit.http.post("/login", data={"passphrase": passphrase, "csrf_token": token})

    for _ in range(3):
        bad = attempt("wrong")
        assert bad.status_code == 401
        assert "That passphrase does not open this vault." in bad.text
    blocked = attempt(PASSPHRASE)  # blocked before the passphrase is even checked
    assert blocked.status_code == 429
    assert blocked.headers["Retry-After"] == "1"
    assert "Too many failed attempts. Try again in 1 second." in blocked.text
    now[0] += 1
    assert attempt("wrong").status_code == 401
    assert attempt("wrong").headers["Retry-After"] == "2"
    # Someone else's failures (another address) never keep the owner out.
    stranger = kit.app.test_client()
    stranger.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    page = stranger.get("/login")
    form = {"passphrase": "guess", "csrf_token": csrf(page.text)}
    assert [stranger.post("/login", data=form).status_code for _ in range(5)] == [401] * 3 + [
        429
    ] * 2
    # capped: after many failures the wait is at most five minutes
    throttle = app.extensions["pds_login_throttle"]
    throttle.failed("127.0.0.1", at_least=40)
    assert throttle.wait("127.0.0.1") == 300
    assert throttle.wait("203.0.113.9") == 1
    now[0] += 300
    ok = attempt(PASSPHRASE)
    assert (ok.status_code, ok.headers["Location"]) == (303, "/")
    assert throttle.failures("127.0.0.1") == 0
    assert throttle.failures("203.0.113.9") == 3
    assert kit.audit_actions().count(("login.failed", "refused")) == 7


def test_session_cookie_flags_and_key(kit, app, vault) -> None:
    resp = kit.login()
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("pds_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie
    assert app.config["SECRET_KEY"] == session_key(vault.keyring.master)
    # another worker (or a restart) accepts the same session
    other = create_app(vault.settings, vault.keyring)
    try:
        assert other.config["SECRET_KEY"] == app.config["SECRET_KEY"]
    finally:
        for v in other.extensions["pds_vaults"].values():
            v.close()
    secure = create_app(
        vault.settings.with_overrides(issuer="https://pds.example.org"), vault.keyring
    )
    assert secure.config["SESSION_COOKIE_SECURE"] is True


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example"])
def test_login_never_redirects_off_site(kit, target) -> None:
    resp = kit.login(target)
    assert (resp.status_code, resp.headers["Location"]) == (303, "/")


def test_consent_page_in_plain_words(kit) -> None:
    client_id, _ = kit.add_client("Acme Bank")
    details = [
        {
            "type": "pds_records",
            "actions": ["read"],
            "categories": ["transactions"],
            "fields": ["date", "amount"],
            "time_range": {"from": "2024-01-01", "to": "2024-12-31"},
            "purpose": "dpv:CreditChecking",
            "expires_in": 30 * 86400,
        }
    ]
    _, challenge = pkce()
    kit.login()
    url = kit.authorize_url(
        client_id,
        challenge,
        scope="write:energy audit:read",
        authorization_details=json.dumps(details),
    )
    page = kit.http.get(url).text
    assert "<h1>Acme Bank asks to use your data</h1>" in page
    assert "Unverified" not in page
    assert 'value="read:transactions" checked>' in page
    assert "Read your transactions" in page
    assert "Only these fields: date, amount." in page
    assert "(from 2024-01-01 to 2024-12-31)" in page
    assert "Add records to your energy" in page
    assert "Read the access log" in page
    assert "It can read the access log (who used your data, when, for what) but no data." in page
    assert (
        "<strong>Purpose:</strong> checking your creditworthiness (<code>dpv:CreditChecking</code>)"
        in page
    )
    assert 'name="expires_days" type="number" min="1" max="30" value="30"' in page
    assert f"sent back to <strong>acme.example</strong>: <code>{CB}</code>" in page
    assert "<dt>Website</dt>\n  <dd>you added this business yourself</dd>" in page


def test_narrowing_never_widens(kit, vault) -> None:
    client_id, _ = kit.add_client()
    details = [
        {
            "type": "pds_records",
            "actions": ["read"],
            "categories": ["transactions"],
            "fields": ["date", "amount"],
            "time_range": {"from": "2024-01-01", "to": "2024-06-30"},
            "expires_in": 7 * 86400,
        }
    ]
    _, challenge = pkce()
    url = kit.authorize_url(
        client_id, challenge, scope=None, authorization_details=json.dumps(details)
    )
    resp = kit.consent(
        url,
        narrowing="1",
        item=["read:transactions", "read:health", "audit:read"],
        **{
            "field.transactions": ["date", "description"],
            "from.transactions": "2023-01-01",
            "to.transactions": "2025-01-01",
            "expires_days": "365",
        },
    )
    assert resp.status_code == 303
    grant = store.get_grant(vault.conn, 1)
    assert grant.scope == "read:transactions"
    assert grant.access.authorization_details() == [
        {
            "type": "pds_records",
            "actions": ["read"],
            "categories": ["transactions"],
            "fields": ["date"],
            "time_range": {"from": "2024-01-01", "to": "2024-06-30"},
            "expires_in": 7 * 86400,
        }
    ]


def test_nothing_ticked(kit, vault) -> None:
    client_id, _ = kit.add_client()
    _, challenge = pkce()
    resp = kit.consent(kit.authorize_url(client_id, challenge), narrowing="1")
    assert resp.status_code == 400
    assert "Nothing is ticked." in resp.text
    assert vault.conn.execute("SELECT count(*) FROM grants").fetchone()[0] == 0


def test_approve_as_asked_without_narrowing_fields(kit, vault) -> None:
    """A script may answer with csrf_token and decision only: approved exactly as asked."""
    client_id, _ = kit.add_client()
    _, challenge = pkce()
    resp = kit.consent(
        kit.authorize_url(client_id, challenge, scope="read:transactions read:energy")
    )
    assert resp.status_code == 303
    assert store.get_grant(vault.conn, 1).scope == "read:transactions read:energy"
    assert query(resp.headers["Location"])["state"] == "st-123"


def test_grants_page_and_revoke(kit, vault) -> None:
    client_id, secret = kit.add_client("Acme Bank")
    kit.tokens(client_id, secret)
    signed_out = kit.app.test_client().get("/grants")
    assert (signed_out.status_code, signed_out.headers["Location"]) == (
        302,
        "/login?next=/grants",
    )
    page = kit.http.get("/grants")
    assert page.status_code == 200
    assert '<td data-label="Business">Acme Bank</td>' in page.text
    assert '<td data-label="Status">active</td>' in page.text
    token = csrf(page.text)
    assert kit.http.post("/grants/1/revoke").status_code == 403  # no CSRF token
    resp = kit.http.post("/grants/1/revoke", data={"csrf_token": token})
    assert (resp.status_code, resp.headers["Location"]) == (303, "/grants")
    assert store.get_grant(vault.conn, 1).revoked_reason == "revoked by the owner"
    assert '<td data-label="Status">revoked</td>' in kit.http.get("/grants").text
    out = kit.http.post("/logout", data={"csrf_token": token})
    assert out.status_code == 303
    assert kit.http.get("/grants").status_code == 302
    assert kit.audit_actions()[-1] == ("grant.revoke", "allowed")


def _rar(*items: dict) -> str:
    return json.dumps([{"type": "pds_records", "categories": ["transactions"], **i} for i in items])


def _granted(kit, vault, details: str, scope: str | None = None) -> tuple[str, store.Grant]:
    """The consent page for ``details`` and the grant made by pressing Allow on it as shown."""
    client_id, _ = kit.add_client()
    _, challenge = pkce()
    url = kit.authorize_url(client_id, challenge, scope=scope, authorization_details=details)
    kit.login()
    page = kit.http.get(url).text
    # the browser sends every ticked box: what the page pre-ticks is what Allow approves
    ticked = re.findall(r'name="([^"]+)" value="([^"]+)"[^>]* checked>', page)
    form: dict[str, list[str]] = {}
    for name, value in ticked:
        form.setdefault(name, []).append(value)
    resp = kit.http.post(
        url, data={"csrf_token": csrf(page), "decision": "allow", "narrowing": "1", **form}
    )
    assert resp.status_code == 303, resp.text
    grant_id = store.find_code(vault.conn, query(resp.headers["Location"])["code"]).grant_id
    return page, store.get_grant(vault.conn, grant_id)


def _field_boxes(page: str) -> list[str]:
    return re.findall(
        r'<input type="checkbox" name="field\.transactions" value="[^"]+"[^>]*>', page
    )


def test_write_item_does_not_widen_read_fields(kit, vault) -> None:
    """A read item limited to date and amount plus a write item for the same category: the
    page offers (and ticks) date and amount only, and the grant is limited to them."""
    details = _rar(
        {"actions": ["read"], "fields": ["date", "amount"], "time_range": {"from": "2024-01-01"}},
        {"actions": ["write"]},
    )
    page, grant = _granted(kit, vault, details)
    assert _field_boxes(page) == [
        '<input type="checkbox" name="field.transactions" value="date" checked>',
        '<input type="checkbox" name="field.transactions" value="amount" checked>',
    ]
    assert "Only these fields: date, amount." in page
    assert grant.scope == "read:transactions write:transactions"
    c = grant.access.categories["transactions"]
    assert (c.fields, c.time_from, c.time_to) == (("date", "amount"), "2024-01-01", None)


@pytest.mark.parametrize("write_first", [False, True])
def test_write_scope_or_item_in_any_order_keeps_read_limits(kit, vault, write_first) -> None:
    read = {"actions": ["read"], "fields": ["amount"], "time_range": {"to": "2024-06-30"}}
    write = {"actions": ["write"], "fields": ["description"], "time_range": {"from": "2020-01-01"}}
    items = (write, read) if write_first else (read, write)
    _, grant = _granted(kit, vault, _rar(*items), scope="write:transactions")
    c = grant.access.categories["transactions"]
    assert (sorted(c.actions), c.fields, c.time_from, c.time_to) == (
        ["read", "write"],
        ("amount",),
        None,
        "2024-06-30",
    )


def test_two_read_items_ask_for_the_union_of_their_fields(kit, vault) -> None:
    details = _rar(
        {"actions": ["read"], "fields": ["date", "amount"]},
        {"actions": ["write"]},
        {"actions": ["read"], "fields": ["amount", "description"]},
    )
    page, grant = _granted(kit, vault, details)
    assert "Only these fields: date, amount, description." in page
    assert len(_field_boxes(page)) == 3
    assert grant.access.categories["transactions"].fields == ("date", "amount", "description")


def test_read_item_without_fields_asks_for_every_field(kit, vault) -> None:
    details = _rar({"actions": ["read"], "fields": ["date"]}, {"actions": ["read"]})
    page, grant = _granted(kit, vault, details)
    assert "Only these fields" not in page
    assert len(_field_boxes(page)) == 9
    assert grant.access.categories["transactions"].fields is None
    assert "fields" not in grant.access.authorization_details()[0]


def test_refused_category_shows_no_ticked_field_box(kit, vault) -> None:
    folder = vault.settings.home / "policies"
    folder.mkdir(exist_ok=True)
    (folder / "mine.toml").write_text(
        '[[rule]]\nid = "tx-stay-home"\nkind = "deny-category"\ncategory = "transactions"\n',
        encoding="utf-8",
    )
    with kit.app.app_context():
        from pds.http.context import current_policies

        current_policies().check_every = 0
    details = _rar({"actions": ["read"], "fields": ["date", "amount"]})
    page, grant = _granted(kit, vault, details, scope="read:energy")
    assert 'Refused by your policies: rule "tx-stay-home"' in page.replace("&#34;", '"')
    assert _field_boxes(page) == [
        '<input type="checkbox" name="field.transactions" value="date" disabled>',
        '<input type="checkbox" name="field.transactions" value="amount" disabled>',
    ]
    assert "<legend>Fields of transactions it asked to read</legend>" in page
    assert 'name="from.transactions" value="" disabled>' in page
    checked = re.findall(r"<input [^>]*checked>", page)
    assert [box for box in checked if "transactions" in box] == []
    assert '<input type="checkbox" id="item-2" name="item" value="read:energy" checked>' in checked
    assert grant.scope == "read:energy"


def _shown(page: str) -> str:
    return page.replace("&#34;", '"').replace("&#39;", "'")


def test_aggregate_item_does_not_widen_read_fields(kit, vault) -> None:
    """Totals of every field plus reading the date: the page offers (and ticks) the date
    only, and the grant reads the date per record while totalling any field."""
    details = _rar({"actions": ["aggregate"]}, {"actions": ["read"], "fields": ["date"]})
    page, grant = _granted(kit, vault, details)
    assert _field_boxes(page) == [
        '<input type="checkbox" name="field.transactions" value="date" checked>'
    ]
    assert "Only these fields: date." in page
    assert "Totals of these fields only" not in page
    assert grant.scope == "read:transactions aggregate:transactions"
    assert grant.access.authorization_details() == [
        {
            "type": "pds_records",
            "actions": ["read"],
            "categories": ["transactions"],
            "fields": ["date"],
            "expires_in": 7776000,
        },
        {
            "type": "pds_records",
            "actions": ["aggregate"],
            "categories": ["transactions"],
            "expires_in": 7776000,
        },
    ]
    assert grant.access.allows("read", "transactions").fields == ("date",)
    assert grant.access.allows("aggregate", "transactions").fields is None
    assert "<li>read your transactions (date)</li>" in kit.http.get("/grants").text
    assert "<li>learn totals of your transactions</li>" in kit.http.get("/grants").text


def test_aggregate_fields_never_become_readable(kit, vault) -> None:
    """Totals of the amount plus reading the date: the amount is never read per record."""
    details = _rar(
        {"actions": ["aggregate"], "fields": ["amount"], "time_range": {"from": "2024-01-01"}},
        {"actions": ["read"], "fields": ["date"]},
        {"actions": ["write"]},
    )
    page, grant = _granted(kit, vault, details)
    assert _field_boxes(page) == [
        '<input type="checkbox" name="field.transactions" value="date" checked>'
    ]
    assert "Only these fields: date." in page
    assert (
        "It can learn totals, counts and averages (from 2024-01-01 on, including new ones), "
        "built from at least a few records each; it never sees a single record. Totals of "
        "these fields only: amount." in _shown(page)
    )
    assert grant.scope == "read:transactions write:transactions aggregate:transactions"
    assert json.loads(grant.access.to_json())["categories"] == [
        {
            "category": "transactions",
            "actions": ["aggregate", "read", "write"],
            "fields": ["date"],
            "from": None,
            "to": None,
            "totals": {"fields": ["amount"], "from": "2024-01-01", "to": None},
        }
    ]
    assert [
        (i["actions"], i.get("fields"), i.get("time_range"))
        for i in grant.access.authorization_details()
    ] == [
        (["read", "write"], ["date"], None),
        (["aggregate"], ["amount"], {"from": "2024-01-01"}),
    ]
    # stored and read back the same; a grant stored before totals had limits still loads
    assert type(grant.access).from_json(grant.access.to_json()) == grant.access
    old = json.loads(grant.access.to_json())
    del old["categories"][0]["totals"]
    assert type(grant.access).from_json(json.dumps(old)).categories["transactions"].totals is None


@pytest.mark.parametrize(
    ("items", "actions", "fields"),
    [
        ([{"actions": ["read"], "fields": ["date", "amount"]}], ["read"], ("date", "amount")),
        ([{"actions": ["aggregate"], "fields": ["amount"]}], ["aggregate"], ("amount",)),
        (
            [{"actions": ["read", "aggregate"], "fields": ["date", "amount"]}],
            ["read", "aggregate"],
            ("date", "amount"),
        ),
        (
            [
                {"actions": ["aggregate"], "fields": ["amount"]},
                {"actions": ["aggregate"], "fields": ["balance"]},
            ],
            ["aggregate"],
            ("amount", "balance"),
        ),
    ],
)
def test_read_only_or_aggregate_only_is_one_item(kit, vault, items, actions, fields) -> None:
    _, grant = _granted(kit, vault, _rar(*items))
    assert grant.access.categories["transactions"].fields == fields
    assert [(i["actions"], i["fields"]) for i in grant.access.authorization_details()] == [
        (actions, list(fields))
    ]
