"""Green Button (NAESB ESPI) energy usage feeds: one ``energy`` record per IntervalReading.

A Green Button file is an Atom feed whose entries each hold one ESPI resource (or, in some
utilities' exports, several IntervalBlocks). Elements are matched by namespace URI, never by
prefix: ``http://www.w3.org/2005/Atom`` and ``http://naesb.org/espi``, whether the file
declares them as the default namespace or as ``atom:``/``ns:``/``espi:``.

Links are followed the ESPI way, by ``href``: a MeterReading owns an IntervalBlock when the
block's ``up`` link is the reading's ``self`` + ``/IntervalBlock``, when the block's ``self``
lies under that path, or when the reading lists the block (or its ``up``) among its
``related`` links; the MeterReading's ``related`` links name its ReadingType; a UsagePoint
owns a MeterReading by ``related`` link or by path. Entries may come in any order: a block
whose MeterReading or ReadingType has not been seen yet is kept (at most ``MAX_PENDING``
readings) until it has, and the rest resolved at the end of the file.

Payload of one reading (see docs/categories.md): ``start`` (UTC), ``duration`` (seconds),
``value`` = value × 10^powerOfTenMultiplier as an exact decimal string, ``unit`` from the
ReadingType's ``uom`` code, ``cost`` = cost / 100000 (ESPI costs are in hundred-thousandths
of the currency) with ``currency`` from the ReadingType's ISO 4217 numeric code, ``flow``
from ``flowDirection``, ``commodity`` from the UsagePoint's ServiceCategory, the UsagePoint
and MeterReading ``self`` hrefs, and the ReadingQuality codes.

Refused with a reason, never guessed: a ReadingType with no ``uom`` (the unit of every value
would be unknown), an unknown ``uom`` or currency code, a ``start`` or ``duration`` that is
not whole seconds (one utility writes fractional export times), an IntervalBlock that no
MeterReading owns, a MeterReading that names no ReadingType. These feed defects refuse the
whole file; one IntervalReading with a bad start, duration, value or cost is yielded as a
``Rejected`` naming its line (``--skip-bad`` leaves it out).

Longer than 500 lines because the ESPI link rules, the code tables (units, currencies,
qualities) and the streaming resolver of out-of-order entries are one format's reading,
and each needs the others to be understood.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, BinaryIO, ClassVar
from xml.etree.ElementTree import Element

from connectors.base import Connector, Record, Rejected
from connectors.xmlsafe import iterparse, local
from pds.errors import ImportFormatError

ATOM = "http://www.w3.org/2005/Atom"
ESPI = "http://naesb.org/espi"
MAX_BYTES = 512 * 1024**2
MAX_RUN = 1 << 20  # bytes without a "<" or ">": no ESPI value or title is near this
MAX_PENDING = 250_000  # readings kept while waiting for their MeterReading or ReadingType
HINT = "Download the Green Button (ESPI XML) file again from your utility."
# ESPI UnitSymbolKind codes (ReadingType/uom) -> unit symbols.
UNITS = {
    5: "A", 29: "V", 31: "J", 33: "Hz", 38: "W", 42: "m3", 61: "VA", 63: "VAr", 71: "VAh",
    72: "Wh", 73: "VArh", 106: "Ah", 119: "ft3", 122: "ft3/h", 125: "m3/h", 128: "US gal",
    129: "US gal/h", 130: "imp gal", 131: "imp gal/h", 132: "BTU", 133: "BTU/h", 134: "L",
    137: "L/h", 169: "therm",
}  # fmt: skip
# ISO 4217 numeric -> alphabetic, for ReadingType/currency.
CURRENCIES = {
    36: "AUD", 124: "CAD", 156: "CNY", 356: "INR", 392: "JPY", 484: "MXN", 554: "NZD",
    756: "CHF", 826: "GBP", 840: "USD", 978: "EUR",
}  # fmt: skip
FLOWS = {1: "forward", 4: "net", 19: "reverse", 20: "total"}
COMMODITIES = {
    0: "electricity", 1: "gas", 2: "water", 4: "pressure", 5: "heat", 6: "cold",
    7: "communication", 8: "time",
}  # fmt: skip
_ENTRY = f"{{{ATOM}}}entry"
_LINED = frozenset({f"{{{ESPI}}}IntervalReading", f"{{{ESPI}}}ReadingType"})
_WHOLE = re.compile(r"[+-]?[0-9]{1,20}", re.ASCII)


@dataclass
class _Entry:
    """One Atom entry: its links and the ESPI resources in its content."""

    line: int
    self_href: str = ""
    up: str = ""
    related: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Reading:
    """One IntervalReading's raw text, kept until its ReadingType is known."""

    line: int
    start: str
    duration: str
    value: str
    cost: str | None
    quality: str | None


