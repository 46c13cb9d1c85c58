"""`pds serve` really serves: the vault unlocks once, workers answer on 127.0.0.1."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.servers import free_port, get, serving
from tests.vault.test_durability import pds_env


@pytest.mark.slow
def test_serve_health_and_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = pds_env(home)
    subprocess.run([sys.executable, "-m", "pds", "demo"], env=env, check=True, capture_output=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serving(env, port, tmp_path / "serve.log"):
        status, ctype, body = get(base + "/healthz")
        assert (status, ctype, json.loads(body)) == (200, "application/json", {"status": "ok"})
        status, ctype, body = get(base + "/")
        assert status == 200
        assert ctype == "text/html; charset=utf-8"
        # The home page is the owner's: a signed-out visitor lands on the sign-in form.
        assert b'<label for="passphrase">Passphrase</label>' in body
        status, _, css = get(base + "/static/pds.css")
        assert status == 200
        assert css.startswith(b":root")


def test_serve_wrong_passphrase_exits_cleanly(tmp_path: Path) -> None:
    home = tmp_path / "home"
    subprocess.run([sys.executable, "-m", "pds", "init"], env=pds_env(home), check=True)
    result = subprocess.run(
        [sys.executable, "-m", "pds", "serve", "--port", str(free_port())],
        env=pds_env(home, "wrong"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "Error: the passphrase is wrong, or the vault's key is damaged\n"
        "Hint: Check the passphrase (PDS_PASSPHRASE, PDS_PASSPHRASE_FILE or the prompt).\n"
    )


def test_workers_are_gthread_and_only_threaded_ones_shorten_the_switch_interval() -> None:
    from pds.http.server import _worker_options

    assert _worker_options(1) == {
        "worker_class": "gthread",
        "threads": 1,
        "worker_connections": 1,
        "keepalive": 0,
    }
    threaded = _worker_options(4)
    hook = threaded.pop("post_worker_init")
    assert threaded == {"worker_class": "gthread", "threads": 4}
    before = sys.getswitchinterval()
    try:
        hook(None)
        assert sys.getswitchinterval() == pytest.approx(0.0005)
    finally:
        sys.setswitchinterval(before)


def serve_refused(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pds", "serve", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


BUSY_HINT = (
    "Hint: Another program is using port {port}: stop it, or serve on another port "
    "(pds serve --port 8123, make run PORT=8123).\n"
)
ELSEWHERE_HINT = (
    "Hint: Give --host an address of this machine: 127.0.0.1 (this machine only) "
    "or 0.0.0.0 (every network).\n"
)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_a_port_in_use_is_one_error_and_nothing_served(tmp_path: Path, host: str) -> None:
    home = tmp_path / "home"
    env = pds_env(home)
    subprocess.run([sys.executable, "-m", "pds", "init"], env=env, check=True, capture_output=True)
    family = socket.AF_INET6 if host == "::1" else socket.AF_INET
    with socket.socket(family) as taken:
        taken.bind(("::1" if host == "::1" else "127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve_refused(env, "--host", host, "--port", str(port))
    where = f"[::1]:{port}" if host == "::1" else f"{host}:{port}"
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error: cannot listen on {where}: address already in use\n" + BUSY_HINT.format(port=port)
    )


def test_a_port_another_pds_serves_is_refused_before_unlocking(tmp_path: Path) -> None:
    """As `make run` twice: the second never announces a URL, and asks for no passphrase."""
    home = tmp_path / "home"
    env = pds_env(home)
    subprocess.run([sys.executable, "-m", "pds", "init"], env=env, check=True, capture_output=True)
    port = free_port()
    with serving(env, port, tmp_path / "serve.log", workers=1):
        for _ in range(2):
            result = serve_refused(pds_env(home, "wrong"), "--port", str(port))
            assert (result.returncode, result.stdout) == (1, "")
            assert result.stderr == (
                f"Error: cannot listen on 127.0.0.1:{port}: address already in use\n"
                + BUSY_HINT.format(port=port)
            )
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200  # the first one still serves


@pytest.mark.parametrize(
    ("host", "shown", "why"),
    [
        ("192.0.2.1", "192.0.2.1", "192.0.2.1 is not an address of this machine"),
        ("2001:db8::1", "[2001:db8::1]", "2001:db8::1 is not an address of this machine"),
        ("nosuch.invalid", "nosuch.invalid", "no such host"),
    ],
)
def test_a_host_that_cannot_be_listened_on(tmp_path: Path, host: str, shown: str, why: str) -> None:
    env = {**pds_env(tmp_path / "home"), "PDS_ISSUER": "https://pds.example.org"}
    port = free_port()
    result = serve_refused(env, "--host", host, "--port", str(port))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"Error: cannot listen on {shown}:{port}: {why}\n" + ELSEWHERE_HINT
    assert not (tmp_path / "home").exists()  # refused before the vault is opened


@pytest.mark.parametrize("value", ["0", "-1", "3601", "soon"])
def test_a_timeout_out_of_range_is_refused(tmp_path: Path, value: str) -> None:
    result = serve_refused(pds_env(tmp_path / "home"), "--timeout", value)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '--timeout': '{value}' is not a whole number from 1 to 3600"
    )


def call(port: int, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Retry-After"), json.loads(resp.read())
    finally:
        conn.close()


@contextmanager
def one_worker_held(port: int, method: str, path: str) -> Iterator[socket.socket]:
    """A request whose headers are not finished: the sync worker that accepted it waits for
    the rest, so until the block finishes it, every other request goes to the other worker."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
        time.sleep(0.5)  # accepted by a worker by now
        yield sock
    finally:
        sock.close()


