"""FHIR R4 JSON: Bundles (transaction, searchset, collection, ...) and NDJSON bulk exports.

One ``health`` record (kind ``fhir``) per resource: each ``entry[].resource`` of a Bundle, or
each line of an ``.ndjson`` file. Entries without a resource (a DELETE in a transaction) are
skipped. A Bundle is parsed whole with ``json`` and so is capped at ``MAX_BUNDLE_BYTES``
(16 MiB: a Bundle of many small entries takes up to 25 times its size in memory, about
400 MB at the cap); NDJSON is streamed line by line, each line capped at ``MAX_LINE``.

Payload (docs/categories.md, ``health``): type = ``resourceType``, id = ``id``, start = the
resource's clinical date (the first of ``DATE_PATHS`` present: effective[x], occurrence[x],
performed[x], onset[x], recordedDate, authoredOn, started, period.start,
billablePeriod.start, issued, created, date, birthDate) as a UTC instant (its offset in
``tz_offset``) or a date as written (``2019``, ``2019-09``, ``2019-09-05``); code/display
from the first coding of ``code`` (or vaccineCode, medicationCodeableConcept, type,
description), its text where it has no display;
value/unit from ``valueQuantity``; and ``resource`` = the resource itself without its
``text`` narrative (generated XHTML that repeats the structured data and is most of its
size), at most ``MAX_RESOURCE_BYTES`` of JSON. A resource with no date has start null and
``occurred_at`` ``0001-01-01``: it sorts first and no time-limited grant covers it.

The whole file is refused with a reason for: JSON that is not FHIR (no ``resourceType``), a
resource that is not a Bundle in a ``.json`` file, a Bundle type FHIR R4 does not define, a
resource type that FHIR removed before R4 (``MedicationOrder``...: the export is of an older
version). One entry or NDJSON line is yielded as a ``Rejected`` naming it, which
``--skip-bad`` leaves out: an entry or resource that is not a JSON object, a resourceType
that is not a resource type, an NDJSON line that is not JSON or has no ``resourceType``, a
resource over ``MAX_RESOURCE_BYTES`` or nested more than ``MAX_DEPTH`` deep (deeper data
could be stored but not read back from a ``pds export``), a date that is not a real one;
a date FHIR does not allow fails the schema, naming the entry, and is left out the same way.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any, BinaryIO, ClassVar

from connectors.base import Connector, Record, Rejected
from pds.errors import ImportFormatError
from pds.numbers import TooManyDigits, json_loads

MAX_BUNDLE_BYTES = 16 * 1024**2  # json.loads of a Bundle can take 25 times its size
MAX_LINE = 16 * 1024**2
MAX_RESOURCE_BYTES = 256 * 1024
MAX_DEPTH = 64  # nesting of objects and lists in one resource (real ones nest about 10 deep)
UNDATED = "0001-01-01"
HINT = "Export the records again as a FHIR R4 Bundle (JSON) or as NDJSON."
BUNDLE_TYPES = frozenset(
    {
        "document",
        "message",
        "transaction",
        "transaction-response",
        "batch",
        "batch-response",
        "history",
        "searchset",
        "collection",
    }
)
# Resource types FHIR DSTU2/STU3 had and R4 removed: their presence means "not R4".
PRE_R4 = frozenset(
    {
        "BodySite",
        "Conformance",
        "DataElement",
        "DeviceComponent",
        "DiagnosticOrder",
        "DeviceUseRequest",
        "EligibilityRequest",
        "EligibilityResponse",
        "EnrollmentRequest",
        "ImagingManifest",
        "MedicationOrder",
        "Order",
        "OrderResponse",
        "ProcedureRequest",
        "ProcessRequest",
        "ProcessResponse",
        "ReferralRequest",
        "Sequence",
    }
)
DATE_PATHS = (
    ("effectiveDateTime",),
    ("effectiveInstant",),
    ("effectivePeriod", "start"),
    ("occurrenceDateTime",),
    ("occurrencePeriod", "start"),
    ("performedDateTime",),
    ("performedPeriod", "start"),
    ("onsetDateTime",),
    ("onsetPeriod", "start"),
    ("recordedDate",),
    ("authoredOn",),
    ("started",),
    ("period", "start"),
    ("billablePeriod", "start"),
    ("issued",),
    ("created",),
    ("date",),
    ("birthDate",),
)
CODE_FIELDS = ("code", "vaccineCode", "medicationCodeableConcept", "type", "description")
_PARTIAL = re.compile(r"[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?", re.ASCII)
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:[0-9]{2})",
    re.ASCII,
)
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}", re.ASCII)


class FhirConnector(Connector):
    name = "fhir"
    title = "FHIR R4 Bundle or NDJSON (health records)"
    extensions: ClassVar[tuple[str, ...]] = (".json", ".ndjson")
    categories: ClassVar[tuple[str, ...]] = ("health",)

    def detect(self, head: bytes, filename: str) -> bool:
        """A JSON object with ``"resourceType"`` in the first bytes (or an .ndjson file)."""
        start = head.removeprefix(b"\xef\xbb\xbf").lstrip()
        if not start.startswith(b"{"):
            return False
        return b'"resourceType"' in head

    def parse(self, stream: BinaryIO, filename: str) -> Iterator[Record | Rejected]:
        name = os.path.basename(filename)
        if name.lower().endswith(".ndjson"):
            yield from _ndjson(stream, name)
        else:
            yield from _bundle(stream, name)


def _bundle(stream: BinaryIO, name: str) -> Iterator[Record | Rejected]:
    data = stream.read(MAX_BUNDLE_BYTES + 1)
    if len(data) > MAX_BUNDLE_BYTES:
        raise ImportFormatError(
            f"{name}: the Bundle is larger than {MAX_BUNDLE_BYTES:,} bytes, the most pds reads "
            "as one JSON document",
            hint="Export the records as NDJSON (one resource a line) instead.",
        )
    try:
        bundle = _json(data, name, "")
    except _Bad as bad:
        raise bad.error(name) from None
    kind = bundle.get("resourceType")
    if kind != "Bundle":
        raise ImportFormatError(
            f"{name}: the file is a FHIR {_show(kind)} resource, not a Bundle; pds reads FHIR "
            "Bundles (.json) and NDJSON (.ndjson)",
            hint=HINT,
        )
    bundle_type = bundle.get("type")
    if bundle_type not in BUNDLE_TYPES:
        raise ImportFormatError(
            f'{name}: Bundle type "{_show(bundle_type)}" is not a FHIR R4 Bundle type '
            f"({', '.join(sorted(BUNDLE_TYPES))})",
            hint=HINT,
        )
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise ImportFormatError(f'{name}: the Bundle\'s "entry" is not a list', hint=HINT)
    for number, entry in enumerate(entries, 1):
        where = f"entry {number}"
        if not isinstance(entry, dict):
            yield Rejected(where, "the entry is not a JSON object")
            continue
        resource = entry.get("resource")
        if resource is None:
            continue
        yield _record_or_rejected(resource, name, where)


def _ndjson(stream: BinaryIO, name: str) -> Iterator[Record | Rejected]:
    number = 0
    while raw := stream.readline(MAX_LINE + 1):
        number += 1
        if len(raw) > MAX_LINE:
            raise ImportFormatError(
                f"{name} line {number}: the line is longer than {MAX_LINE:,} bytes", hint=HINT
            )
        if not raw.strip():
            continue
        try:
            resource = _json(raw, name, f" line {number}")
        except _Bad as bad:
            yield bad.rejected
            continue
        yield _record_or_rejected(resource, name, f"line {number}")


def _json(data: bytes, name: str, where: str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(
            f"{name}{where}: the file is not UTF-8 (byte {exc.start + 1}); FHIR JSON is always "
            "UTF-8",
            hint=HINT,
        ) from None
    where = where.strip()
    try:
        value = json_loads(text)
    except TooManyDigits as exc:
        raise _Bad(where, str(exc)) from None
    except json.JSONDecodeError as exc:
        place = where or f"line {exc.lineno}"
        reason = exc.msg.removesuffix(" at")  # json's "Invalid control character at"
        raise _Bad(place, f"not valid JSON ({reason} at column {exc.colno})") from None
    except RecursionError:
        raise _Bad(where, "the JSON is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise _Bad(where, f"the JSON cannot be read ({exc})") from None
    if not isinstance(value, dict) or "resourceType" not in value:
        raise _Bad(where, 'JSON but not FHIR: no "resourceType" in the top-level object')
    return value


def _too_deep(value: Any) -> bool:
    """Whether objects and lists nest more than MAX_DEPTH deep (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= MAX_DEPTH:
                    return True
                stack.append((child, depth + 1))
    return False


class _Bad(Exception):
    """A resource (an NDJSON line, a Bundle entry) that cannot be read: a Rejected row, or
    the whole file's error when it is the Bundle itself."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(what)
        self.rejected = Rejected(where, what)

    def error(self, name: str) -> ImportFormatError:
        where = f" {self.rejected.where}" if self.rejected.where else ""
        return ImportFormatError(f"{name}{where}: {self.rejected.message}", hint=HINT)


def _record_or_rejected(resource: Any, name: str, where: str) -> Record | Rejected:
    """The resource's Record; a Rejected for a defect of its own (an older FHIR version
    refuses the file)."""
    try:
        return _record(resource, name, where)
    except _Bad as bad:
        return bad.rejected


def _record(resource: Any, name: str, where: str) -> Record:
    if not isinstance(resource, dict):
        raise _Bad(where, "the resource is not a JSON object")
    kind = resource.get("resourceType")
    if not (isinstance(kind, str) and _RESOURCE_TYPE.fullmatch(kind)):
        raise _Bad(where, f'resourceType "{_show(kind)}" is not a FHIR resource type')
    if kind in PRE_R4:
        raise ImportFormatError(
            f"{name} {where}: {kind} is a resource of an older FHIR version (not R4)",
            hint="Ask for the records as FHIR R4.",
        )
    kept = {k: v for k, v in resource.items() if k != "text"}
    if _too_deep(kept):
        raise _Bad(where, f"the {kind} resource is nested more than {MAX_DEPTH} levels deep")
    size = len(json.dumps(kept, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_RESOURCE_BYTES:
        raise _Bad(
            where,
            f"the {kind} resource is {size:,} bytes, more than the "
            f"{MAX_RESOURCE_BYTES:,} pds keeps in one record",
        )
    try:
        start, end, offset = _dates(resource)
    except ValueError as exc:
        raise _Bad(
            where,
            f'date "{_show(str(exc.args[0]) if exc.args else "")}" is not a '
            "real calendar date and time",
        ) from None
    code, display = _coding(resource)
    value, unit = _quantity(resource)
    identifier = resource.get("id")
    payload = {
        "kind": "fhir",
        "type": kind,
        "start": start,
        "end": end,
        "tz_offset": offset,
        "value": value,
        "unit": unit,
        "source": None,
        "id": identifier if isinstance(identifier, str) else None,
        "code": code,
        "display": display,
        "details": None,
        "resource": kept,
    }
    occurred = _occurred(start)
    return Record("health", occurred, payload, None, f"{where} ({kind})")


def _dates(resource: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(start, end, tz offset of start): the clinical date, and a Period's end with it."""
    for path in DATE_PATHS:
        value: Any = resource
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            continue
        start, offset = _normalize(value)
        end = None
        if path[-1] == "start":
            last = resource[path[0]].get("end")
            end = None if last is None else _normalize(last)[0]
        return start, end, offset
    return None, None, None


