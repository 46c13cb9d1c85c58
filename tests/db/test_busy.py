"""A vault held by a long write (an import holds its write transaction from start to end):
other writes answer "busy" (503 with Retry-After in each endpoint's shape; the CLI's
one-line error, exit 1), never a 500 or "a bug"; `pds backup` still copies it."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from click.testing import CliRunner

import pds.vault as vaultmod
from pds import db as dbmod
from pds.cli import cli
from pds.db import locking, transaction
from pds.errors import VaultBusy
from pds.vault import Vault
from tests.conftest import PASSPHRASE, fixture
from tests.oauth_kit import bearer, csrf, pkce
from tests.vault.test_durability import PDS, pds_env

BUSY = "the vault is busy: another write to it (an import?) is under way"
WEB_HINT = "Try again in a minute, once it is done (an import&#39;s page shows its progress)."


@pytest.fixture
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer gives up after 0.05 s for the lock and 0.05 s in SQLite (not 10 + 10 s)."""
    monkeypatch.setattr(locking, "WAIT_SECONDS", 0.05)
    monkeypatch.setattr(dbmod, "BUSY_TIMEOUT_MS", 50)


@contextmanager
def held(vault: Vault) -> Iterator[Vault]:
    """The vault's write transaction (and writer lock) held by another connection, as a
    running import holds them; what it wrote is committed when the block ends."""
    with Vault.with_keyring(vault.settings, vault.keyring) as other, transaction(other.conn):
        n = other.conn.execute("SELECT count(*) FROM meta WHERE key LIKE 'held-%'").fetchone()[0]
        other.conn.execute("INSERT INTO meta VALUES (?, 'as an import holds it')", (f"held-{n}",))
        yield other


def log_size(vault: Vault) -> int:
    return vault.conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]


def shorten_app_waits(kit) -> None:
    for v in kit.app.extensions["pds_vaults"].values():
        v.conn.execute("PRAGMA busy_timeout=50")


# -- the web ----------------------------------------------------------------------------------


def test_owner_pages_answer_503_html_while_the_vault_is_held(kit, vault, short_waits) -> None:
    assert kit.login().status_code == 303
    stranger = kit.app.test_client()
    page = stranger.get("/login")
    shorten_app_waits(kit)
    before = log_size(vault)
    for n in range(3):  # the first, second and third failed sign-in alike
        with held(vault):
            resp = stranger.post(
                "/login", data={"passphrase": f"wrong {n}", "csrf_token": csrf(page.text)}
            )
        assert resp.status_code == 503
        assert resp.headers["Retry-After"] == "30"
        assert resp.mimetype == "text/html"
        assert "<h1>Busy</h1>" in resp.text
        assert f'<p class="error" role="alert">{BUSY}</p>' in resp.text
        assert f"<p>{WEB_HINT}</p>" in resp.text
    # The refused sign-ins wrote no entry (the holder's own write did commit), and they
    # still count as failures: being busy opens no way around the throttle.
    assert log_size(vault) == before
    held_rows = "SELECT count(*) FROM meta WHERE key LIKE 'held-%'"
    assert vault.conn.execute(held_rows).fetchone() == (3,)
    throttled = stranger.post("/login", data={"passphrase": "x", "csrf_token": csrf(page.text)})
    assert throttled.status_code == 429
    with held(vault):
        assert kit.http.get("/data").status_code == 200  # reading is never refused
        assert kit.http.get("/").status_code == 200
        history = kit.http.get("/history")  # signs a checkpoint of the grown log: a write
    assert (history.status_code, history.headers["Retry-After"]) == (503, "30")
    assert f'<p class="error" role="alert">{BUSY}</p>' in history.text
    assert kit.http.get("/history").status_code == 200


