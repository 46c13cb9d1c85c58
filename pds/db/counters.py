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
used by its threads one at a time. The functions below the class are the only SQL on the
file: fixed windows (``hit_window`` ...) and back-off states (``backoff`` ...), each run on
the connection ``Counters.reading()`` or ``Counters.writing()`` gives.
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
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_NOTADB:
                raise  # busy, locked, I/O: the file is fine; never delete it under a neighbour
            # not an SQLite file (damaged): it only held counters
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
            lock = conn.writer_lock = WriterLock(path.with_name(path.name + "-lock"))
            conn.execute("PRAGMA busy_timeout=10000")
            # Turning a new file to WAL needs it to itself, and SQLite answers "locked" at
            # once rather than wait: workers opening it together queue on the writer lock.
            held = lock.acquire()
            try:
                conn.execute("PRAGMA journal_mode=WAL")
            finally:
                if held:
                    lock.release()
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


# -- fixed windows (``pds.http.limits.RateLimiter``) ----------------------------------------


def hit_window(
    conn: sqlite3.Connection, scope: str, key: bytes, now: float, window: float, keep: int
) -> tuple[float, int]:
    """Count one hit of ``key`` at ``now`` in its window of ``window`` seconds (a new window
    if the last one ended); ``(opened_at, count)`` after it. Opening a window forgets those
    that ended, and all but the ``keep`` most recently opened. In the caller's write."""
    opened, count = conn.execute(
        "INSERT INTO windows (scope, key, opened_at, count) VALUES (?1, ?2, ?3, 1) "
        "ON CONFLICT (scope, key) DO UPDATE SET "
        "count = CASE WHEN ?3 >= opened_at AND ?3 < opened_at + ?4 "
        "THEN count + 1 ELSE 1 END, "
        "opened_at = CASE WHEN ?3 >= opened_at AND ?3 < opened_at + ?4 "
        "THEN opened_at ELSE ?3 END "
        "RETURNING opened_at, count",
        (scope, key, now, window),
    ).fetchall()[0]
    if count == 1:  # a new window: forget ended ones, and the oldest past the cap
        conn.execute(
            "DELETE FROM windows WHERE scope = ? AND opened_at <= ?",
            (scope, now - window),
        )
        conn.execute(
            "DELETE FROM windows WHERE scope = ?1 AND key IN (SELECT key FROM windows "
            "WHERE scope = ?1 ORDER BY opened_at DESC LIMIT -1 OFFSET ?2)",
            (scope, keep),
        )
    return opened, count


def window(conn: sqlite3.Connection, scope: str, key: bytes) -> tuple[float, int] | None:
    """``(opened_at, count)`` of the key's last window, or None."""
    return conn.execute(
        "SELECT opened_at, count FROM windows WHERE scope = ? AND key = ?",
        (scope, key),
    ).fetchone()


def release_window(conn: sqlite3.Connection, scope: str, key: bytes) -> None:
    """Take one hit back from the key's window (never below 0)."""
    conn.execute(
        "UPDATE windows SET count = count - 1 WHERE scope = ? AND key = ? AND count > 0",
        (scope, key),
    )


def windows(conn: sqlite3.Connection, scope: str) -> int:
    """How many keys of ``scope`` have a window remembered."""
    return conn.execute("SELECT COUNT(*) FROM windows WHERE scope = ?", (scope,)).fetchone()[0]


# -- back-off (``pds.http.limits.LoginThrottle``) -------------------------------------------


def backoff(conn: sqlite3.Connection, scope: str, key: bytes) -> tuple[int, float, float] | None:
    """``(failures, blocked_until, last_failure)`` of the key, or None."""
    return conn.execute(
        "SELECT failures, blocked_until, last_failure FROM backoff WHERE scope = ? AND key = ?",
        (scope, key),
    ).fetchone()


def set_backoff(
    conn: sqlite3.Connection,
    scope: str,
    key: bytes,
    *,
    failures: int,
    blocked_until: float,
    last_failure: float,
) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO backoff "
        "(scope, key, failures, blocked_until, last_failure) VALUES (?, ?, ?, ?, ?)",
        (scope, key, failures, blocked_until, last_failure),
    )


def forget_backoff(
    conn: sqlite3.Connection, scope: str, *, failed_before: float, keep: int
) -> None:
    """Forget the keys whose last failure was at or before ``failed_before``, and all but the
    ``keep`` that failed last."""
    conn.execute(
        "DELETE FROM backoff WHERE scope = ? AND last_failure <= ?",
        (scope, failed_before),
    )
    conn.execute(
        "DELETE FROM backoff WHERE scope = ?1 AND key IN (SELECT key FROM backoff "
        "WHERE scope = ?1 ORDER BY last_failure DESC LIMIT -1 OFFSET ?2)",
        (scope, keep),
    )


def clear_backoff(conn: sqlite3.Connection, scope: str, key: bytes) -> None:
    conn.execute("DELETE FROM backoff WHERE scope = ? AND key = ?", (scope, key))