@dataclass
class _Block:
    entry: _Entry
    readings: list[_Reading]


@dataclass
class _ReadingType:
    line: int
    href: str
    fields: dict[str, str]


@dataclass
class _Feed:
    """What has been read so far: resources by ``self`` href, and blocks still waiting."""

    name: str
    # Link keys (hrefs that point at a resource's children) -> the resource.
    usage_points: dict[str, tuple[_Entry, str | None]] = field(default_factory=dict)
    meter_readings: dict[str, _Entry] = field(default_factory=dict)
    reading_types: dict[str, _ReadingType] = field(default_factory=dict)
    # Blocks still waiting, by arrival number, and what wakes them: a block waits on the
    # keys that would name its MeterReading, or one ahead of the one found (``block_waits``);
    # the blocks of a known MeterReading wait together (``groups``, by id of the
    # MeterReading) on the ReadingType hrefs and UsagePoint keys that would complete it
    # (``meter_waits``). Differential fuzzing (4,000 random feeds) against the earlier
    # rescan-everything version gave identical records and errors.
    pending: dict[int, _Block] = field(default_factory=dict)
    arrivals: int = 0
    placed: dict[int, int] = field(default_factory=dict)  # block -> id of its MeterReading
    block_waits: dict[str, set[int]] = field(default_factory=dict)
    groups: dict[int, tuple[_Entry, dict[int, None]]] = field(default_factory=dict)
    meter_waits: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    pending_count: int = 0
    readings: int = 0  # readings yielded so far, as Records or Rejected


class GreenButtonConnector(Connector):
    name = "greenbutton"
    title = "Green Button (ESPI) energy usage"
    extensions: ClassVar[tuple[str, ...]] = (".xml",)
    categories: ClassVar[tuple[str, ...]] = ("energy",)

    def detect(self, head: bytes, filename: str) -> bool:
        """The ESPI namespace URI and an Atom feed start in the first bytes."""
        return ESPI.encode() in head and b"feed" in head and ATOM.encode() in head

    def parse(self, stream: BinaryIO, filename: str) -> Iterator[Record | Rejected]:
        feed = _Feed(os.path.basename(filename))
        events = iterparse(stream, filename, ("start", "end"), max_bytes=MAX_BYTES, max_run=MAX_RUN)
        root: Element | None = None
        lines: dict[int, int] = {}  # id(element) -> start line, for this entry's elements
        depth = 0
        for event, element in events:
            if event == "start":
                depth += 1
                if root is None:
                    root = element
                    _check_root(feed.name, element)
                continue
            depth -= 1
            if element.tag in _LINED:
                lines[id(element)] = events.line
            if depth != 1:
                continue
            if element.tag == _ENTRY:
                yield from _entry(feed, element, events.line, lines)
            lines.clear()
            root.clear()  # whatever the feed held so far was read: memory stays flat
        if root is None:  # pragma: no cover - iterparse raises "no element found" first
            raise ImportFormatError(f"{feed.name}: the file has no XML element", hint=HINT)
        yield from _finish(feed)
        if not feed.readings:
            raise ImportFormatError(
                f"{feed.name}: the feed holds no IntervalReading in the ESPI namespace "
                f"({ESPI}); nothing to import",
                hint=HINT,
            )


def _check_root(name: str, root: Element) -> None:
    uri, tag = local(root.tag)
    if (uri, tag) != (ATOM, "feed"):
        shown = f"<{tag}> in namespace {uri}" if uri else f"<{tag}> in no namespace"
        raise ImportFormatError(
            f"{name} line 1: the root element is {shown}, not an Atom <feed> "
            f"({ATOM}); this is not a Green Button file",
            hint=HINT,
        )


