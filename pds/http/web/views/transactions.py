"""The transactions view: money in and out, newest first (or sorted by amount), with totals
per currency for everything the filters select, a monthly in/out chart and the spending by
category of each currency, and the counterparties paid most.

Filters besides the common ones: ``account`` (the accounts of the transactions the dates,
source and search select), ``spending`` (a spending category, or ``NO_CATEGORY`` for none,
a value no category's name can be) and
``sort`` (``out``: most money out first; ``in``: most money in first; else by date).

One pass over the selected records (decrypted a page at a time, never all held) adds up
every total and keeps only the page shown: by date, the records at the page's place; by
amount, a heap of the ``skip + 50`` largest (memory grows with how far one pages, not with
the vault), which is why paging by amount stops after :data:`SORT_CAP` transactions.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

from flask import render_template
from flask_babel import gettext

from pds.http import locale
from pds.http.web import charts
from pds.http.web.views import common
from pds.http.web.views.money import NO_CATEGORY, Summary, amount_of, month_range
from pds.vault import spending

if TYPE_CHECKING:
    from pds.vault import Vault
    from pds.vault.records import StoredRecord

FILTERS = ("account", "spending", "sort")
SORT_CAP = 5000
"""Sorted by amount, the pages reach this many transactions (the rest: narrow the filters)."""
MONTHS = 36
"""The charts show at most the last 36 months of the selection (the totals count them all)."""
STACKED = 7
"""Spending categories drawn on their own; the others are added up as "Everything else"."""


@dataclass(frozen=True, slots=True)
class Row:
    rec: StoredRecord
    amount: Decimal | None
    category: str | None

    @property
    def payload(self) -> dict[str, Any]:
        return self.rec.payload


def render(vault: Vault, category: str, f: common.Filters) -> str:
    names = spending.names(vault)
    account = f.extra.get("account")
    wanted = f.extra.get("spending")
    sort = f.extra.get("sort") if f.extra.get("sort") in ("in", "out") else None
    summary = Summary()
    accounts: set[str] = set()

    def chosen() -> Iterator[Row]:
        for rec in common.selected(vault, category, f):
            held = rec.payload.get("account")
            if held:
                accounts.add(str(held))
            if account and held != account:
                continue
            name = names.get(rec.id)
            if wanted and (name or NO_CATEGORY) != wanted:
                continue
            amount = amount_of(rec.payload)
            summary.add(rec.payload, amount, name)
            yield Row(rec, amount, name)

    skip = min(f.skip, SORT_CAP) if sort else f.skip
    if sort:
        sign = -1 if sort == "in" else 1
        top = heapq.nsmallest(
            skip + common.PAGE + 1,
            chosen(),
            key=lambda r: (r.amount is None, sign * (r.amount or 0)),
        )
        found, more = top[skip : skip + common.PAGE], len(top) > skip + common.PAGE
        more = more and skip + common.PAGE < SORT_CAP
    else:
        found, more = _window(chosen(), skip)
    return render_template(
        "views/transactions.html",
        category=category,
        rows=found,
        more=more,
        summary=summary,
        currencies=_per_currency(summary),
        accounts=sorted(accounts | ({account} if account else set())),
        spending_names=sorted(set(names.values()) | ({wanted} - {None, NO_CATEGORY})),
        no_category=NO_CATEGORY,
        sort=sort,
        capped=sort is not None and summary.count > SORT_CAP,
        sort_cap=SORT_CAP,
        skip=skip,
        months=MONTHS,
        sources=common.sources(vault, category, f.source),
        f=f,
    )


def _window(rows: Iterator[Row], skip: int) -> tuple[list[Row], bool]:
    """The page after ``skip`` (and whether more follow), reading ``rows`` to the end."""
    found: list[Row] = []
    more = False
    for n, row in enumerate(rows):
        if n < skip:
            continue
        if len(found) < common.PAGE:
            found.append(row)
        else:
            more = True
    return found, more


def _per_currency(summary: Summary) -> list[dict[str, Any]]:
    out = []
    totals, every_month, spent = summary.totals, summary.months, summary.spending
    for currency in summary.currencies():
        show = partial(locale.money, currency=currency)
        sums = every_month[currency]
        months = month_range(list(sums), MONTHS)
        flows = charts.bars(
            gettext("Money in and out per month (%(currency)s)", currency=currency),
            [locale.month(m) for m in months],
            [
                charts.Series(
                    gettext("In"), [float(sums[m][0]) if m in sums else 0.0 for m in months]
                ),
                charts.Series(
                    gettext("Out"), [float(sums[m][1]) if m in sums else 0.0 for m in months]
                ),
            ],
            show=show,
        )
        out.append(
            {
                "currency": currency,
                "totals": totals[currency],
                "flows": flows,
                "spending": _spending_chart(spent.get(currency, {}), currency, months, show),
                "counterparties": summary.top_counterparties(currency),
                "months_cut": len(months) < len(month_range(list(sums), 10**6)),
            }
        )
    return out


def _spending_chart(
    by_month: dict[str, dict[str, Decimal]], currency: str, months: list[str], show: Any
) -> charts.Chart:
    overall: dict[str, Decimal] = {}
    for m in months:
        for name, paid in by_month.get(m, {}).items():
            overall[name] = overall.get(name, Decimal(0)) + paid
    ranked = sorted(overall, key=lambda n: (n == NO_CATEGORY, -overall[n], n))
    drawn = ranked if len(ranked) <= STACKED + 1 else ranked[:STACKED]
    rest = [n for n in ranked if n not in drawn]
    series = [
        charts.Series(
            gettext("No category") if name == NO_CATEGORY else name,
            [float(by_month.get(m, {}).get(name, 0)) for m in months],
        )
        for name in drawn
    ]
    if rest:
        series.append(
            charts.Series(
                gettext("Everything else"),
                [float(sum(by_month.get(m, {}).get(n, 0) for n in rest)) for m in months],
            )
        )
    return charts.bars(
        gettext("Money out by spending category per month (%(currency)s)", currency=currency),
        [locale.month(m) for m in months],
        series,
        stacked=True,
        show=show,
    )
