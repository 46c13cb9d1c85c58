"""The writer lock beside vault.db: writers queue on it, and it never decides correctness."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from pds import db as dbmod
from pds.db import locking
from pds.vault import Vault
from tests.conftest import PASSPHRASE


def test_every_vault_connection_has_its_own_lock(vault: Vault) -> None:
    lock = vault.conn.writer_lock
    assert lock.path == vault.settings.db_path.with_name("vault.db-lock")
    assert oct(lock.path.stat().st_mode & 0o777) == "0o600"
    with dbmod.transaction(vault.conn):
        assert lock.held
        other = locking.WriterLock(lock.path)
        try:
            assert other.acquire(wait=0.05) is False  # another connection is writing
        finally:
            other.close()
    assert not lock.held


def _insert_then_fail(vault: Vault) -> None:
    with dbmod.transaction(vault.conn):
        vault.conn.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
        raise RuntimeError("boom")


def test_a_rollback_releases_the_lock(vault: Vault) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        _insert_then_fail(vault)
    assert not vault.conn.writer_lock.held
    assert vault.conn.execute("SELECT count(*) FROM meta WHERE key = 'x'").fetchone() == (0,)


def test_a_waiting_writer_goes_as_soon_as_the_lock_is_free(vault: Vault) -> None:
    waiter = Vault.open(vault.settings, PASSPHRASE)
    lags: list[float] = []
    try:
        for _ in range(3):  # the best of three: a loaded machine only ever adds to the lag
            got: list[float] = []

            def append(got: list[float] = got) -> None:
                waiter.audit("test.wait", actor="owner")
                got.append(time.monotonic())

            with dbmod.transaction(vault.conn):
                thread = threading.Thread(target=append)
                thread.start()
                time.sleep(0.35)  # SQLite's busy handler would now be sleeping 100 ms at a time
                assert got == []  # queued behind the open transaction
            released = time.monotonic()  # committed, lock released
            thread.join(timeout=10)
            assert len(got) == 1
            lags.append(got[0] - released)
        assert min(lags) < 0.05, lags  # woken within the lock's longest pause, not 10s of ms
    finally:
        waiter.close()


def test_without_the_lock_in_time_sqlite_decides(
    vault: Vault, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A stale holder of the advisory lock (it never locked SQLite) cannot stop writes."""
    monkeypatch.setattr(locking, "WAIT_SECONDS", 0.05)
    fd = os.open(vault.conn.writer_lock.path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        before = vault.log.size()
        vault.audit("test.stale", actor="owner")
        assert vault.log.size() == before + 1
        assert not vault.conn.writer_lock.held
    finally:
        os.close(fd)


def test_connections_to_other_files_have_no_lock(tmp_path: Path) -> None:
    conn = dbmod.connect(tmp_path / "backup.db")
    try:
        assert conn.writer_lock is None
        with dbmod.transaction(conn):
            conn.execute("CREATE TABLE t (x)")
        assert isinstance(conn, sqlite3.Connection)
    finally:
        conn.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.db"]