def test_an_owner_action_refused_as_busy_is_the_503_not_a_400(kit, vault, short_waits) -> None:
    from pds.oauth import store

    client_id, secret = kit.add_client("Acme Bank")
    kit.tokens(client_id, secret, scope="read:transactions")
    grant = store.list_grants(vault.conn)[-1]
    page = kit.http.get(f"/grants/{grant.id}/revoke")  # signed in by the consent above
    shorten_app_waits(kit)
    for _ in range(2):
        with held(vault):
            resp = kit.http.post(f"/grants/{grant.id}/revoke", data={"csrf_token": csrf(page.text)})
        assert (resp.status_code, resp.headers["Retry-After"]) == (503, "30")
        assert f'<p class="error" role="alert">{BUSY}</p>' in resp.text
        assert store.get_grant(vault.conn, grant.id).revoked_at is None
    done = kit.http.post(f"/grants/{grant.id}/revoke", data={"csrf_token": csrf(page.text)})
    assert done.status_code == 303
    assert store.get_grant(vault.conn, grant.id).revoked_at is not None


def test_oauth_token_endpoint_answers_temporarily_unavailable(kit, vault, short_waits) -> None:
    client_id, secret = kit.add_client()
    verifier, challenge = pkce()
    code = kit.code(client_id, challenge)
    shorten_app_waits(kit)
    with held(vault):
        resp = kit.redeem(client_id, secret, code, verifier)
    assert resp.status_code == 503
    assert resp.json == {"error": "temporarily_unavailable", "error_description": BUSY}
    assert resp.headers["Retry-After"] == "30"
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Pragma"] == "no-cache"
    again = kit.redeem(client_id, secret, code, verifier)  # the code was not used up
    assert again.status_code == 200, again.text
    assert set(again.json) >= {"access_token", "refresh_token"}


def test_the_api_answers_problem_json(kit, vault, short_waits) -> None:
    client_id, secret = kit.add_client()
    token = kit.tokens(client_id, secret)["access_token"]
    shorten_app_waits(kit)
    before = log_size(vault)
    statements: list[str] = []
    for v in kit.app.extensions["pds_vaults"].values():
        v.conn.set_trace_callback(statements.append)
    with held(vault):
        resp = kit.http.get("/api/v1/grant", headers=bearer(token))
    for v in kit.app.extensions["pds_vaults"].values():
        v.conn.set_trace_callback(None)
    # One write tried (one wait): no "refused" entry is tried after the busy one.
    assert statements.count("BEGIN IMMEDIATE") == 1
    assert resp.status_code == 503
    assert resp.mimetype == "application/problem+json"
    assert resp.headers["Retry-After"] == "30"
    assert resp.json == {
        "type": "https://pds.invalid/problems/vault_busy",
        "title": "Vault busy",
        "status": 503,
        "detail": BUSY,
        "hint": "Try again when it is done.",
        "instance": "/api/v1/grant",
    }
    assert log_size(vault) == before
    assert kit.http.get("/api/v1/grant", headers=bearer(token)).status_code == 200


def test_sqlite_busy_from_any_write_is_the_same_503_and_other_errors_stay_500(kit, vault) -> None:
    db_path = str(vault.settings.db_path)

    def raw_write() -> str:  # a write outside pds.db.locking: SQLite's own error reaches Flask
        conn = sqlite3.connect(db_path, timeout=0.05, isolation_level=None)
        try:
            conn.execute("INSERT INTO meta VALUES ('raw', 'x')")
        finally:
            conn.close()
        return "written"

    def broken() -> str:
        vault.conn.execute("SELECT * FROM no_such_table")
        return "never"

    kit.app.add_url_rule("/api/v1/raw-write", view_func=raw_write)
    kit.app.add_url_rule("/raw-write", "raw_page", view_func=raw_write)
    kit.app.add_url_rule("/broken", view_func=broken)
    with held(vault):
        api = kit.http.get("/api/v1/raw-write")
        page = kit.http.get("/raw-write")
    assert (api.status_code, api.json["detail"], api.headers["Retry-After"]) == (503, BUSY, "30")
    assert (page.status_code, page.mimetype) == (503, "text/html")
    assert f'<p class="error" role="alert">{BUSY}</p>' in page.text
    assert kit.http.get("/raw-write").text == "written"
    kit.app.config["PROPAGATE_EXCEPTIONS"] = False
    assert kit.http.get("/broken").status_code == 500  # not every OperationalError is busy


