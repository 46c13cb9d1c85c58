"""Export records to a plain SQLite file for exploring (``pds export --sqlite FILE``): the
owner's records, decrypted, in tables with real columns, ready for Datasette
(``datasette FILE``) or any SQLite tool, the way the Dogsheep tools lay out one's data.

What the file holds (the SQL is ``pds.db.sqlite_export``, written through sqlite-utils):

- ``sources``: the files (and API writers) the exported records came from, as the Data
  page lists them: ``id`` (primary key), ``connector``, ``filename``, ``imported_at``,
  ``new``, ``duplicate``. A record a business wrote through the API has the source of that
  business: connector ``api``, filename ``client:<client id>``;
- one table per category: ``id`` (the record's id, primary key), ``occurred_at``,
  ``source_id`` (a foreign key to ``sources.id``), then one column per payload field in the
  order of ``pds.vocabulary.FIELDS``. Values are as stored: text, amounts as decimal text
  (never floats), a yes/no field (``all_day``) as 1 or 0, nested values (lists, objects)
  as JSON text. A field named like a record column (health's ``id``) is ``payload_<name>``;
- full-text search (FTS5) on each category's text columns (:data:`SEARCHED`), in the table
  ``<category>_fts`` beside it.

Which records: every category that holds records, or those asked for (a category asked for
that holds none is an empty table); with ``since``/``until``, the records whose
``occurred_at`` falls on those days, both inclusive. They are read a page at a time inside
one read transaction (so the counts and the rows agree) and written a batch at a time:
memory stays flat whatever the vault's size.

The file is NOT encrypted. It is written as a temporary file (mode 0600, checked again once
written) beside the target, synced, then given the target's name: a failure leaves nothing.
An existing file is never replaced unless asked (``force``). The export is one
``export.sqlite`` entry in the access log: counts, categories and days, never contents.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from marshmallow import fields as mfields

from pds.db import rights as db_rights
from pds.db.sqlite_export import SOURCES, ExploreFile
from pds.diskfull import reporting_disk_full
from pds.errors import ValidationError
from pds.payloads import SCHEMAS
from pds.rights.export import ExportError, place
from pds.vocabulary import CATEGORIES, FIELDS

if TYPE_CHECKING:
    from pds.vault import Vault
    from pds.vault.records import StoredRecord

BATCH = 500
"""Records written at a time."""

RECORD_COLUMNS: dict[str, type] = {"id": int, "occurred_at": str, "source_id": int}
"""The columns every category table starts with."""

SEARCHED: dict[str, tuple[str, ...]] = {
    "transactions": ("description", "counterparty", "reference"),
    "balances": ("account", "type"),
    "energy": ("commodity", "flow", "usage_point"),
    "contacts": ("full_name", "nickname", "org", "title", "emails", "addresses", "note"),
    "events": ("summary", "description", "location", "organizer"),
    "health": ("type", "display", "code", "unit"),
    "locations": ("source", "device"),
    "activity": ("title", "product", "header"),
    "profile": ("name", "email", "addresses"),
    "intentions": ("text", "kind"),
}
"""The columns each category's full-text search covers: the words a person looks for."""

WARNING = "{path} is not encrypted: anyone who can read it can read your records."


@dataclass(frozen=True)
class SqliteExport:
    """What an export wrote: the file, its tables' row counts and the filters."""

    path: Path
    tables: dict[str, int]
    categories: tuple[str, ...]
    since: date | None
    until: date | None

    @property
    def records(self) -> int:
        return sum(n for name, n in self.tables.items() if name != SOURCES)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sqlite": str(self.path),
            "encrypted": False,
            "records": self.records,
            "tables": self.tables,
            "categories": list(self.categories),
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }


def column_name(field: str) -> str:
    """A payload field's column: its name, or ``payload_<name>`` if a record column has it."""
    return f"payload_{field}" if field in RECORD_COLUMNS else field


def columns(category: str) -> dict[str, type]:
    """A category table's columns in order, with their types (``bool`` fields as integers,
    every other field as text)."""
    schema = SCHEMAS[category]().fields
    out = dict(RECORD_COLUMNS)
    for name in FIELDS[category]:
        out[column_name(name)] = int if isinstance(schema.get(name), mfields.Boolean) else str
    return out


def cell(value: Any) -> Any:
    """A payload value as stored in a column: nested values as JSON text, yes/no as 1/0."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def row(record: StoredRecord) -> dict[str, Any]:
    """A record as a row of its category's table."""
    out: dict[str, Any] = {
        "id": record.id,
        "occurred_at": record.occurred_at,
        "source_id": record.source_id,
    }
    for name in FIELDS[record.category]:
        out[column_name(name)] = cell(record.payload.get(name))
    return out


