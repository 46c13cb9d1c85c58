"""examples/energy-switch's comparison (tariffs.py): kWh per month from meter readings as
pds_client gives them, priced on the example tariffs; readings it cannot price left out."""

from __future__ import annotations

import importlib.util
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

from pds_client.records import EnergyReading, record_from

_SPEC = importlib.util.spec_from_file_location(
    "energy_switch_tariffs",
    Path(__file__).parents[2] / "examples" / "energy-switch" / "tariffs.py",
)
tariffs = sys.modules[_SPEC.name] = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(tariffs)


def reading(start: str, value: str | None, unit: str | None = "Wh", **more: str) -> EnergyReading:
    """One reading as the app gets it from pds_client."""
    payload = {"start": start, "duration": "86400", "value": value, "unit": unit, **more}
    return record_from({"id": 1, "category": "energy", "occurred_at": start, "payload": payload})


def test_months_priced_on_each_tariff() -> None:
    readings = [
        reading("2026-01-31T00:00:00Z", "10500", commodity="electricity", flow="forward"),
        reading("2026-02-01T00:00:00Z", "2.25", unit="kWh"),
        reading("2026-02-02T00:00:00Z", "1000"),
        reading("2026-02-03T00:00:00Z", None),  # the person left the value out
        reading("2026-02-04T00:00:00Z", "3", unit="m3"),  # a unit it does not know
        reading("2026-02-05T00:00:00Z", "900", commodity="gas"),
        reading("2026-02-06T00:00:00Z", "700", flow="reverse"),  # exported, not used
        reading("2026-03-01T00:00:00Z", "800"),  # after the period
    ]
    c = tariffs.compare(readings, date(2026, 1, 1), date(2026, 2, 28))
    assert [(m.month, m.days, m.kwh) for m in c.months] == [
        ("2026-01", 31, Decimal("10.5000")),
        ("2026-02", 28, Decimal("3.2500")),
    ]
    # Fixed 12: 10.5 kWh x 24.50p + 31 days x 53.00p = 257.25p + 1643p = £19.00
    assert [m.costs for m in c.months] == [
        (Decimal("19.00"), Decimal("15.45"), Decimal("6.75")),
        (Decimal("15.64"), Decimal("12.33"), Decimal("4.30")),
    ]
    assert c.totals == (Decimal("34.64"), Decimal("27.78"), Decimal("11.05"))
    assert (c.kwh, c.readings, c.skipped) == (Decimal("13.7500"), 3, 5)
    assert c.cheapest.name == "Example Low Standing"


def test_a_month_without_readings_costs_its_standing_charge() -> None:
    c = tariffs.compare([], date(2025, 12, 1), date(2026, 1, 31))
    assert [(m.month, m.kwh, m.costs[0]) for m in c.months] == [
        ("2025-12", Decimal(0), Decimal("16.43")),
        ("2026-01", Decimal(0), Decimal("16.43")),
    ]
    assert tariffs.months_between(date(2025, 11, 30), date(2026, 2, 1)) == [
        "2025-11",
        "2025-12",
        "2026-01",
        "2026-02",
    ]
