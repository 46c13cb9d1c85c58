"""The SQL of the profile and intentions: the change feed ``profile_changes``, the
plaintext last day of each intention ``intention_expiry`` (schema 4), and the deletions of
their records.

A change row holds the names of the changed fields (JSON text), never values. Nothing here
opens a transaction: the callers in pds.profile join or open one with ``pds.db.transaction``
or ``pds.db.atomic``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator


def add_change(conn: sqlite3.Connection, category: str, fields: list[str], at: str) -> int:
    """Log a change of ``fields`` (names) in ``category`` at ``at``; its seq."""
    return conn.execute(
        "INSERT INTO profile_changes (category, fields, at) VALUES (?, ?, ?) RETURNING seq",
        (category, json.dumps(fields), at),
    ).fetchone()[0]


def get_change(conn: sqlite3.Connection, seq: int) -> tuple[str, list[str], str]:
    """The change ``seq``: (category, field names, at)."""
    category, fields, at = conn.execute(
        "SELECT category, fields, at FROM profile_changes WHERE seq = ?", (seq,)
    ).fetchone()
    return category, json.loads(fields), at


def changes_after(
    conn: sqlite3.Connection, since: int, not_before: str
) -> Iterator[tuple[int, str, list[str], str]]:
    """The changes after seq ``since`` made at or after ``not_before``, in order: (seq,
    category, field names, at), read as the caller iterates."""
    rows = conn.execute(
        "SELECT seq, category, fields, at FROM profile_changes WHERE seq > ? AND at >= ? "
        "ORDER BY seq",
        (since, not_before),
    )
    for seq, category, fields, at in rows:
        yield seq, category, json.loads(fields), at


def forget_derived(conn: sqlite3.Connection, category: str) -> None:
    """Delete the rows derived from ``category``'s records, when it is forgotten: its
    changes in the feed with their pending and past webhook deliveries, and the plaintext
    expiry day of every intention record that no longer exists."""
    conn.execute(
        "DELETE FROM deliveries WHERE seq IN (SELECT seq FROM profile_changes WHERE category = ?1)",
        (category,),
    )
    conn.execute("DELETE FROM profile_changes WHERE category = ?1", (category,))
    conn.execute("DELETE FROM intention_expiry WHERE record_id NOT IN (SELECT id FROM records)")


def record_category(conn: sqlite3.Connection, record_id: int) -> str | None:
    """The category of record ``record_id``, or None if there is no such record."""
    row = conn.execute("SELECT category FROM records WHERE id = ?", (record_id,)).fetchone()
    return None if row is None else row[0]


def delete_category_records(conn: sqlite3.Connection, category: str) -> int:
    """Delete every record of ``category`` (the profile's one current record); how many."""
    return conn.execute("DELETE FROM records WHERE category = ?", (category,)).rowcount


def add_intention_expiry(conn: sqlite3.Connection, record_id: int, expires_at: str) -> None:
    """Keep the last day (ISO date) of intention record ``record_id`` in plaintext."""
    conn.execute(
        "INSERT INTO intention_expiry (record_id, expires_at) VALUES (?, ?)",
        (record_id, expires_at),
    )


def any_expired_intention(conn: sqlite3.Connection, day: str) -> bool:
    """True if an intention's last day is before ``day`` (ISO date)."""
    return (
        conn.execute(
            "SELECT record_id FROM intention_expiry WHERE expires_at < ? LIMIT 1", (day,)
        ).fetchone()
        is not None
    )


def expired_intentions(conn: sqlite3.Connection, day: str) -> list[int]:
    """The record ids of the intentions whose last day is before ``day`` (ISO date)."""
    sql = "SELECT record_id FROM intention_expiry WHERE expires_at < ?"
    return [r[0] for r in conn.execute(sql, (day,))]


def delete_intention(conn: sqlite3.Connection, record_id: int, category: str) -> None:
    """Delete intention record ``record_id`` (if it is of ``category``) and its last day."""
    conn.execute("DELETE FROM records WHERE id = ? AND category = ?", (record_id, category))
    conn.execute("DELETE FROM intention_expiry WHERE record_id = ?", (record_id,))
