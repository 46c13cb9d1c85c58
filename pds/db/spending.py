"""SQL of ``spending``: the spending category the owner's rules gave each transaction, one
row per record (``record_id``, ``key_version``, ``nonce``, ``ciphertext``: the name is
sealed by ``pds.vault.spending``; this module sees only bytes). A row is deleted with its
record (``ON DELETE CASCADE``): forgetting transactions forgets their categories."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator

PAGE = 2000


def put(conn: sqlite3.Connection, rows: Iterable[tuple[int, int, bytes, bytes]]) -> None:
    """Store (record_id, key_version, nonce, ciphertext) rows, replacing a record's old one.
    Runs in the caller's transaction."""
    conn.executemany(
        "INSERT OR REPLACE INTO spending (record_id, key_version, nonce, ciphertext) "
        "VALUES (?, ?, ?, ?)",
        rows,
    )


def clear(conn: sqlite3.Connection) -> int:
    """Delete every assignment; returns how many went. Runs in the caller's transaction."""
    return conn.execute("DELETE FROM spending").rowcount


def rows(conn: sqlite3.Connection) -> Iterator[tuple[int, int, bytes, bytes]]:
    """Every assignment as (record_id, key_version, nonce, ciphertext), by record id, a page
    at a time."""
    after = 0
    while True:
        page = conn.execute(
            "SELECT record_id, key_version, nonce, ciphertext FROM spending "
            "WHERE record_id > ? ORDER BY record_id LIMIT ?",
            (after, PAGE),
        ).fetchall()
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1][0]


def count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM spending").fetchone()[0]


def stored_ids(conn: sqlite3.Connection, source_id: int, first: int, last: int) -> set[int]:
    """The ids from ``first`` to ``last`` stored from source ``source_id`` (of a batch an
    import has just written: the rows that were new, not already present)."""
    return {
        r[0]
        for r in conn.execute(
            "SELECT id FROM records WHERE id BETWEEN ? AND ? AND source_id = ?",
            (first, last, source_id),
        )
    }
