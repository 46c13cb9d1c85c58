"""``GET /api/v1/aggregates``: counts, sums and means of one category, never a record.

Rows in the range are decrypted server-side and reduced to buckets (calendar day, ISO week,
month or year). A bucket built from fewer than k records (``min_bucket`` from the owner's
policies, default 5) is suppressed: left out, and counted in ``suppressed``.

So that no choice of parameters singles a record out:

- buckets are fixed calendar cells: ``since``/``until`` are moved inward to whole cells (a
  range never cuts a cell), so the same cell always holds the same records;
- there is no un-bucketed total (``by`` defaults to ``month``);
- ``by=year`` is built from the month cells that are not suppressed, so a year total minus
  its months' totals reveals nothing.

Amounts are decimal strings in the records; sums and means are exact ``decimal.Decimal``
arithmetic, answered as strings (a mean is rounded half-even to two more decimal places than
the most precise value summed).

Different currencies or units are never added together: a sum or mean is per calendar cell
*and* per currency (``amount``, ``balance``, ``cost``) or unit (an energy ``value``: kWh, Wh,
m3 ... as the record says), see :data:`UNITS`. Each such bucket names its currency or unit
and is suppressed, or published, on its own count.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from flask import Blueprint, g, jsonify, request

from pds.errors import BadRequest, InsufficientScope
from pds.http.api.auth import api_call, audit_allowed, current_access
from pds.http.api.params import query_day
from pds.http.api.policy import enforce
from pds.http.context import current_vault
from pds.payloads import SCHEMAS, DecimalString
from pds.vocabulary import CATEGORIES

MEASURES = ("count", "sum", "mean")
# (category, numeric field) -> the payload field that says what it counts in; totals are
# kept apart per value of it. Every numeric field of every category is listed (a test
# holds this), so a new one cannot be totalled across currencies or units by accident.
UNITS: dict[tuple[str, str], str] = {
    ("transactions", "amount"): "currency",
    ("transactions", "balance"): "currency",
    ("balances", "amount"): "currency",
    ("energy", "value"): "unit",
    ("energy", "cost"): "currency",
}
BUCKETS = ("day", "week", "month", "year")
DEFAULT_BY = "month"


def numeric_fields(category: str) -> tuple[str, ...]:
    """The category's fields that hold decimal numbers (what sum and mean may total)."""
    cls = SCHEMAS.get(category)
    if cls is None:
        return ()
    return tuple(n for n, f in cls().fields.items() if isinstance(f, DecimalString))


# -- calendar cells ---------------------------------------------------------------------------


def _start(by: str, d: date) -> date:
    if by == "day":
        return d
    if by == "week":
        return d - timedelta(days=d.weekday())
    if by == "month":
        return d.replace(day=1)
    return d.replace(month=1, day=1)


def _next(by: str, start: date) -> date:
    if by == "day":
        return start + timedelta(days=1)
    if by == "week":
        return start + timedelta(days=7)
    if by == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start.replace(year=start.year + 1)


def _label(by: str, d: date) -> str:
    if by == "day":
        return d.isoformat()
    if by == "week":
        year, week, _ = d.isocalendar()
        return f"{year}-W{week:02d}"
    if by == "month":
        return d.strftime("%Y-%m")
    return str(d.year)


def snap(by: str, lo: date | None, hi: date | None) -> tuple[date | None, date | None]:
    """The range moved inward to whole cells of ``by`` (None ends stay open)."""
    if lo is not None and _start(by, lo) != lo:
        lo = _next(by, _start(by, lo))
    if hi is not None:
        after = hi + timedelta(days=1)
        if _start(by, after) != after:
            hi = _start(by, after) - timedelta(days=1)
    return lo, hi


# -- the reduction ------------------------------------------------------------------------------


