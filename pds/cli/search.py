"""``pds search``: the records holding every word of a query, across every category."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from pds.cli.common import WholeNumber, category_option, json_option, with_vault
from pds.errors import BadRequest
from pds.vault.search import summary, words

if TYPE_CHECKING:
    from pds.vault import Vault


SHOWN_QUERY = 60
"""Characters of the query a message repeats."""


def _quoted(query: str) -> str:
    """The query in double quotes, its first :data:`SHOWN_QUERY` characters and "…"."""
    if len(query) > SHOWN_QUERY:
        query = query[: SHOWN_QUERY - 1].rstrip() + "\u2026"
    return json.dumps(query, ensure_ascii=False)


@click.command("search")
@click.argument("query")
@click.option("--category", callback=category_option, help="Only this category, e.g. transactions.")
@click.option(
    "--limit",
    type=WholeNumber(1, 1000),
    default=10,
    show_default=True,
    help="Records shown per category, newest first.",
)
@json_option
@with_vault
def search(v: Vault, query: str, category: str | None, limit: int, as_json: bool) -> None:
    """Find the records holding every word of QUERY (whole words, any case), newest first,
    grouped by category."""
    if not words(query):
        raise BadRequest(
            f"{_quoted(query)} has no word to look for",
            hint="Type a word of at least two letters or digits.",
        )
    found = v.search(query, category=category, per_category=limit)
    shown = sum(len(records) for _, _, records in found)
    v.audit("export", actor="owner", category=category, count=shown)
    if as_json:
        groups = [
            {"category": c, "count": n, "records": [r.as_dict() for r in records]}
            for c, n, records in found
        ]
        click.echo(json.dumps({"query": query, "categories": groups}, ensure_ascii=False, indent=2))
        return
    if not found:
        click.echo(f"Nothing matches {_quoted(query)}.")
        return
    for i, (cat, count, records) in enumerate(found):
        more = f" (the newest {len(records)} shown)" if count > len(records) else ""
        click.echo(
            ("\n" if i else "") + f"{cat}: {count} {'match' if count == 1 else 'matches'}{more}"
        )
        for r in records:
            click.echo(f"{r.id:>8}  {r.occurred_at[:10]:<10}  {summary(r.payload)}")
