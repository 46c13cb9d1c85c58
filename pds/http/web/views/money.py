"""Sums of money over the transactions a page selects, in one pass: totals in and out per
currency (never one currency added to another), per month, by counterparty and by spending
category. Amounts are the payloads' decimal strings added as ``Decimal`` (no float
rounding); money out is kept as a positive sum beside money in."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

ZERO = Decimal(0)
NO_CATEGORY = "no\tcategory"
"""The transactions no rule gave a category: the spending filter's value for them and their
key in :attr:`Summary.spending`. A category's name is one line of text without control
characters (``pds.policyfiles.spending``), so no name is this value (a tab inside it)."""


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


class Summary:
    """What the totals, the charts and the top counterparties of a page are drawn from.

    :meth:`add` runs once per selected transaction (50,000 on a big page), so it only adds
    into flat dicts keyed by tuples; the per-currency views are derived afterwards."""

    def __init__(self) -> None:
        self.count = 0
        self._months: dict[tuple[str, str], list[Any]] = {}  # (currency, month): in, out, n
        self._paid: dict[tuple[str, str], Decimal] = {}  # (currency, who): out
        self._spent: dict[tuple[str, str, str], Decimal] = {}  # (currency, month, category)

    def add(self, payload: dict[str, Any], amount: Decimal | None, category: str | None) -> None:
        """Count one selected transaction (its payload, amount and spending category)."""
        self.count += 1
        if amount is None:
            return
        currency = payload.get("currency") or ""
        month = (payload.get("date") or "")[:7]
        key = (currency, month)
        sums = self._months.get(key)
        if sums is None:
            sums = self._months[key] = [ZERO, ZERO, 0]
        sums[2] += 1
        if amount > 0:
            sums[0] += amount
        elif amount < 0:
            out = -amount
            sums[1] += out
            who = (currency, payload.get("counterparty") or payload.get("description") or "")
            self._paid[who] = self._paid.get(who, ZERO) + out
            spent = (currency, month, category or NO_CATEGORY)
            self._spent[spent] = self._spent.get(spent, ZERO) + out

    @property
    def totals(self) -> dict[str, Totals]:
        """Money in and out per currency."""
        out: dict[str, Totals] = defaultdict(Totals)
        for (currency, _), (money_in, money_out, n) in self._months.items():
            t = out[currency]
            t.money_in += money_in
            t.money_out += money_out
            t.count += n
        return dict(out)

    @property
    def months(self) -> dict[str, dict[str, tuple[Decimal, Decimal]]]:
        """Per currency, per month (``YYYY-MM``): money in, money out."""
        out: dict[str, dict[str, tuple[Decimal, Decimal]]] = defaultdict(dict)
        for (currency, month), (money_in, money_out, _) in self._months.items():
            out[currency][month] = (money_in, money_out)
        return dict(out)

    @property
    def spending(self) -> dict[str, dict[str, dict[str, Decimal]]]:
        """Per currency, per month, per spending category (``NO_CATEGORY``): money out."""
        out: dict[str, dict[str, dict[str, Decimal]]] = defaultdict(lambda: defaultdict(dict))
        for (currency, month, name), paid in self._spent.items():
            out[currency][month][name] = paid
        return {c: dict(m) for c, m in out.items()}

    def currencies(self) -> list[str]:
        """The currencies moved, the one with most transactions first."""
        totals = self.totals
        return sorted(totals, key=lambda c: (-totals[c].count, c))

    def top_counterparties(self, currency: str, n: int = 10) -> list[tuple[str, Decimal]]:
        """The ``n`` counterparties paid most in ``currency`` (ties by name); a name is
        counted with its spaces evened out ("A  SHOP" is "A SHOP")."""
        paid: Counter[str] = Counter()
        for (c, who), out in self._paid.items():
            if c == currency:
                paid[" ".join(str(who).split())] += out
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
