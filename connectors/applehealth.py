"""Apple Health ``export.xml``: one ``health`` record per Record, Workout and ActivitySummary.

The export also arrives zipped (``export.zip``): its ``apple_health_export/export.xml`` is
streamed out of the archive through ``connectors.archive.SafeZip``, never extracted.

The file is streamed (``connectors.xmlsafe.iterparse``): each top-level element of
``<HealthData>`` is read at its end tag, turned into a record, and then the root is cleared,
so memory stays flat for a multi-gigabyte export; one top-level element holding more than
``MAX_HELD`` elements is refused, so it stays flat inside one too. The export's internal
DTD subset (ATTLIST/ELEMENT declarations) is allowed, without applying its attribute
defaults; an ENTITY declaration, an external DTD or an external entity is refused.

Mapping (docs/categories.md, ``health``):

- ``Record``: kind ``record``, type = ``type`` (``HKQuantityTypeIdentifierStepCount``),
  value/unit as written, source = ``sourceName``, details = its MetadataEntry key/values;
- ``Workout``: kind ``workout``, type = ``workoutActivityType``, value/unit = duration and
  durationUnit, details = the total* attributes present plus its MetadataEntry key/values
  (WorkoutRoute locations are not read: they belong to ``locations``);
- ``ActivitySummary``: kind ``activity_summary``, start = ``dateComponents`` (a date),
  value/unit = activeEnergyBurned(+Unit), details = the other attributes.

Times ``2014-09-13 10:27:54 +0100`` become UTC instants ``2014-09-13T09:27:54Z`` and the
start's offset is kept in ``tz_offset`` (``+01:00``). ``Me`` and ``ExportDate`` are not
records; ``Correlation`` elements are skipped because Apple repeats their Records at the top
level. A bad element (no type, a date that is not Apple's format) becomes a record whose
payload fails the ``health`` schema, so the importer names its line and ``--skip-bad`` can
leave it out; an ActivitySummary whose ``dateComponents`` is not a real date is yielded as
a ``Rejected``, which ``--skip-bad`` leaves out too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any, BinaryIO, ClassVar
from xml.etree.ElementTree import Element

from connectors.archive import SafeZip, first_entry_name, is_zip
from connectors.base import Connector, Record, Rejected
from connectors.xmlsafe import iterparse
from pds.errors import ImportFormatError

MAX_BYTES = 4 * 1024**3
MAX_RUN = 1 << 20  # bytes without a "<" or ">": one giant attribute or text is refused
MAX_HELD = 10_000  # elements inside one top-level element (a Record's MetadataEntry, ...)
ZIP_FOLDER = "apple_health_export/"
ZIP_ENTRY = ZIP_FOLDER + "export.xml"
HINT = "Export again from the Health app (profile picture > Export All Health Data)."
_DATE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})",
    re.ASCII,
)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
WORKOUT_TOTALS = (
    "totalDistance",
    "totalDistanceUnit",
    "totalEnergyBurned",
    "totalEnergyBurnedUnit",
    "totalSwimmingStrokeCount",
    "totalSwimmingStrokeCountUnit",
    "totalFlightsClimbed",
    "totalFlightsClimbedUnit",
)
SUMMARY_VALUE = ("activeEnergyBurned", "activeEnergyBurnedUnit", "dateComponents")


class AppleHealthConnector(Connector):
    name = "applehealth"
    title = "Apple Health export (export.xml or export.zip)"
    extensions: ClassVar[tuple[str, ...]] = (".xml", ".zip")
    categories: ClassVar[tuple[str, ...]] = ("health",)

    def detect(self, head: bytes, filename: str) -> bool:
        """``<HealthData`` or ``<!DOCTYPE HealthData`` in the first bytes, or a zip whose
        first entry is under ``apple_health_export/``."""
        if is_zip(head):
            return (first_entry_name(head) or "").startswith(ZIP_FOLDER)
        return b"<HealthData" in head or b"<!DOCTYPE HealthData" in head

    def parse(self, stream: BinaryIO, filename: str) -> Iterator[Record | Rejected]:
        head = stream.read(4)
        if not is_zip(head):
            yield from _export(_Prefixed(head, stream), filename)  # type: ignore[arg-type]
            return
        stream.seek(0)  # a zip is read from a file, which can seek
        with SafeZip(stream, filename) as archive:
            if ZIP_ENTRY not in archive.names():
                raise ImportFormatError(
                    f"{os.path.basename(filename)}: the archive has no {ZIP_ENTRY}; this is not "
                    "the Apple Health export.zip",
                    hint=HINT,
                )
            with archive.open(ZIP_ENTRY) as entry:
                yield from _export(entry, ZIP_ENTRY)


def _export(stream: BinaryIO, filename: str) -> Iterator[Record | Rejected]:
    """The records of one export.xml stream."""
    name = os.path.basename(filename)
    events = iterparse(
        stream, filename, ("start", "end"), allow_dtd=True, max_bytes=MAX_BYTES, max_run=MAX_RUN
    )
    depth = held = 0
    root: Element | None = None
    for event, element in events:
        if event == "start":
            depth += 1
            if root is None:
                root = element
                _check_root(name, element)
            elif depth > 2:
                held += 1
                if held > MAX_HELD:
                    raise ImportFormatError(
                        f"{name} line {events.line}: more than {MAX_HELD:,} elements inside "
                        "one top-level element",
                        hint=HINT,
                    )
            continue
        depth -= 1
        if depth != 1:
            continue
        held = 0
        record = _record(element, events.line)
        if record is not None:
            yield record
        root.clear()  # type: ignore[union-attr]  # drop what was read: memory stays flat


class _Prefixed:
    """A stream whose first bytes were already read: ``head``, then the rest of ``raw``."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        self._head = head
        self._raw = raw

    def read(self, n: int = -1) -> bytes:
        if not self._head:
            return self._raw.read(n)
        head, self._head = self._head, b""
        return head + self._raw.read(max(n - len(head), 0) if n >= 0 else -1)


