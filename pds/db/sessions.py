"""The web sessions' generations, kept in the vault's ``meta`` table.

A role's generation (``pds.http.security``) is a counter that signing out moves on: a
session cookie is valid only while it names the current one. No row means generation 0.
"""

from __future__ import annotations

import sqlite3


def generation(conn: sqlite3.Connection, key: str) -> int:
    """The generation kept under ``key`` in ``meta`` (0 if none is kept yet)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return int(row[0]) if row else 0


def next_generation(conn: sqlite3.Connection, key: str) -> None:
    """Move the generation under ``key`` on by one (in the caller's transaction)."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, '1') ON CONFLICT (key) "
        "DO UPDATE SET value = CAST(value AS INTEGER) + 1",
        (key,),
    )