class Cell:
    __slots__ = ("count", "places", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = Decimal(0)
        self.places = 0

    def add(self, value: Decimal | None) -> None:
        self.count += 1
        if value is not None:
            self.total += value
            exp = value.as_tuple().exponent
            if isinstance(exp, int) and -exp > self.places:
                self.places = -exp

    def merge(self, other: Cell) -> None:
        self.count += other.count
        self.total += other.total
        self.places = max(self.places, other.places)

    def value(self, measure: str) -> int | str:
        if measure == "count":
            return self.count
        if measure == "sum":
            return str(self.total)
        step = Decimal(1).scaleb(-(self.places + 2))
        return str((self.total / self.count).quantize(step, rounding=ROUND_HALF_EVEN))


def reduce(
    rows: Iterable[tuple[str, dict[str, Any]]],
    by: str,
    field: str | None,
    k: int,
    unit: str | None = None,
) -> tuple[list[tuple[str, str | None, Cell]], int]:
    """(label, unit value, cell) of every published bucket in time order (then by unit
    value), and how many were suppressed.

    ``rows`` are ``(occurred_at, payload)``; with a ``field``, records without it (or with a
    null) do not count. With a ``unit`` (the payload field naming the currency or unit of
    ``field``), each cell is split by its value: records in EUR and in GBP are two buckets,
    never one total; the unit value is None without ``unit`` (and for records without one).
    """
    base = "month" if by == "year" else by
    cells: dict[tuple[date, str | None], Cell] = {}
    for occurred_at, payload in rows:
        value = None
        if field is not None:
            raw = payload.get(field)
            if raw is None:
                continue
            value = Decimal(raw)
        start = _start(base, date.fromisoformat(occurred_at[:10]))
        key = (start, payload.get(unit) if unit is not None else None)
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = Cell()
        cell.add(value)
    suppressed = sum(1 for c in cells.values() if c.count < k)
    kept = {key: c for key, c in cells.items() if c.count >= k}
    if by == "year":  # years from the published months only
        years: dict[tuple[date, str | None], Cell] = {}
        for (s, u), c in kept.items():
            years.setdefault((_start("year", s), u), Cell()).merge(c)
        kept = years
    order = sorted(kept, key=lambda key: (key[0], key[1] is not None, key[1] or ""))
    return [(_label(by, s), u, kept[(s, u)]) for s, u in order], suppressed


def register(bp: Blueprint) -> None:
    """Add the view to the API's blueprint."""

    @bp.get("/aggregates")
    @api_call("api.aggregates.read")
    def aggregates() -> Any:
        """Totals of one category, bucketed by calendar cell, small buckets suppressed."""
        category = request.args.get("category")
        if not category or category not in CATEGORIES:
            given = f"{category!r} is not a category" if category else "category is required"
            raise BadRequest(given, hint=f"One of: {', '.join(CATEGORIES)}.")
        g.pds_category = category
        access = current_access().access
        # a read grant may total what it may read; an aggregate grant may only total
        allowed = access.allows("aggregate", category) or access.allows("read", category)
        if allowed is None:
            raise InsufficientScope(
                f"the grant does not allow totals of {category}", scope=f"aggregate:{category}"
            )
        measure = request.args.get("measure") or "count"
        if measure not in MEASURES:
            raise BadRequest(f"measure must be one of {', '.join(MEASURES)}")
        by = request.args.get("by") or DEFAULT_BY
        if by not in BUCKETS:
            raise BadRequest(f"by must be one of {', '.join(BUCKETS)}")
        field = request.args.get("field") or None
        if measure == "count":
            if field is not None:
                raise BadRequest("field is only for measure=sum or measure=mean")
        else:
            numeric = numeric_fields(category)
            if field is None or field not in numeric:
                raise BadRequest(
                    f"measure={measure} needs field, one of the numeric fields of {category}: "
                    + (", ".join(numeric) or "none")
                )
            if allowed.fields is not None and field not in allowed.fields:
                raise InsufficientScope(
                    f"the grant does not allow totalling the {field} field of {category}",
                    scope=f"aggregate:{category}",
                )
        unit = UNITS.get((category, field)) if field else None
        if unit is not None and allowed.fields is not None and unit not in allowed.fields:
            raise InsufficientScope(
                f"totals of {field} are given per {unit}, and the grant does not allow the "
                f"{unit} field of {category}",
                scope=f"aggregate:{category}",
            )
        since, until = query_day("since"), query_day("until")
        froms = [d for d in (since, allowed.time_from) if d]
        tos = [d for d in (until, allowed.time_to) if d]
        lo = date.fromisoformat(max(froms)) if froms else None
        hi = date.fromisoformat(min(tos)) if tos else None
        asked = tuple(f for f in (field, unit) if f) or None
        decision = enforce("aggregate", category, asked, lo, hi)
        lo, hi = snap(by, decision.constraints.clip_since(lo), hi)
        k = decision.constraints.min_bucket
        buckets: list[tuple[str, str | None, Cell]] = []
        suppressed = 0
        if not (lo and hi and lo > hi):
            rows = (
                (r.occurred_at, r.payload)
                for r in current_vault().records(
                    category,
                    since=lo.isoformat() if lo else None,
                    until=(hi + timedelta(days=1)).isoformat() if hi else None,
                )
            )
            buckets, suppressed = reduce(rows, by, field, k, unit)
        audit_allowed(category=category, count=sum(c.count for _, _, c in buckets))
        return jsonify(
            category=category,
            measure=measure,
            field=field,
            by=by,
            since=lo.isoformat() if lo else None,
            until=hi.isoformat() if hi else None,
            min_bucket=k,
            per=unit,
            buckets=[_bucket(b, unit, u, c, measure) for b, u, c in buckets],
            suppressed=suppressed,
        )


def _bucket(label: str, unit: str | None, value: str | None, cell: Cell, measure: str) -> dict:
    """One published bucket; with a ``unit``, it names its currency or unit."""
    out: dict[str, Any] = {"bucket": label}
    if unit is not None:
        out[unit] = value
    out["count"] = cell.count
    out["value"] = cell.value(measure)
    return out
