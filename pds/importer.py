"""The importer: runs a connector over a file and hands its records to the vault in batches.

All or nothing per file: the vault stores a file in one transaction, so a malformed row,
an interrupted run or a crash leaves the vault as it was. A directory (an unpacked Google
Takeout, say) is expanded by ``expand_paths`` into the files in it that a connector
recognises, and those are imported one by one, each all or nothing: one file's bad row
does not undo its neighbours, and each file is its own source, so importing the folder
again adds nothing. Every record is validated by its
category's marshmallow schema before it is sealed. A row the connector yields as
``Rejected``, or one the schema refuses, refuses the file unless ``skip_bad``; with it the
row is left out, counted and listed in the summary.

Whatever a connector lets escape on hostile input that is not a ``PdsError`` but says the
file is bad (a ``RecursionError`` from deep nesting, ``struct``/``zlib``/``zipfile`` errors
from a damaged archive, a ``ValueError``) becomes an ``ImportFormatError`` naming the file.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from marshmallow import ValidationError as MarshmallowError

from connectors.base import (
    SKIP_BAD_HINT,
    Connector,
    Record,
    Rejected,
    rejected_error,
    rejected_message,
)
from pds import registry
from pds.db.locking import long_write
from pds.diskfull import reporting_disk_full
from pds.errors import ImportFormatError, PdsError
from pds.numbers import describe
from pds.payloads import fast_validator, first_error, schema_for
from pds.policyfiles import spending as spending_rules
from pds.policyfiles.spending import SpendingRulesError
from pds.vault import Prepared, SourceInfo, Vault, spending
from pds.vault.records import canonical
from pds.vocabulary import CATEGORIES

BATCH = 5000
MAX_FILE_BYTES = 4 * 1024**3
# Identical payloads share a date; counts are kept for about this many rows at most,
# dropping the least recently seen dates first (never the current one).
OCCURRENCE_ENTRIES = 100_000

Progress = Callable[[int], None]


@dataclass
class ImportSummary:
    file: str
    connector: str
    new: int = 0
    duplicate: int = 0
    rejected: int = 0
    source_id: int | None = None
    rejected_rows: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "connector": self.connector,
            "new": self.new,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
            "source_id": self.source_id,
            "rejected_rows": self.rejected_rows,
        }


class _CountingReader:
    """A binary stream wrapper that reports bytes read (progress) to a callback."""

    def __init__(self, raw: BinaryIO, progress: Progress | None):
        self._raw = raw
        self._progress = progress

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if self._progress and data:
            self._progress(len(data))
        return data

    def readline(self, limit: int = -1) -> bytes:
        data = self._raw.readline(limit)
        if self._progress and data:
            self._progress(len(data))
        return data

    def readinto(self, b: bytearray) -> int:
        n = self._raw.readinto(b)
        if self._progress and n:
            self._progress(n)
        return n

    def readable(self) -> bool:
        return True

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")

    def __getattr__(self, name: str):  # seekable(), closed, ... pass through
        return getattr(self._raw, name)


class _Occurrences:
    """Counts earlier identical payloads in this file, in bounded memory.

    Identical payloads share their date, so counts are grouped by date; when more than
    OCCURRENCE_ENTRIES rows are counted, the least recently seen dates are dropped. That is
    exact for any file sorted by date (as statements are: a date once left never returns)
    and for any file of up to that many rows; memory stays bounded whatever the file's size.
    """

    def __init__(self, limit: int = OCCURRENCE_ENTRIES) -> None:
        self._groups: OrderedDict[str, dict[int, int]] = OrderedDict()
        self._entries = 0
        self._limit = limit

    def nth(self, occurred_at: str, plain: bytes) -> int:
        group = self._groups.get(occurred_at)
        if group is None:
            group = self._groups[occurred_at] = {}
        else:
            self._groups.move_to_end(occurred_at)
        h = hash(plain)
        n = group.get(h, 0)
        group[h] = n + 1
        if n == 0:
            self._entries += 1
            while self._entries > self._limit and len(self._groups) > 1:
                _, oldest = self._groups.popitem(last=False)
                self._entries -= len(oldest)
        return n

    @property
    def entries(self) -> int:
        return self._entries


def choose_connector(path: Path, name: str | None) -> Connector:
    if name is not None:
        return registry.get(name)
    with path.open("rb") as fh:
        head = fh.read(registry.HEAD_BYTES)
    return registry.detect(head, path.name)


def expand_paths(paths: Iterable[Path], connector: str | None = None) -> Iterator[Path]:
    """Each path given; for a directory, every file in it (recursively, in name order,
    hidden names and symlinks left out) that a connector recognises, or that ``connector``
    recognises when one is named. A directory is imported file by file, each file all or
    nothing, exactly as if its files had been named one by one."""
    for path in paths:
        path = Path(path)
        if not path.is_dir():
            yield path
            continue
        found = [f for f in _walk(path) if _recognised(f, connector)]
        if not found:
            raise ImportFormatError(
                f"{path}: no file in this folder is in a format pds reads",
                hint="`pds connectors` lists the formats pds reads.",
            )
        yield from found


def _walk(folder: Path) -> Iterator[Path]:
    """The files under ``folder``, depth first in name order; an explicit stack, so a folder
    nested thousands deep cannot overflow Python's recursion limit."""
    stack = [iter(_listing(folder))]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
        elif entry.name.startswith(".") or entry.is_symlink():
            continue
        elif entry.is_dir():
            stack.append(iter(_listing(entry)))
        elif entry.is_file() and entry.stat().st_size > 0:
            yield entry


