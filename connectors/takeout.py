"""Google Takeout: the zip itself, or its Location History and My Activity JSON files.

A Takeout zip is read through ``SafeZip`` (limits, no extraction). Its entries go by path:

- ``.../Location History/Records.json`` or ``Location History.json`` -> ``locations`` (also
  under ``Location History (Timeline)/``);
- ``.../My Activity/<product>/My Activity.json`` -> ``activity``;
- ``*.vcf`` (``Takeout/Contacts/...``) -> the vCard connector, ``contacts``;
- ``*.ics`` (``Takeout/Calendar/...``) -> the iCalendar connector, ``events``;
- everything else (HTML, images, Semantic Location History, settings) is left alone.

Location History JSON can be gigabytes, so JSON is streamed without a new dependency: the
array (top level for My Activity, under a first key ``"locations"`` for Location History)
is read in 64 KiB chunks and each element decoded with ``json.JSONDecoder.raw_decode`` as
soon as it is complete; memory holds one element (at most ``MAX_ELEMENT`` characters).
Keys after ``"locations"`` are not read.

Locations: ``time`` from ``timestampMs`` (epoch milliseconds, string or number, the old
format) or ``timestamp`` (ISO 8601, the newer ``Records.json``), as UTC with milliseconds;
``latitude``/``longitude`` from ``latitudeE7``/``longitudeE7`` as exact decimal strings with
seven places (values past the int32 wrap that old exports hold are unwrapped); ``accuracy``
in metres; ``source`` (``WIFI``, ``GPS``...); ``device`` = ``deviceTag``. Activity
``time``, ``product`` (``products`` joined by ", "), ``title``, ``url`` (``titleUrl``),
``header``. A missing or malformed value is passed on as null, so the category's schema
names it and ``--skip-bad`` can leave the element out; an element that is JSON but not an
object is yielded as a ``Rejected``, left out the same way. Rejected rows of the vCard and
iCalendar connectors inside a zip are named by the entry's path too. JSON that cannot be
decoded (the stream would not know where the next element starts) refuses the file.
"""

from __future__ import annotations

import codecs
import dataclasses
import json
import os
import posixpath
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, ClassVar

from connectors.archive import ArchiveError, SafeZip, first_entry_name, is_zip
from connectors.base import Connector, Record, Rejected
from connectors.ical import IcalConnector
from connectors.vcard import VcardConnector
from pds.errors import ImportFormatError
from pds.numbers import TooManyDigits, json_decoder

HINT = "Download the Takeout archive again, choosing JSON where Google offers a format."
CHUNK = 1 << 16
MAX_ELEMENT = 4 << 20  # characters in one array element
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LOCATIONS_START = re.compile(r'\{\s*"locations"\s*:\s*\[')
_WS = " \t\r\n"


class TakeoutConnector(Connector):
    name = "takeout"
    title = "Google Takeout (zip, Location History, My Activity JSON)"
    extensions: ClassVar[tuple[str, ...]] = (".zip", ".json")
    categories: ClassVar[tuple[str, ...]] = ("locations", "activity", "contacts", "events")

    def detect(self, head: bytes, filename: str) -> bool:
        """A zip whose first entry is under ``Takeout/`` (or named takeout-*.zip), or JSON
        shaped like Location History or My Activity."""
        if is_zip(head):
            first = first_entry_name(head) or ""
            base = os.path.basename(filename).lower()
            return first.startswith("Takeout/") or (
                base.startswith("takeout") and base.endswith(".zip")
            )
        start = head.removeprefix(b"\xef\xbb\xbf").lstrip()
        if start.startswith(b"{"):
            return _LOCATIONS_START.match(start.decode("latin-1")) is not None
        if start.startswith(b"["):
            return all(key in start for key in (b'"header"', b'"title"', b'"time"'))
        return False

    def parse(self, stream: BinaryIO, filename: str) -> Iterator[Record | Rejected]:
        name = os.path.basename(filename)
        head = stream.read(4)
        stream.seek(0)
        if is_zip(head):
            yield from _parse_zip(stream, name)
        else:
            yield from _parse_json(stream, name)


