"""SQL of the vault's data: ``records`` (sealed payloads) and ``sources`` (the files and API
writers they came from).

Rows are passed and returned as tuples in the order of :data:`COLUMNS` (reads) and of
:data:`INSERT` (writes): the import seals rows in batches and hands each batch to
:func:`insert_rows` as one ``executemany``. Sealing, opening and dedup keys are
``pds.vault.records``; this module sees only bytes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from pds.errors import NotFound

PAGE = 500
"""Rows a read fetches at a time (:func:`iter_pages`, and a page's default size)."""

COLUMNS = "id, category, source_id, occurred_at, key_version, nonce, ciphertext"
"""The columns of a record row as read: (id, category, source_id, occurred_at, key_version,
nonce, ciphertext)."""

INSERT = (
    "INSERT OR IGNORE INTO records (id, category, source_id, occurred_at, dedup_key, "
    "key_version, nonce, ciphertext, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


# -- records ---------------------------------------------------------------------------------


def next_id(conn: sqlite3.Connection) -> int:
    """The id the next record gets (ids are assigned before sealing: they are in its AD).
    Never an id the change feed has named (``record_changes``, and ``meta``
    ``record_ids_named`` for the changes dropped with a forgotten category): a deleted
    record's id is not given to another."""
    return conn.execute(
        "SELECT max(coalesce((SELECT max(id) FROM records), 0), "
        "coalesce((SELECT max(last_id) FROM record_changes), 0), "
        "coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'record_ids_named'), 0))"
        " + 1"
    ).fetchone()[0]


def insert_rows(conn: sqlite3.Connection, rows: list[tuple]) -> int:
    """Insert sealed rows; returns how many were new (the rest were already present)."""
    before = conn.total_changes
    conn.executemany(INSERT, rows)
    return conn.total_changes - before


def row_by_dedup_key(conn: sqlite3.Connection, key: bytes) -> tuple | None:
    """The record row (:data:`COLUMNS`) stored under dedup key ``key``, if any."""
    return conn.execute(
        f"SELECT {COLUMNS} FROM records WHERE dedup_key = ?",  # noqa: S608 - constants only
        (key,),
    ).fetchone()


def query_rows(
    conn: sqlite3.Connection,
    *,
    category: str,
    since: str | None = None,
    until: str | None = None,
    after: tuple[str, int] | None = None,
    limit: int = PAGE,
    newest: bool = False,
    source: int | None = None,
) -> list[tuple]:
    """One page of one category's raw rows in (occurred_at, id) order (the reverse when
    ``newest``), after the keyset cursor ``after``, of one source when ``source`` is given;
    served by the records_by_time index without sorting.

    After a cursor the page is read as two index range searches: the rest of the cursor's
    own timestamp (``occurred_at = ? AND id > ?``), then the later ones. SQLite (3.40)
    seeks a row-value ``(occurred_at, id) > (?, ?)`` on ``occurred_at`` alone and steps
    over every record sharing the cursor's timestamp, so a page deep in a day of thousands
    of records cost time in proportion to them."""
    if after is not None:
        at, last_id = after
        step = "<" if newest else ">"
        filters = {"category": category, "since": since, "until": until, "source": source}
        rows: list[tuple] = []
        if (since is None or since <= at) and (until is None or at < until):
            # The cursor's timestamp is inside the window: the window's bounds would only
            # lead SQLite to a range search that then sorts.
            same = _select(
                category, None, None, source, (f"occurred_at = ? AND id {step} ?", [at, last_id])
            )
            rows = conn.execute(*_limited(same, newest, limit)).fetchall()
        if len(rows) < limit:
            # One bound on occurred_at per side, the tighter: with two (the cursor's and
            # since's, or until's), SQLite sorts the page instead of reading it in order.
            side = "until" if newest else "since"
            window = filters[side]
            if window is not None and (window <= at if newest else window > at):
                bound = None  # the window's own bound is the tighter
            else:
                filters[side] = None
                bound = (f"occurred_at {step} ?", [at])
            later = _select(**filters, also=bound)
            rows += conn.execute(*_limited(later, newest, limit - len(rows))).fetchall()
        return rows
    return conn.execute(
        *_limited(_select(category, since, until, source), newest, limit)
    ).fetchall()


def _select(
    category: str,
    since: str | None,
    until: str | None,
    source: int | None,
    also: tuple[str, list[Any]] | None = None,
) -> tuple[str, list[Any]]:
    """The SELECT (without order) of one category's rows matching the filters."""
    where = ["category = ?"]
    args: list[Any] = [category]
    if source is not None:
        where.append("source_id = ?")
        args.append(source)
    if since is not None:
        where.append("occurred_at >= ?")
        args.append(since)
    if until is not None:
        where.append("occurred_at < ?")
        args.append(until)
    if also is not None:
        where.append(also[0])
        args += also[1]
    # Only constant fragments are joined; every value is a ? parameter.
    return f"SELECT {COLUMNS} FROM records WHERE {' AND '.join(where)}", args  # noqa: S608


def _limited(select: tuple[str, list[Any]], newest: bool, limit: int) -> tuple[str, list[Any]]:
    order = "occurred_at DESC, id DESC" if newest else "occurred_at, id"
    sql, args = select
    return f"{sql} ORDER BY {order} LIMIT ?", [*args, limit]


def row_by_id(conn: sqlite3.Connection, record_id: int) -> tuple:
    """The record row (:data:`COLUMNS`) with id ``record_id``; NotFound if there is none."""
    sql = f"SELECT {COLUMNS} FROM records WHERE id = ?"  # noqa: S608 - constants only
    row = conn.execute(sql, (record_id,)).fetchone()
    if row is None:
        raise NotFound(f"no record with id {record_id}")
    return row


def created_at(conn: sqlite3.Connection, record_id: int) -> str | None:
    """When record ``record_id`` was stored (``YYYY-MM-DDTHH:MM:SSZ``), or None."""
    row = conn.execute("SELECT created_at FROM records WHERE id = ?", (record_id,)).fetchone()
    return None if row is None else row[0]


def iter_pages(conn: sqlite3.Connection, **filters: Any) -> Iterator[tuple]:
    """Every matching row (:func:`query_rows` filters; every category if none is given), a
    page at a time: memory stays flat whatever the vault's size."""
    if filters.get("category") is not None:
        page = PAGE  # read at call time, so one place sets the page size
        after = None
        while True:
            rows = query_rows(conn, after=after, limit=page, **filters)
            yield from rows
            if len(rows) < page:
                return
            after = (rows[-1][3], rows[-1][0])
    else:
        for cat in categories(conn):
            yield from iter_pages(conn, **{**filters, "category": cat})


def categories(conn: sqlite3.Connection) -> list[str]:
    """The categories that hold records, in name order."""
    return [r[0] for r in conn.execute("SELECT DISTINCT category FROM records ORDER BY 1")]


def counts_by_category(conn: sqlite3.Connection) -> dict[str, int]:
    """Records per category, in name order."""
    return dict(conn.execute("SELECT category, count(*) FROM records GROUP BY category ORDER BY 1"))


def delete_category(conn: sqlite3.Connection, category: str) -> int:
    """Delete every record of ``category`` and the sources left with none; returns how many
    records went. Runs in the caller's transaction."""
    sql = "SELECT DISTINCT source_id FROM records WHERE category = ?"
    sources = [r[0] for r in conn.execute(sql, (category,))]
    count = conn.execute("DELETE FROM records WHERE category = ?", (category,)).rowcount
    conn.executemany(
        "DELETE FROM sources WHERE id = ?1 AND NOT EXISTS "
        "(SELECT 1 FROM records WHERE source_id = ?1)",
        [(s,) for s in sources],
    )
    return count


# -- sources ---------------------------------------------------------------------------------


def add_source(
    conn: sqlite3.Connection, connector: str, filename: str, digest: bytes, imported_at: str
) -> int:
    """A new ``sources`` row (counts 0); returns its id."""
    return conn.execute(
        "INSERT INTO sources (connector, filename, digest, imported_at) "
        "VALUES (?, ?, ?, ?) RETURNING id",
        (connector, filename, digest, imported_at),
    ).fetchone()[0]


def finish_source(conn: sqlite3.Connection, source_id: int, new: int, duplicate: int) -> None:
    """Store an imported file's counts."""
    conn.execute(
        "UPDATE sources SET new = ?, duplicate = ? WHERE id = ?", (new, duplicate, source_id)
    )


def delete_source(conn: sqlite3.Connection, source_id: int) -> None:
    conn.execute("DELETE FROM sources WHERE id = ?", (source_id,))


def api_source(conn: sqlite3.Connection, writer: str) -> int | None:
    """The id of the ``sources`` row of API writer ``writer`` (connector ``api``), if any."""
    row = conn.execute(
        "SELECT id FROM sources WHERE connector = 'api' AND filename = ?", (writer,)
    ).fetchone()
    return None if row is None else row[0]


def count_new(conn: sqlite3.Connection, source_id: int) -> None:
    """One more new record from source ``source_id``."""
    conn.execute("UPDATE sources SET new = new + 1 WHERE id = ?", (source_id,))


def count_sources(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM sources").fetchone()[0]


def list_sources(conn: sqlite3.Connection, category: str | None = None) -> list[dict[str, Any]]:
    """Every source, oldest first: id, connector, filename, imported_at, new, duplicate; with
    ``category``, only the sources holding at least one record of it."""
    sql = "SELECT id, connector, filename, imported_at, new, duplicate FROM sources"
    if category is not None:
        sql += " WHERE EXISTS (SELECT 1 FROM records WHERE source_id = sources.id AND category = ?)"
    cur = conn.execute(sql + " ORDER BY id", () if category is None else (category,))
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, row, strict=True)) for row in cur]


def latest_sources(conn: sqlite3.Connection, n: int) -> list[dict[str, Any]]:
    """The ``n`` newest sources, newest first: id, connector, filename, imported_at, and
    ``held``, the number of its records per category (by category name), in one query."""
    cur = conn.execute(
        "SELECT s.id, s.connector, s.filename, s.imported_at, r.category, COUNT(r.id) "
        "FROM (SELECT id, connector, filename, imported_at FROM sources "
        "ORDER BY id DESC LIMIT ?) AS s LEFT JOIN records AS r ON r.source_id = s.id "
        "GROUP BY s.id, r.category ORDER BY s.id DESC, r.category",
        (n,),
    )
    out: list[dict[str, Any]] = []
    for sid, connector, filename, imported_at, category, count in cur:
        if not out or out[-1]["id"] != sid:
            out.append(
                {
                    "id": sid,
                    "connector": connector,
                    "filename": filename,
                    "imported_at": imported_at,
                    "held": {},
                }
            )
        if category is not None:
            out[-1]["held"][category] = count
    return out
