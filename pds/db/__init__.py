"""The one door to the database: open vault.db (WAL), set pragmas, run migrations.

Only pds.db speaks SQL: the modules of this package hold every statement, by the tables
they serve (``records``, ``keys``, ``audit``, ...; the tables themselves are made in
``schema``), and the packages above call their functions. A worker keeps one long-lived
connection. The connection is in autocommit mode (``isolation_level=None``): every write
states its own ``BEGIN IMMEDIATE`` ... ``COMMIT`` through ``transaction()``, so nothing is
ever half-committed by an implicit transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from pds.db.locking import WriterLock, begin_immediate, commit, rollback
from pds.db.schema import MIGRATIONS
from pds.diskfull import DiskFull, is_disk_full
from pds.errors import SchemaTooNew, VaultNotFound

SCHEMA_VERSION = 11
BUSY_TIMEOUT_MS = 10_000
"""How long SQLite waits for another writer (after the writer lock's own wait) before a
write fails as busy (``pds.errors.VaultBusy``)."""


class VaultConnection(sqlite3.Connection):
    """A connection with, for the vault's own file, its writer lock (``pds.db.locking``)."""

    writer_lock: WriterLock | None = None
    lock_wait: float | None = None
    """Seconds a write waits for the writer lock (None: ``pds.db.locking.WAIT_SECONDS``)."""

    def close(self) -> None:
        if self.writer_lock is not None:
            self.writer_lock.close()
            self.writer_lock = None
        super().close()


def connect(path: Path) -> VaultConnection:
    """A connection with pds's pragmas: WAL, synchronous=FULL, foreign keys, busy wait."""
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, factory=VaultConnection
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return conn


def database_folder(conn: sqlite3.Connection) -> Path:
    """The folder of the connection's main database file (the vault's folder)."""
    for _, name, file in conn.execute("PRAGMA database_list"):
        if name == "main" and file:
            return Path(file).parent
    return Path(".")


def ping(conn: sqlite3.Connection) -> None:
    """One trivial statement: raises if the database cannot be read (the health check)."""
    conn.execute("SELECT 1").fetchone()


def check_database(conn: sqlite3.Connection) -> None:
    """Read the schema of the file of ``conn``: ``sqlite3.DatabaseError`` if it is not an
    SQLite database."""
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()


def secure_delete(conn: sqlite3.Connection) -> int:
    """The connection's ``secure_delete`` setting (1: deleted content is zeroed)."""
    return conn.execute("PRAGMA secure_delete").fetchone()[0]


def set_secure_delete(conn: sqlite3.Connection, value: int) -> None:
    conn.execute(f"PRAGMA secure_delete={int(value)}")


def checkpoint_wal(conn: sqlite3.Connection) -> bool:
    """Copy the WAL into the database and truncate it; False if a reader kept it from
    completing."""
    return not conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]


def open_db(path: Path, *, create: bool = False, up_to_date: bool = True) -> sqlite_utils.Database:
    """Open (or with ``create`` make) the vault database and bring its schema up to date
    (``up_to_date=False``: leave the schema as it is, for ``pds.vault.upgrade``)."""
    if not create and not path.exists():
        raise VaultNotFound(f"no vault at {path.parent}")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    conn = connect(path)
    try:
        conn.writer_lock = WriterLock(path.with_name(path.name + "-lock"))
        if up_to_date:
            migrate(conn)
    except BaseException:
        conn.close()
        raise
    return sqlite_utils.Database(conn)


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def require_known(version: int) -> None:
    """SchemaTooNew if ``version`` is newer than this pds's ``SCHEMA_VERSION``."""
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"this vault uses schema version {version}, "
            f"but this pds only knows versions up to {SCHEMA_VERSION}",
            hint="Upgrade pds to the version that wrote this vault, or restore an older backup.",
        )


def migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations this vault lacks; refuse a vault from a newer pds."""
    current = schema_version(conn)
    require_known(current)
    for version in range(current + 1, SCHEMA_VERSION + 1):
        with transaction(conn):
            MIGRATIONS[version](conn)
            conn.execute(f"PRAGMA user_version={version}")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (also KeyboardInterrupt);
    queued on the vault's writer lock (``pds.db.locking``).

    A full disk (SQLITE_FULL, in a statement or at COMMIT) makes SQLite roll the
    transaction back itself; then there is nothing left to roll back, and the error is
    raised as ``DiskFull`` naming the vault's folder (``pds.diskfull``)."""
    begin_immediate(conn)
    try:
        try:
            yield conn
        except BaseException:
            rollback(conn)
            raise
        try:
            commit(conn)
        except BaseException:
            rollback(conn)  # a COMMIT that failed can leave it open
            raise
    except (sqlite3.Error, OSError) as exc:
        if not is_disk_full(exc) or isinstance(exc, DiskFull):
            raise
        raise DiskFull(database_folder(conn)) from None


@contextmanager
def atomic(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Join the caller's transaction if there is one, else run in a new ``transaction()``."""
    if conn.in_transaction:
        yield conn
    else:
        with transaction(conn):
            yield conn


@contextmanager
def page_cache(conn: sqlite3.Connection, kib: int) -> Iterator[sqlite3.Connection]:
    """A page cache of ``kib`` KiB for the connection while the block runs (the size it had
    after). A large write (an import's records and search terms) then keeps its dirty pages
    in memory instead of spilling them to the WAL, and writing them again, mid-transaction."""
    (before,) = conn.execute("PRAGMA cache_size").fetchone()
    conn.execute(f"PRAGMA cache_size={-int(kib)}")
    try:
        yield conn
    finally:
        conn.execute(f"PRAGMA cache_size={int(before)}")
