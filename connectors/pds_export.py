"""A pds export archive (``pds export``) read back: every record of every category.

Recognised by its first entry, ``manifest.json``, stored uncompressed with
``"format": "pds-export"`` in the archive's first bytes. The archive is read through
``connectors.archive.SafeZip`` (entry names checked, sizes capped, nothing written to disk).
The manifest's count per category is checked against the records found, so a truncated or
edited archive imports nothing.

Records come back with ``identity`` None: the importer counts identical payloads within the
archive, so two equal records in the export stay two records in the vault. Each category
file is read whole (``json.load``), within SafeZip's caps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, BinaryIO, ClassVar

from connectors.archive import SafeZip, first_entry_name
from connectors.base import Connector, Record
from pds.errors import ImportFormatError
from pds.numbers import TooManyDigits, json_int
from pds.vocabulary import CATEGORIES
from pds.words import plural

FORMAT = "pds-export"
VERSIONS = (1,)
HINT = "Import the zip exactly as `pds export` wrote it."


class PdsExportConnector(Connector):
    name = "pds-export"
    title = "pds export archive"
    extensions: ClassVar[tuple[str, ...]] = (".zip",)
    categories: ClassVar[tuple[str, ...]] = CATEGORIES

    def detect(self, head: bytes, filename: str) -> bool:
        return first_entry_name(head) == "manifest.json" and b'"format": "pds-export"' in head

    def parse(self, stream: BinaryIO, filename: str) -> Iterator[Record]:
        with SafeZip(stream, filename) as archive:
            archive.expect([n for n in archive.names() if n.endswith(".json")])
            doc = _manifest(archive, filename)
            for category, count in doc["categories"].items():
                yield from _category(archive, filename, category, count)


def _load(archive: SafeZip, filename: str, name: str) -> Any:
    if name not in archive.names():
        raise ImportFormatError(f"{filename}: the archive has no {name}", hint=HINT)
    with archive.open(name) as fh:
        try:
            return json.load(fh, parse_int=json_int)
        except ImportFormatError:  # SafeZip's own refusal (a bomb, a cap), already clear
            raise
        except TooManyDigits as exc:
            raise ImportFormatError(f"{filename} {name}: {exc}", hint=HINT) from None
        except (ValueError, UnicodeError) as exc:
            raise ImportFormatError(
                f"{filename} {name}: not valid JSON ({exc})", hint=HINT
            ) from None
        except RecursionError:
            raise ImportFormatError(
                f"{filename} {name}: nested too deeply to read", hint=HINT
            ) from None


def _manifest(archive: SafeZip, filename: str) -> dict[str, Any]:
    doc = _load(archive, filename, "manifest.json")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ImportFormatError(
            f"{filename}: manifest.json is not a pds export manifest", hint=HINT
        )
    if doc.get("version") not in VERSIONS:
        raise ImportFormatError(
            f"{filename}: pds export version {doc.get('version')!r} is not one this pds reads",
            hint="Import it with the pds version that made it, or a newer one.",
        )
    cats = doc.get("categories")
    if not isinstance(cats, dict) or not all(
        isinstance(k, str) and type(v) is int for k, v in cats.items()
    ):
        raise ImportFormatError(f"{filename}: manifest.json has no category counts", hint=HINT)
    return doc


def _category(archive: SafeZip, filename: str, category: str, count: int) -> Iterator[Record]:
    name = f"{category}.json"
    doc = _load(archive, filename, name)
    records = doc.get("records") if isinstance(doc, dict) else None
    if not isinstance(records, list) or doc.get("category") != category:
        raise ImportFormatError(f"{filename} {name}: not a list of {category} records", hint=HINT)
    if len(records) != count:
        raise ImportFormatError(
            f"{filename} {name}: the manifest says {plural(count, 'record')} but the file holds "
            f"{len(records)}",
            hint=HINT,
        )
    for n, item in enumerate(records):
        where = f"{name} record {n + 1}"
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("occurred_at"), str)
            or not isinstance(item.get("payload"), dict)
        ):
            raise ImportFormatError(
                f"{filename} {where}: needs occurred_at (text) and payload (object)", hint=HINT
            )
        yield Record(category, item["occurred_at"], item["payload"], None, where)