# -- the CLI ----------------------------------------------------------------------------------


@pytest.fixture
def runner(vault: Vault) -> CliRunner:
    return CliRunner(env={"PDS_HOME": str(vault.settings.home), "PDS_PASSPHRASE": PASSPHRASE})


def test_cli_writes_say_busy_in_one_line(vault, runner, short_waits) -> None:
    statement = fixture("midata/midata-spec-example.csv")
    with held(vault):
        for _ in range(2):
            result = runner.invoke(cli, ["import", str(statement)])
            assert result.exit_code == 1
            assert result.stdout == ""
            assert result.stderr == f"Error: {BUSY}\nHint: Try again when it is done.\n"
    assert vault.status()["records"] == 0
    done = runner.invoke(cli, ["import", str(statement)])
    assert done.exit_code == 0, done.output
    assert vault.status()["records"] == 6


def test_cli_maps_sqlite_busy_outside_pds_locking(vault, runner, monkeypatch) -> None:
    """A command whose write meets SQLite's own "database is locked" says busy too."""
    db_path = vault.settings.db_path

    @cli.command("raw-write-for-test", hidden=True)
    def raw_write_for_test() -> None:
        conn = sqlite3.connect(db_path, timeout=0.05, isolation_level=None)
        conn.execute("INSERT INTO meta VALUES ('raw', 'x')")

    try:
        with held(vault):
            result = runner.invoke(cli, ["raw-write-for-test"])
        assert (result.exit_code, result.stderr) == (
            1,
            f"Error: {BUSY}\nHint: Try again when it is done.\n",
        )
    finally:
        cli.commands.pop("raw-write-for-test")


def test_backup_during_an_import_copies_the_vault_as_it_was_and_logs_after(
    vault, runner, tmp_path, short_waits, monkeypatch
) -> None:
    monkeypatch.setattr(vaultmod, "BACKUP_FIRST_WAIT", 0.05)
    target = tmp_path / "during.db"
    released = threading.Event()
    entered = threading.Event()

    def import_running() -> None:  # holds the vault until the copy is on disk
        with held(vault):
            entered.set()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if target.exists() and target.stat().st_size > 0:  # the copy is written
                    break
                time.sleep(0.01)
            time.sleep(0.2)
        released.set()

    holder = threading.Thread(target=import_running)
    holder.start()
    entered.wait()
    result = runner.invoke(cli, ["backup", str(target), "--json"])
    holder.join()
    assert released.is_set()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"backup": str(target), "bytes": target.stat().st_size}
    last = vault.conn.execute("SELECT entry FROM audit_log ORDER BY idx DESC LIMIT 1")
    assert json.loads(last.fetchone()[0])["action"] == "backup"  # logged once the import ended
    copy = sqlite3.connect(target)
    try:
        assert copy.execute("SELECT count(*) FROM meta WHERE key LIKE 'held-%'").fetchone() == (0,)
        actions = [json.loads(e)["action"] for (e,) in copy.execute("SELECT entry FROM audit_log")]
        assert actions == ["vault.init"]  # the copy is the vault as it was
    finally:
        copy.close()
    assert vault.conn.execute("SELECT count(*) FROM meta WHERE key LIKE 'held-%'").fetchone() == (
        1,
    )


def test_backup_that_cannot_log_leaves_no_file(vault, runner, tmp_path, short_waits, monkeypatch):
    monkeypatch.setattr(vaultmod, "BACKUP_FIRST_WAIT", 0.05)
    monkeypatch.setattr(vaultmod, "BACKUP_LOG_WAIT", 0.2)
    before = log_size(vault)
    folder = tmp_path / "bk"
    folder.mkdir()
    with held(vault):
        for args in (["backup", str(tmp_path / "b.db")], ["backup", str(folder), "--keep", "3"]):
            result = runner.invoke(cli, args)
            assert result.exit_code == 1
            assert result.stderr == (
                f"Error: {BUSY}; no backup was made\nHint: Try again when it is done.\n"
            )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bk", "vault"]
    assert list(folder.iterdir()) == []
    assert log_size(vault) == before


