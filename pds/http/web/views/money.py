"""Sums of money over the transactions a page selects, in one pass: totals in and out per
currency (never one currency added to another), per month, by counterparty and by spending
category. Amounts are the payloads' decimal strings added as ``Decimal`` (no float
rounding); money out is kept as a positive sum beside money in."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

ZERO = Decimal(0)
NO_CATEGORY = "-"
"""The spending filter's value for the transactions no rule gave a category."""


def amount_of(payload: dict[str, Any]) -> Decimal | None:
    """The payload's amount as a Decimal; None when it is missing or not a finite number."""
    try:
        value = Decimal(str(payload.get("amount")))
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


@dataclass
class Totals:
    """Money in and out of one currency (out as a positive sum), and how many moved it."""

    money_in: Decimal = ZERO
    money_out: Decimal = ZERO
    count: int = 0

    @property
    def net(self) -> Decimal:
        return self.money_in - self.money_out


@dataclass
class Summary:
    """What the totals, the charts and the top counterparties of a page are drawn from."""

    count: int = 0
    totals: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))
    months: dict[str, dict[str, list[Decimal]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: [ZERO, ZERO]))
    )
    counterparties: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    spending: dict[str, dict[str, Counter[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(Counter))
    )

    def add(self, payload: dict[str, Any], amount: Decimal | None, category: str | None) -> None:
        """Count one selected transaction (its payload, amount and spending category)."""
        self.count += 1
        if amount is None:
            return
        currency = str(payload.get("currency") or "")
        totals = self.totals[currency]
        totals.count += 1
        month = str(payload.get("date") or "")[:7]
        sums = self.months[currency][month]
        if amount > 0:
            totals.money_in += amount
            sums[0] += amount
        elif amount < 0:
            out = -amount
            totals.money_out += out
            sums[1] += out
            who = payload.get("counterparty") or payload.get("description") or ""
            self.counterparties[currency][" ".join(str(who).split())] += out
            self.spending[currency][month][category or NO_CATEGORY] += out

    def currencies(self) -> list[str]:
        """The currencies moved, the one with most transactions first."""
        return sorted(self.totals, key=lambda c: (-self.totals[c].count, c))

    def top_counterparties(self, currency: str, n: int = 10) -> list[tuple[str, Decimal]]:
        """The ``n`` counterparties paid most in ``currency`` (ties by name)."""
        paid = self.counterparties.get(currency, Counter())
        return sorted(paid.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def month_range(months: list[str], last: int) -> list[str]:
    """Every month from the first to the last of ``months`` (``YYYY-MM``), at most the
    ``last`` of them."""
    known = sorted(m for m in months if len(m) == 7)
    if not known:
        return []
    year, mon = int(known[0][:4]), int(known[0][5:])
    end = known[-1]
    out = []
    while True:
        label = f"{year:04d}-{mon:02d}"
        out.append(label)
        if label >= end:
            break
        year, mon = (year + 1, 1) if mon == 12 else (year, mon + 1)
    return out[-last:]
