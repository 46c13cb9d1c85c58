"""The counters every worker process shares: ``limits.db``, a small SQLite file beside vault.db.

The rate limits and the failed-login back-off (``pds.http.limits``) count here rather than in
each process's memory (with N ``pds serve`` workers that allowed N times as much) or in
vault.db:

- A successful request at most reads here; only refused or failed ones write. The file is in
  WAL mode with ``synchronous=NORMAL``, so a commit does not wait for the disk, and writers
  queue on ``limits.db-lock`` (``pds.db.locking``), never on the vault's writer lock: a flood of
  failures neither waits for nor delays the access log's commits.
- It survives a restart of ``pds serve`` (a power loss may forget the last counts).
- It is disposable: deleting it (with its ``-wal``, ``-shm`` and ``-lock``) only resets the
  counters, and a file that is not a counter file of this version is emptied and started
  again. Backups do not need it and do not copy it.
- It holds no address and no client id: keys are the first 16 bytes of HMAC-SHA256 of
  them under a key derived from the vault's master key (HKDF-SHA256, info
  ``pds/limits/v1``; a random one on a locked server, shared by its workers but not by the
  next start).

Each process opens its own connection on first use (a connection must not cross a fork),
used by its threads one at a time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pds.db import VaultConnection, transaction
from pds.db.locking import WriterLock

FILE_NAME = "limits.db"
VERSION = 1
_SCHEMA = (
    """CREATE TABLE windows (
        scope TEXT NOT NULL,
        key BLOB NOT NULL,
        opened_at REAL NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (scope, key)
    ) WITHOUT ROWID""",
    "CREATE INDEX windows_by_age ON windows (scope, opened_at)",
    """CREATE TABLE backoff (
        scope TEXT NOT NULL,
        key BLOB NOT NULL,
        failures INTEGER NOT NULL,
        blocked_until REAL NOT NULL,
        last_failure REAL NOT NULL,
        PRIMARY KEY (scope, key)
    ) WITHOUT ROWID""",
    "CREATE INDEX backoff_by_age ON backoff (scope, last_failure)",
)


def counter_key(master: bytes) -> bytes:
    """The HMAC key of the counters' keys: HKDF-SHA256 of the master key, ``pds/limits/v1``."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"pds/limits/v1").derive(
        master
    )


class Counters:
    """The shared counter file at ``path`` (None: a private one in memory, for one process)."""

    def __init__(self, path: Path | None, secret: bytes) -> None:
        self.path = path
        self._secret = secret
        self._lock = threading.Lock()
        self._conns: dict[int, sqlite3.Connection] = {}  # pid -> this process's connection

    def key(self, raw: str) -> bytes:
        """What the file keeps instead of an address or client id."""
        data = raw.encode("utf-8", "backslashreplace")
        return hmac.new(self._secret, data, hashlib.sha256).digest()[:16]

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """This process's connection, for reads (no transaction, no lock on the file)."""
        with self._lock:
            yield self._connection()

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``, queued on ``limits.db-lock``)."""
        with self._lock, transaction(self._connection()) as conn:
            yield conn

    def close(self) -> None:
        with self._lock:
            for conn in self._conns.values():
                conn.close()
            self._conns.clear()

    def _connection(self) -> sqlite3.Connection:
        pid = 0 if self.path is None else os.getpid()
        conn = self._conns.get(pid)
        if conn is None:
            conn = self._conns[pid] = self._open()
        return conn

    def _open(self) -> sqlite3.Connection:
        if self.path is None:
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            self._prepare(conn)
            return conn
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            return self._open_file(self.path)
        except sqlite3.DatabaseError:  # not an SQLite file (damaged): it only held counters
            for suffix in ("", "-wal", "-shm"):
                self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
            return self._open_file(self.path)

    def _open_file(self, path: Path) -> VaultConnection:
        if not path.exists():
            path.touch(mode=0o600)
        conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, factory=VaultConnection
        )
        try:
            conn.writer_lock = WriterLock(path.with_name(path.name + "-lock"))
            conn.execute("PRAGMA busy_timeout=10000")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _prepare(conn: sqlite3.Connection) -> None:
        """Make the tables, or start again on a file of another version."""
        if conn.execute("PRAGMA user_version").fetchone()[0] == VERSION:
            return
        with transaction(conn):
            if conn.execute("PRAGMA user_version").fetchone()[0] != VERSION:  # not made meanwhile
                tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                for (name,) in tables.fetchall():
                    conn.execute(f'DROP TABLE "{name}"')
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={VERSION}")
