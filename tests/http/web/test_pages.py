"""The owner's pages through Flask's test client: sign-in walls, CSRF, data browsing,
import by upload (same messages as the CLI), grants (narrow, revoke, register), auditor."""

from __future__ import annotations

import io
import re

import pytest
from werkzeug.test import EnvironBuilder

from pds import jobs
from pds.http.web import data as data_pages
from pds.oauth import store
from tests.conftest import fixture
from tests.oauth_kit import bearer, csrf, seed

OWNER_PAGES = [
    "/",
    "/data",
    "/data/transactions",
    "/data/transactions/rules",
    "/data/balances",
    "/records/1",
    "/import",
    "/grants",
    "/clients/new",
    "/policies",
    "/policies/edit",
    "/policies/edit/default",
    "/history",
    "/rights",
]
MIDATA = fixture("midata/midata-spec-example.csv")


def main_of(html: str) -> str:
    return html.split("<main>")[1].split("</main>")[0]


def count(vault, table: str) -> int:
    return vault.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.mark.parametrize("path", OWNER_PAGES)
def test_owner_pages_need_sign_in_and_have_strict_headers(kit, vault, path: str) -> None:
    seed(vault)
    resp = kit.http.get(path)
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/login?next=")
    kit.login()
    page = kit.http.get(path)
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert " style=" not in page.text
    assert "<script>" not in page.text
    assert re.findall(r'(?:src|href|action)="(https?:)?//', page.text) == []
    assert '<a href="/rights">Your rights</a>' in page.text or path == "/rights"


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/import", {"file": (io.BytesIO(b"x"), "a.csv")}),
        ("/grants/1/narrow", {"category": "energy"}),
        ("/clients/new", {"name": "X", "redirect_uris": "https://x.example/cb"}),
        ("/policies/edit", {"name": "mine", "text": ""}),
        ("/policies/default/disable", {}),
        ("/data/transactions/rules", {"text": ""}),
        ("/data/transactions/rules/apply", {}),
    ],
)
def test_posts_without_csrf_are_refused(kit, vault, path: str, data: dict) -> None:
    kit.login()
    before = (count(vault, "sources"), count(vault, "clients"), count(vault, "audit_log"))
    resp = kit.http.post(path, data=data)
    assert resp.status_code == 403
    assert "This form has expired or did not come from pds." in resp.text
    after = (count(vault, "sources"), count(vault, "clients"), count(vault, "audit_log"))
    assert after == before
    assert not (vault.settings.home / "policies").exists()


def test_browse_search_and_view_a_record(kit, vault) -> None:
    ids = seed(vault)
    kit.login()
    page = kit.http.get("/data/transactions", query_string={"q": "shop r3"})
    rows = re.findall(r'<a href="/records/(\d+)"', page.text)
    assert rows == [str(ids[2])]
    dated = kit.http.get(
        "/data/transactions", query_string={"from": "2024-02-01", "to": "2024-04-05"}
    )
    assert re.findall(r'<a href="/records/(\d+)"', dated.text) == [str(i) for i in ids[3:0:-1]]
    oldest = kit.http.get(
        "/data/transactions",
        query_string={"from": "2024-02-01", "to": "2024-04-05", "order": "oldest"},
    )
    assert re.findall(r'<a href="/records/(\d+)"', oldest.text) == [str(i) for i in ids[1:4]]
    by_source = kit.http.get("/data/transactions", query_string={"source": "2"})
    assert "No transaction matches." in by_source.text
    one = kit.http.get(f"/records/{ids[2]}")
    assert '<tr><th scope="row">Description</th><td>SHOP 3</td></tr>' in one.text
    assert kit.http.get("/records/999").status_code == 404
    assert kit.http.get("/data/socks").status_code == 404
    bad = kit.http.get("/data/transactions", query_string={"from": "yesterday"})
    assert bad.status_code == 400
    assert "from=&#39;yesterday&#39; is not a date (YYYY-MM-DD)" in bad.text
    actions = [a for a, _ in kit.audit_actions()]
    assert not [a for a in actions if a.startswith("api.")]  # the owner's reading is no access


