"""The Host a request is addressed to: only pds's own (the issuer's host and port, or any
loopback name for a loopback issuer) is served, so a page of another site whose DNS name
was pointed at the machine (DNS rebinding) gets 400, as does a malformed Host (never a
500); HEAD answers as GET; on a real `pds serve` and behind PDS_PROXY_HOPS."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask

from pds.http import security
from pds.http.app import create_app
from pds.oauth import admin
from pds.vault import Vault
from tests.conftest import PASSPHRASE
from tests.http.test_security import owner_routes
from tests.oauth_kit import CB, csrf, pkce, seed
from tests.servers import free_port, pds, serving
from tests.vault.test_durability import pds_env

REBIND = "rebind.attacker.example:8200"
LOOPBACK_MESSAGE = (
    "This request was addressed to a host name pds does not answer to (its Host header). "
    "Open pds at http://127.0.0.1:8000."
)
MALFORMED = [
    "a" * 70,  # a label longer than 63
    "x..y",  # an empty label
    ".x",
    "a" * 64 + ".example.org",
    ("a" * 60 + ".") * 5 + "org",  # 309 characters: longer than any DNS name
    "a" * 8000,
    "",
    "host:0",
    "host:65536",
    "host:port",
    "host:",
    "[::1",
    "exa mple.org",
    "ex_ample.org",
    "vault.example.org/x",
    "user@vault.example.org",
]


@contextmanager
def served(vault: Vault, issuer: str | None = None, hops: int = 0) -> Iterator[Flask]:
    app = create_app(vault.settings.with_overrides(issuer=issuer, proxy_hops=hops), vault.keyring)
    try:
        yield app
    finally:
        for v in app.extensions["pds_vaults"].values():
            v.close()
        app.extensions["pds_counters"].close()


def status(app: Flask, path: str, host: str, method: str = "GET") -> int:
    return app.test_client().open(path, method=method, headers={"Host": host}).status_code


# -- DNS rebinding against a loopback server ---------------------------------------------------


def test_a_rebound_name_cannot_sign_in_or_register_on_a_loopback_server(kit, vault) -> None:
    http = kit.http
    token = csrf(http.get("/login").text)  # a real token of this browser's session
    headers = {"Host": REBIND, "Origin": f"http://{REBIND}"}
    page = http.get("/login", headers=headers)
    assert page.status_code == 400
    assert page.mimetype == "text/html"
    assert f'<p class="error" role="alert">{LOOPBACK_MESSAGE}</p>' in page.text
    assert "csrf_token" not in page.text
    done = http.post(
        "/login", data={"passphrase": PASSPHRASE, "csrf_token": token}, headers=headers
    )
    assert done.status_code == 400
    assert "Set-Cookie" not in done.headers
    # not signed in: the owner's home still sends this browser to the login page
    assert http.get("/").status_code == 302
    registered = http.post(
        "/oauth/register", json={"client_name": "Rebound", "redirect_uris": [CB]}, headers=headers
    )
    assert registered.status_code == 400
    assert registered.headers["Content-Type"] == "application/problem+json"
    assert registered.json == {
        "type": "https://pds.invalid/problems/http_400",
        "title": "Bad Request",
        "status": 400,
        "detail": LOOPBACK_MESSAGE,
        "instance": "/oauth/register",
    }
    assert admin.list_clients(vault) == []
    assert kit.audit_actions() == [("vault.init", "allowed")]  # no login, no client


def test_the_same_requests_on_a_loopback_name_go_through(kit, vault) -> None:
    for n, host in enumerate(["localhost:8200", "127.0.0.1:8000", "[::1]:8000", "127.7.7.7"]):
        http = kit.app.test_client()
        token = csrf(http.get("/login", headers={"Host": host}).text)
        form = {"passphrase": PASSPHRASE, "csrf_token": token}
        origin = {"Host": host, "Origin": f"http://{host}"}
        done = http.post("/login", data=form, headers=origin)
        assert (done.status_code, done.headers["Location"]) == (303, "/")
        assert http.get("/", headers={"Host": host}).status_code == 200
        reg = http.post(
            "/oauth/register", json={"client_name": f"C{n}", "redirect_uris": [CB]}, headers=origin
        )
        assert reg.status_code == 201
    assert sorted(c.name for c in admin.list_clients(vault)) == ["C0", "C1", "C2", "C3"]


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST",
        "localhost:1",
        "localhost:65535",
        "127.0.0.1",
        "127.0.0.1:8000",
        "127.0.0.1:18301",
        "127.255.255.254:80",
        "[::1]",
        "[::1]:8000",
    ],
)
def test_a_loopback_issuer_answers_every_loopback_name_on_any_port(app, host: str) -> None:
    assert status(app, "/login", host) == 200
    assert status(app, "/", host) == 302


@pytest.mark.parametrize(
    "host",
    [
        REBIND,
        "rebind.attacker.example",
        "127.0.0.1.nip.io:8000",
        "localhost.",
        "localhost.attacker.example",
        "app.localhost:8000",
        "0.0.0.0:8000",  # noqa: S104 - a Host header under test
        "[::]:8000",
        "192.168.1.5:8000",
        "10.0.0.1",
        "[2001:db8::1]:8000",
        "128.0.0.1:8000",
    ],
)
def test_a_loopback_issuer_refuses_every_other_name(app, host: str) -> None:
    for path in ("/login", "/", "/oauth/authorize", "/.well-known/oauth-authorization-server"):
        resp = app.test_client().get(path, headers={"Host": host})
        assert resp.status_code == 400, path
        assert LOOPBACK_MESSAGE in resp.text
    assert status(app, "/nothing/here", host) == 400  # refused before it is routed
    assert status(app, "/healthz", host) == 200  # a health check may use any address


# -- an https issuer ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("issuer", "accepted", "refused"),
    [
        (
            "https://vault.example.org",
            ["vault.example.org", "vault.example.org:443", "VAULT.Example.ORG"],
            [
                "vault.example.org:8443",
                "vault.example.org:80",
                "localhost",
                "127.0.0.1:8000",
                "[::1]:8000",
                "www.vault.example.org",
                "vault.example.org.attacker.example",
                "xvault.example.org",
                "vault.example.or",
            ],
        ),
        (
            "https://vault.example.org:8443",
            ["vault.example.org:8443"],
            ["vault.example.org", "vault.example.org:443", "vault.example.org:8444", "localhost"],
        ),
        (
            "https://[2001:db8::7]",
            ["[2001:db8::7]", "[2001:db8::7]:443", "[2001:DB8::7]"],
            ["[2001:db8::8]", "[2001:db8::7]:8443", "2001:db8::7", "localhost"],
        ),
    ],
)
def test_an_https_issuer_answers_its_own_host_and_port_only(
    vault: Vault, issuer: str, accepted: list[str], refused: list[str]
) -> None:
    message = (
        "This request was addressed to a host name pds does not answer to (its Host header). "
        f"Open pds at {issuer}."
    )
    with served(vault, issuer) as app:
        for host in accepted:
            assert status(app, "/login", host) == 200, host
            assert status(app, "/.well-known/oauth-authorization-server", host) == 200, host
        for host in refused:
            resp = app.test_client().get("/login", headers={"Host": host})
            assert (resp.status_code, host) == (400, host)
            assert message in resp.text
            meta = app.test_client().get(
                "/.well-known/oauth-authorization-server", headers={"Host": host}
            )
            assert (meta.status_code, meta.json["detail"]) == (400, message)


# -- malformed hosts: 400, never a 500 --------------------------------------------------------


@pytest.mark.parametrize("host", MALFORMED, ids=lambda h: h[:20] or "empty")
def test_a_malformed_host_is_a_400_everywhere(app, host: str) -> None:
    for path in ("/healthz", "/login", "/", "/oauth/token", "/api/v1/records"):
        resp = app.test_client().get(path, headers={"Host": host})
        assert resp.status_code == 400, path
        assert LOOPBACK_MESSAGE in resp.text, path


def test_behind_a_proxy_the_forwarded_host_is_the_one_checked(vault: Vault) -> None:
    issuer = "https://vault.example.org"
    message = (
        "This request was addressed to a host name pds does not answer to (its Host header). "
        f"Open pds at {issuer}."
    )
    with served(vault, issuer, hops=1) as app:

        def via_proxy(forwarded_host: str, path: str = "/login") -> int:
            headers = {"Host": "127.0.0.1:8000", "X-Forwarded-Host": forwarded_host}
            headers["X-Forwarded-For"] = "203.0.113.7"
            headers["X-Forwarded-Proto"] = "https"
            return app.test_client().get(path, headers=headers).status_code

        assert via_proxy("vault.example.org") == 200
        assert via_proxy("attacker.example, vault.example.org") == 200  # the last hop's
        assert via_proxy("vault.example.org, attacker.example") == 400
        assert via_proxy("localhost") == 400
        assert via_proxy("a" * 8000) == 400
        assert via_proxy("x..y") == 400
        assert via_proxy("a" * 8000, "/healthz") == 400
        assert via_proxy("pds:8000", "/healthz") == 200
        # no X-Forwarded-Host: the proxy's own Host (loopback) is not the issuer's
        resp = app.test_client().get("/login", headers={"Host": "127.0.0.1:8000"})
        assert (resp.status_code, message in resp.text) == (400, True)


# -- HEAD answers as GET ------------------------------------------------------------------------


def test_head_answers_as_get_on_the_public_pages(app) -> None:
    http = app.test_client()
    for path, expected in [("/login", 200), ("/healthz", 200), ("/", 302), ("/jobs/1", 302)]:
        head = http.head(path)
        get = http.get(path)
        assert (head.status_code, get.status_code) == (expected, expected), path
        assert head.data == b""
        assert head.headers.get("Location") == get.headers.get("Location")
    assert http.head("/").headers["Location"] == "/login?next=/"
    assert http.head("/jobs/1").headers["Location"] == "/login?next=/jobs/1"


def test_head_answers_as_get_on_every_owner_page(kit, vault) -> None:
    seed(vault)
    pages = [url for method, url in owner_routes(kit.app) if method == "GET"]
    assert "/import" in pages
    signed_out = {url: kit.http.head(url).status_code for url in pages}
    assert signed_out == dict.fromkeys(pages, 302)
    kit.login()
    before = (vault.log.size(), vault.status()["records"], len(admin.list_clients(vault)))
    for url in pages:
        head, get = kit.http.head(url), kit.http.get(url)
        assert (url, head.status_code) == (url, get.status_code)
        assert head.data == b""
    assert kit.http.head("/").status_code == 200
    assert kit.http.head("/clients/new").status_code == 200
    assert kit.http.head("/policies/edit").status_code == 200
    assert (vault.log.size(), vault.status()["records"], len(admin.list_clients(vault))) == before


def test_head_on_the_consent_and_auditor_pages(kit) -> None:
    client_id, _ = kit.add_client("Acme Bank")
    url = kit.authorize_url(client_id, pkce()[1])
    head = kit.http.head(url)
    assert (head.status_code, head.headers["Location"].startswith("/login?next=")) == (302, True)
    assert kit.http.head("/auditor/login").status_code == 200
    kit.login()
    assert kit.http.head(url).status_code == 200
    assert kit.http.get(url).status_code == 200
    # looking is no decision: no consent.* entry
    assert kit.audit_actions() == [("vault.init", "allowed"), ("client.register", "allowed")]


def test_a_head_is_no_form_post(kit) -> None:
    """HEAD never signs in, even with the form's fields in its query."""
    token = csrf(kit.http.get("/login").text)
    resp = kit.http.head("/login", query_string={"passphrase": PASSPHRASE, "csrf_token": token})
    assert resp.status_code == 200
    assert kit.http.get("/").status_code == 302