def _listing(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        raise _unreadable(folder, exc) from None


def _unreadable(path: Path, exc: OSError) -> ImportFormatError:
    return ImportFormatError(
        f"{path}: cannot be read ({exc.strerror or type(exc).__name__})",
        hint="Check that the file or folder is readable by you.",
    )


def _recognised(path: Path, connector: str | None) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(registry.HEAD_BYTES)
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if connector is not None:
        return registry.get(connector).detect(head, path.name)
    return any(c.detect(head, path.name) for c in registry.all_connectors())


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ImportFormatError(f"{path}: no such file", hint="Check the path and try again.")
    if not path.is_file():
        raise ImportFormatError(f"{path}: not a regular file", hint="Give the path of a file.")
    size = path.stat().st_size
    if size == 0:
        raise ImportFormatError(f"{path.name}: the file is empty", hint="Download it again.")
    if size > MAX_FILE_BYTES:
        raise ImportFormatError(
            f"{path.name}: the file is {size:,} bytes, more than the {MAX_FILE_BYTES:,} pds "
            "reads in one import",
            hint="Split the export into smaller files.",
        )


def file_digest(vault: Vault, path: Path) -> bytes:
    mac = vault.keyring.source_digest()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            mac.update(chunk)
    return mac.digest()


def _at(filename: str, rec: Record) -> str:
    return f"{filename} {rec.where}" if rec.where else filename


def prepare(
    records: Iterator[Record | Rejected],
    filename: str,
    summary: ImportSummary,
    skip_bad: bool,
) -> Iterator[list[Prepared]]:
    """Validate each record by its category's schema and batch them, counting repeats.

    A row the connector rejected, or one its schema refuses, stops the file unless
    ``skip_bad``; then it is counted and listed in ``summary.rejected_rows``. Each record
    carries its payload dict too, so that what ``Vault.ingest`` derives from it (search
    terms, spending categories) does not parse the canonical JSON again."""
    validators: dict[str, tuple] = {}
    occurrences = _Occurrences()
    batch: list[Prepared] = []
    for rec in records:
        if isinstance(rec, Rejected):
            if not skip_bad:
                raise rejected_error(filename, rec)
            summary.rejected += 1
            summary.rejected_rows.append(rejected_message(filename, rec))
            continue
        checks = validators.get(rec.category)
        if checks is None:
            schema = schema_for(rec.category)
            if rec.category not in CATEGORIES or schema is None:
                raise ImportFormatError(f"{_at(filename, rec)}: unknown category {rec.category!r}")
            checks = validators[rec.category] = (fast_validator(schema), schema)
        fast, schema = checks
        payload = rec.payload
        if not fast(payload):
            try:
                payload = schema.load(payload)
            except MarshmallowError as exc:
                message = f"{_at(filename, rec)}: {first_error(exc.messages)}"
                if not skip_bad:
                    raise ImportFormatError(message, hint=SKIP_BAD_HINT) from None
                summary.rejected += 1
                summary.rejected_rows.append(message)
                continue
        plain = canonical(payload)
        nth = 0 if rec.identity is not None else occurrences.nth(rec.occurred_at, plain)
        batch.append(Prepared(rec.category, rec.occurred_at, plain, rec.identity, nth, payload))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _categorise(vault: Vault) -> Callable | None:
    """The hook that gives new transactions their spending categories (None without rules).
    A rules file that does not load gives none: the import goes on, and the rules page and
    ``pds spending check`` say what is wrong with it."""
    try:
        rules = spending_rules.load(vault.settings.home)
    except SpendingRulesError:
        return None
    return spending.at_import(vault, rules)


def import_file(
    vault: Vault,
    path: Path,
    *,
    connector: str | None = None,
    skip_bad: bool = False,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import one file into the vault, all or nothing. Returns what happened."""
    path = Path(path)
    _check_file(path)
    try:
        conn = choose_connector(path, connector)
        summary = ImportSummary(file=path.name, connector=conn.name)
        digest = file_digest(vault, path)
        raw = path.open("rb")
    except OSError as exc:
        raise _unreadable(path, exc) from None
    with raw, reporting_disk_full(vault.settings.home, "import again", "nothing was imported"):
        stream = _CountingReader(raw, progress)
        try:
            categorise = _categorise(vault)
            records = conn.parse(stream, path.name)
            batches = prepare(records, path.name, summary, skip_bad)
            with long_write(vault.conn):  # others fail fast, not after 20 s, meanwhile
                result = vault.ingest(SourceInfo(conn.name, path.name, digest), batches, categorise)
        except PdsError:
            raise
        except RecursionError:
            raise ImportFormatError(
                f"{path.name}: the {conn.title} file is nested too deeply to read"
            ) from None
        except (struct.error, zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise ImportFormatError(
                f"{path.name}: the {conn.title} file is damaged ({str(exc) or type(exc).__name__})",
                hint="Download it again; it may be truncated.",
            ) from None
        except (UnicodeError, ValueError) as exc:
            raise ImportFormatError(
                f"{path.name}: the {conn.title} file could not be read ({describe(exc)})"
            ) from None
    summary.new, summary.duplicate, summary.source_id = (
        result.new,
        result.duplicate,
        result.source_id,
    )
    return summary
