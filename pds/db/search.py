"""SQL of the search index, ``search_terms`` (schema 8, made again by schema 11): which
records hold which word.

A row is (term, category, occurred_at, record_id): ``term`` is a keyed hash of one word
(made by ``pds.vault.search``; this module sees only bytes), the other three are the
record's own plaintext columns, so a page of matches, its counts per category and its order
by time are read from this table's primary key alone, without touching ``records``. A
record's rows go with it: ``search_records`` holds each record's terms in one blob (its
terms, :data:`TERM_BYTES` each), and a trigger on ``records`` deletes the rows that blob
names, by primary key, whichever code deletes the record. (Schema 8 had an index by record
id instead: as large as the table itself, and as costly to write.)

A query asks for the records holding *every* given term: the first term is scanned, and
each of its rows is kept when the other terms have a row for the same record (a lookup on
the primary key); :func:`rarest_first` orders the terms so that the first is the rarest.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from pds.db.records import COLUMNS

TERM_BYTES = 12
"""The length of a term: ``search_records`` holds a record's terms one after the other, and
schema 11's delete trigger cuts them apart by this length (written there as 12)."""

INSERT = (
    "INSERT OR IGNORE INTO search_terms (term, category, occurred_at, record_id) "
    "VALUES (?, ?, ?, ?)"
)
INSERT_RECORD = "INSERT OR IGNORE INTO search_records (record_id, terms) VALUES (?, ?)"


def insert_terms(
    conn: sqlite3.Connection,
    rows: Iterable[tuple[bytes, str, str, int]],
    records: Iterable[tuple[int, bytes]],
) -> None:
    """Store (term, category, occurred_at, record_id) rows, and (record_id, its terms joined)
    for each record they name; a row already there is kept once."""
    conn.executemany(INSERT, rows)
    conn.executemany(INSERT_RECORD, records)


def terms_of(conn: sqlite3.Connection, record_id: int) -> list[bytes]:
    """The terms of ``search_terms`` rows of record ``record_id``, in byte order (a scan of
    the whole index: for checks, not for a page)."""
    sql = "SELECT term FROM search_terms WHERE record_id = ? ORDER BY term"
    return [r[0] for r in conn.execute(sql, (record_id,))]


def record_terms(conn: sqlite3.Connection, record_id: int) -> list[bytes]:
    """The terms ``search_records`` keeps for record ``record_id`` (those its delete
    removes), in the order they were stored."""
    row = conn.execute(
        "SELECT terms FROM search_records WHERE record_id = ?", (record_id,)
    ).fetchone()
    blob = b"" if row is None else row[0]
    return [blob[i : i + TERM_BYTES] for i in range(0, len(blob), TERM_BYTES)]


def count_terms(conn: sqlite3.Connection) -> int:
    """Rows in the index (one per distinct word of each record)."""
    return conn.execute("SELECT count(*) FROM search_terms").fetchone()[0]


def rows_after(conn: sqlite3.Connection, after: int, limit: int) -> list[tuple]:
    """Up to ``limit`` record rows (``pds.db.records.COLUMNS``) with an id above ``after``,
    by id: the batches in which an older vault's records are indexed."""
    sql = f"SELECT {COLUMNS} FROM records WHERE id > ? ORDER BY id LIMIT ?"  # noqa: S608
    return conn.execute(sql, (after, limit)).fetchall()


def inserted_ids(conn: sqlite3.Connection, first: int, last: int) -> set[int]:
    """The ids between ``first`` and ``last`` (inclusive) that ``records`` holds."""
    sql = "SELECT id FROM records WHERE id BETWEEN ? AND ?"
    return {r[0] for r in conn.execute(sql, (first, last))}


def rarest_first(conn: sqlite3.Connection, terms: Sequence[bytes]) -> list[bytes]:
    """``terms`` without repeats, the one with the fewest rows first (it drives the scan).
    Rows are counted up to 100,000 a term, so a very common word costs a bounded scan."""
    unique = list(dict.fromkeys(terms))
    if len(unique) < 2:
        return unique
    sql = "SELECT count(*) FROM (SELECT 1 FROM search_terms WHERE term = ? LIMIT 100000)"
    sizes = {t: conn.execute(sql, (t,)).fetchone()[0] for t in unique}
    return sorted(unique, key=lambda t: sizes[t])