# -- a real pds serve -----------------------------------------------------------------------------


def raw(port: int, method: str, path: str, headers: dict[str, str], body: bytes | None = None):
    """One request to 127.0.0.1:``port`` with exactly these headers: (status, type, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), resp.read()
    finally:
        conn.close()


@pytest.mark.slow
def test_a_real_server_refuses_rebinding_and_bad_hosts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = pds_env(home)
    pds(env, "init")
    port = free_port()
    own = f"127.0.0.1:{port}"
    message = (
        "This request was addressed to a host name pds does not answer to (its Host header). "
        f"Open pds at http://{own}."
    ).encode()
    log = tmp_path / "serve.log"
    with serving(env, port, log, workers=1):
        rebind = {"Host": REBIND, "Origin": f"http://{REBIND}"}
        assert raw(port, "GET", "/login", rebind)[0] == 400
        body = json.dumps({"client_name": "Rebound", "redirect_uris": [CB]}).encode()
        got = raw(
            port, "POST", "/oauth/register", {**rebind, "Content-Type": "application/json"}, body
        )
        assert got[:2] == (400, "application/problem+json")
        assert json.loads(got[2])["detail"] == message.decode()
        for host in ["a" * 70, "x..y", "a" * 8000]:
            status_, kind, text = raw(port, "GET", "/healthz", {"Host": host})
            assert (status_, kind) == (400, "application/problem+json"), host[:20]
            assert json.loads(text)["detail"] == message.decode()
        # its own names go through, GET and HEAD alike
        for host in (own, f"localhost:{port}"):
            assert raw(port, "GET", "/login", {"Host": host})[0] == 200
            assert raw(port, "HEAD", "/login", {"Host": host})[:1] == (200,)
            assert raw(port, "HEAD", "/", {"Host": host})[0] == 302
            assert raw(port, "HEAD", "/healthz", {"Host": host})[0] == 200
    assert "Traceback" not in log.read_text()
    assert "Error" not in log.read_text()
    assert json.loads(pds(env, "clients", "list", "--json")) == []


@pytest.mark.slow
def test_a_real_server_behind_one_proxy_checks_the_forwarded_host(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**pds_env(home), "PDS_ISSUER": "https://vault.example.org", "PDS_PROXY_HOPS": "1"}
    pds(env, "init")
    port = free_port()
    log = tmp_path / "serve.log"
    with serving(env, port, log, workers=1):
        proxied = {"Host": f"127.0.0.1:{port}", "X-Forwarded-Proto": "https"}
        good = {**proxied, "X-Forwarded-Host": "vault.example.org"}
        assert raw(port, "GET", "/login", good)[0] == 200
        assert raw(port, "HEAD", "/login", good)[0] == 200
        for bad in ("a" * 8000, "rebind.attacker.example", "localhost"):
            got = raw(port, "GET", "/login", {**proxied, "X-Forwarded-Host": bad})
            assert got[0] == 400
            assert b"Open pds at https://vault.example.org." in got[2]
        assert raw(port, "GET", "/login", proxied)[0] == 400
    assert "Traceback" not in log.read_text()


def test_the_message_names_the_issuer() -> None:
    assert security.host_message("https://vault.example.org") == (
        "This request was addressed to a host name pds does not answer to (its Host header). "
        "Open pds at https://vault.example.org."
    )
