"""Background jobs (pds.jobs): a web upload is stored and answered at once, its import runs
outside the request with the CLI's messages; the web export the same way; progress; jobs
left by a stopped server run again; owner-only pages; the schema migration."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest

from pds import db as dbmod
from pds import jobs
from pds.db import locking, transaction
from pds.errors import PdsError
from pds.importer import import_file
from pds.jobs import runner
from pds.settings import load_settings
from pds.vault import Vault
from tests.conftest import PASSPHRASE, fixture
from tests.oauth_kit import csrf
from tests.servers import free_port, serving
from tests.vault.test_durability import PDS, pds_env

MIDATA = fixture("midata/midata-spec-example.csv")
HEAD = "Date,Type,Merchant/Description,Debit/Credit,Balance"
BAD_ROW = b"04/03/2014,VIS,Boots,5.0O,260.00"


def midata(path: Path, rows: int, shop: str = "SHOP") -> Path:
    """A midata statement of ``rows`` distinct rows."""
    lines = [HEAD] + [
        f"{d % 28 + 1:02d}/{d // 28 % 12 + 1:02d}/2024,VIS,{shop} {d},-{d}.00,100.00"
        for d in range(rows)
    ]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return path


def post_upload(kit, path: Path, name: str | None = None, **form):
    page = kit.http.get("/import")
    data = {"csrf_token": csrf(page.text), **form}
    data["file"] = (io.BytesIO(path.read_bytes()), name or path.name)
    return kit.http.post("/import", data=data, content_type="multipart/form-data")


def queued_id(resp) -> int:
    assert resp.status_code == 303, resp.text
    found = re.fullmatch(r"/jobs/([0-9]+)", resp.headers["Location"])
    assert found, resp.headers["Location"]
    return int(found.group(1))


def status(kit, job_id: int) -> dict:
    resp = kit.http.get(f"/jobs/{job_id}.json")
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    return resp.json


def folder_files(vault: Vault) -> list[str]:
    place = vault.settings.home / "jobs"
    return sorted(p.name for p in place.iterdir()) if place.exists() else []


def summary_line(html: str) -> str:
    return re.findall(r'<p class="ok">([^<]*)</p>', html)[0]


# -- an upload is stored, queued and answered at once --------------------------------------


def test_an_upload_is_queued_at_once_and_imported_by_the_job(kit, vault) -> None:
    kit.login()
    resp = post_upload(kit, MIDATA, "../../etc/midata-spec-example.csv")
    job_id = queued_id(resp)
    assert job_id == 1
    assert vault.status()["records"] == 0  # nothing imported in the request
    stored = folder_files(vault)
    assert len(stored) == 1
    assert re.fullmatch(r"upload-[a-z0-9_]{8}\.part", stored[0]), stored
    path = vault.settings.home / "jobs" / stored[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_bytes() == MIDATA.read_bytes()
    size = MIDATA.stat().st_size
    assert status(kit, job_id) == {
        "id": 1,
        "kind": "import",
        "state": "queued",
        "created_at": status(kit, job_id)["created_at"],
        "started_at": None,
        "finished_at": None,
        "file": "midata-spec-example.csv",
        "bytes_total": size,
        "bytes_done": 0,
        "percent": 0,
        "records": None,
        "result": None,
        "error": None,
        "hint": None,
        "download": False,
    }
    page = kit.http.get("/jobs/1")
    assert page.status_code == 200
    assert "<h1>Importing midata-spec-example.csv</h1>" in page.text
    assert '<p id="job-state">Waiting to start…</p>' in page.text
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in page.text
    assert '<script src="/static/jobs.js"></script>' in page.text
    assert '<a href="/jobs/1">Reload</a>' in page.text

    assert jobs.run_once(vault) == [1]
    done = status(kit, job_id)
    assert (done["state"], done["bytes_done"], done["percent"], done["records"]) == (
        "done",
        size,
        100,
        6,
    )
    assert done["result"] == {
        "file": "midata-spec-example.csv",
        "connector": "midata",
        "new": 6,
        "duplicate": 0,
        "rejected": 0,
        "source_id": 1,
    }
    page = kit.http.get("/jobs/1")
    assert summary_line(page.text) == (
        "midata-spec-example.csv: 6 new, 0 already present, 0 rejected (midata)"
    )
    assert "jobs.js" not in page.text
    assert "refresh" not in page.text
    assert vault.status()["categories"] == {"transactions": 6}
    assert [s["filename"] for s in vault.sources()] == ["midata-spec-example.csv"]
    assert folder_files(vault) == []  # the upload is deleted when the job ends
    assert jobs.run_once(vault) == []  # nothing runs twice


def test_distinct_uploads_one_after_another(kit, vault, tmp_path) -> None:
    kit.login()
    total = 0
    for n in range(1, 11):
        path = midata(tmp_path / f"statement-{n}.csv", n * 3, shop=f"SHOP{n}")
        job_id = queued_id(post_upload(kit, path))
        assert job_id == n
        assert jobs.run_once(vault) == [n]
        total += n * 3
        page = kit.http.get(f"/jobs/{n}")
        assert summary_line(page.text) == (
            f"statement-{n}.csv: {n * 3} new, 0 already present, 0 rejected (midata)"
        )
        assert vault.status()["records"] == total
        if n in (2, 10):
            assert status(kit, n)["result"]["source_id"] == n
            assert folder_files(vault) == []
    assert total == 165


def test_the_same_file_twice_adds_nothing(kit, vault) -> None:
    kit.login()
    first = queued_id(post_upload(kit, MIDATA))
    jobs.run_once(vault)
    second = queued_id(post_upload(kit, MIDATA))
    assert jobs.run_once(vault) == [second]
    assert second == first + 1
    page = kit.http.get(f"/jobs/{second}")
    assert summary_line(page.text) == (
        "midata-spec-example.csv: 0 new, 6 already present, 0 rejected (midata)"
    )
    assert status(kit, second)["result"]["duplicate"] == 6
    assert vault.status()["records"] == 6


def test_two_queued_at_once_run_in_order(kit, vault, tmp_path) -> None:
    kit.login()
    a = queued_id(post_upload(kit, midata(tmp_path / "a.csv", 4, "A")))
    b = queued_id(post_upload(kit, midata(tmp_path / "b.csv", 7, "B")))
    assert [status(kit, a)["state"], status(kit, b)["state"]] == ["queued", "queued"]
    assert len(folder_files(vault)) == 2
    assert jobs.run_once(vault) == [a, b]
    assert [status(kit, j)["result"]["new"] for j in (a, b)] == [4, 7]
    assert vault.status()["records"] == 11
    assert folder_files(vault) == []


def test_a_bad_file_fails_with_the_cli_message_and_leaves_the_vault(kit, vault, tmp_path) -> None:
    kit.login()
    bad = tmp_path / "statement.csv"
    bad.write_bytes(HEAD.encode() + b"\r\n" + BAD_ROW + b"\r\n")
    with pytest.raises(PdsError) as cli:  # what `pds import statement.csv` says
        import_file(vault, bad)
    before = (vault.status()["records"], len(vault.sources()), vault.log.size())
    job_id = queued_id(post_upload(kit, bad))
    assert jobs.run_once(vault) == [job_id]
    got = status(kit, job_id)
    assert (got["state"], got["error"], got["hint"]) == (
        "failed",
        cli.value.message,
        cli.value.hint,
    )
    assert got["error"] == 'statement.csv line 2: amount "5.0O" is not a number'
    assert got["hint"] == cli.value.hint is not None
    page = kit.http.get(f"/jobs/{job_id}")
    assert page.status_code == 200
    assert (
        '<p class="error" role="alert">Error: statement.csv line 2: amount &#34;5.0O&#34; is not '
        "a number</p>" in page.text
    )
    assert f'<p class="hint">Hint: {cli.value.hint}</p>' in page.text.replace("&#39;", "'")
    assert "<p>Nothing was imported from this file.</p>" in page.text
    assert (vault.status()["records"], len(vault.sources()), vault.log.size()) == before
    assert folder_files(vault) == []
    # the message quotes the file's row: it is sealed in the table, never plaintext
    row = vault.conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    assert not any(b"5.0O" in (v if isinstance(v, bytes) else str(v).encode()) for v in row)
    unknown = tmp_path / "notes.txt"
    unknown.write_bytes(b"hello")
    other = queued_id(post_upload(kit, unknown))
    jobs.run_once(vault)
    assert status(kit, other)["error"] == "notes.txt: pds does not recognise this file's format"


def test_skip_bad_and_a_named_connector_reach_the_job(kit, vault, tmp_path) -> None:
    kit.login()
    mixed = tmp_path / "mixed.csv"
    good = "01/02/2024,VIS,SHOP 1,-1.00,100.00"
    mixed.write_bytes(f"{HEAD}\r\n{good}\r\n".encode() + BAD_ROW + b"\r\n")
    job_id = queued_id(post_upload(kit, mixed, skip_bad="1", connector="midata"))
    jobs.run_once(vault)
    page = kit.http.get(f"/jobs/{job_id}")
    assert summary_line(page.text) == "mixed.csv: 1 new, 0 already present, 1 rejected (midata)"
    assert "<li>rejected: mixed.csv line 3: amount &#34;5.0O&#34; is not a number</li>" in page.text
    wrong = queued_id(post_upload(kit, MIDATA, connector="socks"))
    jobs.run_once(vault)
    with pytest.raises(PdsError) as cli:
        import_file(vault, MIDATA, connector="socks")
    assert status(kit, wrong)["error"] == cli.value.message


def test_refused_uploads_leave_no_file(kit, vault) -> None:
    kit.login()
    refused = kit.http.post(
        "/import",
        data={"csrf_token": "wrong", "file": (io.BytesIO(b"x" * 4096), "a.csv")},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 403
    page = kit.http.get("/import")
    empty = kit.http.post(
        "/import",
        data={"csrf_token": csrf(page.text), "file": (io.BytesIO(b""), "")},
        content_type="multipart/form-data",
    )
    assert (empty.status_code, "Choose a file to import." in empty.text) == (422, True)
    assert folder_files(vault) == []
    assert vault.conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0
    signed_out = kit.app.test_client().post(
        "/import", data={"file": (io.BytesIO(b"x"), "a.csv")}, content_type="multipart/form-data"
    )
    assert signed_out.status_code in (302, 401, 403)
    assert folder_files(vault) == []


def test_requests_while_an_import_holds_the_vault_say_so(kit, vault, monkeypatch) -> None:
    """An import holds the vault's write transaction from start to end; a request that
    cannot queue its job before the writer's wait runs out says so (no 500), keeps no file."""
    kit.login()
    page = kit.http.get("/export")
    monkeypatch.setattr(locking, "WAIT_SECONDS", 0.05)
    for v in kit.app.extensions["pds_vaults"].values():
        v.conn.execute("PRAGMA busy_timeout=50")
    with Vault.with_keyring(vault.settings, vault.keyring) as other, transaction(other.conn):
        other.conn.execute("INSERT INTO meta VALUES ('held', 'as an import holds it')")
        data = {"csrf_token": csrf(page.text), "file": (io.BytesIO(MIDATA.read_bytes()), "m.csv")}
        resp = kit.http.post("/import", data=data, content_type="multipart/form-data")
        export = kit.http.post("/export", data={"csrf_token": csrf(page.text)})
    assert resp.status_code == 503
    assert f'<p class="error" role="alert">Error: {jobs.BUSY}</p>' in resp.text
    assert "Hint: Wait until the running import is done (its page shows it), then try again." in (
        resp.text
    )
    assert export.status_code == 503
    assert jobs.BUSY in export.text
    assert (resp.headers["Retry-After"], export.headers["Retry-After"]) == ("30", "30")
    assert folder_files(vault) == []
    assert vault.conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0
    assert locking.is_busy(sqlite3.OperationalError("no such table: x")) is False


