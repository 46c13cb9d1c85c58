"""The owner's search across every category: ``GET /search?q=``.

The words of the query are looked up in the vault's search index (``pds.vault.search``):
a record matches when it holds every word. The answer is grouped by category, each with
its count and its newest matches (date and a line of the record's main values written as
the pages write them, linking to the record), and a link to the category's page filtered
by the same words when there are more. As for browsing, the owner reading their own data
writes no audit entry.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from pds.http.context import current_vault
from pds.http.security import owner_required
from pds.http.web.views import energy, fhirtext
from pds.http.web.views import record as record_page
from pds.vault.search import summary

bp = Blueprint("search", __name__)

PER_CATEGORY = 10
MAX_QUERY = 200
"""Characters of the query read (the rest is ignored)."""
SHOWN_QUERY = 60
"""Characters of the query "Nothing matches" repeats."""


@bp.get("/search")
@owner_required
def page() -> Any:
    query = " ".join(request.args.get("q", "")[:MAX_QUERY].split())
    groups = []
    if query:
        for category, count, records in current_vault().search(query, per_category=PER_CATEGORY):
            found = [(r.id, r.occurred_at, line(category, r.payload)) for r in records]
            groups.append(
                {
                    "category": category,
                    "count": count,
                    "records": found,
                    "dated": category not in record_page.UNDATED,
                }
            )
    shown = query if len(query) <= SHOWN_QUERY else query[: SHOWN_QUERY - 1].rstrip() + "\u2026"
    return render_template("search.html", query=query, shown=shown, groups=groups)


def line(category: str, payload: dict[str, Any]) -> str:
    """A record's line of main values written as its page writes them: an amount in its
    currency, a date as the locale writes it, an energy reading in kWh, a health record's
    type and value in words."""
    if category == "health" and isinstance(payload.get("type"), str):
        kind = payload["type"]
        value = payload.get("value")
        shown = fhirtext.apple_value(kind, value, payload.get("unit")) if value else ""
        display = payload.get("display") if isinstance(payload.get("display"), str) else ""
        return " · ".join(t for t in (fhirtext.type_name(kind), display, shown) if t)
    p: dict[str, Any] = {}
    for name, value in payload.items():
        scalar = isinstance(value, str | int | float) and not isinstance(value, bool)
        p[name] = record_page.value_text(name, value, payload) if scalar else value
    if "amount" in p or "cost" in p:
        p.pop("currency", None)  # the amount says it
    number = fhirtext.number(payload.get("value"))
    if category == "energy" and number is not None and isinstance(payload.get("unit"), str):
        unit, divisor = energy.shown_unit(payload["unit"])
        p["value"] = f"{fhirtext.amount(number / divisor, None)} {unit}"
        p.pop("unit")
        if isinstance(payload.get("commodity"), str):
            p["commodity"] = energy.commodity_name(payload["commodity"])
    return summary(p)
