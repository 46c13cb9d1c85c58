"""The one door to the database: open vault.db (WAL), set pragmas, run migrations.

Only pds.db speaks SQL: the modules of this package hold every statement, by the tables
they serve (``records``, ``keys``, ``audit``, ...), and the packages above call their
functions. A worker keeps one long-lived connection. The connection is
in autocommit mode (``isolation_level=None``): every write states its own ``BEGIN
IMMEDIATE`` ... ``COMMIT`` through ``transaction()``, so nothing is ever half-committed by
an implicit transaction.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from pds.db.locking import WriterLock, begin_immediate, end
from pds.diskfull import DiskFull, is_disk_full
from pds.errors import SchemaTooNew, VaultNotFound

SCHEMA_VERSION = 7
BUSY_TIMEOUT_MS = 10_000
"""How long SQLite waits for another writer (after the writer lock's own wait) before a
write fails as busy (``pds.errors.VaultBusy``)."""


def _v1(conn: sqlite3.Connection) -> None:
    _run_script(
        conn,
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
        CREATE TABLE category_keys (
            category TEXT PRIMARY KEY,
            version INTEGER NOT NULL,
            salt BLOB,
            created_at TEXT NOT NULL,
            destroyed_at TEXT
        );
        CREATE TABLE sources (
            id INTEGER PRIMARY KEY,
            connector TEXT NOT NULL,
            filename TEXT NOT NULL,
            digest BLOB NOT NULL,
            imported_at TEXT NOT NULL,
            new INTEGER NOT NULL DEFAULT 0,
            duplicate INTEGER NOT NULL DEFAULT 0,
            rejected INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE records (
            id INTEGER PRIMARY KEY,
            category TEXT NOT NULL,
            source_id INTEGER NOT NULL REFERENCES sources(id),
            occurred_at TEXT NOT NULL,
            dedup_key BLOB NOT NULL UNIQUE,
            key_version INTEGER NOT NULL,
            nonce BLOB NOT NULL,
            ciphertext BLOB NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX records_by_time ON records (category, occurred_at, id);
        CREATE INDEX records_by_source ON records (source_id);
        """,
    )


def _v2(conn: sqlite3.Connection) -> None:
    """The access log (RFC 9162 tree): entries, completed perfect subtrees, checkpoints."""
    _run_script(
        conn,
        """
        CREATE TABLE audit_log (
            idx INTEGER PRIMARY KEY,
            entry TEXT NOT NULL,
            leaf BLOB NOT NULL
        );
        CREATE TABLE audit_nodes (
            level INTEGER NOT NULL,
            idx INTEGER NOT NULL,
            hash BLOB NOT NULL,
            PRIMARY KEY (level, idx)
        ) WITHOUT ROWID;
        CREATE TABLE audit_checkpoints (
            size INTEGER PRIMARY KEY,
            root BLOB NOT NULL,
            note TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        """,
    )
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('audit_origin', ?)",
        ("pds.vault/" + secrets.token_hex(16),),
    )


def _v3(conn: sqlite3.Connection) -> None:
    """OAuth state: clients, authorization codes, grants and tokens (pds.oauth.store).

    Secrets, codes and tokens are stored only as SHA-256 hashes. Every token belongs to a
    grant; revoking the grant kills its tokens.
    """
    _run_script(
        conn,
        """
        CREATE TABLE clients (
            client_id TEXT PRIMARY KEY,
            secret_hash BLOB,
            name TEXT NOT NULL,
            redirect_uris TEXT NOT NULL,
            auth_method TEXT NOT NULL,
            verified INTEGER NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        );
        CREATE TABLE grants (
            id INTEGER PRIMARY KEY,
            client_id TEXT NOT NULL REFERENCES clients(client_id),
            scope TEXT NOT NULL,
            access TEXT NOT NULL,
            purpose TEXT,
            expires_at INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT,
            revoked_reason TEXT
        );
        CREATE INDEX grants_by_client ON grants (client_id);
        CREATE TABLE authorization_codes (
            code_hash BLOB PRIMARY KEY,
            client_id TEXT NOT NULL REFERENCES clients(client_id),
            grant_id INTEGER NOT NULL REFERENCES grants(id),
            redirect_uri TEXT,
            scope TEXT NOT NULL,
            code_challenge TEXT NOT NULL,
            code_challenge_method TEXT NOT NULL,
            expires_at INTEGER NOT NULL,
            used INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        CREATE INDEX authorization_codes_by_expiry ON authorization_codes (expires_at);
        CREATE TABLE tokens (
            id INTEGER PRIMARY KEY,
            grant_id INTEGER NOT NULL REFERENCES grants(id),
            client_id TEXT NOT NULL REFERENCES clients(client_id),
            access_hash BLOB NOT NULL UNIQUE,
            refresh_hash BLOB UNIQUE,
            scope TEXT NOT NULL,
            issued_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            rotated_at INTEGER,
            revoked_at INTEGER
        );
        CREATE INDEX tokens_by_grant ON tokens (grant_id);
        """,
    )