def _matching(terms: list[bytes]) -> tuple[str, list[Any]]:
    """The WHERE clause (on alias ``t``) of the rows of ``terms[0]`` whose record also holds
    every other term, and its arguments."""
    where = ["t.term = ?"]
    for _ in terms[1:]:
        where.append(
            "EXISTS (SELECT 1 FROM search_terms AS u WHERE u.term = ? AND "
            "u.category = t.category AND u.occurred_at = t.occurred_at AND "
            "u.record_id = t.record_id)"
        )
    return " AND ".join(where), list(terms)


def counts(
    conn: sqlite3.Connection, terms: Sequence[bytes], category: str | None = None
) -> dict[str, int]:
    """The number of records holding every term, per category (by name); only
    ``category``'s when given. No term: nothing matches."""
    ordered = list(dict.fromkeys(terms))
    if not ordered:
        return {}
    where, args = _matching(ordered)
    if category is not None:
        where += " AND t.category = ?"
        args.append(category)
    # Only constant fragments are joined; every value is a ? parameter.
    sql = f"SELECT t.category, count(*) FROM search_terms AS t WHERE {where} GROUP BY 1 ORDER BY 1"  # noqa: S608
    return dict(conn.execute(sql, args))


def newest(
    conn: sqlite3.Connection,
    terms: Sequence[bytes],
    category: str,
    *,
    limit: int,
    skip: int = 0,
) -> list[int]:
    """The ids of ``category``'s records holding every term, newest first (occurred_at, then
    id), ``limit`` of them after the first ``skip``."""
    ordered = list(dict.fromkeys(terms))
    if not ordered:
        return []
    where, args = _matching(ordered)
    sql = (
        f"SELECT t.record_id FROM search_terms AS t WHERE {where} AND t.category = ? "  # noqa: S608
        "ORDER BY t.occurred_at DESC, t.record_id DESC LIMIT ? OFFSET ?"
    )
    return [r[0] for r in conn.execute(sql, [*args, category, limit, _offset(skip)])]


def in_time_order(
    conn: sqlite3.Connection,
    terms: Sequence[bytes],
    category: str,
    *,
    since: str | None = None,
    until: str | None = None,
    source_id: int | None = None,
    newest: bool = False,
    after: tuple[str, int] | None = None,
    limit: int,
) -> list[tuple[str, int]]:
    """(occurred_at, id) of ``category``'s records holding every term, oldest first (newest
    first when ``newest``), as a category's pages are: from ``since`` and before ``until``
    (occurred_at), of source ``source_id`` when given, ``limit`` of them after the keyset
    cursor ``after`` (the last pair of the page before)."""
    ordered = list(dict.fromkeys(terms))
    if not ordered:
        return []
    where, args = _matching(ordered)
    where += " AND t.category = ?"
    args.append(category)
    if since is not None:
        where += " AND t.occurred_at >= ?"
        args.append(since)
    if until is not None:
        where += " AND t.occurred_at < ?"
        args.append(until)
    if after is not None:
        where += f" AND (t.occurred_at, t.record_id) {'<' if newest else '>'} (?, ?)"
        args += list(after)
    if source_id is not None:
        where += (
            " AND EXISTS (SELECT 1 FROM records AS r WHERE r.id = t.record_id AND r.source_id = ?)"
        )
        args.append(source_id)
    order = "t.occurred_at DESC, t.record_id DESC" if newest else "t.occurred_at, t.record_id"
    # Only constant fragments are joined; every value is a ? parameter.
    sql = (
        f"SELECT t.occurred_at, t.record_id FROM search_terms AS t WHERE {where} "  # noqa: S608
        f"ORDER BY {order} LIMIT ?"
    )
    return conn.execute(sql, [*args, limit]).fetchall()


def _offset(skip: int) -> int:
    """``skip`` as an SQLite OFFSET: not below 0, not past a 64-bit integer."""
    return max(0, min(skip, 2**62))
