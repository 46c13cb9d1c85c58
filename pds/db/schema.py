"""The schema of vault.db, one migration per version: ``MIGRATIONS[n]`` takes a vault from
version n - 1 to n (``PRAGMA user_version``). ``pds.db.migrate`` runs the ones a vault
lacks, each in its own transaction; a migration never changes once released.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable


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
    """Profile changes, webhook subscriptions and their deliveries (pds.profile.changes,
    pds.webhooks).

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


def _v8(conn: sqlite3.Connection) -> None:
    """The search index (pds.vault.search): one row per distinct word of a record, the word
    as a keyed hash (``term``), beside the record's category and time (plaintext in
    ``records`` already) so a page of matches is read from this table alone. A trigger
    deletes a record's terms with the record, whichever code deletes it. ``search_salt``
    derives the hashing key from the master key. A vault with records is indexed on its
    first unlock (the key is needed); ``search_indexed`` marks an index that is complete.

    Also ``records_by_source_category``: the sources holding a category (the data page's
    filter); it replaces ``records_by_source``, which it covers."""
    _run_script(
        conn,
        """
        CREATE TABLE IF NOT EXISTS search_terms (
            term BLOB NOT NULL,
            category TEXT NOT NULL,
            occurred_at TEXT NOT NULL,
            record_id INTEGER NOT NULL,
            PRIMARY KEY (term, category, occurred_at, record_id)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS search_terms_by_record ON search_terms (record_id);
        CREATE INDEX IF NOT EXISTS records_by_source_category ON records (source_id, category);
        DROP INDEX IF EXISTS records_by_source
        """,
    )
    conn.execute(  # one statement with a ";" inside: not through _run_script
        "CREATE TRIGGER IF NOT EXISTS search_terms_of_deleted_record AFTER DELETE ON records BEGIN "
        "DELETE FROM search_terms WHERE record_id = OLD.id; END"
    )
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('search_salt', ?)",
        (secrets.token_bytes(16),),
    )
    if conn.execute("SELECT NOT EXISTS (SELECT 1 FROM records)").fetchone()[0]:
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('search_indexed', '1')")


def _v9(conn: sqlite3.Connection) -> None:
    """Spending categories (pds.vault.spending): the category the owner's rules gave a
    transaction, one row per record, the name sealed with the transactions key (a name
    such as "Gambling" is personal); the row goes with its record."""
    _run_script(
        conn,
        """
        CREATE TABLE IF NOT EXISTS spending (
            record_id INTEGER PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
            key_version INTEGER NOT NULL,
            nonce BLOB NOT NULL,
            ciphertext BLOB NOT NULL
        )
        """,
    )


