"""A real `pds serve` on 127.0.0.1, driven by a strict off-the-shelf client (openid-client v6,
Node), by `pds audit verify --url`, and killed with SIGKILL in the middle of a burst of reads."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pds.audit.verify import verify
from pds.settings import load_settings
from pds.vault import Vault
from tests.conftest import PASSPHRASE
from tests.servers import flow_ok, free_port, openid_flow, pds, serving
from tests.vault.test_durability import pds_env


@dataclass
class Server:
    home: Path
    base: str
    env: dict[str, str]
    proc: subprocess.Popen
    client_id: str
    secret: str

    @property
    def redirect_uri(self) -> str:
        return self.base + "/cb"

    def flow(self, *extra: str) -> dict:
        """Run the Node client's flow; its one line of JSON."""
        return openid_flow(self.base, self.client_id, self.secret, *extra)


@pytest.fixture(params=[1, 4], ids=["1-thread-each", "4-threads-each"])
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    """`pds serve` with its default workers of one request thread, and with threaded ones
    (whose access-log entries share commits)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    home = tmp_path / "home"
    env = {**pds_env(home), "PDS_ISSUER": base}
    pds(env, "demo")
    added = json.loads(
        pds(env, "clients", "add", "--name", "Node Bank", "--redirect-uri", base + "/cb", "--json")
    )
    with serving(env, port, tmp_path / "serve.log", workers=2, threads=request.param) as proc:
        yield Server(home, base, env, proc, added["client_id"], added["client_secret"])


@pytest.mark.slow
def test_openid_client_full_flow(server: Server) -> None:
    assert server.flow() == flow_ok(server.base)


@pytest.mark.slow
def test_auditor_verifies_a_running_vault(server: Server, tmp_path: Path) -> None:
    assert server.flow()["ok"] is True
    got = server.flow("audit:read", "token")
    assert got["ok"] is True
    token_file = tmp_path / "token"
    token_file.write_text(got["access_token"])
    saved = tmp_path / "checkpoint"
    out = pds(
        server.env,
        "audit",
        "verify",
        "--url",
        server.base,
        "--token-file",
        str(token_file),
        "--save-checkpoint",
        str(saved),
        "--json",
    )
    report = json.loads(out)
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["entries"] >= 10
    # Later, against the checkpoint saved now: the log must extend it.
    assert server.flow()["ok"] is True
    again = json.loads(
        pds(
            server.env,
            "audit",
            "verify",
            "--url",
            server.base,
            "--token-file",
            str(token_file),
            "--trusted-checkpoint",
            str(saved),
            "--json",
        )
    )
    assert again["ok"] is True
    assert again["trusted_checkpoints"] == [report["newest_checkpoint_size"]]
    assert again["entries"] > report["entries"]


@pytest.mark.slow
def test_sigkill_during_reads_loses_no_entry_of_a_sent_response(server: Server) -> None:
    token = server.flow("read:transactions", "token")["access_token"]
    url = server.base + "/api/v1/records?category=transactions&limit=5"
    received = 0
    lock = threading.Lock()
    stop = threading.Event()

    def reader() -> None:
        nonlocal received
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        while not stop.is_set():
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:
                    body = json.loads(resp.read())
            except (OSError, ValueError, http.client.HTTPException):
                return  # the server is gone (mid-response: IncompleteRead)
            if len(body["records"]) == 5:
                with lock:
                    received += 1

    threads = [threading.Thread(target=reader) for _ in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while received < 150 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait(timeout=30)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert received >= 150

    with Vault.open(load_settings({"PDS_HOME": str(server.home)}), PASSPHRASE) as vault:
        reads = vault.conn.execute(
            "SELECT count(*) FROM audit_log WHERE json_extract(entry, '$.action') = "
            "'api.records.read' AND json_extract(entry, '$.decision') = 'allowed'"
        ).fetchone()[0]
        latest = vault.log.latest_checkpoint()
        size = vault.log.size()
        report = verify(vault.log_source())
    # Every response a reader got had its entry committed before it was sent.
    assert reads >= received
    assert latest.size <= size
    assert report.ok, report.problems
