"""iCalendar files (``.ics``): one ``events`` record per VEVENT, time zones resolved.

Parsing is the ``icalendar`` library's (folding with spaces or TABs, escapes, VTIMEZONE
definitions with seconds in their offsets, several VCALENDARs in one file). Text after the
last ``END:VCALENDAR`` (Podio appends a comment line) is ignored. A VTIMEZONE must be read
before the events that use it, so a file is read whole: it is capped at ``MAX_BYTES`` with a
clear message (calendar exports are kilobytes to a few megabytes; icalendar's tree of a
realistic 13.8 MB calendar took 330 MB, so 8 MiB keeps an import near 200 MB). A file the
library cannot parse is refused with an ``ImportFormatError``; one VEVENT whose values the
library cannot turn into dates or text is yielded as a ``Rejected`` naming it
(``--skip-bad`` leaves it out).

Mapping: SUMMARY, DESCRIPTION, LOCATION, STATUS, UID; ORGANIZER without ``mailto:``; RRULE
kept as its text (``FREQ=WEEKLY;BYDAY=MO``), occurrences are not expanded. DTSTART/DTEND
(or DTSTART + DURATION):

- a date (all-day event): ``start``/``end`` are ``YYYY-MM-DD``, ``all_day`` true;
- a time with a zone (``Z`` or TZID): ``start``/``end`` are the UTC instant
  ``YYYY-MM-DDTHH:MM:SSZ``; ``timezone`` is the TZID as written (``UTC`` for ``Z``) and
  ``start_local``/``end_local`` the wall-clock time in it;
- a floating time (no zone): ``start``/``end`` are the wall-clock time without ``Z``,
  ``timezone`` null.

``occurred_at`` is ``start``. ``identity`` is the UID (with RECURRENCE-ID, for a changed
occurrence of a recurring event); an event without UID is told apart by its payload. Alarms
(VALARM) are not kept. An event without DTSTART becomes a record without ``start``, which
the ``events`` schema refuses with its VEVENT number (``--skip-bad`` leaves it out).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, BinaryIO, ClassVar

import icalendar

from connectors.base import Connector, Record, Rejected, refuse_nul
from connectors.charset import BadByte, NotText, bad_lines, decode_whole
from pds.errors import ImportFormatError

HINT = "Export the calendar again as iCalendar (.ics)."
MAX_BYTES = 8 << 20  # icalendar holds the whole tree: ~25 bytes of memory per byte read
END = "END:VCALENDAR"


class IcalConnector(Connector):
    name = "ical"
    title = "iCalendar events (.ics)"
    extensions: ClassVar[tuple[str, ...]] = (".ics", ".ical", ".ifb")
    categories: ClassVar[tuple[str, ...]] = ("events",)

    def detect(self, head: bytes, filename: str) -> bool:
        """The file starts (after a BOM and blank lines) with BEGIN:VCALENDAR."""
        start = head.removeprefix(b"\xef\xbb\xbf").lstrip()
        return start[:15].upper() == b"BEGIN:VCALENDAR"

    def parse(self, stream: BinaryIO, filename: str) -> Iterator[Record | Rejected]:
        name = os.path.basename(filename)
        data = stream.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise ImportFormatError(
                f"{name}: the calendar is larger than {MAX_BYTES:,} bytes, the most pds reads "
                "from one .ics file",
                hint="Export the calendar in parts (by year) and import each.",
            )
        refuse_nul(data, name, HINT)
        text, bad = _decode(data, name)
        spans = _event_spans(text) if bad else []
        events = list(_events(_calendar_text(text, name), name)) if bad else None
        if bad and (events is None or len(events) != len(spans)):
            first = bad[min(bad)]
            raise ImportFormatError(f"{name} line {first.line}: {first.message}", hint=HINT)
        for number, event in enumerate(events or _events(_calendar_text(text, name), name), 1):
            where = f"VEVENT #{number}"
            if bad:
                first_line, last_line = spans[number - 1]
                inside = sorted(n for n in bad if first_line <= n <= last_line)
                if inside:  # a byte that is not UTF-8 in a UTF-8 file
                    message = bad[inside[0]].message
                    for n in inside:
                        del bad[n]
                    yield Rejected(f"{where} line {inside[0]}", message)
                    continue
            yield _record(event, where)
        if bad:  # outside every event: the calendar itself is damaged
            first = bad[min(bad)]
            raise ImportFormatError(f"{name} line {first.line}: {first.message}", hint=HINT)


def _decode(data: bytes, name: str) -> tuple[str, dict[int, BadByte]]:
    """The text by the charset rule; for a UTF-8 file with bytes that are not UTF-8, the
    text with U+FFFD in their place and the bad byte of each such line."""
    try:
        return decode_whole(data), {}
    except BadByte:
        return bad_lines(data)
    except NotText as exc:
        raise ImportFormatError(f"{name} line {exc.line}: {exc.message}", hint=HINT) from None


def _event_spans(text: str) -> list[tuple[int, int]]:
    """The first and last line of each BEGIN:VEVENT ... END:VEVENT, in file order."""
    spans, start = [], None
    for number, line in enumerate(text.splitlines(), 1):
        word = line.strip().upper()
        if word == "BEGIN:VEVENT":
            start = number
        elif word == "END:VEVENT" and start is not None:
            spans.append((start, number))
            start = None
    return spans


def _calendar_text(text: str, name: str) -> str:
    end = text.upper().rfind(END)
    if not text.lstrip().upper().startswith("BEGIN:VCALENDAR") or end < 0:
        raise ImportFormatError(
            f"{name}: no BEGIN:VCALENDAR ... END:VCALENDAR calendar found", hint=HINT
        )
    return text[: end + len(END)] + "\r\n"


def _events(text: str, name: str) -> Iterator[Any]:
    try:
        calendars = icalendar.Calendar.from_ical(text, multiple=True)
    except Exception as exc:  # the library raises many types on hostile input
        raise ImportFormatError(f"{name}: not a readable calendar ({_reason(exc)})", hint=HINT)
    for calendar in calendars:
        yield from calendar.walk("VEVENT")


def _record(event: Any, where: str) -> Record | Rejected:
    """The VEVENT's Record, or a Rejected when a value cannot be read as a date or text."""
    uid = _text(event, "UID")
    if uid:
        where = f"{where} (UID {_short(uid)})"
    try:
        start, end, all_day = _times(event)
        payload = {
            "uid": uid,
            "summary": _text(event, "SUMMARY"),
            "description": _text(event, "DESCRIPTION"),
            "location": _text(event, "LOCATION"),
            **_when(start, end, all_day),
            "recurrence": _rrule(event),
            "status": _text(event, "STATUS"),
            "organizer": _organizer(event),
        }
        identity = _identity(event, uid)
    except Exception as exc:  # a value the library cannot turn into a date or text
        return Rejected(where, _reason(exc))
    return Record("events", payload["start"] or "", payload, identity, where)