def upload(kit, path, name: str | None = None, **form):
    """Upload ``path``: the answer is a redirect to the import's job; run the queued jobs
    (as the server's job thread does) and return the job's page."""
    page = kit.http.get("/import")
    data = {"csrf_token": csrf(page.text), **form}
    data["file"] = (io.BytesIO(path.read_bytes()), name or path.name)
    queued = kit.http.post("/import", data=data, content_type="multipart/form-data")
    if queued.status_code != 303:
        return queued
    assert re.fullmatch(r"/jobs/[0-9]+", queued.headers["Location"]), queued.headers
    assert jobs.run_once(kit.vault) == [int(queued.headers["Location"].rsplit("/", 1)[1])]
    return kit.http.get(queued.headers["Location"])


def test_import_by_upload_says_what_the_cli_says(kit, vault) -> None:
    kit.login()
    resp = upload(kit, MIDATA)
    assert resp.status_code == 200
    line = "midata-spec-example.csv: 6 new, 0 already present, 0 rejected (midata)"
    assert line in resp.text
    assert vault.status()["categories"] == {"transactions": 6}
    again = upload(kit, MIDATA)
    assert "midata-spec-example.csv: 0 new, 6 already present, 0 rejected (midata)" in again.text
    assert vault.status()["records"] == 6


def test_bad_upload_leaves_the_vault_unchanged(kit, vault, tmp_path) -> None:
    kit.login()
    before = (vault.status()["records"], count(vault, "sources"))
    bad = tmp_path / "statement.csv"
    bad.write_bytes(
        b"Date,Type,Merchant/Description,Debit/Credit,Balance\r\n04/03/2014,VIS,Boots,5.0O,260.00\r\n"
    )
    resp = upload(kit, bad, "../../etc/statement.csv")
    assert resp.status_code == 200
    text = main_of(resp.text)
    assert "Error: statement.csv line 2: amount &#34;5.0O&#34; is not a number" in text, text
    assert "Nothing was imported from this file." in text
    assert (vault.status()["records"], count(vault, "sources")) == before
    unknown = tmp_path / "notes.txt"
    unknown.write_bytes(b"hello")
    resp = upload(kit, unknown)
    assert resp.status_code == 200
    assert "Error: notes.txt: pds does not recognise this file&#39;s format" in resp.text
    empty = kit.http.post(
        "/import", data={"csrf_token": csrf(resp.text)}, content_type="multipart/form-data"
    )
    assert (empty.status_code, "Choose a file to import." in empty.text) == (422, True)


def test_upload_over_the_limit_is_refused(kit, vault, monkeypatch) -> None:
    monkeypatch.setattr(data_pages, "MAX_UPLOAD_BYTES", 1024 * 1024)
    kit.login()
    page = kit.http.get("/import")
    big = io.BytesIO(b"0" * (1024 * 1024 + 1))
    builder = EnvironBuilder(
        path="/import",
        method="POST",
        data={"csrf_token": csrf(page.text), "file": (big, "big.csv")},
        content_type="multipart/form-data",
    )
    environ = builder.get_environ()
    try:  # the server stops reading: the test client's spooled body is closed here
        resp = kit.http.open(environ)
    finally:
        environ["wsgi.input"].close()
        builder.close()
    assert resp.status_code == 413
    assert "Error: the file is larger than the 1 MiB the web page takes" in resp.text
    assert vault.status()["records"] == 0


def test_a_big_upload_is_allowed_past_the_app_limit(kit, vault, tmp_path) -> None:
    rows = ["Date,Type,Merchant/Description,Debit/Credit,Balance"]
    rows += [f"{d % 28 + 1:02d}/01/2024,VIS,SHOP {d},-{d}.00,100.00" for d in range(8000)]
    path = tmp_path / "big.csv"
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode())
    assert path.stat().st_size > 256 * 1024
    kit.login()
    resp = upload(kit, path)
    assert "big.csv: 8000 new, 0 already present, 0 rejected (midata)" in resp.text


