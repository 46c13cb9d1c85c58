"""A web upload may take longer than the worker timeout: gunicorn's gthread worker (what
`pds serve` runs) keeps telling the master it is alive while its request thread reads a
slowly arriving body, where the sync worker was killed mid-upload ("WORKER TIMEOUT")."""

from __future__ import annotations

import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.jobs.test_jobs import Owner, midata, started_vault, vault_counts
from tests.servers import answers, free_port, get, running

TIMEOUT = 2
"""The worker timeout these servers run with (`pds serve --timeout`), in seconds."""


def slow_upload(owner: Owner, path: Path, seconds: float) -> tuple[int, str]:
    """POST /import with ``path``'s bytes trickling in over ``seconds``, as over a slow
    link; the answer's status and Location."""
    started = time.monotonic()
    status, headers = owner.send_upload(path, seconds)
    assert time.monotonic() - started >= seconds > 2 * TIMEOUT
    return status, headers.get("Location", "")


@pytest.mark.slow
def test_an_upload_slower_than_the_worker_timeout_is_imported(tmp_path: Path) -> None:
    """Two uploads, each arriving over 2.5 times the worker timeout, one after the other on
    `pds serve`'s default workers: both are answered with their job, both jobs import every
    record, and no worker is killed. Meanwhile the other worker answers at once."""
    home, env = started_vault(tmp_path)
    port = free_port()
    env["PDS_ISSUER"] = base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    argv = [sys.executable, "-m", "pds", "serve", "--port", str(port), "--timeout", str(TIMEOUT)]
    files = [midata(tmp_path / "first.csv", 700, "FIRST"), midata(tmp_path / "second.csv", 300)]
    with running(argv, log, answers(base + "/healthz"), env=env, what="pds serve"):
        owner = Owner(base)
        owner.sign_in()
        ids = []
        for path in files:
            with ThreadPoolExecutor(1) as pool:
                upload = pool.submit(slow_upload, owner, path, 2.5 * TIMEOUT)
                waits = []
                while not upload.done():
                    started = time.monotonic()
                    assert get(base + "/healthz")[0] == 200
                    waits.append(time.monotonic() - started)
                    time.sleep(0.2)
                status, location = upload.result()
            assert status == 303, log.read_text()
            assert len(waits) >= 10
            assert max(waits) < 1.0, waits  # not queued behind the upload
            found = re.fullmatch(r"/jobs/([0-9]+)", location)
            assert found, location
            ids.append(int(found.group(1)))
        assert ids == [1, 2]
        done = [owner.wait(j, lambda job: job["finished_at"] is not None) for j in ids]
        assert [(d["state"], d["result"]["new"], d["result"]["duplicate"]) for d in done] == [
            ("done", 700, 0),
            ("done", 300, 0),
        ]
        assert [d["bytes_done"] == d["bytes_total"] for d in done] == [True, True]
    served = log.read_text()
    assert "WORKER TIMEOUT" not in served
    assert "SIGKILL" not in served
    assert vault_counts(home) == (1000, 2, [(1, "done", 1), (2, "done", 1)])
