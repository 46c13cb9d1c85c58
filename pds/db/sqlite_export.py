"""The SQLite file of ``pds export --sqlite``: a plain, unencrypted database for exploring
one's records with the tools that read SQLite (Datasette, sqlite-utils, the ``sqlite3``
shell), written through sqlite-utils.

This module only writes what it is given: ``pds.rights.sqlite_export`` decides which
records, which tables and which columns. The file holds a ``sources`` table and one table
per category whose ``source_id`` is a foreign key to ``sources.id``; full-text search
(FTS5, sqlite-utils' ``enable_fts``) is built once the rows are in. The file is never the
vault: it has no link to ``vault.db`` and none of its keys.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlite_utils

SOURCES = "sources"
SOURCE_COLUMNS: dict[str, type] = {
    "id": int,
    "connector": str,
    "filename": str,
    "imported_at": str,
    "new": int,
    "duplicate": int,
}
"""The columns of the ``sources`` table: what the vault lists of each source (``Vault.sources``)."""


class ExploreFile:
    """An SQLite file being written for exploring; :meth:`close` it (also on failure).

    ``path`` must exist already (an empty file, made with the mode it is to keep: SQLite
    keeps a file's mode, and gives its journal the same one)."""

    def __init__(self, path: Path) -> None:
        conn = sqlite3.connect(path)
        # A file that is deleted unless it is finished needs no sync at each batch: the
        # caller syncs the finished file before giving it its name.
        conn.execute("PRAGMA synchronous=OFF")
        self._db = sqlite_utils.Database(conn, execute_plugins=False)

    def create_sources(self) -> None:
        """The empty ``sources`` table (id primary key), for the foreign keys to name."""
        self._db.table(SOURCES).create(SOURCE_COLUMNS, pk="id")

    def add_sources(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """The ``sources`` rows (:data:`SOURCE_COLUMNS`)."""
        self._db.table(SOURCES).insert_all([{c: row[c] for c in SOURCE_COLUMNS} for row in rows])

    def create_table(self, name: str, columns: Mapping[str, type]) -> None:
        """An empty table ``name`` with ``columns`` in order, primary key ``id``, and
        ``source_id`` a foreign key to ``sources.id``."""
        self._db.table(name).create(
            dict(columns), pk="id", foreign_keys=[("source_id", SOURCES, "id")]
        )

    def insert_batch(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Add one batch of rows (dicts of the table's columns) to table ``name``."""
        self._db.table(name).insert_all(rows, batch_size=max(len(rows), 1))

    def enable_search(self, name: str, columns: Sequence[str]) -> None:
        """Full-text search (FTS5) over ``columns`` of table ``name``, built from its rows:
        the table ``<name>_fts``, which Datasette offers as the table's search box."""
        self._db.table(name).enable_fts(list(columns))

    def close(self) -> None:
        self._db.close()
