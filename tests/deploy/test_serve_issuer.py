"""The issuer follows the server: with no PDS_ISSUER, `pds serve --host H --port P` announces
http://H:P (on a loopback host only) and says so when it starts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pds.errors import ConfigError
from pds.http.server import issuer_for, served_url
from pds.settings import Settings
from tests.conftest import ROOT
from tests.servers import flow_ok, free_port, get, openid_flow, running
from tests.vault.test_durability import pds_env

EVERYWHERE = "0.0.0.0"  # noqa: S104 - a --host under test; pds refuses it, nothing binds
HOST_HINT = (
    "Set PDS_ISSUER to the https origin the server is reached at, e.g. "
    "https://pds.example.org (docs/deploy.md), or serve on 127.0.0.1."
)


def ipv6_loopback() -> bool:
    try:
        free_port("::1")
    except OSError:
        return False
    return True


def metadata(base: str) -> dict:
    url = base + "/.well-known/oauth-authorization-server"
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


@contextmanager
def started(env: dict[str, str], out: Path, *args: str) -> Iterator[subprocess.Popen]:
    """`pds serve *args` (its stdout in ``out``, stderr beside it), until its /healthz
    answers at the URL it printed; stopped with its workers when the block ends."""

    def ready() -> bool:
        lines = out.read_text().splitlines()
        if not (lines and lines[0].startswith("Serving on ")):
            return False
        base = lines[0].removeprefix("Serving on ").split()[0]
        return get(base + "/healthz")[0] == 200

    argv = [sys.executable, "-m", "pds", "serve", "--workers", "1", *args]
    with running(argv, out, ready, env=env, errors=out.with_suffix(".err")) as proc:
        yield proc


def settings(issuer: str | None = None) -> Settings:
    return Settings(home=Path("/nonexistent"), issuer=issuer)


# -- the issuer pds serve picks --------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "issuer"),
    [
        ("127.0.0.1", 18301, "http://127.0.0.1:18301"),
        ("127.0.0.1", 8000, "http://127.0.0.1:8000"),
        ("127.0.0.1", 1, "http://127.0.0.1:1"),
        ("127.0.0.1", 65535, "http://127.0.0.1:65535"),
        ("127.0.0.2", 8123, "http://127.0.0.2:8123"),
        ("::1", 8123, "http://[::1]:8123"),
        ("localhost", 8000, "http://localhost:8000"),
    ],
)
def test_without_pds_issuer_the_issuer_is_the_loopback_url_served(
    host: str, port: int, issuer: str
) -> None:
    assert issuer_for(settings(), host, port) == issuer
    assert served_url(host, port) == issuer


@pytest.mark.parametrize(
    "host", [EVERYWHERE, "::", "192.168.1.5", "2001:db8::1", "pds.example.org", ""]
)
def test_without_pds_issuer_a_host_beyond_loopback_is_refused(host: str) -> None:
    with pytest.raises(ConfigError) as caught:
        issuer_for(settings(), host, 8000)
    assert caught.value.message == (
        f"--host {host!r} is not a loopback address, and PDS_ISSUER is not set"
    )
    assert caught.value.hint == HOST_HINT


@pytest.mark.parametrize(
    ("host", "port"), [(EVERYWHERE, 8000), ("127.0.0.1", 8000), ("::", 9000), ("127.0.0.1", 18301)]
)
def test_pds_issuer_wins_over_the_address_served(host: str, port: int) -> None:
    assert issuer_for(settings("https://vault.example.org/"), host, port) == (
        "https://vault.example.org"
    )
    assert issuer_for(settings("http://localhost:4000"), host, port) == "http://localhost:4000"


def test_a_bad_pds_issuer_is_refused_whatever_the_host() -> None:
    with pytest.raises(ConfigError) as caught:
        issuer_for(settings("http://vault.example.org"), "127.0.0.1", 8000)
    assert caught.value.message == (
        "PDS_ISSUER 'http://vault.example.org' uses plain http on a host that is not loopback"
    )


# -- the command -----------------------------------------------------------------------------


def serve_refused(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pds", "serve", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("host", [EVERYWHERE, "::", "192.168.1.5"])
def test_serve_on_an_open_host_without_pds_issuer_fails_before_the_vault(
    tmp_path: Path, host: str
) -> None:
    home = tmp_path / "no-vault-here"
    done = serve_refused(pds_env(home), "--host", host, "--port", "8000")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"Error: --host {host!r} is not a loopback address, and PDS_ISSUER is not set\n"
        f"Hint: {HOST_HINT}\n"
    )
    assert not home.exists()


@pytest.mark.parametrize("port", ["0", "65536", "-1", "http"])
def test_serve_refuses_a_port_it_cannot_name(tmp_path: Path, port: str) -> None:
    done = serve_refused(pds_env(tmp_path / "home"), "--port", port)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "Usage: pds serve [OPTIONS]\n"
        "Try 'pds serve --help' for help.\n\n"
        f"Error: Invalid value for '--port': '{port}' is not a whole number from 1 to 65535\n"
    )


def test_serve_with_a_bad_pds_issuer_fails_before_the_vault(tmp_path: Path) -> None:
    env = {**pds_env(tmp_path / "home"), "PDS_ISSUER": "https://vault.example.org/pds"}
    done = serve_refused(env, "--port", "8000")
    assert done.returncode == 1
    assert done.stderr == (
        "Error: PDS_ISSUER 'https://vault.example.org/pds' must be an origin, without a path\n"
        "Hint: Set PDS_ISSUER to the https origin the server is reached at, "
        "e.g. https://pds.example.org.\n"
    )


def test_make_run_serves_on_the_port_and_host_given() -> None:
    serve = "PDS_HOME=demo-vault PDS_PASSPHRASE='correct horse battery staple' .venv/bin/pds serve"
    make = shutil.which("make")
    assert make, "make is needed"
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "HOST", "MAKEFLAGS")}
    for args, tail in [
        ((), "--host 127.0.0.1 --port 8000"),
        (("PORT=8123",), "--host 127.0.0.1 --port 8123"),
        (("PORT=8124", "HOST=::1"), "--host ::1 --port 8124"),
    ]:
        done = subprocess.run(
            [make, "-n", "-s", "run", *args], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == f"{serve} {tail}"
    # an environment variable named PORT or HOST (set by some platforms) is not taken
    done = subprocess.run(
        [make, "-n", "-s", "run"],
        cwd=ROOT,
        env={**env, "PORT": "9999", "HOST": EVERYWHERE},
        capture_output=True,
        text=True,
    )
    assert done.stdout.splitlines()[-1] == f"{serve} --host 127.0.0.1 --port 8000"


# -- a real server ---------------------------------------------------------------------------


def run_pds(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pds", *args], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_a_served_vault_announces_the_port_it_serves(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = pds_env(home)
    run_pds(env, "demo")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    added = json.loads(
        run_pds(
            env, "clients", "add", "--name", "Node Bank", "--redirect-uri", base + "/cb", "--json"
        )
    )
    out = tmp_path / "serve.out"
    with started(env, out, "--port", str(port)):
        assert out.read_text() == (f"Serving on {base}  (Ctrl-C stops it)\nIssuer: {base}\n")
        meta = metadata(base)
        assert meta["issuer"] == base
        assert meta["authorization_endpoint"] == base + "/oauth/authorize"
        assert meta["token_endpoint"] == base + "/oauth/token"
        # A second server on the same vault, on IPv6 loopback (another IPv4 loopback address
        # on a machine without IPv6), is its own issuer.
        host2 = "::1" if ipv6_loopback() else "127.0.0.2"
        port2 = free_port(host2)
        base2 = served_url(host2, port2)
        assert base2 in (f"http://[::1]:{port2}", f"http://127.0.0.2:{port2}")
        out2 = tmp_path / "serve2.out"
        with started(env, out2, "--host", host2, "--port", str(port2)):
            assert out2.read_text() == f"Serving on {base2}  (Ctrl-C stops it)\nIssuer: {base2}\n"
            assert metadata(base2)["issuer"] == base2
            assert metadata(base2)["token_endpoint"] == base2 + "/oauth/token"
        # A strict client (openid-client) goes through the whole flow at the announced issuer.
        assert openid_flow(base, added["client_id"], added["client_secret"]) == flow_ok(base)


# -- behind a proxy the issuer must be given -------------------------------------------------

HOPS_HINT = (
    "Set PDS_ISSUER to the https address clients reach the vault at through the proxy, "
    "e.g. https://vault.example.org (docs/deploy.md), or PDS_PROXY_HOPS=0 when nothing "
    "stands in front of pds."
)


@pytest.mark.parametrize("hops", [1, 2, 10])
@pytest.mark.parametrize("host", ["127.0.0.1", "::1", EVERYWHERE])
def test_proxy_hops_without_pds_issuer_is_refused(hops: int, host: str) -> None:
    with pytest.raises(ConfigError) as caught:
        issuer_for(Settings(home=Path("/nonexistent"), proxy_hops=hops), host, 8000)
    assert caught.value.message == (
        f"PDS_PROXY_HOPS={hops} says pds is behind a reverse proxy, and PDS_ISSUER is not set"
    )
    assert caught.value.hint == HOPS_HINT


def test_proxy_hops_with_pds_issuer_serves_it() -> None:
    behind = Settings(home=Path("/nonexistent"), issuer="https://vault.example.org", proxy_hops=1)
    assert issuer_for(behind, "127.0.0.1", 8000) == "https://vault.example.org"
    assert issuer_for(settings(), "127.0.0.1", 8000) == "http://127.0.0.1:8000"  # no proxy


def test_serve_with_proxy_hops_and_no_issuer_fails_before_the_vault(tmp_path: Path) -> None:
    home = tmp_path / "no-vault-here"
    for hops in ("1", "3"):
        env = {**pds_env(home), "PDS_PROXY_HOPS": hops}
        done = serve_refused(env, "--host", "127.0.0.1", "--port", "8000")
        assert done.returncode == 1
        assert done.stdout == ""
        assert done.stderr == (
            f"Error: PDS_PROXY_HOPS={hops} says pds is behind a reverse proxy, "
            f"and PDS_ISSUER is not set\nHint: {HOPS_HINT}\n"
        )
    assert not home.exists()


# -- PDS_ISSUER is written the one way clients compare it ------------------------------------

ISSUER_HINT = (
    "Set PDS_ISSUER to the https origin the server is reached at, e.g. https://pds.example.org."
)
PORT = "has a port that is not a whole number from 1 to 65535"
DEFAULT = "must be written without the default port: "


@pytest.mark.parametrize(
    ("issuer", "problem"),
    [
        ("HTTPS://Vault.Example.org", "must be written in lower case: 'https://vault.example.org'"),
        (
            "https://Vault.example.org/",
            "must be written in lower case: 'https://vault.example.org'",
        ),
        ("Http://127.0.0.1:8000", "must be written in lower case: 'http://127.0.0.1:8000'"),
        ("http://LOCALHOST:8000", "must be written in lower case: 'http://localhost:8000'"),
        ("https://[2001:DB8::1]", "must be written in lower case: 'https://[2001:db8::1]'"),
        (" https://vault.example.org", "has spaces or control characters in it"),
        ("https://vault.example.org ", "has spaces or control characters in it"),
        ("https://vault.example.org\n", "has spaces or control characters in it"),
        ("https://vault.exa mple.org", "has spaces or control characters in it"),
        ("https://vault.example.org\t", "has spaces or control characters in it"),
        ("https://vault.example.org\x00", "has spaces or control characters in it"),
        ("https://vault.example.org:0", PORT),
        ("https://vault.example.org:99999", PORT),
        ("https://vault.example.org:65536", PORT),
        ("https://vault.example.org:", PORT),
        ("https://vault.example.org:https", PORT),
        ("https://vault.example.org:0443", PORT),
        ("https://vault.example.org:+443", PORT),
        ("http://[::1]:0", PORT),
        ("https://vault.example.org:443", DEFAULT + "'https://vault.example.org'"),
        ("https://vault.example.org:443/", DEFAULT + "'https://vault.example.org'"),
        ("http://127.0.0.1:80", DEFAULT + "'http://127.0.0.1'"),
        ("http://[::1]:80", DEFAULT + "'http://[::1]'"),
        ("https://vault..example.org", "has a host name that is not a valid one"),
        ("https://vault.example.org.", "has a host name that is not a valid one"),
        ("https://vault_1.example.org", "has a host name that is not a valid one"),
        ("https://-vault.example.org", "has a host name that is not a valid one"),
        ("https://" + "a" * 64 + ".org", "has a host name that is not a valid one"),
        ("https://vält.example.org", "has a host name that is not a valid one"),
        ("http://[::1", "is not an http(s) URL"),
        ("https://[::1]x", "is not an http(s) URL"),
        ("https://vault.example.org?", "must not have a query, fragment or user name"),
        ("https://vault.example.org#", "must not have a query, fragment or user name"),
        ("https://@vault.example.org", "must not have a query, fragment or user name"),
    ],
)
def test_an_issuer_written_another_way_is_refused(issuer: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        issuer_for(settings(issuer), "127.0.0.1", 8000)
    assert caught.value.message == f"PDS_ISSUER {issuer!r} {problem}"
    if "host name" in problem:
        assert caught.value.hint == (
            ISSUER_HINT + " A name is letters, digits, hyphens and dots (an internationalised "
            "name in its xn-- form); an IPv6 address is in brackets."
        )
    else:
        assert caught.value.hint == ISSUER_HINT


@pytest.mark.parametrize(
    ("issuer", "announced"),
    [
        ("https://vault.example.org", "https://vault.example.org"),
        ("https://vault.example.org/", "https://vault.example.org"),
        ("https://vault.example.org:1", "https://vault.example.org:1"),
        ("https://vault.example.org:65535", "https://vault.example.org:65535"),
        ("https://xn--vlt-via.example.org", "https://xn--vlt-via.example.org"),
        ("https://a-b.c1.example", "https://a-b.c1.example"),
        ("https://" + "a" * 63 + ".org", "https://" + "a" * 63 + ".org"),
        ("https://203.0.113.7:8443", "https://203.0.113.7:8443"),
        ("https://[2001:db8::1]", "https://[2001:db8::1]"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("http://127.0.0.2:8000/", "http://127.0.0.2:8000"),
    ],
)
def test_an_issuer_in_its_one_spelling_is_announced_as_written(issuer: str, announced: str) -> None:
    assert issuer_for(settings(issuer), "127.0.0.1", 8000) == announced


def test_serve_with_an_upper_case_issuer_fails_before_the_vault(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for issuer, problem in [
        ("HTTPS://Vault.Example.org", "must be written in lower case: 'https://vault.example.org'"),
        (" https://vault.example.org", "has spaces or control characters in it"),
        ("https://vault.example.org:0", PORT),
    ]:
        done = serve_refused({**pds_env(home), "PDS_ISSUER": issuer}, "--port", "8000")
        assert done.returncode == 1
        assert done.stdout == ""
        assert done.stderr == f"Error: PDS_ISSUER {issuer!r} {problem}\nHint: {ISSUER_HINT}\n"
    assert not home.exists()
