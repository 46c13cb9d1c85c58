"""SQL of the vault's key material: the ``meta`` table (wrapped master key, KDF parameters,
signing key, creation time, the access log's origin) and ``category_keys`` (one salt per
category; a NULL salt is a destroyed key).

Only bytes and text pass through here: wrapping, unwrapping and deriving keys is
``pds.vault.keys``.
"""

from __future__ import annotations

import sqlite3
from typing import Any


def get_meta(conn: sqlite3.Connection, key: str) -> Any:
    """The ``meta`` value stored under ``key`` (bytes or text), or None."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def set_meta(conn: sqlite3.Connection, key: str, value: bytes | str) -> None:
    """Store ``value`` under ``key`` in ``meta``, replacing what was there."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def audit_origin(conn: sqlite3.Connection) -> str:
    """The access log's origin line (and signed-note key name), made at schema 2."""
    return conn.execute("SELECT value FROM meta WHERE key = 'audit_origin'").fetchone()[0]


def category_key(conn: sqlite3.Connection, category: str) -> tuple[int, bytes | None] | None:
    """``(version, salt)`` of the category's key (salt None: destroyed), or None if the
    category never had one."""
    return conn.execute(
        "SELECT version, salt FROM category_keys WHERE category = ?", (category,)
    ).fetchone()


def store_category_key(
    conn: sqlite3.Connection, category: str, version: int, salt: bytes, created_at: str
) -> None:
    """Make (or, after a destroyed one, replace) the category's key: ``version`` and ``salt``."""
    conn.execute(
        "INSERT INTO category_keys (category, version, salt, created_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (category) DO UPDATE SET "
        "version = excluded.version, salt = excluded.salt, "
        "created_at = excluded.created_at, destroyed_at = NULL",
        (category, version, salt, created_at),
    )


def destroy_category_key(conn: sqlite3.Connection, category: str, at: str) -> int | None:
    """Set the category's salt to NULL (its key is gone for good, its version kept); returns
    the destroyed key's version, or None if there was no live key."""
    row = conn.execute(
        "UPDATE category_keys SET salt = NULL, destroyed_at = ? "
        "WHERE category = ? AND salt IS NOT NULL RETURNING version",
        (at, category),
    ).fetchone()
    return None if row is None else row[0]