def _parse_json(stream: BinaryIO, name: str) -> Iterator[Record | Rejected]:
    reader = _JsonArray(stream, name)
    what, make = ("location", _location) if reader.kind == "locations" else ("item", _activity)
    for number, item in reader.items(what):
        where = f"{what} #{number}"
        if isinstance(item, dict):
            yield make(item, where)
        else:
            yield Rejected(where, "not a JSON object")


def _route(entry: str) -> Callable[[BinaryIO, str], Iterator[Record | Rejected]] | None:
    base = posixpath.basename(entry)
    lower = base.lower()
    parts = entry.split("/")
    if lower.endswith((".vcf", ".vcard")):
        return VcardConnector().parse
    if lower.endswith(".ics"):
        return IcalConnector().parse
    in_history = any(part.startswith("Location History") for part in parts[:-1])
    if in_history and base in ("Records.json", "Location History.json"):
        return _parse_json
    if "My Activity" in parts[:-1] and base in ("My Activity.json", "MyActivity.json"):
        return _parse_json
    return None


def _parse_zip(stream: BinaryIO, name: str) -> Iterator[Record | Rejected]:
    with SafeZip(stream, name) as archive:
        routes = [(entry, parse) for entry in archive.names() if (parse := _route(entry))]
        archive.expect([entry for entry, _ in routes])  # a bomb is refused before any record
        for entry, parse in routes:
            with archive.open(entry) as inner:
                try:
                    for rec in parse(inner, posixpath.basename(entry)):
                        yield dataclasses.replace(rec, where=f"{entry} {rec.where}")
                except ArchiveError:
                    raise  # already names the archive and the entry
                except ImportFormatError as exc:
                    raise _within(name, entry, exc) from None
    if not routes:
        raise ImportFormatError(
            f"{name}: no Location History, My Activity, contacts or calendar file in the archive",
            hint=HINT,
        )


def _within(name: str, entry: str, exc: ImportFormatError) -> ImportFormatError:
    """The sub-connector's error (which starts with the entry's base name) placed in the zip."""
    folder = posixpath.dirname(entry)
    where = f"{name} {folder}/" if folder else f"{name} "
    return ImportFormatError(where + exc.message, hint=exc.hint)


_VALUE_START = frozenset('{["-0123456789tfn')