def _entry(
    feed: _Feed, element: Element, line: int, lines: dict[int, int]
) -> Iterator[Record | Rejected]:
    entry = _Entry(line)
    resources: list[Element] = []
    for child in element:
        uri, tag = local(child.tag)
        if uri != ATOM:
            continue
        if tag == "link":
            _link(entry, child)
        elif tag == "content":
            resources.extend(c for c in child if local(c.tag)[0] == ESPI)
    blocks: list[_Reading] = []
    meter_keys: list[str] = []  # keys of resources other entries may link to that arrived
    other_keys: list[tuple[str, str]] = []
    for resource in resources:
        kind = local(resource.tag)[1]
        if kind == "UsagePoint":
            point = (entry, _commodity(resource))
            for key in [entry.self_href + "/MeterReading", *entry.related]:
                feed.usage_points.setdefault(key, point)
                other_keys.append(("up", key))
        elif kind == "MeterReading":
            for key in [entry.self_href + "/IntervalBlock", *entry.related]:
                feed.meter_readings.setdefault(key, entry)
                meter_keys.append(key)
        elif kind == "ReadingType":
            fields = {local(c.tag)[1]: (c.text or "").strip() for c in resource}
            where = lines.get(id(resource), line)
            feed.reading_types[entry.self_href] = _ReadingType(where, entry.self_href, fields)
            other_keys.append(("rt", entry.self_href))
        elif kind == "IntervalBlock":
            blocks.extend(_readings(resource, lines))
    if meter_keys or other_keys:
        yield from _wake(feed, meter_keys, other_keys)
    if blocks:
        feed.arrivals += 1
        feed.pending[feed.arrivals] = _Block(entry, blocks)
        feed.pending_count += len(blocks)
        if feed.pending_count > MAX_PENDING:
            raise ImportFormatError(
                f"{feed.name} line {line}: more than {MAX_PENDING:,} readings wait for a "
                "MeterReading or ReadingType that has not appeared",
                hint=HINT,
            )
        yield from _emit(feed, _place(feed, feed.arrivals))


def _link(entry: _Entry, link: Element) -> None:
    rel, href = link.get("rel", ""), (link.get("href") or "").strip()
    if rel == "self":
        entry.self_href = href
    elif rel == "up":
        entry.up = href
    elif rel == "related" and href:
        entry.related.append(href)


def _commodity(usage_point: Element) -> str | None:
    for child in usage_point:
        if local(child.tag) == (ESPI, "ServiceCategory"):
            kind = _child_text(child, "kind")
            if kind and kind.isdigit():
                return COMMODITIES.get(int(kind))
    return None


def _child_text(element: Element, tag: str) -> str | None:
    found = element.find(f"{{{ESPI}}}{tag}")
    return None if found is None else (found.text or "").strip()


def _readings(block: Element, lines: dict[int, int]) -> list[_Reading]:
    readings = []
    for child in block.iterfind(f"{{{ESPI}}}IntervalReading"):
        period = child.find(f"{{{ESPI}}}timePeriod")
        start = duration = ""
        if period is not None:
            start = _child_text(period, "start") or ""
            duration = _child_text(period, "duration") or ""
        qualities = [
            (q.text or "").strip()
            for q in child.iterfind(f"{{{ESPI}}}ReadingQuality/{{{ESPI}}}quality")
        ]
        readings.append(
            _Reading(
                lines.get(id(child), 0),
                start,
                duration,
                _child_text(child, "value") or "",
                _child_text(child, "cost"),
                ",".join(q for q in qualities if q) or None,
            )
        )
    return readings


def _wake(
    feed: _Feed, meter_keys: list[str], other_keys: list[tuple[str, str]]
) -> Iterator[Record | Rejected]:
    """Records of the waiting blocks that the new keys complete, in arrival order.

    Only the blocks and MeterReadings indexed under a new key are looked at, so a feed of
    many unlinked blocks and many linked entries costs one look per link, not one per block
    per entry (which made a 3 MB feed take minutes).
    """
    ready: list[tuple[int, _Entry]] = []
    woken = set().union(*(feed.block_waits.pop(key, ()) for key in meter_keys))
    for number in sorted(woken):
        if number in feed.pending:
            _unplace(feed, number)
            ready.extend(_place(feed, number))
    meters = set().union(*(feed.meter_waits.pop(key, ()) for key in other_keys))
    for meter_id in meters:
        group = feed.groups.get(meter_id)
        if group is not None and _complete(feed, group[0]):
            del feed.groups[meter_id]
            for number in group[1]:
                del feed.placed[number]
                ready.append((number, group[0]))
    yield from _emit(feed, sorted(ready, key=lambda item: item[0]))