def finish(sock: socket.socket, body: bytes, headers: dict[str, str]) -> tuple:
    """Send the rest of the held request; its answer."""
    rest = "".join(f"{k}: {v}\r\n" for k, v in {**headers, "Connection": "close"}.items())
    sock.sendall(f"{rest}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    resp = http.client.HTTPResponse(sock)
    resp.begin()
    return resp.status, resp.getheader("Retry-After"), json.loads(resp.read())


@pytest.mark.slow
def test_limits_hold_across_two_workers(tmp_path: Path) -> None:
    """Both workers serve requests, and the limits count them together: 10 registrations an
    hour from an address, and 10 failures a minute for a client id, not 10 per worker."""
    home = tmp_path / "home"
    env = pds_env(home)
    subprocess.run([sys.executable, "-m", "pds", "init"], env=env, check=True, capture_output=True)
    port = free_port()
    json_type = {"Content-Type": "application/json"}
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    wrong = {**form_type, "Authorization": "Basic " + base64.b64encode(b"pds-nobody:x").decode()}
    failure = b"grant_type=refresh_token&refresh_token=r"

    def registration(n: int) -> bytes:
        return json.dumps({"client_name": f"App {n}", "redirect_uris": ["https://a.example/cb"]})

    with serving(env, port, tmp_path / "serve.log", workers=2):
        with one_worker_held(port, "POST", "/oauth/register") as held:
            first = call(port, "POST", "/oauth/register", registration(0).encode(), json_type)
            second = finish(held, registration(1).encode(), json_type)
        rest = [
            call(port, "POST", "/oauth/register", registration(n).encode(), json_type)
            for n in range(2, 20)
        ]
        statuses = [first[0], second[0]] + [r[0] for r in rest]
        assert statuses == [201] * 10 + [429] * 10
        assert {r[2]["error"] for r in rest[8:]} == {"temporarily_unavailable"}

        with one_worker_held(port, "POST", "/oauth/token") as held:
            first = call(port, "POST", "/oauth/token", failure, wrong)
            second = finish(held, failure, wrong)
        rest = [call(port, "POST", "/oauth/token", failure, wrong) for _ in range(9)]
        answers = [first, second, *rest]
        assert [a[0] for a in answers] == [401] * 10 + [429]
        seconds = int(answers[-1][1])  # the window opened at the first failure, just now
        assert 50 <= seconds <= 60
        assert answers[-1][2] == {
            "error": "invalid_request",
            "error_description": "too many failed requests for this client; "
            f"try again in {seconds} seconds",
        }
