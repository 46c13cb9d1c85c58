"""The change feed: what changed in the profile and the intentions, and who is told.

- A change (:func:`record_change`) is one ``profile_changes`` row: seq, category, the names
  of the changed fields, time. Never values: a business told of a change fetches it with
  its own token, through its grant, like any other read.
- For each change, each live webhook subscription whose grant may read at least one changed
  field (:func:`visible`) gets a pending delivery, in the same transaction as the change;
  pds.webhooks signs and sends it.
- :func:`changes` is the feed a business reads (``GET /api/v1/changes``), cut to what its
  grant may read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pds import clock
from pds.db import atomic
from pds.db import profile as db_profile
from pds.db import webhooks as db_webhooks
from pds.oauth import store

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
