"""The owner's search across every category: ``GET /search?q=``.

The words of the query are looked up in the vault's search index (``pds.vault.search``):
a record matches when it holds every word. The answer is grouped by category, each with
its count and its newest matches (date and a line of the record's main values, linking to
the record), and a link to the category's page filtered by the same words when there are
more. As for browsing, the owner reading their own data writes no audit entry.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from pds.http.context import current_vault
from pds.http.security import owner_required
from pds.vault.search import summary

bp = Blueprint("search", __name__)

PER_CATEGORY = 10
MAX_QUERY = 200
"""Characters of the query read (the rest is ignored)."""


@bp.get("/search")
@owner_required
def page() -> Any:
    query = " ".join(request.args.get("q", "")[:MAX_QUERY].split())
    groups = []
    if query:
        for category, count, records in current_vault().search(query, per_category=PER_CATEGORY):
            found = [(r.id, r.occurred_at, summary(r.payload)) for r in records]
            groups.append({"category": category, "count": count, "records": found})
    return render_template("search.html", query=query, groups=groups)
