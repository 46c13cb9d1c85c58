"""What every category view shares: the filters read from the query string, the records
they select (newest first unless asked otherwise), and the list of sources for the
source filter."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from flask import request

from pds.errors import BadRequest

if TYPE_CHECKING:
    from pds.vault import Vault
    from pds.vault.records import StoredRecord

PAGE = 50
MAX_SKIP = 1_000_000_000  # past any vault's last page; keeps the links' numbers short
_MAX_ID = 2**63 - 1  # SQLite's largest integer
NO_SOURCE = -1  # a source id no record has


@dataclass(frozen=True)
class Filters:
    """The filters of a category page, as the query string gave them (checked)."""

    since: str | None = None  # first day, YYYY-MM-DD
    until: str | None = None  # last day, YYYY-MM-DD (inclusive)
    source: int | None = None
    q: str = ""  # search words, as typed (stripped)
    skip: int = 0
    oldest: bool = False  # oldest first (the default is newest first)
    extra: dict[str, str] = field(default_factory=dict)  # a view's own filters

    @property
    def end(self) -> str | None:
        """The exclusive upper bound for ``occurred_at`` (the day after ``until``)."""
        if self.until is None:
            return None
        return (date.fromisoformat(self.until) + timedelta(days=1)).isoformat()

    def args(self, **changes: Any) -> dict[str, Any]:
        """The query string that gives these filters (with ``changes``), for links."""
        out: dict[str, Any] = {
            "from": self.since or None,
            "to": self.until or None,
            "source": self.source,
            "q": self.q or None,
            "skip": self.skip or None,
            "order": "oldest" if self.oldest else None,
            **self.extra,
        }
        out.update(changes)
        return {k: v for k, v in out.items() if v not in (None, "")}


def _day(name: str) -> str | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw).isoformat()
    except ValueError:
        raise BadRequest(
            f"{name}={raw[:20]!r} is not a date (YYYY-MM-DD)",
            hint="Use the date pickers, or leave the field empty.",
        ) from None


def _source() -> int | None:
    """The ``source`` id asked for; one no source can have (0, negative, beyond SQLite's
    integers) reads as :data:`NO_SOURCE`: no record matches."""
    value = request.args.get("source", type=int)
    if value is None or 0 < value <= _MAX_ID:
        return value
    return NO_SOURCE


def read_filters(*extra: str) -> Filters:
    """The filters of this request; ``extra`` names a view's own query parameters."""
    return Filters(
        since=_day("from"),
        until=_day("to"),
        source=_source(),
        q=request.args.get("q", "").strip(),
        skip=min(max(0, request.args.get("skip", 0, type=int)), MAX_SKIP),
        oldest=request.args.get("order") == "oldest",
        extra={k: request.args[k].strip() for k in extra if request.args.get(k, "").strip()},
    )


def selected(vault: Vault, category: str, f: Filters) -> Iterator[StoredRecord]:
    """The records the filters select (dates, source, search words), in the page's order.
    Search words go through the search index: a record holding every one, as whole words."""
    where = {"since": f.since, "until": f.end, "newest": not f.oldest, "source": f.source}
    if f.q:
        return vault.search_records(f.q, category, **where)
    return vault.records(category, **where)


def page(records: Iterator[StoredRecord], f: Filters, size: int = PAGE):
    """One page of ``records`` after ``f.skip``: (the page, whether more follow)."""
    found: list[StoredRecord] = []
    for n, rec in enumerate(records):
        if n < f.skip:
            continue
        if len(found) == size:
            return found, True
        found.append(rec)
    return found, False


def sources(vault: Vault, category: str, chosen: int | None) -> list[dict[str, Any]]:
    """The sources holding ``category``, oldest first, plus the one the query string chose
    when it holds none (the filter shows what it applies: no record matches)."""
    held = vault.sources(category)
    if chosen is None or any(s["id"] == chosen for s in held):
        return held
    return [s for s in vault.sources() if s["id"] == chosen or s in held]