def test_jobs_run_one_at_a_time_oldest_first(kit, vault) -> None:
    """While one job runs (claimed by a live process: another server worker), no other is
    claimed; then they go oldest first, so the same file twice is new, then present."""
    kit.login()
    first = queued_id(post_upload(kit, MIDATA))
    second = queued_id(post_upload(kit, MIDATA))
    third = queued_id(post_upload(kit, MIDATA))
    assert jobs.claim(vault) == (first, "import")
    assert jobs.claim(vault) is None  # the first is running
    assert jobs.claim(vault) is None
    jobs.run_import(vault, first)
    assert jobs.run_once(vault) == [second, third]
    results = [status(kit, j)["result"] for j in (first, second, third)]
    assert [(r["new"], r["duplicate"]) for r in results] == [(6, 0), (0, 6), (0, 6)]


def test_a_job_that_finds_the_vault_held_waits_and_runs_later(kit, vault, monkeypatch) -> None:
    """`pds import` in another process holds the vault longer than a writer waits: the job
    goes back to the queue with its file, and runs once the vault is free."""
    kit.login()
    job_id = queued_id(post_upload(kit, MIDATA))
    monkeypatch.setattr(locking, "WAIT_SECONDS", 0.05)
    vault.conn.execute("PRAGMA busy_timeout=50")
    held = threading.Event()

    def hold() -> None:  # as `pds import` in another process holds it, for 0.5 s
        with Vault.with_keyring(vault.settings, vault.keyring) as other, transaction(other.conn):
            other.conn.execute("INSERT INTO meta VALUES ('held', 'by another writer')")
            held.set()
            time.sleep(0.5)

    assert jobs.claim(vault) == (job_id, "import")
    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()
    jobs.run_import(vault, job_id)  # refused at BEGIN; queued again once the vault is free
    holder.join()
    assert status(kit, job_id)["state"] == "queued"
    assert len(folder_files(vault)) == 1  # the upload waits with it
    assert vault.status()["records"] == 0
    assert jobs.run_once(vault) == [job_id]
    got = status(kit, job_id)
    assert (got["state"], got["result"]["new"]) == ("done", 6)
    assert folder_files(vault) == []


