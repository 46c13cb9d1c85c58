"""docs/developers.md's first_read.py, run as written against a demo vault (`pds demo`,
as `make run` makes it), with the person's Allow given through the consent page."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import requests
from conftest import ROOT, consent
from tests.servers import free_port, pds, serving
from tests.vault.test_durability import pds_env


def quickstart() -> str:
    text = (ROOT / "docs" / "developers.md").read_text(encoding="utf-8")
    after = text.split("Save this as `first_read.py`", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_developers_quickstart_runs_as_written(tmp_path: Path) -> None:
    port, back = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**pds_env(tmp_path / "demo"), "PDS_ISSUER": base}
    pds(env, "demo")
    script = quickstart().replace("http://127.0.0.1:8000", base).replace("9000", str(back))
    expected = json.loads(
        pds(env, "records", "--category", "transactions", "--since", "2024-01-01", "--json")
    )
    with serving(env, port, tmp_path / "serve.log", workers=1):
        run = subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert run.stdout.readline() == (
                "Open this address in your browser, sign in and press Allow:\n"
            )
            url = run.stdout.readline().strip()
            assert url.startswith(base + "/oauth/authorize?")
            answer = requests.get(consent(base, url), timeout=30)
            assert answer.text == "Done: go back to the terminal."
            out, err = run.communicate(timeout=60)
        finally:
            run.kill()
    assert run.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == "Granted: read:transactions"
    shown = [
        f"{r['payload']['date']} {r['payload']['amount']} {r['payload']['currency']} "
        f"{r['payload']['description']}"
        for r in expected
    ]
    assert len(shown) > 100
    assert lines[1:-1] == shown
    assert lines[-1].startswith("Consent receipt ")
    assert lines[-1].endswith(" verified")
