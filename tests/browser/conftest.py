"""A real `pds serve` on 127.0.0.1 and Debian's Chromium driven by Playwright (headless).

Every request each page makes is recorded, so a test can check that no page talks to any
host but its own; CSP violations and page errors reported by the browser are recorded too.
Screenshots go to tests/browser/screenshots/ (ignored by git) for a reviewer to look at.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.deploy.test_serve import free_port, serving
from tests.vault.test_durability import pds_env

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).parent / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Live:
    base: str
    home: Path
    env: dict[str, str]
    client_id: str
    secret: str

    @property
    def redirect_uri(self) -> str:
        return self.base + "/cb"


def pds(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pds", *args], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("live")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    home = tmp / "home"
    env = {**pds_env(home), "PDS_ISSUER": base}
    pds(env, "init")
    added = json.loads(
        pds(
            env,
            "clients",
            "add",
            "--name",
            "Browser Bank",
            "--redirect-uri",
            base + "/cb",
            "--json",
        )
    )
    with serving(env, port, tmp / "serve.log", workers=1):
        yield Live(base, home, env, added["client_id"], added["client_secret"])


@dataclass
class Watch:
    """What the browser did: every URL it asked for, and what it complained about."""

    requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def foreign(self, base: str) -> list[str]:
        return [u for u in self.requests if not u.startswith(base + "/")]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    assert CHROMIUM.exists(), "Debian's chromium is needed (make test installs it)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def page(browser, watch: Watch) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    pg.on("request", lambda r: watch.requests.append(r.url))
    pg.on("pageerror", lambda e: watch.problems.append(f"page error: {e}"))
    pg.on("console", lambda m: watch.problems.append(m.text) if _csp(m.text) else None)
    try:
        yield pg
    finally:
        context.close()


def _csp(text: str) -> bool:
    return "Content Security Policy" in text or text.startswith("Refused to")


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
