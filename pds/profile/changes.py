"""The change feeds: what changed in the vault, and who is told.

Records (every category): an import, a record written through the API, a replaced profile,
a forgotten category or record is a ``record_changes`` row (pds.db.changes): when, which
category, ``added``/``changed``/``forgotten``, the first and last record id and how many.
:func:`record_changes` is the feed a business reads (``GET /api/v1/changes?cursor=``) and
:func:`record_entry` the one entry it may see, also the body of a ``records.*`` webhook:

- only the categories its grant reads, and only changes made since the grant exists;
- an ``added`` or ``changed`` entry counts the records still held that the grant's time
  range (and the owner's ``earliest``) covers, by their date: none left, no entry. A record
  dated last year imported today is announced today, to a grant that covers last year;
- a ``forgotten`` entry is announced to every grant that reads the category: the records
  are gone, their dates with them;
- ids and counts only: a business fetches the records with its own token, through its grant.

Profile and intentions (field names): a change (:func:`record_change`) is also one
``profile_changes`` row: seq, category, the names of the changed fields, time. Never values.
For each, each live webhook subscription whose grant may read at least one changed field
(:func:`visible`) gets a pending delivery, in the same transaction as the change;
pds.webhooks signs and sends it. :func:`changes` is that feed (``GET /api/v1/changes?since=``),
cut to what the grant may read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pds import clock
from pds.db import atomic
from pds.db import changes as db_changes
from pds.db import profile as db_profile
from pds.db import webhooks as db_webhooks
from pds.oauth import store
from pds.oauth.access import CategoryAccess

if TYPE_CHECKING:
    from pds.vault import Vault

FEED_CATEGORIES = ("profile", "intentions")
"""The categories whose changes the feed logs and webhooks announce (what a subscription
may name)."""


def record_change(vault: Vault, category: str, fields: Iterable[str]) -> int:
    """Log a change (field names only) and queue its deliveries; joins the caller's
    transaction. Returns the change's seq."""
    names = list(fields)
    at = clock.now()
    with atomic(vault.conn) as conn:
        seq = db_profile.add_change(conn, category, names, clock.iso(at))
        for sub in db_webhooks.live_subscriptions(conn, category, clock.now()):
            if visible(store.get_grant(conn, sub.grant_id), category, names, at):
                db_webhooks.add_delivery(conn, sub.id, seq, 1, at, clock.iso(at))
    return seq


def visible(grant: store.Grant, category: str, fields: Iterable[str], at: int) -> list[str]:
    """The changed field names this grant may read (none when the grant is not live)."""
    if not grant.is_active(at):
        return []
    allowed = grant.access.allows("read", category)
    if allowed is None:
        return []
    return [f for f in fields if allowed.fields is None or f in allowed.fields]


def changes(
    conn: sqlite3.Connection,
    grant: store.Grant,
    readable: Callable[[str], tuple[str, ...] | None],
    since: int,
    limit: int,
) -> list[dict[str, Any]]:
    """Changes after ``since`` made while the grant existed, cut to the fields ``readable``
    (category -> field names, or None when the caller may not read it) lets through."""
    out: list[dict[str, Any]] = []
    for seq, category, fields, at in db_profile.changes_after(conn, since, grant.created_at):
        allowed = readable(category)
        if allowed is None:
            continue
        names = [f for f in fields if f in allowed]
        if names:
            out.append({"seq": seq, "category": category, "fields": names, "at": at})
            if len(out) == limit:
                break
    return out


# -- the records' change feed ------------------------------------------------------------------

RECORD_KINDS = ("added", "changed", "forgotten")
SCAN_PAGES = 10
"""A feed read looks at most this many pages of changes (skipping those the grant may not
see) before it answers, with ``more``: the cost of one call stays bounded."""

Reader = Callable[[str], "tuple[CategoryAccess, str | None] | None"]
"""category -> what the caller may read of it (the grant's part, and the owner's earliest
day as ISO text or None), or None when it may not read it."""


def record_entry(
    conn: sqlite3.Connection, row: tuple, allowed: CategoryAccess, earliest: str | None
) -> dict[str, Any] | None:
    """The change ``row`` (pds.db.changes.COLUMNS) as the grant part ``allowed`` sees it,
    or None when it covers none of its records."""
    seq, at, category, kind, first, last, count = row
    if kind != "forgotten":
        since = max(d for d in (allowed.time_from, earliest, "") if d is not None) or None
        count, first, last = db_changes.held(conn, category, first, last, since, allowed.time_to)
        if not count:
            return None
    return {
        "seq": seq,
        "at": at,
        "kind": kind,
        "category": category,
        "first_id": first,
        "last_id": last,
        "count": count,
    }


def record_changes(
    conn: sqlite3.Connection, grant: store.Grant, reader: Reader, after: int, limit: int
) -> tuple[list[dict[str, Any]], int, bool]:
    """Up to ``limit`` entries after seq ``after`` that ``reader`` lets through, made since
    the grant exists, oldest first; with the last seq looked at (the next read starts
    after it) and whether more may follow."""
    cats = [c for c in grant.access.categories if reader(c) is not None]
    out: list[dict[str, Any]] = []
    if not cats:
        return out, after, False
    for _ in range(SCAN_PAGES):
        rows = db_changes.after(conn, after, cats, grant.created_at, limit)
        for row in rows:
            found = reader(row[2])
            entry = record_entry(conn, row, *found) if found else None
            after = row[0]
            if entry is not None:
                out.append(entry)
                if len(out) == limit:
                    return out, after, True
        if len(rows) < limit:
            return out, after, False
    return out, after, True
