"""The plain view of a category with no view of its own: its records as a table of their
fields, newest first, a page at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import render_template

from pds.http.web.views import common

if TYPE_CHECKING:
    from pds.vault import Vault
    from pds.vault.records import StoredRecord


def render(vault: Vault, category: str, f: common.Filters) -> str:
    found, more = common.page(common.selected(vault, category, f), f)
    return render_template(
        "views/table.html",
        category=category,
        records=found,
        fields=columns(found),
        sources=common.sources(vault, category, f.source),
        f=f,
        more=more,
    )


def columns(records: list[StoredRecord]) -> list[str]:
    """Up to six fields that the page's records fill, in the order they first appear."""
    cols: dict[str, None] = {}
    for rec in records:
        cols.update(
            dict.fromkeys(k for k, v in rec.payload.items() if v not in (None, "") and k != "date")
        )
    return list(cols)[:6]
