"""The SQL of the data-rights services (pds.rights): the ``rights_requests`` table (schema
6), the imports a request may name, the access-log entries a record of processing counts,
and the read transaction of an export.

Requests come back as plain rows in :data:`REQUEST_COLUMNS` order; pds.rights wraps them.
Nothing here opens a write transaction: the callers hold ``pds.db.transaction``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

REQUEST_COLUMNS = (
    "id",
    "kind",
    "business",
    "client_id",
    "grant_id",
    "created_at",
    "sent_on",
    "due_on",
    "status",
    "fulfilled_at",
    "fulfilled_by_source",
    "note",
)
_COLS = ", ".join(REQUEST_COLUMNS)


def request_row(conn: sqlite3.Connection, request_id: int) -> tuple[Any, ...] | None:
    """The request ``request_id`` as a row (:data:`REQUEST_COLUMNS`), or None."""
    return conn.execute(
        f"SELECT {_COLS} FROM rights_requests WHERE id = ?",  # noqa: S608 - constants only
        (request_id,),
    ).fetchone()


def request_rows(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """Every request as a row (:data:`REQUEST_COLUMNS`), oldest first."""
    sql = f"SELECT {_COLS} FROM rights_requests ORDER BY id"  # noqa: S608 - constants only
    return conn.execute(sql).fetchall()


def insert_request(
    conn: sqlite3.Connection,
    kind: str,
    business: str,
    client_id: str | None,
    grant_id: int | None,
    created_at: str,
    sent_on: str,
    due_on: str,
    note: str | None,
) -> int:
    """Store a new open request; its id."""
    return conn.execute(
        "INSERT INTO rights_requests (kind, business, client_id, grant_id, created_at, "
        "sent_on, due_on, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (kind, business, client_id, grant_id, created_at, sent_on, due_on, note),
    ).fetchone()[0]


def mark_fulfilled(
    conn: sqlite3.Connection, request_id: int, at: str, source_id: int | None
) -> None:
    """Mark the request fulfilled at ``at`` (by the import ``source_id``, if any)."""
    conn.execute(
        "UPDATE rights_requests SET status = 'fulfilled', fulfilled_at = ?, "
        "fulfilled_by_source = ? WHERE id = ?",
        (at, source_id, request_id),
    )


def mark_withdrawn(conn: sqlite3.Connection, request_id: int) -> None:
    """Mark the request withdrawn."""
    conn.execute("UPDATE rights_requests SET status = 'withdrawn' WHERE id = ?", (request_id,))


def source_exists(conn: sqlite3.Connection, source_id: int) -> bool:
    """True if an imported file has the source id ``source_id``."""
    return conn.execute("SELECT 1 FROM sources WHERE id = ?", (source_id,)).fetchone() is not None


def recent_sources(conn: sqlite3.Connection, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` imported files (not the API's writes), newest first: id,
    filename, connector, imported_at."""
    cur = conn.execute(
        "SELECT id, filename, connector, imported_at FROM sources WHERE connector != 'api' "
        "ORDER BY id DESC LIMIT ?",
        (limit,),
    )
    return [dict(zip(("id", "filename", "connector", "imported_at"), r, strict=True)) for r in cur]


@contextmanager
def read_snapshot(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One read transaction (``BEGIN`` ... ``COMMIT``) around the block, so that what it
    reads agrees; joins the caller's transaction if there is one."""
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    try:
        yield conn
    finally:
        if own:
            conn.execute("COMMIT")
