"""Schemathesis against a real ``pds serve``: the business API with a real bearer token (all
of ``read``, ``write`` and ``aggregate`` on every category, from openid-client's flow) and
the auditor API with an ``audit:read`` one. A short, bounded run (a time budget each) that
checks what the OpenAPI document promises: no 5xx, every status code documented, every
answer of the documented media type and conforming to its schema."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pds.vocabulary import ACTIONS, CATEGORIES
from tests.servers import free_port, openid_flow, pds, serving
from tests.vault.test_durability import pds_env

CHECKS = (
    "not_a_server_error,status_code_conformance,response_schema_conformance,"
    "content_type_conformance"
)
BUSINESS = " ".join(f"{a}:{c}" for c in CATEGORIES for a in ACTIONS)


@dataclass
class Served:
    base: str
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**pds_env(tmp / "home"), "PDS_ISSUER": base}
    pds(env, "demo")
    added = json.loads(
        pds(env, "clients", "add", "--name", "Fuzz Bank", "--redirect-uri", base + "/cb", "--json")
    )
    with serving(env, port, tmp / "serve.log", workers=1):
        tokens = {}
        for part, scope in (("business", BUSINESS), ("auditor", "audit:read")):
            got = openid_flow(base, added["client_id"], added["client_secret"], scope, "token")
            assert got["ok"] is True, got
            tokens[part] = got["access_token"]
        yield Served(base, tokens)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("part", "paths", "seconds", "operations"),
    [("business", "^/api/v1/", 25, 10), ("auditor", "^/audit/", 10, 5)],
)
def test_the_live_api_keeps_its_openapi_contract(
    served: Served, part: str, paths: str, seconds: int, operations: int, tmp_path: Path
) -> None:
    har = tmp_path / "run.har"
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            "run",
            f"{served.base}/api/v1/openapi.json",
            "--checks",
            CHECKS,
            "--header",
            f"Authorization: Bearer {served.tokens[part]}",
            "--include-path-regex",
            paths,
            "--phases",
            "coverage,fuzzing",
            "--max-examples",
            "5",
            "--max-time",
            str(seconds),
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--no-color",
            "--report",
            "har",
            "--report-har-path",
            str(har),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " failed" not in done.stdout
    assert re.search(rf"^  Tested: {operations}$", done.stdout, re.M), done.stdout[-3000:]
    assert re.search(r"^  [0-9]+ generated, [0-9]+ passed", done.stdout, re.M), done.stdout
    # Not only refusals: the run reached the real answers (and checked them).
    answered = {
        (e["request"]["method"], urlsplit(e["request"]["url"]).path)
        for e in json.loads(har.read_text())["log"]["entries"]
        if e["response"]["status"] == 200
    }
    assert ANSWERED[part] <= answered, sorted(answered)


ANSWERED = {
    "business": {
        ("GET", "/api/v1/records"),
        ("GET", "/api/v1/aggregates"),
        ("GET", "/api/v1/grant"),
        ("GET", "/api/v1/grant/receipt"),
        ("GET", "/api/v1/subscriptions"),
        ("GET", "/api/v1/changes"),
    },
    "auditor": {
        ("GET", "/audit/key"),
        ("GET", "/audit/checkpoint"),
        ("GET", "/audit/entries"),
        ("GET", "/audit/proof/inclusion"),
        ("GET", "/audit/proof/consistency"),
    },
}
