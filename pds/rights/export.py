"""Export everything (GDPR Art. 20): one zip of JSON per category, JSON Schemas and CSV views.

Layout of the archive (format ``pds-export``, version :data:`FORMAT_VERSION`):

- ``manifest.json`` -- always the first entry, stored uncompressed so that a connector can
  recognise the archive from its first bytes: format, version, the vault's origin, when,
  the record count per category and the fields of each record;
- ``schemas/<category>.json`` -- a JSON Schema (2020-12) of each category's payload,
  generated from the marshmallow schemas in ``pds.payloads`` by apispec;
- ``<category>.json`` -- ``{"category", "records": [{"occurred_at", "source", "payload"}]}``
  in time order, decrypted;
- ``csv/<category>.csv`` -- a flat view: nested objects become dotted columns
  (``marketing.email``), lists become JSON text.

CSV injection: a cell (header names too) that starts with ``=``, ``+``, ``-``, ``@``, TAB or
CR (OWASP's list), LF or any other C0 control character (NUL included), or the full-width
``＝ ＋ － ＠`` (which some spreadsheets, given East Asian input settings, also read as a
formula) is prefixed with ``'`` so that a spreadsheet shows it as text instead of running
it, and every prefixed cell is quoted (``"'=1+2"``, OWASP's advice), so that no reader
takes the prefix apart from the cell; other cells are quoted only where CSV needs it. A
cell that is a
plain decimal number (``-12.30``, the amounts of every debit) is left as it is: a spreadsheet
reads it as a number, never as a formula, and prefixing it would turn every debit into
text. ``-1+2`` is not a plain number and is neutralised. The JSON files are never altered.

The archive is written to a temporary file (mode 0600) beside the target and hard-linked
to the target's name only when complete: the link fails if anything, even a dangling
symlink, has that name meanwhile, so an export never overwrites a file and never writes
through a symlink; there is never a half-written export under the target's name.
The export is one ``export`` entry in the access log, with counts, never contents.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from pds import clock
from pds.db import rights as db_rights
from pds.diskfull import reporting_disk_full
from pds.errors import PdsError
from pds.payloads import SCHEMAS

if TYPE_CHECKING:
    from pds.vault import Vault

FORMAT = "pds-export"
FORMAT_VERSION = 1
RECORD_FIELDS = ("occurred_at", "source", "payload")
_DANGEROUS = ("=", "+", "-", "@", *map(chr, range(0x20)), "\uff1d", "\uff0b", "\uff0d", "\uff20")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class ExportError(PdsError, OSError):
    code = "export_error"
    status = 409


# -- CSV ------------------------------------------------------------------------------------


def neutralise(cell: str) -> str:
    """The cell as a spreadsheet may safely show it (see the module docstring)."""
    if cell.startswith(_DANGEROUS) and not _NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def csv_line(cells: list[str]) -> str:
    """One CSV line (CRLF) of ``cells``, each neutralised: a prefixed cell is always quoted,
    any other only if it holds a comma, quote or line break (as ``csv.QUOTE_MINIMAL``)."""
    out = []
    for cell in cells:
        safe = neutralise(cell)
        if safe != cell or any(c in safe for c in ',"\r\n'):
            safe = '"' + safe.replace('"', '""') + '"'
        out.append(safe)
    return ",".join(out) + "\r\n"


def flatten(payload: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested objects as dotted keys; lists as JSON text; None as an empty cell."""
    out: dict[str, str] = {}
    for key, value in payload.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        elif isinstance(value, list):
            out[name] = json.dumps(value, ensure_ascii=False)
        elif value is None:
            out[name] = ""
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        else:
            out[name] = str(value)
    return out


def _csv(vault: Vault, category: str, sources: dict[int, dict[str, str]]) -> bytes:
    seen: set[str] = set()
    for rec in vault.records(category):
        seen.update(flatten(rec.payload))
    columns = _ordered(category, seen)
    buf = io.StringIO()
    buf.write(csv_line(["occurred_at", "source", *columns]))
    for rec in vault.records(category):
        flat = flatten(rec.payload)
        row = [rec.occurred_at, _source_name(sources, rec.source_id)]
        row += [flat.get(c, "") for c in columns]
        buf.write(csv_line(row))
    return buf.getvalue().encode("utf-8")


def _ordered(category: str, columns: set[str]) -> list[str]:
    """Columns in the order of the category's schema fields (then any others by name)."""
    schema = SCHEMAS.get(category)
    order = {name: n for n, name in enumerate(schema().fields)} if schema else {}
    return sorted(columns, key=lambda c: (order.get(c.split(".")[0], len(order)), c))


# -- JSON -----------------------------------------------------------------------------------


