"""The energy page: usage per day, week or month as bars, one chart per commodity and unit,
what it cost per currency, the totals for the filters, and the readings in words.

Readings are never added across commodities or units (kWh of electricity and therms of gas
stay apart), nor across directions: imported, exported and net flows are series of their
own. Watt-hours are shown as kilowatt-hours, as bills write them. A reading falls in the
day, week or month of its start in this machine's time zone (the zone the page writes
times in), and the From and To dates are days of that zone too, so an hourly feed's day
is the owner's day. The meters are named "Meter 1",
"Meter 2"... (in the order of their Green Button addresses), never by those addresses.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from flask import render_template
from flask_babel import gettext, lazy_gettext, ngettext

from pds.errors import BadRequest
from pds.http import locale
from pds.http.web import charts
from pds.http.web.views import common

if TYPE_CHECKING:
    from pds.vault import Vault
    from pds.vault.records import StoredRecord

FILTERS = ("by",)
PERIODS = {"day": lazy_gettext("Day"), "week": lazy_gettext("Week"), "month": lazy_gettext("Month")}
FLOWS = {
    None: lazy_gettext("Used"),
    "forward": lazy_gettext("Imported"),
    "reverse": lazy_gettext("Exported"),
    "net": lazy_gettext("Net"),
    "total": lazy_gettext("Total"),
}
COMMODITIES = {
    "electricity": lazy_gettext("Electricity"),
    "gas": lazy_gettext("Gas"),
    "water": lazy_gettext("Water"),
    "heat": lazy_gettext("Heat"),
    "cold": lazy_gettext("Cooling"),
    "pressure": lazy_gettext("Pressure"),
    "communication": lazy_gettext("Communication"),
    "time": lazy_gettext("Time"),
}
UNITS = {"m3": "m³", "ft3": "ft³", "m3/h": "m³/h", "ft3/h": "ft³/h"}
SCALED = {"Wh": ("kWh", Decimal(1000)), "VAh": ("kVAh", Decimal(1000))}  # shown as bills do
MONTHLY = 28 * 86400  # readings this long or longer are billing periods: shown by month


@dataclass(frozen=True, slots=True)
class Reading:
    """One record read as a reading: its start here, its usage in the shown unit."""

    start: datetime
    seconds: int | None
    value: Decimal
    unit: str
    commodity: str | None
    flow: str | None
    meter: str
    cost: Decimal | None
    currency: str | None


@dataclass
class Group:
    """The readings of one commodity and unit: per series (meter, flow), per period."""

    commodity: str | None
    unit: str
    sums: dict[tuple[str, str | None], dict[str, Decimal]] = field(default_factory=dict)
    totals: dict[tuple[str, str | None], Decimal] = field(default_factory=dict)
    counts: dict[tuple[str, str | None], int] = field(default_factory=dict)


def render(vault: Vault, category: str, f: common.Filters) -> str:
    asked = checked(f.extra.get("by"))
    zone = _Zone()
    readings = [r for _rec, r in selected(vault, category, f, zone) if r]
    meters = meter_names(r.meter for r in readings)
    by = asked or period(readings)
    found, more = common.page((rec for rec, _r in selected(vault, category, f, zone)), f)
    groups = group(readings, by)
    return render_template(
        "views/energy.html",
        category=category,
        f=f,
        by=by,
        periods=PERIODS,
        sources=common.sources(vault, category, f.source),
        charts=[usage_chart(g, by, meters) for g in groups],
        totals=totals(groups, meters),
        cost_charts=cost_charts(readings, by),
        costs=cost_totals(readings),
        rows=[row(rec, meters) for rec in found],
        several_meters=len(meters) > 1,
        count=len(readings),
        more=more,
    )


def selected(
    vault: Vault, category: str, f: common.Filters, zone: _Zone
) -> Iterator[tuple[StoredRecord, Reading | None]]:
    """The records the filters select, each with its reading; the dates are days here
    (the readings are stored in UTC: an hour after midnight here may be the day before
    in UTC), so the records are read a day wider and kept by their start here."""
    wide = common.Filters(
        since=_shift(f.since, -1),
        until=_shift(f.until, 1),
        source=f.source,
        q=f.q,
        oldest=f.oldest,
    )
    for rec in common.selected(vault, category, wide):
        r = reading(rec, zone)
        day = r.start.date().isoformat() if r else rec.occurred_at[:10]
        if (f.since and day < f.since) or (f.until and day > f.until):
            continue
        yield rec, r


def _shift(day: str | None, days: int) -> str | None:
    return None if day is None else (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def _decimal(value: Any) -> Decimal | None:
    if value is None or value.__class__ is bool:
        return None
    try:
        d = Decimal(value if value.__class__ is str else str(value))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def _seconds(value: Any) -> int | None:
    if value.__class__ is str and value.isdigit():
        return int(value)
    d = _decimal(value)
    return None if d is None else int(d)


class _Zone:
    """This machine's time zone, its offset looked up once per UTC day (``astimezone`` is
    most of the cost of reading 50,000 readings); a day with a change is read exactly."""

    def __init__(self) -> None:
        self.offsets: dict[date, timedelta | None] = {}

    def local(self, utc: datetime) -> datetime:
        """The wall time here of ``utc`` (a UTC time without its zone), without its zone."""
        day = utc.date()
        if day not in self.offsets:
            first = datetime(day.year, day.month, day.day, tzinfo=UTC)
            before = first.astimezone().utcoffset()
            after = (first + timedelta(days=1, microseconds=-1)).astimezone().utcoffset()
            self.offsets[day] = before if before == after else None
        offset = self.offsets[day]
        if offset is None:
            return utc.replace(tzinfo=UTC).astimezone().replace(tzinfo=None)
        return utc + offset


def _start(payload: dict[str, Any], occurred_at: str, zone: _Zone) -> datetime | None:
    text = str(payload.get("start") or occurred_at)
    try:
        if text.endswith("Z"):  # as the connectors store it: UTC
            return zone.local(datetime.fromisoformat(text[:-1]))
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        return when
    return zone.local(when.astimezone(UTC).replace(tzinfo=None))


def shown_unit(unit: str) -> tuple[str, Decimal]:
    """The unit a page writes for a stored one, and what to divide values by."""
    if unit in SCALED:
        return SCALED[unit]
    return UNITS.get(unit, unit), Decimal(1)


def reading(rec: StoredRecord, zone: _Zone | None = None) -> Reading | None:
    """The record as a reading, or None when it has no usable value, unit or start."""
    p = rec.payload
    value, unit = _decimal(p.get("value")), p.get("unit")
    start = _start(p, rec.occurred_at, zone or _Zone())
    if value is None or not isinstance(unit, str) or not unit or start is None:
        return None
    shown, divisor = shown_unit(unit)
    cost = _decimal(p.get("cost"))
    return Reading(
        start,
        _seconds(p.get("duration")),
        value / divisor if divisor != 1 else value,
        shown,
        p.get("commodity") if isinstance(p.get("commodity"), str) else None,
        p.get("flow") if isinstance(p.get("flow"), str) else None,
        str(p.get("usage_point") or ""),
        cost,
        str(p["currency"]) if cost is not None and p.get("currency") else None,
    )


def meter_names(points: Any) -> dict[str, str]:
    """Each meter address (a Green Button UsagePoint href) → "Meter 1", "Meter 2"..."""
    return {point: gettext("Meter %(n)s", n=n) for n, point in enumerate(sorted(set(points)), 1)}


def checked(asked: str | None) -> str | None:
    """The period the query string asked for (``by``), if it is one."""
    if asked is not None and asked not in PERIODS:
        raise BadRequest(
            f"by={asked[:20]!r} is not day, week or month",
            hint="Choose a period in the form, or leave it out.",
        )
    return asked


def period(readings: list[Reading]) -> str:
    """The period that suits the readings: months for billing periods or more than a year
    of readings, weeks for more than two months, else days."""
    if not readings:
        return "day"
    durations = sorted(r.seconds or 0 for r in readings)
    if durations[len(durations) // 2] >= MONTHLY:
        return "month"
    first = min(r.start for r in readings)
    last = max(r.start for r in readings)
    span = (last - first).days
    return "day" if span <= 62 else "week" if span <= 366 else "month"


def bucket(when: datetime, by: str) -> str:
    """The period a start falls in: ``2014-01-02``, the Monday of its week, or ``2014-01``."""
    if by == "month":
        return f"{when.year:04d}-{when.month:02d}"
    day = when.date()
    if by == "week":
        day -= timedelta(days=day.weekday())
    return day.isoformat()


def periods_between(first: str, last: str, by: str) -> list[str]:
    """Every period from ``first`` to ``last``, so a period with no reading shows as a gap."""
    if by == "month":
        y, m = int(first[:4]), int(first[5:7])
        out = []
        while f"{y:04d}-{m:02d}" <= last:
            out.append(f"{y:04d}-{m:02d}")
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out
    step = timedelta(days=7 if by == "week" else 1)
    day, end, out = date.fromisoformat(first), date.fromisoformat(last), []
    while day <= end:
        out.append(day.isoformat())
        day += step
    return out


def period_name(label: str, by: str) -> str:
    if by == "month":
        return locale.month(label)
    if by == "week":
        return gettext("week of %(day)s", day=locale.day(label))
    return locale.day(label)


def group(readings: list[Reading], by: str) -> list[Group]:
    """The readings summed per commodity and unit, per meter and flow, per period."""
    groups: dict[tuple[str | None, str], Group] = {}
    for r in readings:
        g = groups.setdefault((r.commodity, r.unit), Group(r.commodity, r.unit))
        key = (r.meter, r.flow)
        sums = g.sums.setdefault(key, defaultdict(Decimal))
        sums[bucket(r.start, by)] += r.value
        g.totals[key] = g.totals.get(key, Decimal(0)) + r.value
        g.counts[key] = g.counts.get(key, 0) + 1
    return sorted(groups.values(), key=lambda g: (g.commodity or "~", g.unit))


def commodity_name(commodity: str | None) -> str:
    if commodity is None:
        return gettext("Energy")
    return str(COMMODITIES.get(commodity, commodity.capitalize()))


def flow_name(flow: str | None) -> str:
    return str(FLOWS.get(flow, flow))


def series_name(key: tuple[str, str | None], keys: list, meters: dict[str, str]) -> str:
    if len({m for m, _ in keys}) > 1:
        return gettext("%(meter)s, %(flow)s", meter=meters[key[0]], flow=flow_name(key[1]))
    return flow_name(key[1])


def usage_chart(g: Group, by: str, meters: dict[str, str]) -> charts.Chart:
    labels = sorted({label for sums in g.sums.values() for label in sums})
    labels = periods_between(labels[0], labels[-1], by)
    keys = sorted(g.sums, key=lambda k: (k[0], k[1] or ""))
    series = [
        charts.Series(
            series_name(k, keys, meters),
            [float(g.sums[k][label]) if label in g.sums[k] else None for label in labels],
        )
        for k in keys
    ]
    title = gettext(
        "%(commodity)s per %(period)s (%(unit)s)",
        commodity=commodity_name(g.commodity),
        period=str(PERIODS[by]).lower(),
        unit=g.unit,
    )
    return charts.bars(
        title,
        [period_name(label, by) for label in labels],
        series,
        show=lambda v: f"{locale.number(round(v, 3))} {g.unit}",
    )


def totals(groups: list[Group], meters: dict[str, str]) -> list[dict[str, Any]]:
    """A line per commodity, unit, meter and flow: its total and its number of readings."""
    out = []
    for g in groups:
        keys = sorted(g.totals, key=lambda k: (k[0], k[1] or ""))
        for k in keys:
            out.append(
                {
                    "commodity": commodity_name(g.commodity),
                    "flow": series_name(k, keys, meters),
                    "total": g.totals[k],
                    "unit": g.unit,
                    "count": g.counts[k],
                }
            )
    return out


def cost_charts(readings: list[Reading], by: str) -> list[charts.Chart]:
    """What the readings cost per period, one chart per currency, a series per commodity
    (and per direction when there are several: an export's cost is not added to an
    import's)."""
    sums: dict[str, dict[tuple[str | None, str | None], dict[str, Decimal]]] = {}
    for r in readings:
        if r.cost is None or r.currency is None:
            continue
        per = sums.setdefault(r.currency, {}).setdefault(
            (r.commodity, direction(r.flow)), defaultdict(Decimal)
        )
        per[bucket(r.start, by)] += r.cost
    out = []
    for currency, per_series in sorted(sums.items()):
        found = sorted({label for s in per_series.values() for label in s})
        labels = periods_between(found[0], found[-1], by)
        flows = len({flow for _, flow in per_series}) > 1
        out.append(
            charts.bars(
                gettext(
                    "Cost per %(period)s (%(currency)s)",
                    period=str(PERIODS[by]).lower(),
                    currency=currency,
                ),
                [period_name(label, by) for label in labels],
                [
                    charts.Series(
                        cost_name(key, flows),
                        [float(s[label]) if label in s else None for label in labels],
                    )
                    for key, s in sorted(per_series.items(), key=_commodity_order)
                ],
                stacked=not flows,
                show=lambda v, c=currency: locale.money(round(v, 2), c),
            )
        )
    return out


def direction(flow: str | None) -> str | None:
    """The direction a cost is counted in: what was used (the grid's forward flow, or a
    reading that gives none) apart from an export, a net or a total."""
    return None if flow in (None, "forward") else flow


def _commodity_order(item: tuple[tuple[str | None, str | None], Any]) -> tuple[str, str]:
    return item[0][0] or "~", item[0][1] or ""


def cost_name(key: tuple[str | None, str | None], flows: bool) -> str:
    """A cost series: its commodity, and its direction when there are several."""
    if not flows:
        return commodity_name(key[0])
    return gettext(
        "%(commodity)s, %(flow)s", commodity=commodity_name(key[0]), flow=flow_name(key[1]).lower()
    )


def cost_totals(readings: list[Reading]) -> list[tuple[str, str | None, Decimal]]:
    """The readings' cost per currency (only the readings that give one), per direction
    when there are several: (currency, direction or None, amount)."""
    found: dict[tuple[str, str | None], Decimal] = defaultdict(Decimal)
    for r in readings:
        if r.cost is not None and r.currency is not None:
            found[(r.currency, direction(r.flow))] += r.cost
    flows = len({flow for _, flow in found}) > 1
    return [
        (currency, flow_name(flow).lower() if flows else None, amount)
        for (currency, flow), amount in sorted(
            found.items(), key=lambda i: (i[0][0], i[0][1] or "")
        )
    ]


def duration(seconds: Any) -> str:
    """3600 → "1 hour", 2592000 → "30 days", 2761200 → "31 days 23 hours"; an odd length
    in minutes or seconds."""
    n = _decimal(seconds)
    if n is None:
        return ""
    n = int(n)
    if n and n % 86400 == 0:
        return ngettext("%(num)s day", "%(num)s days", n // 86400)
    if n > 86400 and n % 3600 == 0:  # a billing period across a clock change
        days, hours = divmod(n // 3600, 24)
        return gettext(
            "%(days)s %(hours)s",
            days=ngettext("%(num)s day", "%(num)s days", days),
            hours=ngettext("%(num)s hour", "%(num)s hours", hours),
        )
    if n and n % 3600 == 0:
        return ngettext("%(num)s hour", "%(num)s hours", n // 3600)
    if n and n % 60 == 0:
        return ngettext("%(num)s minute", "%(num)s minutes", n // 60)
    return ngettext("%(num)s second", "%(num)s seconds", n)


def row(rec: StoredRecord, meters: dict[str, str]) -> dict[str, Any]:
    """One reading of the table, in words."""
    p = rec.payload
    r = reading(rec)
    cost = _decimal(p.get("cost"))
    return {
        "id": rec.id,
        "start": p.get("start") or rec.occurred_at,
        "duration": duration(p.get("duration")),
        "commodity": commodity_name(r.commodity) if r else "",
        "flow": flow_name(r.flow) if r else "",
        "usage": f"{locale.number(r.value)} {r.unit}" if r else "",
        "cost": locale.money(cost, p.get("currency")) if cost is not None else "",
        "meter": meters.get(r.meter, "") if r else "",
    }