def check_categories(categories: Iterable[str]) -> tuple[str, ...]:
    """The categories asked for, each once, in the vocabulary's order; ValidationError for one
    that is not a category."""
    asked = set()
    for category in categories:
        if category not in CATEGORIES:
            raise ValidationError(
                f'"{category}" is not a category; use one of {", ".join(CATEGORIES)}'
            )
        asked.add(category)
    return tuple(c for c in CATEGORIES if c in asked)


def _batches(records: Iterator[StoredRecord]) -> Iterator[list[StoredRecord]]:
    batch: list[StoredRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def write(
    vault: Vault,
    out: ExploreFile,
    categories: Sequence[str],
    since: str | None,
    until: str | None,
) -> dict[str, int]:
    """Write the tables to ``out``: the records of ``categories`` from ``since`` (inclusive)
    to ``until`` (exclusive), then the sources they came from. The row count per table."""
    out.create_sources()
    used: set[int] = set()
    counts: dict[str, int] = {}
    for category in categories:
        out.create_table(category, columns(category))
        counts[category] = 0
        for batch in _batches(vault.records(category, since=since, until=until)):
            out.insert_batch(category, [row(r) for r in batch])
            used.update(r.source_id for r in batch)
            counts[category] += len(batch)
        out.enable_search(category, [column_name(c) for c in SEARCHED[category]])
    sources = [s for s in vault.sources() if s["id"] in used]
    out.add_sources(sources)
    return {SOURCES: len(sources), **counts}


def _check_target(target: Path, force: bool) -> None:
    if target.is_dir():
        raise ExportError(
            f"{target} is a folder", hint="Give the name of the file to write, e.g. my-data.db."
        )
    if os.path.lexists(target) and not force:
        raise ExportError(
            f"{target} already exists",
            hint="Choose a new file name, or pass --force to replace it.",
        )
    if not target.parent.is_dir():
        raise ExportError(f"there is no directory {target.parent}", hint="Create it first.")


def _finish(tmp: Path) -> None:
    """Sync the written file, and check that it is still readable by its owner alone."""
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
        mode = stat.S_IMODE(os.fstat(fh.fileno()).st_mode)
    if mode != 0o600:
        raise ExportError(f"the export was written with mode {mode:o}, not 600; it was deleted")


def export_sqlite(
    vault: Vault,
    target: Path,
    *,
    categories: Iterable[str] = (),
    since: date | None = None,
    until: date | None = None,
    force: bool = False,
) -> SqliteExport:
    """Write the SQLite file ``target`` (see the module docstring); all or nothing, logged.

    ``categories``: those to export (default: every category that holds records);
    ``since``/``until``: the first and last day of ``occurred_at``, both inclusive.
    """
    chosen = check_categories(categories)
    if since and until and until < since:
        raise ValidationError("--until is before --since")
    target = target.expanduser()
    _check_target(target, force)
    after = since.isoformat() if since else None
    before = (until + timedelta(days=1)).isoformat() if until else None
    with reporting_disk_full(target.parent, "export again", "no export was written"):
        fd, name = tempfile.mkstemp(prefix=".pds-export-", suffix=".db.part", dir=target.parent)
    tmp = Path(name)
    try:
        os.fchmod(fd, 0o600)  # before SQLite opens it: SQLite keeps the file's mode
        os.close(fd)
        with reporting_disk_full(target.parent, "export again", "no export was written"):
            with db_rights.read_snapshot(vault.conn):
                if not chosen:
                    held = vault.status()["categories"]
                    chosen = tuple(c for c in CATEGORIES if c in held)
                out = ExploreFile(tmp)
                try:
                    tables = write(vault, out, chosen, after, before)
                finally:
                    out.close()
            _finish(tmp)
        if force:
            os.replace(tmp, target)
        else:
            place(str(tmp), target)
        done = SqliteExport(target, tables, chosen, since, until)
        try:
            audit(vault, done)
        except BaseException:
            os.unlink(target)
            raise
    finally:
        for leftover in (tmp, Path(f"{tmp}-journal")):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
    return done


def audit(vault: Vault, done: SqliteExport) -> None:
    """The export's access-log entry: counts per category and the days, no contents."""
    vault.audit(
        "export.sqlite",
        actor="owner",
        count=done.records,
        detail={
            "categories": {c: done.tables[c] for c in done.categories},
            "since": done.since.isoformat() if done.since else None,
            "until": done.until.isoformat() if done.until else None,
            "format": "sqlite",
        },
    )