def _normalize(value: Any) -> tuple[str, str | None]:
    """A FHIR date kept as written, a dateTime made UTC; anything else returned as is
    (so the schema refuses it, naming the entry)."""
    if not isinstance(value, str):
        return json.dumps(value), None
    if _PARTIAL.fullmatch(value):
        _real_date(value)
        return value, None
    if not _DATETIME.fullmatch(value):
        return value, None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        utc = moment.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise ValueError(value) from None
    offset = "+00:00" if value.endswith("Z") else value[-6:]
    text = utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds")
    return text.rstrip("0") + "Z" if utc.microsecond else text + "Z", offset


def _real_date(value: str) -> None:
    """Raise ValueError unless ``2019``, ``2019-09`` or ``2019-09-05`` is a real date."""
    parts = [int(p) for p in value.split("-")] + [1, 1]
    try:
        date(parts[0], parts[1], parts[2])
    except ValueError:
        raise ValueError(value) from None


def _occurred(start: str | None) -> str:
    if start is None:
        return UNDATED
    if _PARTIAL.fullmatch(start):
        return start + "-01-01"[len(start) - 4 :] if len(start) < 10 else start
    return start


def _coding(resource: dict[str, Any]) -> tuple[str | None, str | None]:
    for key in CODE_FIELDS:
        concept = resource.get(key)
        if isinstance(concept, list):
            concept = concept[0] if concept else None
        if not isinstance(concept, dict):
            continue
        codings = concept.get("coding")
        first = codings[0] if isinstance(codings, list) and codings else {}
        first = first if isinstance(first, dict) else {}
        code, display = first.get("code"), first.get("display") or concept.get("text")
        return _text(code), _text(display)
    return None, None


def _quantity(resource: dict[str, Any]) -> tuple[str | None, str | None]:
    quantity = resource.get("valueQuantity")
    if not isinstance(quantity, dict):
        return None, None
    value = quantity.get("value")
    shown = None if isinstance(value, bool) or value is None else _text(value)
    return shown, _text(quantity.get("unit") or quantity.get("code"))


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _show(value: Any) -> str:
    shown = str(value) if isinstance(value, str) else json.dumps(value)[:60]
    shown = shown if shown.isprintable() else repr(shown)[1:-1]
    return shown if len(shown) <= 60 else shown[:60] + "..."