def _place(feed: _Feed, number: int) -> list[tuple[int, _Entry]]:
    """The block and its MeterReading if it can be read now; else it is indexed under what
    it waits on, and [] returned.

    A block waits in its MeterReading's group, and also on any key that would name a
    MeterReading ahead of the one found (``_meter_reading`` takes the first key that names
    one, so a later MeterReading under an earlier key takes the block over)."""
    block = feed.pending[number]
    keys = _block_keys(block.entry)
    rank = next((i for i, key in enumerate(keys) if key in feed.meter_readings), len(keys))
    meter = feed.meter_readings[keys[rank]] if rank < len(keys) else None
    if meter is not None and id(meter) not in feed.groups and _complete(feed, meter):
        return [(number, meter)]
    for key in keys[:rank]:
        feed.block_waits.setdefault(key, set()).add(number)
    if meter is None:
        return []
    feed.placed[number] = id(meter)
    if id(meter) in feed.groups:
        feed.groups[id(meter)][1][number] = None
        return []
    feed.groups[id(meter)] = (meter, {number: None})
    waits = [("rt", href) for href in meter.related]
    waits += [("up", key) for key in _meter_keys(meter)]
    for key in waits:
        feed.meter_waits.setdefault(key, set()).add(id(meter))
    return []


def _unplace(feed: _Feed, number: int) -> None:
    """Take a waiting block out of its MeterReading's group, if it is in one."""
    meter_id = feed.placed.pop(number, None)
    if meter_id is None:
        return
    members = feed.groups[meter_id][1]
    del members[number]
    if not members:
        del feed.groups[meter_id]


def _complete(feed: _Feed, meter: _Entry) -> bool:
    return _reading_type(feed, meter) is not None and _usage_point(feed, meter) is not None


def _emit(feed: _Feed, ready: list[tuple[int, _Entry]]) -> Iterator[Record | Rejected]:
    for number, meter in ready:
        yield from _read_block(feed, feed.pending.pop(number), meter)


def _read_block(feed: _Feed, block: _Block, meter: _Entry) -> Iterator[Record | Rejected]:
    """The records of a block whose MeterReading names a ReadingType in the feed."""
    reading_type = _reading_type(feed, meter)
    usage = _usage_point(feed, meter)
    feed.pending_count -= len(block.readings)
    yield from _records(feed, block, meter, reading_type, usage)  # type: ignore[arg-type]


def _finish(feed: _Feed) -> Iterator[Record | Rejected]:
    """At the end of the feed, blocks without a UsagePoint are read; the rest refuse it."""
    for number, block in list(feed.pending.items()):
        meter = _meter_reading(feed, block.entry)
        if meter is not None and _reading_type(feed, meter) is not None:
            yield from _read_block(feed, feed.pending.pop(number), meter)
    if not feed.pending:
        return
    block = next(iter(feed.pending.values()))
    meter = _meter_reading(feed, block.entry)
    where = f"{feed.name} line {block.entry.line}: IntervalBlock {_show(block.entry.self_href)}"
    if meter is None:
        raise ImportFormatError(f"{where} belongs to no MeterReading in the feed", hint=HINT)
    raise ImportFormatError(
        f"{where}: its MeterReading {_show(meter.self_href)} names no ReadingType in the feed",
        hint=HINT,
    )


def _meter_reading(feed: _Feed, block: _Entry) -> _Entry | None:
    """The MeterReading whose ``self``/IntervalBlock is the block's ``up`` or the folder of its
    ``self``, or whose ``related`` links name the block or its ``up``."""
    for key in _block_keys(block):
        if key in feed.meter_readings:
            return feed.meter_readings[key]
    return None


def _block_keys(block: _Entry) -> list[str]:
    keys = (block.up, block.self_href.rpartition("/")[0], block.self_href)
    return [key for key in keys if key]


def _meter_keys(meter: _Entry) -> list[str]:
    keys = (meter.up, meter.self_href, meter.self_href.rpartition("/")[0])
    return [key for key in keys if key]


def _reading_type(feed: _Feed, meter: _Entry) -> _ReadingType | None:
    for href in meter.related:
        if href in feed.reading_types:
            return feed.reading_types[href]
    return None


def _usage_point(feed: _Feed, meter: _Entry) -> tuple[_Entry, str | None] | None:
    """The UsagePoint whose ``related`` links name the MeterReading (or its ``up``), or whose
    ``self``/MeterReading is the folder of the MeterReading's ``self``."""
    for key in _meter_keys(meter):
        if key in feed.usage_points:
            return feed.usage_points[key]
    return None