class _JsonArray:
    """Streams the elements of a top-level JSON array, or of ``{"locations": [...]}``."""

    def __init__(self, stream: BinaryIO, name: str) -> None:
        self.stream = stream
        self.name = name
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.buffer = ""
        self.pos = 0
        self.eof = False
        self.json = json_decoder()
        self.kind = self._start()

    def _more(self) -> bool:
        if self.eof:
            return False
        data = self.stream.read(CHUNK)
        try:
            self.buffer += self.decoder.decode(data, final=not data)
        except UnicodeDecodeError:
            raise self._error("the file is not UTF-8 JSON") from None
        self.eof = not data
        return True

    def _skip_ws(self) -> str:
        """The next non-blank character ("" at the end of the file)."""
        while True:
            while self.pos < len(self.buffer) and self.buffer[self.pos] in _WS:
                self.pos += 1
            if self.pos < len(self.buffer):
                return self.buffer[self.pos]
            self.buffer, self.pos = "", 0
            if not self._more():
                return ""

    def _start(self) -> str:
        first = self._skip_ws()
        if first == "[":
            self.pos += 1
            return "activity"
        if first == "{":
            while len(self.buffer) - self.pos < 256 and self._more():
                pass
            match = _LOCATIONS_START.match(self.buffer, self.pos)
            if match:
                self.pos = match.end()
                return "locations"
        raise self._error(
            'expected a My Activity array ([...]) or Location History ({"locations": [...]})'
        )

    def items(self, what: str) -> Iterator[tuple[int, Any]]:
        number = 0
        while True:
            char = self._skip_ws()
            if char == "]":
                return
            if number:
                if char != ",":
                    raise self._error(f"{what} #{number}: expected , or ] after it")
                self.pos += 1
                char = self._skip_ws()
            number += 1
            if char not in _VALUE_START:
                raise self._error(f"{what} #{number}: not a JSON object")
            yield number, self._element(f"{what} #{number}")

    def _element(self, where: str) -> Any:
        while True:
            try:
                value, end = self.json.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as exc:
                if exc.msg.startswith("Invalid control character"):  # more text cannot mend it
                    code = ord(self.buffer[exc.pos])
                    raise self._error(
                        f"{where}: a control character (U+{code:04X}) inside a string is not "
                        "valid JSON"
                    ) from None
                if len(self.buffer) - self.pos > MAX_ELEMENT:
                    raise self._error(f"{where}: longer than {MAX_ELEMENT:,} characters") from None
                if not self._more():
                    raise self._error(f"{where}: {exc.msg}; the file looks truncated") from None
                self.buffer, self.pos = self.buffer[self.pos :], 0
                continue
            except RecursionError:
                raise self._error(f"{where}: nested too deeply to read") from None
            except TooManyDigits as exc:
                raise self._error(f"{where}: {exc}") from None
            if end == len(self.buffer) and isinstance(value, (int, float)) and self._more():
                continue  # a number may go on in the next chunk
            self.pos = end
            return value

    def _error(self, what: str) -> ImportFormatError:
        return ImportFormatError(f"{self.name}: {what}", hint=HINT)


def _location(item: dict[str, Any], where: str) -> Record:
    moment = _from_millis(item.get("timestampMs")) or _from_iso(item.get("timestamp"))
    device = item.get("deviceTag")
    payload = {
        "time": _stamp(moment),
        "latitude": _e7(item.get("latitudeE7"), 900_000_000),
        "longitude": _e7(item.get("longitudeE7"), 1_800_000_000),
        "accuracy": _whole(item.get("accuracy")),
        "source": item.get("source") if isinstance(item.get("source"), str) else None,
        "device": str(device) if isinstance(device, (int, str)) else None,
    }
    return Record("locations", _occurred(moment), payload, where=where)


def _activity(item: dict[str, Any], where: str) -> Record:
    moment = _from_iso(item.get("time"))
    products = item.get("products")
    if isinstance(products, list) and all(isinstance(p, str) for p in products):
        product = ", ".join(products)
    else:
        product = None
    url = item.get("titleUrl")
    header = item.get("header")
    payload = {
        "time": _stamp(moment),
        "product": product,
        "title": item.get("title") if isinstance(item.get("title"), str) else None,
        "url": url if isinstance(url, str) else None,
        "header": header if isinstance(header, str) else None,
    }
    return Record("activity", _occurred(moment), payload, where=where)


def _from_millis(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    text = str(value).strip()
    if not text.isascii() or not text.lstrip("-").isdigit() or len(text) > 15:
        return None
    try:
        return EPOCH + timedelta(milliseconds=int(text))
    except OverflowError:  # past year 9999
        return None


def _from_iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return None


def _stamp(moment: datetime | None) -> str | None:
    if moment is None or not 1 <= moment.year <= 9999:
        return None
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def _occurred(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}Z" if moment is not None else ""


def _e7(value: Any, limit: int) -> str | None:
    """An E7 integer as a decimal string with seven places: 376955289 -> "37.6955289"."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    if value > limit:  # old exports overflowed int32
        value -= 1 << 32
    if abs(value) > limit:
        return None
    sign = "-" if value < 0 else ""
    whole, fraction = divmod(abs(value), 10**7)
    return f"{sign}{whole}.{fraction:07d}"


def _whole(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return str(value)
