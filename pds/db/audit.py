"""SQL of the access log (schema 2): ``audit_log`` (entries and their leaf hashes),
``audit_nodes`` (completed perfect subtrees) and ``audit_checkpoints`` (signed checkpoints).

Every query on these tables is here, those of the owner's pages included. The tree, its
proofs and the signing of checkpoints are ``pds.audit.log``; this module stores and reads
rows. Checkpoint rows come back as ``(size, root, note, created_at)`` tuples.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

_CHECKPOINT = "SELECT size, root, note, created_at FROM audit_checkpoints"
_API_ENTRIES = "SELECT idx, entry FROM audit_log WHERE json_extract(entry, '$.action') LIKE 'api.%'"


# -- writing ---------------------------------------------------------------------------------


def append(
    conn: sqlite3.Connection,
    index: int,
    entry: str,
    leaf: bytes,
    nodes: Sequence[tuple[int, int, bytes]] = (),
) -> None:
    """Store entry ``index`` with its leaf hash, and the perfect subtrees of level >= 1 its
    append completed as ``(level, idx, hash)``."""
    conn.execute("INSERT INTO audit_log (idx, entry, leaf) VALUES (?, ?, ?)", (index, entry, leaf))
    if nodes:
        conn.executemany("INSERT INTO audit_nodes (level, idx, hash) VALUES (?, ?, ?)", nodes)


def add_checkpoint(
    conn: sqlite3.Connection, size: int, root: bytes, note: str, created_at: str
) -> None:
    """Store a signed checkpoint of the tree of ``size`` entries."""
    conn.execute(
        "INSERT INTO audit_checkpoints (size, root, note, created_at) VALUES (?, ?, ?, ?)",
        (size, root, note, created_at),
    )


# -- reading the tree ------------------------------------------------------------------------


def last_leaf(conn: sqlite3.Connection) -> tuple[int, bytes] | None:
    """``(index, leaf hash)`` of the newest entry, or None for an empty log."""
    return conn.execute("SELECT idx, leaf FROM audit_log ORDER BY idx DESC LIMIT 1").fetchone()


def leaf(conn: sqlite3.Connection, index: int) -> bytes | None:
    """The leaf hash of entry ``index``, or None if there is no such entry."""
    row = conn.execute("SELECT leaf FROM audit_log WHERE idx = ?", (index,)).fetchone()
    return None if row is None else row[0]


def node(conn: sqlite3.Connection, level: int, index: int) -> bytes | None:
    """The stored hash of the perfect subtree ``(level, index)``, level >= 1, or None."""
    row = conn.execute(
        "SELECT hash FROM audit_nodes WHERE level = ? AND idx = ?", (level, index)
    ).fetchone()
    return None if row is None else row[0]


def size(conn: sqlite3.Connection) -> int:
    """How many entries the log holds."""
    row = conn.execute("SELECT max(idx) FROM audit_log").fetchone()
    return 0 if row[0] is None else row[0] + 1


# -- reading entries -------------------------------------------------------------------------


def entries(
    conn: sqlite3.Connection, start: int = 0, end: int | None = None
) -> Iterator[tuple[int, str, bytes]]:
    """``(index, canonical entry, leaf hash)`` for ``start <= index < end``, in order."""
    sql = "SELECT idx, entry, leaf FROM audit_log WHERE idx >= ?"
    args: tuple[int, ...] = (start,)
    if end is not None:
        sql += " AND idx < ?"
        args = (start, end)
    yield from conn.execute(sql + " ORDER BY idx", args)


def tail(conn: sqlite3.Connection, n: int) -> list[tuple[int, str]]:
    """The last ``n`` entries as ``(index, canonical entry)``, oldest first."""
    rows = conn.execute(
        "SELECT idx, entry FROM audit_log ORDER BY idx DESC LIMIT ?", (n,)
    ).fetchall()
    return rows[::-1]


def recent_api_entries(conn: sqlite3.Connection, n: int) -> list[tuple[int, str]]:
    """The last ``n`` calls to the business and auditor APIs (``api.*`` entries) as
    ``(index, canonical entry)``, newest first."""
    return conn.execute(_API_ENTRIES + " ORDER BY idx DESC LIMIT ?", (n,)).fetchall()


def api_entries_between(conn: sqlite3.Connection, since: str, until: str) -> list[tuple[int, str]]:
    """Every ``api.*`` entry with ``since <= time < until`` as ``(index, canonical entry)``,
    oldest first."""
    return conn.execute(
        _API_ENTRIES + " AND json_extract(entry, '$.time') >= ?"
        " AND json_extract(entry, '$.time') < ? ORDER BY idx",
        (since, until),
    ).fetchall()


def summary(
    conn: sqlite3.Connection, since: str | None = None, until: str | None = None
) -> list[dict[str, Any]]:
    """Accesses per day, client, category, action and decision (``time`` in [since, until))."""
    sql = (
        "SELECT substr(json_extract(entry, '$.time'), 1, 10) AS day,"
        " json_extract(entry, '$.client') AS client,"
        " json_extract(entry, '$.category') AS category,"
        " json_extract(entry, '$.action') AS action,"
        " json_extract(entry, '$.decision') AS decision,"
        " count(*) AS entries, sum(coalesce(json_extract(entry, '$.count'), 0)) AS records"
        " FROM audit_log WHERE 1"
    )
    args: list[str] = []
    if since:
        sql += " AND json_extract(entry, '$.time') >= ?"
        args.append(since)
    if until:
        sql += " AND json_extract(entry, '$.time') < ?"
        args.append(until)
    sql += " GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5"
    cur = conn.execute(sql, args)
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, row, strict=True)) for row in cur]


_READ_BY = (
    # instr() on the canonical text (sorted keys, no spaces) first: it skips the entries of
    # other actions and categories without parsing their JSON.
    "SELECT json_extract(entry, '$.client'), substr(json_extract(entry, '$.time'), 1, 10),"
    " count(*) FROM audit_log"
    ' WHERE instr(entry, \'"action":"api.records.read"\')'
    ' AND instr(entry, \'"decision":"allowed"\')'
    " AND instr(entry, :category_text)"
    " AND (instr(entry, '\"record\":') AND json_extract(entry, '$.record') = :id"
    " OR instr(entry, '\"span\":')"
    " AND json_extract(entry, '$.span[0][0]') <= :at AND json_extract(entry, '$.span[1][0]') >= :at"
    " AND (:at, :id) >= (json_extract(entry, '$.span[0][0]'), json_extract(entry, '$.span[0][1]'))"
    " AND (:at, :id) <= (json_extract(entry, '$.span[1][0]'), json_extract(entry, '$.span[1][1]')))"
    " AND json_extract(entry, '$.category') = :category"
    " AND substr(json_extract(entry, '$.time'), 1, 19) >= substr(:created, 1, 19)"
    " GROUP BY 1, 2"
)


def record_readers(
    conn: sqlite3.Connection, category: str, occurred_at: str, record_id: int, created_at: str
) -> list[tuple[str, str, int]]:
    """Who read one record through the API: ``(client, day, reads)`` per client and day
    (UTC), in no set order. A read is an allowed ``api.records.read`` entry of the record's
    category, written in or after the second the record was stored, that names it
    (``record``) or whose page ``span`` holds its ``(occurred_at, id)`` key. Entries
    written before reads named their records count for none."""
    args = {
        "category": category,
        "category_text": f'"category":{json.dumps(category)}',
        "at": occurred_at,
        "id": record_id,
        "created": created_at,
    }
    return conn.execute(_READ_BY, args).fetchall()


# -- the auditor's page (pds.http.web.auditor) ------------------------------------------------


_MATCHING = (
    " FROM audit_log WHERE (:client IS NULL OR json_extract(entry, '$.client') = :client)"
    " AND (:action IS NULL OR json_extract(entry, '$.action') = :action)"
    " AND (:decision IS NULL OR json_extract(entry, '$.decision') = :decision)"
    " AND (:since IS NULL OR json_extract(entry, '$.time') >= :since)"
    " AND (:until IS NULL OR json_extract(entry, '$.time') < :until)"
)


def matching(
    conn: sqlite3.Connection,
    *,
    client: str | None = None,
    action: str | None = None,
    decision: str | None = None,
    since: str | None = None,
    until: str | None = None,
    skip: int = 0,
    limit: int = 50,
) -> tuple[int, list[tuple[int, str, bytes]]]:
    """How many entries match every filter given (``time`` in [since, until)), and ``limit``
    of them after the first ``skip``, newest first, as ``(index, entry, leaf hash)``."""
    args: dict[str, object] = {
        "client": client,
        "action": action,
        "decision": decision,
        "since": since,
        "until": until,
    }
    total = conn.execute("SELECT count(*)" + _MATCHING, args).fetchone()[0]
    rows = conn.execute(
        "SELECT idx, entry, leaf" + _MATCHING + " ORDER BY idx DESC LIMIT :limit OFFSET :skip",
        {**args, "limit": limit, "skip": skip},
    ).fetchall()
    return total, rows


def actions(conn: sqlite3.Connection) -> list[str]:
    """Every action the log holds, sorted."""
    rows = conn.execute(
        "SELECT DISTINCT json_extract(entry, '$.action') FROM audit_log ORDER BY 1"
    ).fetchall()
    return [a for (a,) in rows if a is not None]


def newest_of(conn: sqlite3.Connection, client: str, action: str, flag: str) -> str | None:
    """The newest entry of ``client`` with ``action`` whose ``detail.<flag>`` is true."""
    row = conn.execute(
        "SELECT entry FROM audit_log WHERE json_extract(entry, '$.client') = ?"
        " AND json_extract(entry, '$.action') = ?"
        " AND json_extract(entry, '$.detail.' || ?) = 1 ORDER BY idx DESC LIMIT 1",
        (client, action, flag),
    ).fetchone()
    return row[0] if row else None


# -- checkpoints -----------------------------------------------------------------------------


def latest_checkpoint(conn: sqlite3.Connection) -> tuple[int, bytes, str, str] | None:
    """The newest checkpoint row, or None if none was signed."""
    return conn.execute(_CHECKPOINT + " ORDER BY size DESC LIMIT 1").fetchone()


def checkpoints(conn: sqlite3.Connection) -> list[tuple[int, bytes, str, str]]:
    """Every checkpoint row, oldest first."""
    return conn.execute(_CHECKPOINT + " ORDER BY size").fetchall()


def client_api_entries(conn: sqlite3.Connection, client_id: str) -> Iterator[str]:
    """The access-log entries (JSON text) of the client's API calls, oldest first."""
    rows = conn.execute(
        "SELECT entry FROM audit_log WHERE json_extract(entry, '$.client') = ? "
        "AND json_extract(entry, '$.action') LIKE 'api.%' ORDER BY idx",
        (client_id,),
    )
    for (text,) in rows:
        yield text


# -- the per-day request counts of the rate-limit policy (pds.http.api.policy) ----------------

_CALLS_AFTER = (
    "SELECT idx, substr(json_extract(entry, '$.time'), 1, 10), json_extract(entry, '$.client'),"
    " json_extract(entry, '$.action') FROM audit_log WHERE idx > ? ORDER BY idx"
)


def calls_after(conn: sqlite3.Connection, index: int) -> Iterator[tuple[int, str, str, str]]:
    """Entries after ``index``, oldest first: (index, day, client, action)."""
    return conn.execute(_CALLS_AFTER, (index,))


def last_index(conn: sqlite3.Connection) -> int | None:
    """The index of the newest entry (None: an empty log)."""
    return conn.execute("SELECT max(idx) FROM audit_log").fetchone()[0]


def entry_day(conn: sqlite3.Connection, index: int) -> str:
    """The day (``YYYY-MM-DD``) of entry ``index``'s time."""
    return conn.execute(
        "SELECT substr(json_extract(entry, '$.time'), 1, 10) FROM audit_log WHERE idx = ?",
        (index,),
    ).fetchone()[0]