def _v10(conn: sqlite3.Connection) -> None:
    """The change feed of records (pds.db.changes): one ``record_changes`` row per import
    and category (its first and last record id and how many), per record written through
    the API, per replacement and per forgetting, never a payload. ``seq`` is AUTOINCREMENT:
    a deleted row's number is never given again, so a reader's position stays valid. A
    trigger logs a deleted record that no row already announces as forgotten (whichever
    code deletes it); the ids the feed names are never given to another record
    (``pds.db.records.next_id``). ``deliveries`` is rebuilt so an attempt sends either a
    profile change (``seq``) or a record change (``change_seq``); ``meta`` key
    ``record_changes_queued`` is the last record change whose deliveries are queued."""
    _run_script(
        conn,
        """
        CREATE TABLE IF NOT EXISTS record_changes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            category TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('added', 'changed', 'forgotten')),
            first_id INTEGER NOT NULL,
            last_id INTEGER NOT NULL,
            count INTEGER NOT NULL,
            source_id INTEGER
        );
        CREATE INDEX IF NOT EXISTS record_changes_by_category ON record_changes (category, seq);
        CREATE INDEX IF NOT EXISTS record_changes_by_last_id ON record_changes (last_id);
        CREATE TABLE deliveries_v10 (
            id INTEGER PRIMARY KEY,
            subscription_id TEXT NOT NULL REFERENCES subscriptions(id),
            seq INTEGER REFERENCES profile_changes(seq),
            change_seq INTEGER REFERENCES record_changes(seq),
            attempt INTEGER NOT NULL,
            status TEXT NOT NULL,
            next_attempt_at INTEGER NOT NULL,
            claimed_until INTEGER,
            last_error TEXT,
            updated_at TEXT NOT NULL,
            CHECK ((seq IS NULL) <> (change_seq IS NULL))
        );
        INSERT INTO deliveries_v10 (id, subscription_id, seq, attempt, status, next_attempt_at,
            claimed_until, last_error, updated_at)
            SELECT id, subscription_id, seq, attempt, status, next_attempt_at, claimed_until,
            last_error, updated_at FROM deliveries;
        DROP TABLE deliveries;
        ALTER TABLE deliveries_v10 RENAME TO deliveries;
        CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);
        CREATE INDEX IF NOT EXISTS deliveries_by_change ON deliveries (change_seq)
        """,
    )
    conn.execute(  # one statement with a ";" inside: not through _run_script
        "CREATE TRIGGER IF NOT EXISTS record_changes_of_deleted_record AFTER DELETE ON records "
        "WHEN NOT EXISTS (SELECT 1 FROM record_changes WHERE seq = "
        "(SELECT max(seq) FROM record_changes) AND kind <> 'added' "
        "AND category = OLD.category AND OLD.id BETWEEN first_id AND last_id) BEGIN "
        "INSERT INTO record_changes (at, category, kind, first_id, last_id, count, source_id) "
        "VALUES (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), OLD.category, 'forgotten', OLD.id, "
        "OLD.id, 1, OLD.source_id); END"
    )


def _v11(conn: sqlite3.Connection) -> None:
    """The search index made again (pds.vault.search): without the words of a record's
    amounts, readings, dates, times and coordinates, and without ``search_terms_by_record``
    (as large as the table, and as costly to write). ``search_records`` keeps each
    record's terms in one blob (12 bytes a term), and the delete trigger removes the rows
    that blob names, by primary key. The old rows are dropped and ``search_indexed``
    cleared, so the first unlock indexes every record again (a vault with no record is
    complete as it is)."""
    _run_script(
        conn,
        """
        DROP TRIGGER IF EXISTS search_terms_of_deleted_record;
        DROP TABLE IF EXISTS search_terms;
        CREATE TABLE search_terms (
            term BLOB NOT NULL,
            category TEXT NOT NULL,
            occurred_at TEXT NOT NULL,
            record_id INTEGER NOT NULL,
            PRIMARY KEY (term, category, occurred_at, record_id)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS search_records (
            record_id INTEGER PRIMARY KEY,
            terms BLOB NOT NULL
        );
        DELETE FROM search_records;
        DELETE FROM meta WHERE key IN ('search_indexed', 'search_indexed_upto')
        """,
    )
    conn.execute(  # statements with a ";" inside: not through _run_script
        "CREATE TRIGGER search_terms_of_deleted_record AFTER DELETE ON records BEGIN "
        "DELETE FROM search_terms WHERE category = OLD.category "
        "AND occurred_at = OLD.occurred_at AND record_id = OLD.id AND term IN ("
        "WITH RECURSIVE at (i, terms) AS ("
        "SELECT 1, terms FROM search_records WHERE record_id = OLD.id "
        "UNION ALL SELECT i + 12, terms FROM at WHERE i + 12 <= length(terms)) "
        "SELECT substr(terms, i, 12) FROM at); "
        "DELETE FROM search_records WHERE record_id = OLD.id; END"
    )
    if conn.execute("SELECT NOT EXISTS (SELECT 1 FROM records)").fetchone()[0]:
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('search_indexed', '1')")


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
    8: _v8,
    9: _v9,
    10: _v10,
    11: _v11,
}
