"""The SQL of the records' change feed ``record_changes`` (schema 10).

A row says that records of one category were ``added``, ``changed`` or ``forgotten`` at a
time (the vault's clock, not the records' dates): ids ``first_id`` to ``last_id`` (other
categories' records may hold ids in between), ``count`` of them, from source ``source_id``
(the import, or the API writer). Never a payload. An import logs one row per category
(:func:`log_import`), whatever the number of its records; a record written through the API
one row (:func:`log`), a replacement (the profile) one ``changed`` row (:func:`replaced`);
a category forgotten one row (:func:`log_forgotten_category`); any
other deleted record is logged by the schema's trigger. Nothing here opens a transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

COLUMNS = "seq, at, category, kind, first_id, last_id, count"
"""A change as read: (seq, at, category, kind, first_id, last_id, count)."""
QUEUED = "record_changes_queued"
"""The ``meta`` key of the last change whose webhook deliveries are queued."""
ID_FLOOR = "record_ids_named"
"""The ``meta`` key of the highest record id named by a change since dropped (with its
forgotten category): ``pds.db.records.next_id`` gives ids above it."""


def log(
    conn: sqlite3.Connection,
    at: str,
    category: str,
    kind: str,
    first_id: int,
    last_id: int,
    count: int,
    source_id: int | None,
) -> int:
    """Log one change; its seq."""
    return conn.execute(
        "INSERT INTO record_changes (at, category, kind, first_id, last_id, count, source_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq",
        (at, category, kind, first_id, last_id, count, source_id),
    ).fetchone()[0]


def log_import(conn: sqlite3.Connection, source_id: int, at: str) -> None:
    """Log the records source ``source_id`` brought as added: one row per category, read
    from the ``records_by_source_category`` index (no record is decrypted or scanned)."""
    conn.execute(
        "INSERT INTO record_changes (at, category, kind, first_id, last_id, count, source_id) "
        "SELECT ?1, category, 'added', min(id), max(id), count(*), ?2 FROM records "
        "WHERE source_id = ?2 GROUP BY category ORDER BY min(id)",
        (at, source_id),
    )


def log_forgotten_category(conn: sqlite3.Connection, category: str, at: str) -> int | None:
    """Before the records of ``category`` are deleted: drop the category's earlier changes
    (with their webhook deliveries) and log one row for all its records; the row's seq, or
    None when the category holds no record."""
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) SELECT ?1, max(coalesce((SELECT "
        "CAST(value AS INTEGER) FROM meta WHERE key = ?1), 0), coalesce(max(last_id), 0)) "
        "FROM record_changes WHERE category = ?2",
        (ID_FLOOR, category),
    )
    conn.execute(
        "DELETE FROM deliveries WHERE change_seq IN "
        "(SELECT seq FROM record_changes WHERE category = ?)",
        (category,),
    )
    conn.execute("DELETE FROM record_changes WHERE category = ?", (category,))
    row = conn.execute(
        "SELECT min(id), max(id), count(*) FROM records WHERE category = ?", (category,)
    ).fetchone()
    if not row[2]:
        return None
    return log(conn, at, category, "forgotten", row[0], row[1], row[2], None)


def last_seq(conn: sqlite3.Connection) -> int:
    """The newest change's seq (0: none yet)."""
    return conn.execute("SELECT coalesce(max(seq), 0) FROM record_changes").fetchone()[0]


def replaced(conn: sqlite3.Connection, seq: int, category: str) -> None:
    """Log the deletions and additions in ``category`` after change ``seq`` (made in the
    caller's transaction, so no reader has seen them) as what they are, a replacement: the
    deletions are dropped and the new records are ``changed``."""
    conn.execute(
        "DELETE FROM record_changes WHERE seq > ? AND category = ? AND kind = 'forgotten'",
        (seq, category),
    )
    conn.execute(
        "UPDATE record_changes SET kind = 'changed' WHERE seq > ? AND category = ? "
        "AND kind = 'added'",
        (seq, category),
    )


def get(conn: sqlite3.Connection, seq: int) -> tuple | None:
    """The change ``seq`` (:data:`COLUMNS`), or None if it was dropped since."""
    sql = f"SELECT {COLUMNS} FROM record_changes WHERE seq = ?"  # noqa: S608 - constants only
    return conn.execute(sql, (seq,)).fetchone()


def after(
    conn: sqlite3.Connection, seq: int, categories: Iterable[str], not_before: str, limit: int
) -> list[tuple]:
    """Up to ``limit`` changes after ``seq`` in ``categories`` made at or after
    ``not_before``, oldest first (:data:`COLUMNS`)."""
    cats = sorted(set(categories))
    marks = ", ".join("?" * len(cats))
    sql = (
        f"SELECT {COLUMNS} FROM record_changes WHERE seq > ? AND at >= ? "  # noqa: S608
        f"AND category IN ({marks}) ORDER BY seq LIMIT ?"
    )
    return conn.execute(sql, [seq, not_before, *cats, limit]).fetchall()


def held(
    conn: sqlite3.Connection,
    category: str,
    first_id: int,
    last_id: int,
    since: str | None,
    until: str | None,
) -> tuple[int, int | None, int | None]:
    """Of ids ``first_id`` to ``last_id``, the records of ``category`` still held and dated
    from day ``since`` to day ``until`` (inclusive, either may be None): (how many, first
    id, last id)."""
    sql = "SELECT count(*), min(id), max(id) FROM records WHERE id BETWEEN ? AND ? AND category = ?"
    args: list = [first_id, last_id, category]
    if since is not None:
        sql += " AND occurred_at >= ?"
        args.append(since)
    if until is not None:
        sql += " AND substr(occurred_at, 1, 10) <= ?"
        args.append(until)
    count, lo, hi = conn.execute(sql, args).fetchone()
    return count, lo, hi


def unqueued(conn: sqlite3.Connection, limit: int) -> list[tuple]:
    """Up to ``limit`` changes whose webhook deliveries are not queued yet (:data:`COLUMNS`),
    oldest first; a read, no lock."""
    sql = (
        f"SELECT {COLUMNS} FROM record_changes WHERE seq > "  # noqa: S608 - constants only
        "coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?), 0) "
        "ORDER BY seq LIMIT ?"
    )
    return conn.execute(sql, (QUEUED, limit)).fetchall()


def set_queued(conn: sqlite3.Connection, seq: int) -> None:
    """Mark the changes up to ``seq`` as queued."""
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (QUEUED, str(seq)))