def _v4(conn: sqlite3.Connection) -> None:
    """Profile changes, webhook subscriptions and their deliveries (pds.webhooks.propagation).

    A change holds the names of the changed fields, never values. A subscription stores a
    random salt, not its secret: the secret is derived from the master key and the salt.
    ``deliveries`` is the delivery log, one row per attempt. ``intention_expiry`` keeps each
    intention's last day in plaintext so expired ones are removed without decrypting.
    """
    _run_script(
        conn,
        """
        CREATE TABLE profile_changes (
            seq INTEGER PRIMARY KEY,
            category TEXT NOT NULL,
            fields TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE TABLE subscriptions (
            id TEXT PRIMARY KEY,
            client_id TEXT NOT NULL REFERENCES clients(client_id),
            grant_id INTEGER NOT NULL REFERENCES grants(id),
            url TEXT NOT NULL,
            categories TEXT NOT NULL,
            salt BLOB NOT NULL,
            created_at TEXT NOT NULL,
            deleted_at TEXT
        );
        CREATE INDEX subscriptions_by_grant ON subscriptions (grant_id);
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            subscription_id TEXT NOT NULL REFERENCES subscriptions(id),
            seq INTEGER NOT NULL REFERENCES profile_changes(seq),
            attempt INTEGER NOT NULL,
            status TEXT NOT NULL,
            next_attempt_at INTEGER NOT NULL,
            claimed_until INTEGER,
            last_error TEXT,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
        CREATE TABLE intention_expiry (
            record_id INTEGER PRIMARY KEY,
            expires_at TEXT NOT NULL
        );
        CREATE INDEX intention_expiry_by_day ON intention_expiry (expires_at);
        """,
    )


def _v5(conn: sqlite3.Connection) -> None:
    """Consent receipts (pds.oauth.receipts): one signed JWS per grant as approved, and one
    more each time the grant is narrowed. Receipts hold no record contents."""
    _run_script(
        conn,
        """
        CREATE TABLE receipts (
            id INTEGER PRIMARY KEY,
            grant_id INTEGER NOT NULL REFERENCES grants(id),
            receipt_id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            jws TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX receipts_by_grant ON receipts (grant_id, id);
        """,
    )


def _v6(conn: sqlite3.Connection) -> None:
    """Data-rights requests to businesses (pds.rights.requests): GDPR Art. 15 access and
    Art. 17 erasure, their one-month deadline, and the import that fulfilled one."""
    _run_script(
        conn,
        """
        CREATE TABLE rights_requests (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('access', 'erasure')),
            business TEXT NOT NULL,
            client_id TEXT REFERENCES clients(client_id),
            grant_id INTEGER REFERENCES grants(id),
            created_at TEXT NOT NULL,
            sent_on TEXT NOT NULL,
            due_on TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'fulfilled', 'withdrawn')),
            fulfilled_at TEXT,
            fulfilled_by_source INTEGER REFERENCES sources(id) ON DELETE SET NULL,
            note TEXT
        );
        CREATE INDEX rights_requests_by_status ON rights_requests (status, due_on)
        """,
    )


def _v7(conn: sqlite3.Connection) -> None:
    """Background jobs (pds.jobs): a web upload's import or an export, queued by a request
    and run by a server thread. Plaintext holds what ``sources`` already holds (the file's
    name, its connector, counts); the messages of a job, which may quote a file's rows,
    are sealed in ``sealed`` under a key derived from the master key and ``salt``."""
    _run_script(
        conn,
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('import', 'export')),
            state TEXT NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'running', 'done', 'failed')),
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            claimed_by TEXT,
            input_path TEXT,
            filename TEXT,
            connector TEXT,
            skip_bad INTEGER NOT NULL DEFAULT 0,
            bytes_total INTEGER,
            bytes_done INTEGER NOT NULL DEFAULT 0,
            records INTEGER,
            result TEXT,
            salt BLOB NOT NULL,
            sealed BLOB,
            output_path TEXT,
            output_name TEXT,
            output_removed_at TEXT
        );
        CREATE INDEX jobs_by_state ON jobs (state, id)
        """,
    )


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    # executescript() would COMMIT the surrounding transaction first; run statement by statement.
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _v1,
    2: _v2,
    3: _v3,
    4: _v4,
    5: _v5,
    6: _v6,
    7: _v7,
}


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
            end(conn, "ROLLBACK")
            raise
        try:
            end(conn, "COMMIT")
        except BaseException:
            end(conn, "ROLLBACK")  # a COMMIT that failed can leave it open
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
