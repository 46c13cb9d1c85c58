"""The records' change log (the newest schema): the migration keeps the delivery log, ids are never
given twice, every delete is logged once."""

from __future__ import annotations

import sqlite3

import pytest

from pds import db as dbmod
from pds.db import changes
from pds.db import records as store
from pds.vault import Vault
from tests.conftest import PASSPHRASE
from tests.db.test_search import ingest

V8_DELIVERIES = """CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    subscription_id TEXT NOT NULL REFERENCES subscriptions(id),
    seq INTEGER NOT NULL REFERENCES profile_changes(seq),
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    claimed_until INTEGER,
    last_error TEXT,
    updated_at TEXT NOT NULL
)"""


def test_the_change_log_migration_keeps_the_delivery_log(settings) -> None:
    with Vault.create(settings, PASSPHRASE) as vault:
        conn = vault.conn
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("DROP TRIGGER record_changes_of_deleted_record")
        conn.execute("DROP TABLE deliveries")
        conn.execute("DROP TABLE record_changes")
        conn.execute(V8_DELIVERIES)
        conn.execute("INSERT INTO clients VALUES ('c', NULL, 'Acme', '[]', 'none', 0, '{}', 't')")
        conn.execute("INSERT INTO grants VALUES (1, 'c', 's', '{}', NULL, 9, 't', NULL, NULL)")
        conn.execute(
            "INSERT INTO subscriptions VALUES ('sub_x', 'c', 1, 'u', '[]', x'00', 't', NULL)"
        )
        conn.execute("INSERT INTO profile_changes VALUES (1, 'profile', '[\"name\"]', 't')")
        conn.execute(
            "INSERT INTO deliveries VALUES (7, 'sub_x', 1, 2, 'failed', 10, NULL, 'HTTP 500', 't')"
        )
        conn.execute("PRAGMA user_version = 9")
    conn = dbmod.open_db(settings.db_path).conn
    assert dbmod.schema_version(conn) == dbmod.SCHEMA_VERSION
    assert conn.execute("SELECT * FROM deliveries").fetchall() == [
        (7, "sub_x", 1, None, 2, "failed", 10, None, "HTTP 500", "t")
    ]
    with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
        conn.execute(
            "INSERT INTO deliveries VALUES (8, 'sub_x', NULL, NULL, 1, 'pending', 1, NULL, NULL, 't')"
        )
    conn.close()


def test_ids_are_not_given_again_and_every_delete_is_logged(settings) -> None:
    with Vault.create(settings, PASSPHRASE) as vault:
        ingest(vault, "A SHOP", "B SHOP", "C SHOP")
        conn = vault.conn
        assert changes.unqueued(conn, 10) == [
            (1, changes.get(conn, 1)[1], "transactions", "added", 1, 3, 3)
        ]
        conn.execute("DELETE FROM records WHERE id IN (2, 3)")
        assert [r[3:] for r in changes.unqueued(conn, 10)] == [
            ("added", 1, 3, 3),
            ("forgotten", 2, 2, 1),
            ("forgotten", 3, 3, 1),
        ]
        assert store.next_id(conn) == 4  # 3 is named in the feed: never another record's
        vault.forget_category("transactions")
        assert [r[3:] for r in changes.unqueued(conn, 10)] == [("forgotten", 1, 1, 1)]
        assert store.next_id(conn) == 4
