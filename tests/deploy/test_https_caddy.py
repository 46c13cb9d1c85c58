"""pds over https: the real Caddy (Debian's package) with its internal certificate authority,
configured by the shipped recipe (deploy/Caddyfile), in front of a real `pds serve`, driven
by a strict OAuth client (openid-client without allowInsecureRequests) that trusts Caddy's
root certificate through NODE_EXTRA_CA_CERTS."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.deploy.test_serve_issuer import started
from tests.servers import flow_ok, free_port, openid_flow, pds, running
from tests.vault.test_durability import pds_env

RECIPE = ROOT / "deploy" / "Caddyfile"
CADDY = shutil.which("caddy")
SITE = "vault.example.org {"
UPSTREAM = "reverse_proxy 127.0.0.1:8000"


def caddyfile(https_port: int, http_port: int, upstream: int, storage: Path) -> str:
    """The shipped recipe with the test's address: Caddy's own CA instead of Let's Encrypt
    (``tls internal``), free ports on loopback, its files in ``storage``, no admin API."""
    recipe = RECIPE.read_text(encoding="utf-8")
    assert recipe.count(SITE) == 1, f"deploy/Caddyfile must have one {SITE!r} site"
    assert recipe.count(UPSTREAM) == 1, f"deploy/Caddyfile must have one {UPSTREAM!r}"
    options = (
        "{\n"
        "\tadmin off\n"
        "\tskip_install_trust\n"
        "\tdefault_bind 127.0.0.1\n"
        f"\thttp_port {http_port}\n"
        f"\thttps_port {https_port}\n"
        f"\tstorage file_system {{\n\t\troot {storage}\n\t}}\n"
        "}\n\n"
    )
    site = recipe.replace(SITE, f"localhost:{https_port} {{\n\ttls internal\n")
    return options + site.replace(UPSTREAM, f"reverse_proxy 127.0.0.1:{upstream}")


@dataclass
class Proxy:
    base: str
    http_port: int
    root_cert: Path

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.root_cert))

    def request(
        self, method: str, path: str, body: str | None = None, headers: dict | None = None
    ) -> tuple[http.client.HTTPResponse, bytes]:
        port = int(self.base.rsplit(":", 1)[1])
        conn = http.client.HTTPSConnection("localhost", port, context=self.tls(), timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp, resp.read()
        finally:
            conn.close()


@contextmanager
def caddy(tmp_path: Path, upstream: int, https_port: int) -> Iterator[Proxy]:
    """Caddy serving https://localhost:``https_port`` in front of 127.0.0.1:``upstream``,
    until that port answers with a certificate from its own root (and pds's /healthz through
    it); stopped when the block ends."""
    assert CADDY, "caddy is needed (make test installs Debian's package)"
    http_port = free_port()
    data = tmp_path / "caddy"
    config = tmp_path / "Caddyfile"
    config.write_text(caddyfile(https_port, http_port, upstream, data / "storage"))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(data),
        "XDG_DATA_HOME": str(data / "data"),
        "XDG_CONFIG_HOME": str(data / "config"),
    }
    proxy = Proxy(
        f"https://localhost:{https_port}",
        http_port,
        data / "storage" / "pki" / "authorities" / "local" / "root.crt",
    )

    def ready() -> bool:
        return proxy.root_cert.exists() and proxy.request("GET", "/healthz")[0].status == 200

    argv = [CADDY, "run", "--config", str(config), "--adapter", "caddyfile"]
    with running(argv, tmp_path / "caddy.log", ready, env=env, what="caddy"):
        yield proxy


def test_the_recipe_is_a_valid_caddyfile(tmp_path: Path) -> None:
    assert CADDY, "caddy is needed (make test installs Debian's package)"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    done = subprocess.run(
        [CADDY, "fmt", str(RECIPE)], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == RECIPE.read_text(encoding="utf-8"), "deploy/Caddyfile is not caddy fmt"
    done = subprocess.run(
        [CADDY, "adapt", "--config", str(RECIPE), "--adapter", "caddyfile"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # One https site for the name, proxied to pds on loopback; no "tls" app, so the
    # certificate is a public one Caddy gets by itself (ACME), not its internal CA's.
    handlers = [
        {"handler": "headers", "response": {"deferred": True, "delete": ["Server"]}},
        {"handler": "reverse_proxy", "upstreams": [{"dial": "127.0.0.1:8000"}]},
    ]
    route = {
        "match": [{"host": ["vault.example.org"]}],
        "handle": [{"handler": "subroute", "routes": [{"handle": handlers}]}],
        "terminal": True,
    }
    assert json.loads(done.stdout) == {
        "apps": {"http": {"servers": {"srv0": {"listen": [":443"], "routes": [route]}}}}
    }


@pytest.mark.slow
def test_openid_client_over_https_through_caddy(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    env = pds_env(home)
    pds(env, "demo")
    with caddy_in_front(tmp_path, env, port) as (proxy, out):
        base = proxy.base
        assert out.read_text() == (
            f"Serving on http://127.0.0.1:{port}  (Ctrl-C stops it)\nIssuer: {base}\n"
        )
        added = json.loads(
            pds(
                env,
                "clients",
                "add",
                "--name",
                "Node Bank",
                "--redirect-uri",
                base + "/cb",
                "--json",
            )
        )
        client_id, secret = added["client_id"], added["client_secret"]

        resp, body = proxy.request("GET", "/.well-known/oauth-authorization-server")
        assert resp.status == 200
        meta = json.loads(body)
        assert meta["issuer"] == base
        assert meta["authorization_endpoint"] == base + "/oauth/authorize"
        assert meta["token_endpoint"] == base + "/oauth/token"

        # The strict client, trusting Caddy's root: the whole flow, twice.
        expected = flow_ok(base)
        assert openid_flow(base, client_id, secret, ca=proxy.root_cert) == expected
        assert openid_flow(base, client_id, secret, ca=proxy.root_cert) == expected

        # Without Caddy's root it trusts nothing there: the certificate really is checked.
        untrusted = openid_flow(base, client_id, secret)
        assert untrusted == {
            "ok": False,
            "error": "TypeError: fetch failed",
            "cause": '{"code":"UNABLE_TO_GET_ISSUER_CERT_LOCALLY"}',
        }


@pytest.mark.slow
def test_https_headers_cookie_redirect_and_forwarded_addresses(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    env = pds_env(home)
    pds(env, "init")
    with caddy_in_front(tmp_path, env, port) as (proxy, _):
        # The sign-in page over https: a Secure session cookie, HSTS, no server names.
        resp, body = proxy.request("GET", "/login")
        assert resp.status == 200
        assert b'<label for="passphrase">Passphrase</label>' in body
        cookies = resp.headers.get_all("Set-Cookie")
        assert len(cookies) == 1
        session = SimpleCookie(cookies[0])["pds_session"]
        assert (session["secure"], session["httponly"], session["samesite"], session["path"]) == (
            True,
            True,
            "Lax",
            "/",
        )
        assert resp.headers["Strict-Transport-Security"] == "max-age=31536000"
        assert resp.headers.get_all("Server") is None

        # Plain http to Caddy is sent to https (on port 80 in production), never on to pds.
        conn = http.client.HTTPConnection("localhost", proxy.http_port, timeout=10)
        try:
            conn.request("GET", "/login?next=%2F")
            plain = conn.getresponse()
            plain.read()
        finally:
            conn.close()
        # (Caddy 2.6 names no port in the redirect: in production that is https's own, 443.)
        assert plain.status == 308
        assert plain.headers["Location"] == "https://localhost/login?next=%2F"

        # Caddy replaces an X-Forwarded-For its client sent, so a caller cannot pose as many
        # addresses: ten registrations, then the limit, whatever the header says.
        codes = []
        for n in range(12):
            resp, _ = proxy.request(
                "POST",
                "/oauth/register",
                body=json.dumps({"client_name": f"App {n}", "redirect_uris": [proxy.base + "/cb"]}),
                headers={"Content-Type": "application/json", "X-Forwarded-For": f"198.51.100.{n}"},
            )
            codes.append(resp.status)
        assert codes == [201] * 10 + [429] * 2


@contextmanager
def caddy_in_front(tmp_path: Path, env: dict[str, str], port: int) -> Iterator[tuple[Proxy, Path]]:
    """`pds serve` on 127.0.0.1:``port`` (PDS_ISSUER the https origin, PDS_PROXY_HOPS=1)
    behind Caddy; the proxy, and the file holding what pds serve printed."""
    https_port = free_port()
    served = {**env, "PDS_ISSUER": f"https://localhost:{https_port}", "PDS_PROXY_HOPS": "1"}
    out = tmp_path / "pds.out"
    with started(served, out, "--port", str(port)), caddy(tmp_path, port, https_port) as proxy:
        yield proxy, out