def json_schema(category: str) -> dict[str, Any] | None:
    """The JSON Schema of a category's payload, or None if the category has no schema."""
    schema = SCHEMAS.get(category)
    if schema is None:
        return None
    spec = APISpec("pds", "1", "3.1.0", plugins=[MarshmallowPlugin(lambda s: None)])
    body = spec.plugins[0].converter.schema2jsonschema(schema())  # type: ignore[attr-defined]
    doc = (schema.__doc__ or category).strip().splitlines()[0]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": category,
        "description": doc,
        **body,
    }


def _sources(vault: Vault) -> dict[int, dict[str, str]]:
    return {
        s["id"]: {"connector": s["connector"], "filename": s["filename"]} for s in vault.sources()
    }


def _source_name(sources: dict[int, dict[str, str]], source_id: int) -> str:
    s = sources.get(source_id)
    return f"{s['connector']}:{s['filename']}" if s else ""


def _write_records(
    out: IO[bytes], vault: Vault, category: str, sources: dict[int, dict[str, str]]
) -> None:
    """``{"category": ..., "records": [...]}``, one record at a time (never all in memory)."""
    out.write(json.dumps({"category": category})[:-1].encode() + b', "records": [')
    for n, rec in enumerate(vault.records(category)):
        item = {
            "occurred_at": rec.occurred_at,
            "source": sources.get(rec.source_id),
            "payload": rec.payload,
        }
        out.write((",\n" if n else "\n").encode() + json.dumps(item, ensure_ascii=False).encode())
    out.write(b"\n]}\n")


def manifest(vault: Vault, counts: dict[str, int], created_at: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "vault": vault.log.origin,
        "created_at": created_at,
        "categories": counts,
        "record_fields": list(RECORD_FIELDS),
        "schemas": {c: f"schemas/{c}.json" for c in counts if c in SCHEMAS},
    }


def counts(vault: Vault) -> dict[str, int]:
    return dict(vault.status()["categories"])


def write_zip(vault: Vault, out: IO[bytes], created_at: str) -> dict[str, int]:
    """Write the whole archive to ``out`` (a binary file); return the counts per category.

    Reads inside one read transaction, so the counts and the records agree.
    """
    with db_rights.read_snapshot(vault.conn):
        found = counts(vault)
        sources = _sources(vault)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            head = json.dumps(manifest(vault, found, created_at), indent=2).encode()
            zf.writestr(zipfile.ZipInfo("manifest.json", _zip_time()), head, zipfile.ZIP_STORED)
            for category in found:
                if (schema := json_schema(category)) is not None:
                    zf.writestr(f"schemas/{category}.json", json.dumps(schema, indent=2))
                with zf.open(f"{category}.json", "w", force_zip64=True) as fh:
                    _write_records(fh, vault, category, sources)
                zf.writestr(f"csv/{category}.csv", _csv(vault, category, sources))
    return found


def _zip_time() -> tuple[int, int, int, int, int, int]:
    return clock.local_now().timetuple()[:6]  # type: ignore[return-value]


def default_name(created_at: str) -> str:
    return f"pds-export-{created_at.replace(':', '').replace('-', '')}.zip"


def export_to(vault: Vault, target: Path | None) -> tuple[Path, dict[str, int]]:
    """Write the export to ``target`` (a new .zip, or a directory for the default name).

    Written to a temporary file beside it, logged, then renamed: all or nothing.
    """
    from pds.clock import now_iso

    created_at = now_iso()
    target = (target or Path.cwd()).expanduser()
    if target.is_dir():
        target = target / default_name(created_at)
    if os.path.lexists(target):
        raise _taken(target)
    if not target.parent.is_dir():
        raise ExportError(f"there is no directory {target.parent}", hint="Create it first.")
    with reporting_disk_full(target.parent, "export again", "no export was written"):
        fd, tmp = tempfile.mkstemp(prefix=".pds-export-", suffix=".part", dir=target.parent)
    try:
        with reporting_disk_full(target.parent, "export again", "no export was written"):
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as fh:
                found = write_zip(vault, fh, created_at)
                fh.flush()
                os.fsync(fh.fileno())
        place(tmp, target)
        try:
            audit(vault, found)
        except BaseException:
            os.unlink(target)
            raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return target, found


def _taken(target: Path) -> ExportError:
    return ExportError(
        f"{target} already exists", hint="Choose a new file name; pds never overwrites."
    )


def place(tmp: str, target: Path) -> None:
    """Give the finished file its name; never replacing (or following) what has it."""
    try:
        os.link(tmp, target, follow_symlinks=False)
    except FileExistsError:
        raise _taken(target) from None
    except OSError:  # a file system without hard links: check, then rename
        if os.path.lexists(target):
            raise _taken(target) from None
        os.rename(tmp, target)


def audit(vault: Vault, found: dict[str, int]) -> None:
    """The export's access-log entry: how many records of which categories, no contents."""
    vault.audit(
        "export",
        actor="owner",
        count=sum(found.values()),
        detail={"categories": found, "format": f"{FORMAT}/{FORMAT_VERSION}"},
    )