def _times(event: Any) -> tuple[Any, Any, bool]:
    start_prop = event.get("DTSTART")
    start = start_prop.dt if start_prop is not None else None
    end_prop = event.get("DTEND")
    end = end_prop.dt if end_prop is not None else None
    if end is None and start is not None and event.get("DURATION") is not None:
        duration = event.get("DURATION").dt
        if isinstance(duration, timedelta):
            end = start + duration
    all_day = isinstance(start, date) and not isinstance(start, datetime)
    return start, end, all_day


def _when(start: Any, end: Any, all_day: bool) -> dict[str, Any]:
    zone = None
    if isinstance(start, datetime) and start.tzinfo is not None:
        zone = _zone_name(start)
    return {
        "start": _instant(start),
        "end": _instant(end),
        "all_day": all_day,
        "timezone": zone,
        "start_local": _local(start) if zone else None,
        "end_local": _local(end) if zone else None,
    }


def _zone_name(moment: datetime) -> str:
    tz = moment.tzinfo
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)
    if key:
        return str(key)
    return moment.tzname() or "UTC"


def _instant(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(microsecond=0).isoformat()
        utc = value.astimezone(UTC).replace(microsecond=0, tzinfo=None)
        return utc.isoformat() + "Z"
    if isinstance(value, date):
        return value.isoformat()
    raise ValueError(f"{value!r} is not a date or a time")


def _local(value: Any) -> str | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(microsecond=0, tzinfo=None).isoformat()


def _text(event: Any, key: str) -> str | None:
    value = event.get(key)
    if value is None:
        return None
    if isinstance(value, list):
        value = value[0] if value else ""
    text = str(value).strip()
    return text or None


def _organizer(event: Any) -> str | None:
    text = _text(event, "ORGANIZER")
    if text and text.lower().startswith("mailto:"):
        text = text[7:] or None
    return text


def _rrule(event: Any) -> str | None:
    rule = event.get("RRULE")
    if rule is None:
        return None
    if isinstance(rule, list):
        rule = rule[0]
    return rule.to_ical().decode("utf-8", errors="replace") or None


def _identity(event: Any, uid: str | None) -> str | None:
    if not uid:
        return None
    recurrence = event.get("RECURRENCE-ID")
    if recurrence is None:
        return uid
    return f"{uid}@{_instant(recurrence.dt)}"


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 100 else text[:100] + "..."


def _short(uid: str) -> str:
    shown = uid if uid.isprintable() else repr(uid)[1:-1]
    return shown if len(shown) <= 60 else shown[:60] + "..."