def two_category_grant(kit, vault) -> tuple[str, str, dict]:
    seed(vault)
    client_id, secret = kit.add_client("Acme Bank")
    tok = kit.tokens(client_id, secret, scope="read:transactions read:energy")
    return client_id, secret, tok


def test_narrow_a_grant_by_one_category(kit, vault) -> None:
    _, _, tok = two_category_grant(kit, vault)
    page = kit.http.get("/grants")
    assert "<li>read your transactions</li>" in page.text
    assert '<button type="submit">Stop sharing energy</button>' in page.text
    assert '<a href="/grants/1/receipt">Consent receipt</a>' in page.text
    api = kit.app.test_client()
    url = "/api/v1/records?category=energy"
    assert api.get(url, headers=bearer(tok["access_token"])).status_code == 200
    resp = kit.http.post(
        "/grants/1/narrow", data={"csrf_token": csrf(page.text), "category": "energy"}
    )
    assert (resp.status_code, resp.headers["Location"]) == (303, "/grants")
    grant = store.get_grant(vault.conn, 1)
    assert (grant.scope, list(grant.access.categories)) == ("read:transactions", ["transactions"])
    assert api.get(url, headers=bearer(tok["access_token"])).status_code == 403
    ok = api.get("/api/v1/records?category=transactions", headers=bearer(tok["access_token"]))
    assert ok.status_code == 200
    last = kit.audit_actions()[-3]
    assert last == ("grant.narrow", "allowed")
    kinds = vault.conn.execute("SELECT kind FROM receipts WHERE grant_id = 1 ORDER BY id")
    assert [k for (k,) in kinds] == ["grant", "narrow"]
    again = kit.http.post(
        "/grants/1/narrow", data={"csrf_token": csrf(page.text), "category": "transactions"}
    )
    assert again.status_code == 422
    assert "&#34;transactions&#34; is all that grant 1 covers" in again.text


def test_revoke_asks_first_then_the_token_fails(kit, vault) -> None:
    _, _, tok = two_category_grant(kit, vault)
    confirm = kit.http.get("/grants/1/revoke")
    assert confirm.status_code == 200
    assert "<h1>Revoke the grant to Acme Bank?</h1>" in confirm.text
    assert store.get_grant(vault.conn, 1).revoked_at is None  # looking changes nothing
    resp = kit.http.post("/grants/1/revoke", data={"csrf_token": csrf(confirm.text)})
    assert resp.status_code == 303
    api = kit.app.test_client()
    got = api.get("/api/v1/records?category=energy", headers=bearer(tok["access_token"]))
    assert got.status_code == 401
    assert "This grant is already revoked." in kit.http.get("/grants/1/revoke").text


def test_register_a_client_shows_the_secret_once(kit, vault) -> None:
    kit.login()
    page = kit.http.get("/clients/new")
    bad = kit.http.post(
        "/clients/new",
        data={
            "csrf_token": csrf(page.text),
            "name": "Shop",
            "redirect_uris": "http://shop.example/cb",
        },
    )
    assert bad.status_code == 422
    assert (
        "Error: redirect URI &#39;http://shop.example/cb&#39; uses http on a host that is not "
        "loopback; use https"
    ) in bad.text
    assert count(vault, "clients") == 0
    resp = kit.http.post(
        "/clients/new",
        data={
            "csrf_token": csrf(page.text),
            "name": "Shop",
            "redirect_uris": "https://shop.example/cb",
        },
    )
    secret = re.search(r'<code id="client-secret">([^<]+)</code>', resp.text).group(1)
    client_id = re.search(r'<code id="client-id">([^<]+)</code>', resp.text).group(1)
    row = store.get_client(vault.conn, client_id)
    assert (row.name, row.redirect_uris, row.verified) == (
        "Shop",
        ("https://shop.example/cb",),
        True,
    )
    assert row.secret_hash == store.digest(secret)
    assert secret not in kit.http.get("/grants").text


