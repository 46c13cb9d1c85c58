"""PDS_PROXY_HOPS: behind N reverse proxies the client is the one they name in
``X-Forwarded-*`` (werkzeug's ProxyFix); with 0, the default, those headers are ignored."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from pds.errors import ConfigError
from pds.http.app import create_app
from pds.settings import load_settings
from pds.vault import Vault
from tests.conftest import PASSPHRASE
from tests.oauth_kit import CB, bearer, csrf

RECORDS = "/api/v1/records?category=transactions"
HOPS_HINT = (
    "Set PDS_PROXY_HOPS to the number of reverse proxies in front of pds "
    "(1 behind one Caddy or nginx), or 0 when clients reach pds directly."
)


@contextmanager
def served(vault: Vault, hops: int, issuer: str | None = None) -> Iterator[Flask]:
    """The app with PDS_PROXY_HOPS=hops (and PDS_ISSUER=issuer), and a page that shows what
    it took the caller for."""
    app = create_app(vault.settings.with_overrides(proxy_hops=hops, issuer=issuer), vault.keyring)
    app.add_url_rule(
        "/_caller",
        "caller",
        lambda: {
            "addr": request.remote_addr,
            "scheme": request.scheme,
            "host": request.host,
            "url": request.url,
            "secure": request.is_secure,
        },
    )
    try:
        yield app
    finally:
        for v in app.extensions["pds_vaults"].values():
            v.close()
        app.extensions["pds_counters"].close()


def forwarded(app: Flask, address: str, **extra: str) -> object:
    """A test client whose every request comes from the proxy (127.0.0.1) on behalf of
    ``address``."""
    http = app.test_client()
    http.environ_base["HTTP_X_FORWARDED_FOR"] = address
    for name, value in extra.items():
        http.environ_base["HTTP_X_FORWARDED_" + name.upper()] = value
    return http


# -- the setting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "hops"),
    [(None, 0), ("", 0), ("0", 0), ("1", 1), ("2", 2), (" 3 ", 3), ("007", 7), ("10", 10)],
)
def test_proxy_hops_setting(tmp_path: Path, value: str | None, hops: int) -> None:
    env = {"PDS_HOME": str(tmp_path)}
    if value is not None:
        env["PDS_PROXY_HOPS"] = value
    assert load_settings(env).proxy_hops == hops


@pytest.mark.parametrize("value", ["x", "-1", "1.5", "11", "100", "0x1", "١", "1 1", "+1"])
def test_proxy_hops_refuses_what_is_not_a_small_whole_number(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"PDS_HOME": str(tmp_path), "PDS_PROXY_HOPS": value})
    assert caught.value.message == (f"PDS_PROXY_HOPS={value!r} is not a whole number from 0 to 10")
    assert caught.value.hint == HOPS_HINT


def test_a_bad_proxy_hops_stops_the_cli_in_one_line(tmp_path: Path) -> None:
    env = {"PDS_HOME": str(tmp_path / "home"), "PDS_PROXY_HOPS": "one", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "pds", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"Error: PDS_PROXY_HOPS='one' is not a whole number from 0 to 10\nHint: {HOPS_HINT}\n"
    )
    assert not (tmp_path / "home").exists()


def test_proxy_fix_wraps_the_app_only_when_hops_are_set(vault: Vault) -> None:
    with served(vault, 0) as app:
        assert not isinstance(app.wsgi_app, ProxyFix)
    for hops in (1, 3):
        with served(vault, hops) as app:
            fix = app.wsgi_app
            assert isinstance(fix, ProxyFix)
            assert (fix.x_for, fix.x_proto, fix.x_host, fix.x_port, fix.x_prefix) == (
                hops,
                hops,
                hops,
                0,
                0,
            )


# -- what the app takes the caller for --------------------------------------------------------


def test_one_hop_takes_the_client_scheme_and_host_from_the_proxy(vault: Vault) -> None:
    with served(vault, 1, "https://vault.example.org") as app:
        http = forwarded(app, "203.0.113.7", proto="https", host="vault.example.org")
        assert http.get("/_caller").json == {
            "addr": "203.0.113.7",
            "scheme": "https",
            "host": "vault.example.org",
            "url": "https://vault.example.org/_caller",
            "secure": True,
        }
        # the forwarded host is the one checked: the proxy's own (localhost) is not pds's
        assert forwarded(app, "203.0.113.7", proto="https").get("/_caller").status_code == 400
    with served(vault, 1) as app:
        # A client that sent its own X-Forwarded-For through the proxy: the proxy appended
        # the address it saw, and only that one (the last) is believed.
        http = forwarded(app, "10.9.9.9, 198.51.100.4", proto="http, https")
        assert http.get("/_caller").json == {
            "addr": "198.51.100.4",
            "scheme": "https",
            "host": "localhost",
            "url": "https://localhost/_caller",
            "secure": True,
        }


def test_two_hops_believe_the_last_two_entries(vault: Vault) -> None:
    with served(vault, 2) as app:
        http = forwarded(app, "10.9.9.9, 198.51.100.4, 192.0.2.1", proto="https, http")
        got = http.get("/_caller").json
        assert (got["addr"], got["scheme"]) == ("198.51.100.4", "https")
        # Fewer entries than hops: the request did not come through both proxies, so none
        # of it is believed.
        http = forwarded(app, "198.51.100.4", proto="https")
        got = http.get("/_caller").json
        assert (got["addr"], got["scheme"], got["host"]) == ("127.0.0.1", "http", "localhost")


def test_no_hops_ignore_every_forwarded_header(vault: Vault) -> None:
    with served(vault, 0) as app:
        http = forwarded(app, "203.0.113.7", proto="https", host="vault.example.org")
        assert http.get("/_caller").json == {
            "addr": "127.0.0.1",
            "scheme": "http",
            "host": "localhost",
            "url": "http://localhost/_caller",
            "secure": False,
        }


# -- per-address limits count the real client -----------------------------------------------


def register(http: object, name: str) -> int:
    return http.post(  # type: ignore[attr-defined]
        "/oauth/register", json={"client_name": name, "redirect_uris": [CB]}
    ).status_code


def test_registration_limit_keys_on_the_forwarded_client(vault: Vault) -> None:
    with served(vault, 1) as app:
        first = forwarded(app, "203.0.113.7")
        assert [register(first, f"A {n}") for n in range(11)] == [201] * 10 + [429]
        assert register(forwarded(app, "203.0.113.8"), "B") == 201
        assert register(forwarded(app, "203.0.113.8"), "B again") == 201
        assert register(forwarded(app, "203.0.113.7"), "A again") == 429
        # The proxy itself (a request without the header) is a third caller.
        assert register(app.test_client(), "the proxy") == 201


def test_without_hops_a_spoofed_forwarded_for_does_not_dodge_the_limit(vault: Vault) -> None:
    with served(vault, 0) as app:
        codes = [register(forwarded(app, f"203.0.113.{n}"), f"A {n}") for n in range(12)]
        assert codes == [201] * 10 + [429] * 2
        assert register(app.test_client(), "plain") == 429


def login_codes(http: object, passphrase: str, times: int) -> list[int]:
    token = csrf(http.get("/login").text)  # type: ignore[attr-defined]
    form = {"passphrase": passphrase, "csrf_token": token}
    return [http.post("/login", data=form).status_code for _ in range(times)]  # type: ignore[attr-defined]


def test_login_back_off_keys_on_the_forwarded_client(vault: Vault) -> None:
    with served(vault, 1) as app:
        app.extensions["pds_login_throttle"].clock = lambda: 1_700_000_000.0
        assert login_codes(forwarded(app, "203.0.113.7"), "wrong", 4) == [401, 401, 401, 429]
        assert login_codes(forwarded(app, "203.0.113.7"), PASSPHRASE, 1) == [429]
        assert login_codes(forwarded(app, "203.0.113.9"), PASSPHRASE, 1) == [303]
        # an IPv6 client is keyed by its /64, as without a proxy
        codes = [login_codes(forwarded(app, f"2001:db8::{n}"), "wrong", 1)[0] for n in range(5)]
        assert codes == [401, 401, 401, 429, 429]
    with served(vault, 0) as app:
        app.extensions["pds_login_throttle"].clock = lambda: 1_700_000_000.0 + 3
        spoofed = [login_codes(forwarded(app, f"198.51.100.{n}"), "wrong", 1)[0] for n in range(3)]
        # the back-off is shared by every process (limits.db): 127.0.0.1 has not failed yet,
        # the four failures above were 203.0.113.7's and 2001:db8::/64's
        assert spoofed == [401, 401, 401]
        assert login_codes(forwarded(app, "198.51.100.99"), PASSPHRASE, 1) == [429]


def test_api_refusal_limit_keys_on_the_forwarded_client(vault: Vault) -> None:
    bad = bearer("x" * 43)
    with served(vault, 1) as app:
        app.extensions["pds_anonymous_refusal_limit"].clock = lambda: 1_700_000_000.0
        http = forwarded(app, "203.0.113.7")
        codes = [http.get(RECORDS, headers=bad).status_code for _ in range(31)]
        assert codes == [401] * 30 + [429]
        assert forwarded(app, "203.0.113.8").get(RECORDS, headers=bad).status_code == 401
        assert http.get(RECORDS, headers=bad).status_code == 429
    with served(vault, 0) as app:
        app.extensions["pds_anonymous_refusal_limit"].clock = lambda: 1_700_000_000.0
        codes = [
            forwarded(app, f"198.51.100.{n}").get(RECORDS, headers=bad).status_code
            for n in range(31)
        ]
        assert codes == [401] * 30 + [429]
