"""The comparison: a person's electricity use per month, and what it would have cost on a few
example tariffs (a unit rate per kWh and a standing charge per day).

The tariffs are made up for this example; they are not offers from any supplier.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

# Meter units this example understands, as the factor that turns one into kWh.
KWH_PER_UNIT = {"Wh": Decimal("0.001"), "kWh": Decimal(1)}


@dataclass(frozen=True)
class Tariff:
    name: str
    unit_rate: Decimal  # pence per kWh
    standing_charge: Decimal  # pence per day


EXAMPLE_TARIFFS = (
    Tariff("Example Fixed 12", Decimal("24.50"), Decimal("53.00")),
    Tariff("Example Green Flex", Decimal("26.10"), Decimal("41.00")),
    Tariff("Example Low Standing", Decimal("28.90"), Decimal("12.00")),
)


@dataclass(frozen=True)
class Month:
    month: str  # "2026-03"
    days: int
    kwh: Decimal
    costs: tuple[Decimal, ...]  # pounds, one per tariff


@dataclass(frozen=True)
class Comparison:
    months: list[Month]
    tariffs: tuple[Tariff, ...]
    totals: tuple[Decimal, ...]  # pounds, one per tariff
    kwh: Decimal
    readings: int  # readings counted
    skipped: int  # readings left out: not electricity taken from the grid, or an unknown unit

    @property
    def cheapest(self) -> Tariff:
        return min(zip(self.totals, self.tariffs, strict=True), key=lambda t: t[0])[1]


def months_between(since: date, until: date) -> list[str]:
    """Every month from ``since`` to ``until``, as "YYYY-MM"."""
    found, (y, m) = [], (since.year, since.month)
    while (y, m) <= (until.year, until.month):
        found.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return found


def compare(
    readings: Iterable, since: date, until: date, tariffs: tuple[Tariff, ...] = EXAMPLE_TARIFFS
) -> Comparison:
    """Add up the kWh per month of electricity readings (``EnergyReading`` objects from
    pds_client) and price each month on each tariff."""
    used = {m: Decimal(0) for m in months_between(since, until)}
    counted = skipped = 0
    for r in readings:
        month = (r.start or "")[:7]
        factor = KWH_PER_UNIT.get(r.unit)
        if (
            month not in used
            or r.value is None
            or factor is None
            or r.commodity not in (None, "electricity")
            or r.flow not in (None, "forward")
        ):
            skipped += 1  # the person may have left out a field; or not grid electricity
            continue
        used[month] += r.value * factor
        counted += 1
    months = []
    for month, kwh in used.items():
        year, number = int(month[:4]), int(month[5:])
        days = calendar.monthrange(year, number)[1]
        costs = tuple(
            ((kwh * t.unit_rate + days * t.standing_charge) / 100).quantize(Decimal("0.01"))
            for t in tariffs
        )
        months.append(Month(month, days, kwh, costs))
    totals = tuple(sum((m.costs[i] for m in months), Decimal(0)) for i in range(len(tariffs)))
    total_kwh = sum((m.kwh for m in months), Decimal(0))
    return Comparison(months, tariffs, totals, total_kwh, counted, skipped)
