"""The balances view: a line per account over time (one chart per currency), the latest
balance of each account, and the balance records below, newest first.

A statement gives several balances a day (opening, interim, closing; booked or available):
the line takes one per account and day, the closing booked one when there is one
(:func:`rank`), and per month instead of per day when the selection spans more than
:data:`MAX_DAYS` days. One pass over the selected records draws it all and keeps the page.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

from flask import render_template
from flask_babel import gettext, lazy_gettext

from pds.http import locale
from pds.http.web import charts
from pds.http.web.views import common
from pds.http.web.views.money import amount_of

if TYPE_CHECKING:
    from pds.vault import Vault
    from pds.vault.records import StoredRecord

MAX_DAYS = 120
_ORDER = ("CL", "IT", "OP")  # closing, interim, opening (ISO 20022 / MT940 balance codes)


KINDS = {
    "OPBD": lazy_gettext("Opening booked"),
    "OPAV": lazy_gettext("Opening available"),
    "ITBD": lazy_gettext("Interim booked"),
    "ITAV": lazy_gettext("Interim available"),
    "CLBD": lazy_gettext("Closing booked"),
    "CLAV": lazy_gettext("Closing available"),
    "FWAV": lazy_gettext("Forward available"),
    "PRCD": lazy_gettext("Previous closing booked"),
    "XPCD": lazy_gettext("Expected"),
    "INFO": lazy_gettext("For information"),
}
"""The ISO 20022 balance type codes in words."""


def kind_name(kind: object) -> str:
    """A balance type in words (``CLBD`` is "Closing booked"); an unknown one as given."""
    text = str(kind or "")
    known = KINDS.get(text.upper())
    return str(known) if known is not None else text


def rank(kind: object) -> int:
    """How well a balance type stands for the end of its day (lower is better): closing
    before interim before opening, booked before available; other types after those."""
    text = str(kind or "").upper()
    step = _ORDER.index(text[:2]) if text[:2] in _ORDER else len(_ORDER)
    return step + (len(_ORDER) + 1 if text.endswith("AV") else 0)


@dataclass(frozen=True, slots=True)
class Latest:
    account: str
    currency: str
    amount: Decimal
    date: str
    kind: str


def render(vault: Vault, category: str, f: common.Filters) -> str:
    # (account, currency) -> day -> (rank, amount, payload)
    days: dict[tuple[str, str], dict[str, tuple[int, Decimal, dict[str, Any]]]] = defaultdict(dict)
    found: list[StoredRecord] = []
    more = False
    for n, rec in enumerate(common.selected(vault, category, f)):
        if n >= f.skip:
            if len(found) < common.PAGE:
                found.append(rec)
            else:
                more = True
        amount = amount_of(rec.payload)
        day = str(rec.payload.get("date") or rec.occurred_at)[:10]
        if amount is None or not day:
            continue
        key = (str(rec.payload.get("account") or ""), str(rec.payload.get("currency") or ""))
        best = days[key].get(day)
        r = rank(rec.payload.get("type"))
        if best is None or r <= best[0]:
            days[key][day] = (r, amount, rec.payload)
    return render_template(
        "views/balances.html",
        category=category,
        records=found,
        more=more,
        latest=_latest(days),
        charts=_charts(days),
        sources=common.sources(vault, category, f.source),
        f=f,
        kind_name=kind_name,
    )


def _latest(days: dict[tuple[str, str], dict[str, tuple]]) -> list[Latest]:
    out = []
    for (account, currency), by_day in days.items():
        day = max(by_day)
        _, amount, payload = by_day[day]
        out.append(Latest(account, currency, amount, day, str(payload.get("type") or "")))
    return sorted(out, key=lambda x: (x.currency, x.account))


def _charts(days: dict[tuple[str, str], dict[str, tuple]]) -> list[charts.Chart]:
    currencies = sorted({c for _, c in days})
    out = []
    for currency in currencies:
        keys = sorted(k for k in days if k[1] == currency)
        every = sorted({d for k in keys for d in days[k]})
        monthly = len(every) > MAX_DAYS
        cut = (lambda d: d[:7]) if monthly else (lambda d: d)
        labels = sorted({cut(d) for d in every})
        series = []
        for key in keys:
            values: dict[str, float] = {}
            for day in sorted(days[key]):  # the last day of a month stands for it
                values[cut(day)] = float(days[key][day][1])
            series.append(
                charts.Series(
                    key[0] or gettext("No account given"), [values.get(x) for x in labels]
                )
            )
        out.append(
            charts.lines(
                gettext("Balance per account (%(currency)s)", currency=currency),
                [(locale.month if monthly else locale.day)(x) for x in labels],
                series,
                show=partial(locale.money, currency=currency),
            )
        )
    return out