def test_retry_busy_tries_again_only_while_busy(monkeypatch) -> None:
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = sqlite3.SQLITE_BUSY
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise busy
        return "written"

    assert runner._retry_busy(flaky) == "written"
    assert len(calls) == 3
    monkeypatch.setattr(runner, "BUSY_TRIES", 2)
    calls.clear()
    with pytest.raises(sqlite3.OperationalError):
        runner._retry_busy(flaky)
    assert len(calls) == 2

    def broken() -> None:
        calls.append(1)
        raise sqlite3.OperationalError("no such table: jobs")

    calls.clear()
    with pytest.raises(sqlite3.OperationalError):
        runner._retry_busy(broken)
    assert len(calls) == 1


# -- progress ---------------------------------------------------------------------------------


def test_progress_file_is_written_at_most_every_interval(tmp_path) -> None:
    path = tmp_path / "7.progress"
    every = jobs.ProgressFile(path, total=1000, every=0.0)
    every(100)
    assert json.loads(path.read_text()) == {"bytes_done": 100, "bytes_total": 1000}
    every(2000)  # a zip's reader may seek back: never past the total
    assert json.loads(path.read_text()) == {"bytes_done": 1000, "bytes_total": 1000}
    rarely = jobs.ProgressFile(path, total=1000, every=3600)
    rarely(10)
    rarely(20)
    assert json.loads(path.read_text()) == {"bytes_done": 10, "bytes_total": 1000}
    assert rarely.done == 30
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_running_import_shows_its_progress(kit, vault, tmp_path) -> None:
    kit.login()
    path = midata(tmp_path / "big.csv", 2000)
    job_id = queued_id(post_upload(kit, path))
    assert jobs.claim(vault) == (job_id, "import")
    size = path.stat().st_size
    progress = jobs.ProgressFile(jobs.progress_path(vault.settings, job_id), size, 0.0)
    progress(size // 4)
    got = status(kit, job_id)
    assert (got["state"], got["bytes_done"], got["bytes_total"], got["percent"]) == (
        "running",
        20458,
        81833,
        24,  # rounded down: 100% only when all is read
    )
    page = kit.http.get(f"/jobs/{job_id}")
    assert (
        '<progress id="job-progress" aria-label="Import progress" max="100" value="24">24%</progress>'
        in page.text
    )
    assert '<p id="job-state">Importing…</p>' in page.text
    seen: list[int] = []
    real = jobs.ProgressFile.write

    def spy(self) -> None:
        real(self)
        seen.append(json.loads(self.path.read_text())["bytes_done"])

    jobs.ProgressFile.write = spy
    try:
        jobs.run_import(vault, job_id, progress_every=0.0)
    finally:
        jobs.ProgressFile.write = real
    assert seen[-1] == size
    assert seen == sorted(seen)
    assert len(seen) >= 2, seen
    assert not jobs.progress_path(vault.settings, job_id).exists()
    assert status(kit, job_id)["bytes_done"] == size


# -- pages are the owner's ------------------------------------------------------------------


def test_job_pages_are_owner_only_and_unknown_ids_are_404(kit, vault) -> None:
    kit.login()
    job_id = queued_id(post_upload(kit, MIDATA))
    stranger = kit.app.test_client()
    for path in (f"/jobs/{job_id}", f"/jobs/{job_id}.json", f"/jobs/{job_id}/download"):
        resp = stranger.get(path)
        assert resp.status_code == 302, path
        assert resp.headers["Location"].startswith("/login?next=")
    missing = kit.http.get("/jobs/99")
    assert missing.status_code == 404
    assert "there is no job 99" in missing.text
    problem = kit.http.get("/jobs/99.json")
    assert problem.status_code == 404
    assert problem.mimetype == "application/problem+json"
    assert problem.json["detail"] == "there is no job 99"
    assert kit.http.get("/jobs/99/download").status_code == 404
    assert kit.http.get(f"/jobs/{job_id}/download").status_code == 404  # an import: no file
    assert kit.http.get("/jobs/99999999999999999999").status_code == 404


# -- export ---------------------------------------------------------------------------------


def test_export_job_download_once(kit, vault) -> None:
    kit.login()
    queued_id(post_upload(kit, MIDATA))
    jobs.run_once(vault)
    page = kit.http.get("/export")
    assert '<button type="submit">Prepare the export</button>' in page.text
    job_id = queued_id(kit.http.post("/export", data={"csrf_token": csrf(page.text)}))
    assert status(kit, job_id)["kind"] == "export"
    waiting = kit.http.get(f"/jobs/{job_id}")
    assert "<h1>Export everything</h1>" in waiting.text
    assert "Waiting to start…" in waiting.text
    before = vault.log.size()
    assert jobs.run_once(vault) == [job_id]
    assert vault.log.size() == before + 1
    entry = json.loads(
        vault.conn.execute("SELECT entry FROM audit_log ORDER BY idx DESC LIMIT 1").fetchone()[0]
    )
    assert (entry["action"], entry["actor"], entry["count"]) == ("export", "owner", 6)
    assert entry["detail"] == {"categories": {"transactions": 6}, "format": "pds-export/1"}
    got = status(kit, job_id)
    assert (got["state"], got["records"], got["download"]) == ("done", 6, True)
    assert got["result"] == {"records": 6, "categories": {"transactions": 6}}
    (name,) = folder_files(vault)
    zip_path = vault.settings.home / "jobs" / name
    assert stat.S_IMODE(zip_path.stat().st_mode) == 0o600
    page = kit.http.get(f"/jobs/{job_id}")
    assert f'<a id="job-download" href="/jobs/{job_id}/download">Download the export</a>' in (
        page.text
    )
    head = kit.http.head(f"/jobs/{job_id}/download")
    assert head.status_code == 200
    assert zip_path.exists()
    resp = kit.http.get(f"/jobs/{job_id}/download")
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert re.fullmatch(
        r"attachment; filename=pds-export-[0-9TZ.+]+\.zip", resp.headers["Content-Disposition"]
    )
    import zipfile

    with zipfile.ZipFile(io.BytesIO(resp.data)) as zf:
        assert len(json.loads(zf.read("transactions.json"))["records"]) == 6
    resp.close()
    assert folder_files(vault) == []
    assert status(kit, job_id)["download"] is False
    gone = kit.http.get(f"/jobs/{job_id}")
    assert "This export was deleted from the server" in gone.text
    assert kit.http.get(f"/jobs/{job_id}/download").status_code == 404


def test_tidy_deletes_day_old_exports_and_stray_files(kit, vault) -> None:
    kit.login()
    page = kit.http.get("/export")
    job_id = queued_id(kit.http.post("/export", data={"csrf_token": csrf(page.text)}))
    jobs.run_once(vault)
    stray = vault.settings.home / "jobs" / "upload-cutoff.part"
    stray.write_bytes(b"half an upload")
    assert jobs.tidy(vault) == 0  # all fresh
    assert len(folder_files(vault)) == 2
    later = datetime.now(UTC) + timedelta(seconds=jobs.KEEP_EXPORT_SECONDS + 60)
    os.utime(stray, (time.time() - jobs.KEEP_EXPORT_SECONDS - 60,) * 2)
    assert jobs.tidy(vault, later) == 2
    assert folder_files(vault) == []
    assert status(kit, job_id)["download"] is False
    assert jobs.tidy(vault, later) == 0


# -- restarts -----------------------------------------------------------------------------------


def dead_token() -> str:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    token = jobs.process_token(proc.pid)
    assert jobs.alive(token) is True
    proc.kill()
    proc.wait()
    assert jobs.alive(token) is False
    return token


def test_a_job_left_running_by_a_dead_process_runs_again(kit, vault) -> None:
    kit.login()
    job_id = queued_id(post_upload(kit, MIDATA))
    assert jobs.claim(vault) == (job_id, "import")
    assert jobs.requeue_orphans(vault) == []  # this process is alive: left alone
    vault.conn.execute("UPDATE jobs SET claimed_by = ? WHERE id = ?", (dead_token(), job_id))
    assert jobs.requeue_orphans(vault) == [job_id]
    assert status(kit, job_id)["state"] == "queued"
    assert jobs.run_once(vault) == [job_id]
    got = status(kit, job_id)
    assert (got["state"], got["result"]["new"]) == ("done", 6)
    row = vault.conn.execute("SELECT attempts, claimed_by FROM jobs WHERE id = ?", (job_id,))
    attempts, token = row.fetchone()
    assert attempts == 2
    assert jobs.alive(token)
    assert jobs.alive("not a token") is False
    assert jobs.alive("other-boot/1/5") is False


def test_a_job_that_keeps_killing_its_server_fails(kit, vault) -> None:
    kit.login()
    job_id = queued_id(post_upload(kit, MIDATA))
    jobs.claim(vault)
    token = dead_token()
    vault.conn.execute(
        "UPDATE jobs SET claimed_by = ?, attempts = ? WHERE id = ?",
        (token, jobs.MAX_ATTEMPTS, job_id),
    )
    left = vault.settings.home / "jobs" / f"{job_id}.d"  # as a killed run leaves it
    left.mkdir()
    (left / "midata-spec-example.csv").write_bytes(MIDATA.read_bytes())
    assert jobs.requeue_orphans(vault) == []
    got = status(kit, job_id)
    assert (got["state"], got["error"]) == (
        "failed",
        "the server stopped 3 times while running this job; nothing was kept",
    )
    assert folder_files(vault) == []
    assert vault.status()["records"] == 0


def test_the_worker_thread_runs_queued_jobs(app, kit, vault, tmp_path) -> None:
    app.config["PDS_JOBS_WORKER"] = True
    kit.login()
    try:
        ids = [
            queued_id(post_upload(kit, midata(tmp_path / f"{n}.csv", 50, f"S{n}"))) for n in (1, 2)
        ]
        deadline = time.monotonic() + 30
        while any(status(kit, j)["state"] != "done" for j in ids):
            assert time.monotonic() < deadline, [status(kit, j) for j in ids]
            time.sleep(0.1)
    finally:
        jobs.stop_worker()
    assert vault.status()["records"] == 100
    assert folder_files(vault) == []


# -- the schema -------------------------------------------------------------------------------


@pytest.mark.parametrize("old", [5, 6])
def test_migration_to_7_from_older_vaults(settings, old: int) -> None:
    with Vault.create(settings, PASSPHRASE) as v:
        conn = v.conn
        conn.execute("DROP TABLE jobs")
        if old == 5:
            conn.execute("DROP TABLE rights_requests")
        conn.execute(f"PRAGMA user_version = {old}")
    raw = sqlite3.connect(settings.db_path)
    assert raw.execute("SELECT count(*) FROM sqlite_master WHERE name = 'jobs'").fetchone() == (0,)
    raw.close()
    with Vault.open(settings, PASSPHRASE) as v:
        assert dbmod.schema_version(v.conn) == dbmod.SCHEMA_VERSION == 11
        columns = [r[1] for r in v.conn.execute("PRAGMA table_info(jobs)")]
        assert columns[:4] == ["id", "kind", "state", "created_at"]
        assert {"input_path", "bytes_done", "result", "sealed", "output_path"} <= set(columns)
        tables = {r[0] for r in v.conn.execute("SELECT name FROM sqlite_master")}
        assert "rights_requests" in tables
        with pytest.raises(sqlite3.IntegrityError):
            v.conn.execute("INSERT INTO jobs (kind, created_at, salt) VALUES ('x', '', x'00')")


# -- a real `pds serve` -----------------------------------------------------------------------


class Owner:
    """The owner's browser, reduced to what these tests need: a session cookie, forms, a
    multipart upload streamed from disk (never held in memory)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.host, port = base.removeprefix("http://").split(":")
        self.port = int(port)
        self.cookie = ""

    def _send(self, method: str, path: str, body: bytes = b"", headers: dict | None = None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(
                method, path, body=body, headers={"Cookie": self.cookie, **(headers or {})}
            )
            return self._read(conn.getresponse())
        finally:
            conn.close()

    def _read(self, resp) -> tuple[int, dict, bytes]:
        for value in resp.headers.get_all("Set-Cookie") or []:
            jar = SimpleCookie(value)
            if "pds_session" in jar:
                self.cookie = f"pds_session={jar['pds_session'].value}"
        return resp.status, dict(resp.headers), resp.read()

    def get(self, path: str) -> tuple[int, dict, bytes]:
        return self._send("GET", path)

    def post_form(self, path: str, form: dict[str, str]) -> tuple[int, dict, bytes]:
        body = urlencode(form).encode()
        return self._send("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})

    def csrf(self, path: str) -> str:
        return csrf(self.get(path)[2].decode())

    def sign_in(self) -> None:
        token = self.csrf("/login")
        status, headers, _ = self.post_form(
            "/login", {"passphrase": PASSPHRASE, "csrf_token": token, "next": "/"}
        )
        assert status == 303, status

    def send_upload(self, path: Path, seconds: float = 0.0, pieces: int = 20) -> tuple[int, dict]:
        """POST /import with ``path``'s bytes in ``pieces`` pieces spread over ``seconds``
        (0: as fast as they go; more: as over a slow link); the answer's status, headers."""
        boundary = "pds-test-" + os.urandom(8).hex()
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
            f"{self.csrf('/import')}\r\n"
            f'--{boundary}\r\nContent-Disposition: form-data; name="connector"\r\n\r\n\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        size = path.stat().st_size
        step = max(1, -(-size // pieces))
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            conn.putrequest("POST", "/import")
            conn.putheader("Cookie", self.cookie)
            conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
            conn.putheader("Content-Length", str(len(head) + size + len(tail)))
            conn.endheaders()
            conn.send(head)
            with path.open("rb") as fh:
                while chunk := fh.read(step):
                    conn.send(chunk)
                    time.sleep(seconds / pieces)
            conn.send(tail)
            status, headers, _ = self._read(conn.getresponse())
        finally:
            conn.close()
        return status, headers

    def upload(self, path: Path) -> int:
        """POST /import with ``path`` streamed; the queued job's id."""
        status, headers = self.send_upload(path)
        assert status == 303, status
        return int(headers["Location"].rsplit("/", 1)[1])

    def job(self, job_id: int) -> dict:
        status, _, body = self.get(f"/jobs/{job_id}.json")
        assert status == 200, (status, body[:200])
        return json.loads(body)

    def wait(self, job_id: int, until: Callable[[dict], bool], seconds: float = 300) -> dict:
        deadline = time.monotonic() + seconds
        while not until(found := self.job(job_id)):
            assert time.monotonic() < deadline, found
            time.sleep(0.05)
        return found


def started_vault(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    home = tmp_path / "home"
    env = pds_env(home)
    subprocess.run([*PDS, "init"], env=env, check=True, capture_output=True)
    return home, env


def vault_counts(home: Path) -> tuple[int, int, list[tuple]]:
    with Vault.open(load_settings({"PDS_HOME": str(home)}), PASSPHRASE) as v:
        rows = v.conn.execute("SELECT id, state, attempts FROM jobs ORDER BY id").fetchall()
        return v.status()["records"], len(v.sources()), rows


@pytest.mark.slow
def test_a_real_server_imports_uploads_in_the_background(tmp_path) -> None:
    home, env = started_vault(tmp_path)
    port = free_port()
    env["PDS_ISSUER"] = base = f"http://127.0.0.1:{port}"
    files = [midata(tmp_path / f"s{n}.csv", 40 * n, f"S{n}") for n in (1, 2)]
    with serving(env, port, tmp_path / "serve.log", workers=2):
        owner = Owner(base)
        owner.sign_in()
        ids = [owner.upload(path) for path in (*files, files[0])]  # the first one twice
        done = [owner.wait(j, lambda job: job["state"] == "done") for j in ids]
        assert [(d["result"]["new"], d["result"]["duplicate"]) for d in done] == [
            (40, 0),
            (80, 0),
            (0, 40),
        ]
        assert [d["bytes_done"] == d["bytes_total"] for d in done] == [True] * 3
        status, headers, page = owner.get(f"/jobs/{ids[1]}")
        assert status == 200
        assert b'<p class="ok">s2.csv: 80 new, 0 already present, 0 rejected (midata)</p>' in page
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert owner.get("/jobs/12345.json")[0] == 404
        assert Owner(base).get(f"/jobs/{ids[0]}.json")[0] == 302  # not signed in
    assert sorted(p.name for p in (home / "jobs").iterdir()) == []
    assert vault_counts(home) == (120, 2, [(1, "done", 1), (2, "done", 1), (3, "done", 1)])


@pytest.mark.slow
def test_a_server_killed_mid_import_resumes_the_job_after_a_restart(tmp_path) -> None:
    home, env = started_vault(tmp_path)
    port = free_port()
    env["PDS_ISSUER"] = base = f"http://127.0.0.1:{port}"
    rows = 300_000
    big = midata(tmp_path / "big.csv", rows)
    with serving(env, port, tmp_path / "serve.log", workers=2) as proc:
        owner = Owner(base)
        owner.sign_in()
        job_id = owner.upload(big)
        running = owner.wait(job_id, lambda job: job["state"] == "running" and job["bytes_done"])
        assert 0 < running["bytes_done"] < running["bytes_total"] == big.stat().st_size
        os.killpg(proc.pid, signal.SIGKILL)  # the master and its workers, mid-import
        proc.wait()
    records, sources, rows_left = vault_counts(home)
    assert (records, sources, rows_left) == (0, 0, [(job_id, "running", 1)])
    assert any(p.name.startswith("upload-") for p in (home / "jobs").iterdir())
    with serving(env, port, tmp_path / "serve-2.log", workers=2):
        owner = Owner(base)
        owner.sign_in()
        done = owner.wait(job_id, lambda job: job["finished_at"] is not None)
        assert (done["state"], done["result"]["new"], done["result"]["duplicate"]) == (
            "done",
            rows,
            0,
        )
    assert vault_counts(home) == (rows, 1, [(job_id, "done", 2)])
    assert sorted(p.name for p in (home / "jobs").iterdir()) == []


# -- names and parts an upload may bring --------------------------------------------------


def test_short_name_keeps_the_extension_and_whole_characters() -> None:
    assert jobs.short_name("statement.csv") == "statement.csv"
    assert jobs.short_name("a" * 196 + ".csv") == "a" * 196 + ".csv"  # 200 bytes: kept
    assert jobs.short_name("a" * 197 + ".csv") == "a" * 193 + "….csv"
    assert jobs.short_name("a" * 5000 + ".csv") == "a" * 193 + "….csv"
    assert jobs.short_name("ü" * 5000 + ".csv") == "ü" * 96 + "….csv"  # 2 bytes each
    assert jobs.short_name("日本" * 2500 + ".ofx") == "日本" * 32 + "….ofx"  # 3 bytes each
    assert jobs.short_name("€" * 67) == "€" * 65 + "…"  # no extension
    assert jobs.short_name("b" * 300 + "." + "c" * 40) == "b" * 197 + "…"  # not an extension
    for name in ("ü" * 5000 + ".csv", "日本" * 2500 + ".ofx", "x" * 999, "é" * 101):
        short = jobs.short_name(name)
        assert len(short.encode()) <= 200
        assert jobs.short_name(short) == short


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ("s" * 5000 + ".csv", "s" * 193 + "….csv"),
        ("Ü" * 5000 + ".csv", "U" * 193 + "….csv"),  # the safe name is ASCII
        ("明細" * 2500 + ".csv", "upload.csv"),  # no ASCII letter: the extension stays
        ("日本語の明細.csv", "upload.csv"),
    ],
)
def test_a_very_long_file_name_is_shortened_and_imports(kit, vault, sent, shown) -> None:
    kit.login()
    job_id = queued_id(post_upload(kit, MIDATA, sent))
    assert status(kit, job_id)["file"] == shown
    assert f"<h1>Importing {shown}</h1>" in kit.http.get(f"/jobs/{job_id}").text
    assert jobs.run_once(vault) == [job_id]
    done = status(kit, job_id)
    assert (done["state"], done["error"], done["file"]) == ("done", None, shown)
    assert done["result"] == {
        "file": shown,
        "connector": "midata",
        "new": 6,
        "duplicate": 0,
        "rejected": 0,
        "source_id": 1,
    }
    assert [s["filename"] for s in vault.sources()] == [shown]
    assert summary_line(kit.http.get(f"/jobs/{job_id}").text) == (
        f"{shown}: 6 new, 0 already present, 0 rejected (midata)"
    )
    assert folder_files(vault) == []


def test_safe_name_keeps_the_extension() -> None:
    from pds.http.web.data import safe_name

    assert [
        safe_name(n)
        for n in (
            "日本.csv",
            "my file.tar.gz",
            "../../etc/midata-spec-example.csv",
            "C:\\Users\\sam\\bank.ofx",
            ".hidden",
            "ÜÜÜ.csv",
            "a.日",
            "",
            "..",
        )
    ] == [
        "upload.csv",
        "my_file.tar.gz",
        "midata-spec-example.csv",
        "bank.ofx",
        "hidden",
        "UUU.csv",
        "a",
        "upload",
        "upload",
    ]


@pytest.mark.parametrize("fields", [("file", "file"), ("file", "other"), ("file", "file", "x")])
def test_two_files_in_one_form_are_refused_and_nothing_is_kept(kit, vault, fields) -> None:
    kit.login()
    page = kit.http.get("/import")
    data: dict = {"csrf_token": csrf(page.text)}
    for n, field in enumerate(fields):
        data.setdefault(field, []).append((io.BytesIO(MIDATA.read_bytes()), f"{'abc'[n]}.csv"))
    resp = kit.http.post("/import", data=data, content_type="multipart/form-data")
    assert resp.status_code == 422
    errors = re.findall(r'<p class="error" role="alert">([^<]*)</p>', resp.text)
    assert errors == [f"Error: this form sent {len(fields)} files; nothing was kept"]
    assert "Hint: Upload one file at a time." in resp.text
    assert folder_files(vault) == []
    assert vault.conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0
    assert vault.status()["records"] == 0
    one = post_upload(kit, MIDATA, "a.csv")  # one file is queued as before
    assert status(kit, queued_id(one))["file"] == "a.csv"


# -- a vault restored from a backup brings back jobs, not their files ------------------------


def test_an_import_running_when_the_backup_was_made_fails_clearly_after_a_restore(
    kit, vault, tmp_path, caplog
) -> None:
    from pds.settings import Settings
    from pds.vault import restore

    kit.login()
    job_id = queued_id(post_upload(kit, MIDATA))
    assert jobs.claim(vault) == (job_id, "import")
    vault.conn.execute("UPDATE jobs SET claimed_by = ? WHERE id = ?", (dead_token(), job_id))
    backup = vault.backup(tmp_path / "while-importing.db")
    elsewhere = Settings(home=tmp_path / "restored", kdf=vault.settings.kdf)
    assert restore(elsewhere, backup, PASSPHRASE)["records"] == 0
    caplog.set_level("INFO", logger="pds.jobs")
    with Vault.open(elsewhere, PASSPHRASE) as restored:
        assert jobs.run_once(restored) == [job_id]
        got = jobs.get(restored, job_id)
        assert (got.state, got.error, got.hint) == (
            "failed",
            "the uploaded file is no longer on the server (was the vault restored from a "
            "backup?); nothing was imported",
            "Upload the file again.",
        )
        assert restored.status()["records"] == 0
        assert restored.conn.execute("SELECT input_path FROM jobs").fetchall() == [(None,)]
        assert jobs.run_once(restored) == []
    assert [r.getMessage() for r in caplog.records] == [
        f"job {job_id} was left running by a stopped server; it runs again",
        f"job {job_id}: the uploaded file is gone; the job failed",
    ]
    assert sorted(p.name for p in (elsewhere.home / "jobs").iterdir()) == []
    # The page of such a job, as the owner sees it.
    (stored,) = folder_files(vault)
    (vault.settings.home / "jobs" / stored).unlink()
    vault.conn.execute("UPDATE jobs SET state = 'queued', claimed_by = NULL")
    assert jobs.run_once(vault) == [job_id]
    page = kit.http.get(f"/jobs/{job_id}")
    assert re.findall(r'<p class="error" role="alert">([^<]*)</p>', page.text) == [
        "Error: the uploaded file is no longer on the server (was the vault restored from a "
        "backup?); nothing was imported"
    ]
    assert "Hint: Upload the file again." in page.text


def test_an_export_whose_file_is_gone_says_so(kit, vault, tmp_path) -> None:
    from pds.settings import Settings
    from pds.vault import restore

    kit.login()
    page = kit.http.get("/export")
    job_id = queued_id(kit.http.post("/export", data={"csrf_token": csrf(page.text)}))
    assert jobs.run_once(vault) == [job_id]
    assert status(kit, job_id)["download"] is True
    elsewhere = Settings(home=tmp_path / "restored", kdf=vault.settings.kdf)
    restore(elsewhere, vault.backup(tmp_path / "b.db"), PASSPHRASE)
    with Vault.open(elsewhere, PASSPHRASE) as restored:
        got = jobs.get(restored, job_id)
        assert (got.state, got.output_ready, got.output_missing) == ("done", False, True)
        with pytest.raises(PdsError) as gone:
            jobs.export_file(restored, job_id)
    assert (gone.value.status, gone.value.message, gone.value.hint) == (
        404,
        "this export's file is no longer on the server (was the vault restored from a backup?)",
        "Export again.",
    )
    (name,) = folder_files(vault)  # the same in the served vault: its file removed
    (vault.settings.home / "jobs" / name).unlink()
    assert status(kit, job_id)["download"] is False
    shown = kit.http.get(f"/jobs/{job_id}")
    assert re.findall(r'<p class="error" role="alert">([^<]*)</p>', shown.text) == [
        "Error: this export&#39;s file is no longer on the server (was the vault restored "
        "from a backup?)"
    ]
    assert "This export was deleted from the server" not in shown.text
    assert '<button type="submit">Export again</button>' in shown.text
    download = kit.http.get(f"/jobs/{job_id}/download")
    assert download.status_code == 404
    assert "no longer on the server (was the vault restored from a backup?)" in download.text
    assert "<p>Export again.</p>" in download.text