def test_waiting_restores_the_connection_waits(vault) -> None:
    conn = vault.conn
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (10_000,)
    with locking.waiting(conn, 0.25):
        assert conn.execute("PRAGMA busy_timeout").fetchone() == (250,)
        assert conn.lock_wait == 0.25
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (10_000,)
    assert conn.lock_wait is None
    assert locking.is_busy(VaultBusy()) is True
    assert locking.is_busy(sqlite3.OperationalError("no such table: x")) is False
    assert locking.is_busy(ValueError("database is locked")) is False


@pytest.mark.slow
def test_the_backup_timer_command_during_an_import_in_another_process(vault, tmp_path) -> None:
    """`pds backup DIR --keep 3` as its own process, with pds's real waits, while this
    process holds the vault as a running web import does: it backs up, exit 0."""
    folder = tmp_path / "daily"
    folder.mkdir()
    with held(vault):
        proc = subprocess.Popen(
            [*PDS, "backup", str(folder), "--keep", "3", "--json"],
            env=pds_env(vault.settings.home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size for p in folder.iterdir()):  # the copy is written
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.3)
        assert proc.poll() is None  # waiting for the import to end, to log its entry
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (0, "")
    (made,) = folder.iterdir()
    assert json.loads(out) == {"backup": str(made), "bytes": made.stat().st_size, "removed": []}
    last = vault.conn.execute("SELECT entry FROM audit_log ORDER BY idx DESC LIMIT 1")
    assert json.loads(last.fetchone()[0])["action"] == "backup"


@contextmanager
def held_long(vault: Vault) -> Iterator[Vault]:
    """As :func:`held`, marked as a long write (``pds.db.locking.long_write``), as an import
    marks its transaction."""
    with (
        Vault.with_keyring(vault.settings, vault.keyring) as other,
        locking.long_write(other.conn),
        transaction(other.conn),
    ):
        other.conn.execute("INSERT OR REPLACE INTO meta VALUES ('held-long', 'an import')")
        yield other


def test_a_write_behind_an_import_is_busy_within_two_seconds_not_twenty(vault) -> None:
    """Default waits: while a long write holds the vault, a write gives up after
    LONG_WRITER_WAIT (a request slot is not held for 20 s); the second, third alike."""
    assert locking.LONG_WRITER_WAIT == 2.0
    for _ in range(3):
        with held_long(vault):
            started = time.monotonic()
            with pytest.raises(VaultBusy) as caught, transaction(vault.conn):
                vault.conn.execute("INSERT INTO meta VALUES ('mine', 'x')")
            took = time.monotonic() - started
            assert 2.0 <= took < 4.0, took
            assert str(caught.value) == BUSY
    assert vault.conn.execute("SELECT count(*) FROM meta WHERE key = 'mine'").fetchone() == (0,)
    with transaction(vault.conn):  # once it is over, writes go through
        vault.conn.execute("INSERT INTO meta VALUES ('mine', 'x')")


def test_a_second_long_write_is_busy_at_once_and_a_patient_writer_still_waits(
    vault, monkeypatch
) -> None:
    monkeypatch.setattr(locking, "LONG_WRITER_WAIT", 0.1)
    with held_long(vault):
        started = time.monotonic()
        with pytest.raises(VaultBusy), locking.long_write(vault.conn):
            pass
        assert time.monotonic() - started < 0.5
    done = threading.Event()

    def hold_then_let_go() -> None:
        with held_long(vault):
            done.set()
            time.sleep(1.0)

    holder = threading.Thread(target=hold_then_let_go)
    holder.start()
    assert done.wait(10)
    started = time.monotonic()
    with locking.waiting(vault.conn, 11), transaction(vault.conn):  # as pds backup logs
        vault.conn.execute("INSERT INTO meta VALUES ('patient', 'x')")
    holder.join()
    assert 0.5 < time.monotonic() - started < 5.0
    assert vault.conn.execute("SELECT value FROM meta WHERE key = 'patient'").fetchone() == ("x",)