def test_home_shows_sources_grants_accesses_and_what_waits(kit, vault) -> None:
    seed(vault)
    client_id, secret = kit.add_client("Acme Bank")
    tok = kit.tokens(
        client_id,
        secret,
        scope="read:transactions",
        form={
            "narrowing": "1",
            "item": "read:transactions",
            "field.transactions": ["date", "amount"],
            "expires_days": "3",
        },
    )
    kit.http.post(
        "/oauth/register",
        json={"client_name": "Stranger Ltd", "redirect_uris": ["https://s.example/cb"]},
    )
    kit.app.test_client().get(
        "/api/v1/records?category=transactions", headers=bearer(tok["access_token"])
    )
    text = main_of(kit.http.get("/").text)
    assert "<p>7 records from 2 imported files.</p>" in text
    assert "Stranger Ltd registered itself" in text
    assert "The grant to Acme Bank ends on " in text
    assert ": it may read your transactions (date, amount).</li>" in text
    assert (
        '<td data-label="File">seed.csv</td><td data-label="Format">test</td>'
        '<td data-label="Records">6</td>'
    ) in text
    assert (
        '<td data-label="Business">Acme Bank</td>'
        '<td data-label="What it may do">read your transactions (date, amount)</td>'
    ) in text
    assert (
        '<td data-label="Who">Acme Bank</td><td data-label="What">api.records.read</td>'
        '<td data-label="Category">transactions</td><td data-label="Decision">allowed</td>'
    ) in text


def test_auditor_signs_in_with_a_token_and_sees_only_the_log(kit, vault) -> None:
    seed(vault)
    client_id, secret = kit.add_client("Audit Co")
    tok = kit.tokens(client_id, secret, scope="audit:read")["access_token"]
    data_client, data_secret = kit.add_client("Reader")
    data_tok = kit.tokens(data_client, data_secret, scope="read:transactions")["access_token"]
    browser = kit.app.test_client()
    page = browser.get("/auditor/login")
    refused = browser.post(
        "/auditor/login", data={"csrf_token": csrf(page.text), "access_token": data_tok}
    )
    assert refused.status_code == 401
    assert "That is not a live access token with audit:read." in refused.text
    resp = browser.post("/auditor/login", data={"csrf_token": csrf(page.text), "access_token": tok})
    assert (resp.status_code, resp.headers["Location"]) == (303, "/auditor")
    log = browser.get("/auditor")
    assert log.status_code == 200
    assert tok not in log.text
    assert "entries. Log verifier key:" in log.text
    proof = browser.get("/auditor/proof", query_string={"index": "0", "size": "2"})
    assert "<h1>Inclusion proof</h1>" in proof.text
    assert browser.get("/auditor/proof", query_string={"index": "9999"}).status_code == 400
    for path in ("/", "/data/transactions", "/records/1", "/grants", "/history"):
        assert browser.get(path).status_code == 302, path
    assert ("auditor.signin", "allowed") in kit.audit_actions()
    assert ("auditor.log", "allowed") in kit.audit_actions()
    grant_id = store.find_access_token(vault.conn, tok).grant_id
    from pds.oauth import admin

    admin.revoke_grant(vault, grant_id)
    gone = browser.get("/auditor")
    assert (gone.status_code, gone.headers["Location"]) == (302, "/auditor/login")


def test_an_unexpected_upload_failure_shows_a_generic_error(
    kit, vault, monkeypatch, caplog
) -> None:
    from connectors.midata import MidataConnector

    real = MidataConnector.parse

    def broken(self, stream, filename):
        yield from real(self, stream, filename)  # six records reach the vault's transaction
        raise KeyError("COSTA COFFEE -3.20")

    monkeypatch.setattr(MidataConnector, "parse", broken)
    kit.login()
    before = (vault.status()["records"], count(vault, "sources"))
    resp = upload(kit, MIDATA)
    assert resp.status_code == 200
    text = main_of(resp.text)
    assert f"Error: {jobs.UNEXPECTED}" in text, text
    assert jobs.UNEXPECTED_HINT in text
    assert "COSTA" not in resp.text
    assert (vault.status()["records"], count(vault, "sources")) == before
    logged = [r.getMessage() for r in caplog.records if r.name == "pds.jobs"]
    assert logged == ["job 1: the import failed unexpectedly (KeyError)"]