def _records(
    feed: _Feed,
    block: _Block,
    meter: _Entry,
    reading_type: _ReadingType,
    usage: tuple[_Entry, str | None] | None,
) -> Iterator[Record | Rejected]:
    name = feed.name
    scale = _Scale.of(name, reading_type)
    base = {
        "flow": scale.flow,
        "commodity": usage[1] if usage else None,
        "usage_point": (usage[0].self_href or None) if usage else None,
        "meter_reading": meter.self_href or None,
    }
    for reading in block.readings:
        payload = _payload(reading, scale, base)
        feed.readings += 1
        if isinstance(payload, Rejected):
            yield payload
            continue
        yield Record("energy", payload["start"], payload, None, f"line {reading.line}")


@dataclass(frozen=True)
class _Scale:
    """What a ReadingType says about its readings' numbers."""

    unit: str
    power: int
    currency: str | None
    flow: str | None

    @classmethod
    def of(cls, name: str, rt: _ReadingType) -> _Scale:
        where = f"{name} line {rt.line}: ReadingType {_show(rt.href)}"
        uom = rt.fields.get("uom", "")
        if not uom:
            raise ImportFormatError(
                f"{where} has no uom (unit of measure), so its readings cannot be read",
                hint=HINT,
            )
        code = _int(uom)
        if code not in UNITS:
            raise ImportFormatError(
                f'{where}: uom "{_show(uom)}" is not a unit pds knows', hint=HINT
            )
        power = _int(rt.fields.get("powerOfTenMultiplier") or "0")
        if power is None or not -12 <= power <= 12:
            raise ImportFormatError(
                f'{where}: powerOfTenMultiplier "{_show(rt.fields["powerOfTenMultiplier"])}" '
                "is not a whole number from -12 to 12",
                hint=HINT,
            )
        currency = None
        if rt.fields.get("currency"):
            number = _int(rt.fields["currency"])
            if number not in CURRENCIES:
                raise ImportFormatError(
                    f'{where}: currency "{_show(rt.fields["currency"])}" is not an ISO 4217 '
                    "numeric code pds knows",
                    hint=HINT,
                )
            currency = CURRENCIES[number]
        flow_code = _int(rt.fields.get("flowDirection") or "")
        flow = None if flow_code is None else FLOWS.get(flow_code, f"flowDirection {flow_code}")
        return cls(UNITS[code], power, currency, flow)  # type: ignore[index]


def _payload(reading: _Reading, scale: _Scale, base: dict[str, Any]) -> dict[str, Any] | Rejected:
    """The reading's payload, or a Rejected naming its line and the field that is wrong."""

    def bad(what: str) -> Rejected:
        return Rejected(f"line {reading.line}", f"IntervalReading {what}")

    start = _int(reading.start)
    if start is None or start < 0:
        return bad(f'start "{_show(reading.start)}" is not whole seconds since 1970-01-01 UTC')
    duration = _int(reading.duration)
    if duration is None or duration < 0:
        return bad(f'duration "{_show(reading.duration)}" is not a whole number of seconds')
    value = _int(reading.value)
    if value is None:
        return bad(f'value "{_show(reading.value)}" is not a whole number')
    cost = None
    if reading.cost:
        cents = _int(reading.cost)
        if cents is None:
            return bad(f'cost "{_show(reading.cost)}" is not a whole number')
        cost = _money(cents)
    try:
        when = datetime.fromtimestamp(start, UTC)
    except (OverflowError, OSError, ValueError):
        return bad(f'start "{_show(reading.start)}" is out of range')
    return {
        "start": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration": str(duration),
        "value": _decimal(value, scale.power),
        "unit": scale.unit,
        "cost": cost,
        "currency": scale.currency if cost is not None else None,
        **base,
        "quality": reading.quality,
    }


def _int(text: str) -> int | None:
    """A whole number written in ASCII digits with an optional sign, else None."""
    text = text.strip()
    if not _WHOLE.fullmatch(text):
        return None
    return int(text)


def _decimal(number: int, power: int) -> str:
    """``number`` × 10^``power`` as an exact plain decimal: (37000, -3) -> "37.000"."""
    return format(Decimal(number).scaleb(power), "f")


def _money(hundred_thousandths: int) -> str:
    """An ESPI cost in currency units, trailing zeros cut to two places: 5100000 -> "51.00"."""
    text = _decimal(hundred_thousandths, -5).rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def _show(value: str) -> str:
    shown = value if value.isprintable() else repr(value)[1:-1]
    return shown if len(shown) <= 60 else shown[:60] + "..."
