"""A real `pds serve` for the client's tests, with the midata fixture imported, and the
owner's side of the consent (sign in, Allow) driven with requests through the plain HTML
forms, as docs/oauth.md describes for scripts.

The server and its helpers come from the repository's own tests (tests/servers.py), so the
repository's root is put on the import path here.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.servers import PASSPHRASE, free_port, pds, serving  # noqa: E402
from tests.vault.test_durability import pds_env  # noqa: E402

MIDATA = ROOT / "tests" / "fixtures" / "midata"


@dataclass
class Live:
    """The running vault: its address, its environment (for `pds` commands) and home."""

    base: str
    env: dict[str, str]
    home: Path

    def pds(self, *args: str) -> str:
        return pds(self.env, *args)


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A vault with the two midata statements (14 transactions), served on 127.0.0.1.
    Webhooks may go to loopback (the owner's PDS_WEBHOOKS_ALLOW_PRIVATE), for the receiver."""
    tmp = tmp_path_factory.mktemp("client")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    home = tmp / "home"
    env = {**pds_env(home), "PDS_ISSUER": base, "PDS_WEBHOOKS_ALLOW_PRIVATE": "1"}
    pds(env, "init")
    pds(
        env,
        "import",
        str(MIDATA / "midata-spec-example.csv"),
        str(MIDATA / "nationwide-test-midata.csv"),
    )
    with serving(env, port, tmp / "serve.log", workers=1):
        yield Live(base, env, home)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def consent(base: str, authorize_url: str, decision: str = "allow") -> str:
    """The owner signs in and answers the consent page; the URL the browser is sent back to."""
    owner = requests.Session()
    resp = owner.get(authorize_url, allow_redirects=False, timeout=30)
    assert resp.status_code == 302, resp.text
    login = urljoin(base, resp.headers["Location"])
    assert urlsplit(login).path == "/login"
    page = owner.get(login, timeout=30)
    signed_in = owner.post(
        base + "/login",
        data={
            "passphrase": PASSPHRASE,
            "csrf_token": _csrf(page.text),
            "next": parse_qs(urlsplit(login).query)["next"][0],
        },
        allow_redirects=False,
        timeout=30,
    )
    assert signed_in.status_code == 303, signed_in.text
    page = owner.get(authorize_url, timeout=30)
    assert page.status_code == 200, page.text
    answer = owner.post(
        authorize_url,
        data={"csrf_token": _csrf(page.text), "decision": decision},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 303, answer.text
    return answer.headers["Location"]


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that keeps what it is sent (headers, raw body)."""

    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    port = free_port()
    box = Receiver(f"http://127.0.0.1:{port}/hook")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            box.received.append((dict(self.headers.items()), body))
            box.arrived.set()
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()