def _check_root(name: str, root: Element) -> None:
    if root.tag != "HealthData":
        raise ImportFormatError(
            f"{name} line 1: the root element is <{root.tag}>, not <HealthData>; this is not "
            "an Apple Health export.xml",
            hint=HINT,
        )


def _record(element: Element, line: int) -> Record | Rejected | None:
    tag = element.tag
    if tag == "Record":
        payload = _timed(element, "record", element.get("type", ""))
        payload["value"] = element.get("value")
        payload["unit"] = element.get("unit")
    elif tag == "Workout":
        payload = _timed(element, "workout", element.get("workoutActivityType", ""))
        payload["value"] = element.get("duration")
        payload["unit"] = element.get("durationUnit")
        totals = {k: element.get(k) for k in WORKOUT_TOTALS if element.get(k) is not None}
        payload["details"] = _details(totals, element)
    elif tag == "ActivitySummary":
        payload = _summary(element)
        if payload is None:
            day = element.get("dateComponents", "")
            what = f'ActivitySummary dateComponents "{day}" is not a real date'
            return Rejected(f"line {line}", what)
    else:
        return None
    return Record("health", _occurred(payload), payload, None, f"line {line} ({tag})")


def _timed(element: Element, kind: str, type_: str) -> dict[str, Any]:
    start, offset = _instant(element.get("startDate"))
    end, _ = _instant(element.get("endDate"))
    return {
        "kind": kind,
        "type": type_,
        "start": start,
        "end": end,
        "tz_offset": offset,
        "value": None,
        "unit": None,
        "source": element.get("sourceName"),
        "id": None,
        "code": None,
        "display": None,
        "details": _details({}, element),
        "resource": None,
    }


def _summary(element: Element) -> dict[str, Any] | None:
    """The payload of an ActivitySummary; None when its date has the form of a date but is
    not a real one (2024-02-30)."""
    day = element.get("dateComponents", "")
    if _DAY.fullmatch(day):
        try:
            date.fromisoformat(day)
        except ValueError:
            return None
    rest = {k: v for k, v in element.attrib.items() if k not in SUMMARY_VALUE}
    return {
        "kind": "activity_summary",
        "type": "ActivitySummary",
        "start": day,  # a date; anything else fails the schema and names this element
        "end": None,
        "tz_offset": None,
        "value": element.get("activeEnergyBurned"),
        "unit": element.get("activeEnergyBurnedUnit"),
        "source": None,
        "id": None,
        "code": None,
        "display": None,
        "details": rest or None,
        "resource": None,
    }


def _details(base: dict[str, str], element: Element) -> dict[str, str] | None:
    """``base`` plus the element's MetadataEntry key/values; None when there are none."""
    details = dict(base)
    for entry in element.iterfind("MetadataEntry"):
        key = entry.get("key")
        if key is not None:
            details[key] = entry.get("value", "")
    return details or None


def _instant(raw: str | None) -> tuple[str, str | None]:
    """``"2014-09-13 10:27:54 +0100"`` -> (``"2014-09-13T09:27:54Z"``, ``"+01:00"``).

    Anything else comes back as written (with no offset) so the schema refuses it by name.
    """
    match = _DATE.fullmatch(raw or "")
    if match is None:
        return raw or "", None
    year, month, day, hour, minute, second, sign, oh, om = match.groups()
    try:
        local = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
        shift = timedelta(hours=int(oh), minutes=int(om))
        utc = local - shift if sign == "+" else local + shift
    except (ValueError, OverflowError):
        return raw or "", None
    return utc.isoformat(timespec="seconds") + "Z", f"{sign}{oh}:{om}"


def _occurred(payload: dict[str, Any]) -> str:
    start = payload["start"]
    return start if isinstance(start, str) and _DAY.match(start) else ""
