"""The SQL of webhooks: ``subscriptions`` and the delivery log ``deliveries`` (schema 4;
since schema 10 an attempt sends a profile change, ``seq``, or a record change,
``change_seq``).

A subscription row is read as a :class:`Subscription`; pds.webhooks derives its secret,
checks its URL and sends. A delivery row is one attempt; the claim of the next due one is
an ``UPDATE ... RETURNING`` that the caller runs inside ``pds.db.transaction`` (``BEGIN
IMMEDIATE``), so two processes never claim the same attempt. Nothing here opens a
transaction of its own.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Subscription:
    id: str
    client_id: str
    grant_id: int
    url: str
    categories: tuple[str, ...]
    salt: bytes
    created_at: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "categories": list(self.categories),
            "created_at": self.created_at,
        }


_SUB_COLS = "id, client_id, grant_id, url, categories, salt, created_at"


def _sub(row: tuple) -> Subscription:
    sid, cid, gid, url, cats, salt, created = row
    return Subscription(sid, cid, gid, url, tuple(json.loads(cats)), salt, created)


# -- subscriptions --------------------------------------------------------------------------


def count_live_subscriptions(conn: sqlite3.Connection, grant_id: int) -> int:
    """How many subscriptions of the grant are not deleted."""
    return conn.execute(
        "SELECT count(*) FROM subscriptions WHERE grant_id = ? AND deleted_at IS NULL",
        (grant_id,),
    ).fetchone()[0]


def insert_subscription(
    conn: sqlite3.Connection,
    sub_id: str,
    client_id: str,
    grant_id: int,
    url: str,
    categories: list[str],
    salt: bytes,
    created_at: str,
) -> Subscription:
    """Store a new subscription; the row as stored."""
    row = (sub_id, client_id, grant_id, url, json.dumps(categories), salt, created_at)
    conn.execute(f"INSERT INTO subscriptions ({_SUB_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)", row)  # noqa: S608
    return _sub(row)


def subscriptions_for_grant(conn: sqlite3.Connection, grant_id: int) -> list[Subscription]:
    """The grant's subscriptions that are not deleted, oldest first."""
    rows = conn.execute(
        f"SELECT {_SUB_COLS} FROM subscriptions WHERE grant_id = ? AND deleted_at IS NULL "  # noqa: S608
        "ORDER BY created_at, id",
        (grant_id,),
    )
    return [_sub(r) for r in rows]


def get_subscription(conn: sqlite3.Connection, sub_id: str) -> Subscription | None:
    """The subscription ``sub_id`` (deleted or not), or None."""
    row = conn.execute(
        f"SELECT {_SUB_COLS} FROM subscriptions WHERE id = ?",  # noqa: S608
        (sub_id,),
    ).fetchone()
    return _sub(row) if row else None


def delete_subscription(conn: sqlite3.Connection, grant_id: int, sub_id: str, at: str) -> bool:
    """Mark the grant's subscription ``sub_id`` deleted at ``at``; False if it had none
    (still live) with this id."""
    return bool(
        conn.execute(
            "UPDATE subscriptions SET deleted_at = ? WHERE id = ? AND grant_id = ? "
            "AND deleted_at IS NULL",
            (at, sub_id, grant_id),
        ).rowcount
    )


def subscription_deleted(conn: sqlite3.Connection, sub_id: str) -> bool:
    """True if the (existing) subscription ``sub_id`` has been deleted."""
    row = conn.execute("SELECT deleted_at FROM subscriptions WHERE id = ?", (sub_id,)).fetchone()
    return row[0] is not None


def live_subscriptions(conn: sqlite3.Connection, category: str, now: int) -> list[Subscription]:
    """The subscriptions to ``category`` that are not deleted and whose grant is neither
    revoked nor expired at ``now`` (seconds since the epoch)."""
    rows = conn.execute(
        f"SELECT {_SUB_COLS} FROM subscriptions s WHERE deleted_at IS NULL AND EXISTS "  # noqa: S608
        "(SELECT 1 FROM grants g WHERE g.id = s.grant_id AND g.revoked_at IS NULL "
        "AND g.expires_at > ?)",
        (now,),
    )
    return [s for s in map(_sub, rows) if category in s.categories]


# -- deliveries -----------------------------------------------------------------------------


def add_delivery(
    conn: sqlite3.Connection,
    subscription_id: str,
    seq: int | None,
    attempt: int,
    next_attempt_at: int,
    updated_at: str,
    change_seq: int | None = None,
) -> None:
    """Queue attempt ``attempt`` of sending profile change ``seq`` (or record change
    ``change_seq``) to the subscription, due at ``next_attempt_at``."""
    conn.execute(
        "INSERT INTO deliveries (subscription_id, seq, change_seq, attempt, status, "
        "next_attempt_at, updated_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)",
        (subscription_id, seq, change_seq, attempt, next_attempt_at, updated_at),
    )


def delivery_due(conn: sqlite3.Connection, now: int) -> bool:
    """True if an attempt is due at ``now``, or a claim on one has run out (a read)."""
    return (
        conn.execute(
            "SELECT 1 FROM deliveries WHERE (status = 'pending' AND next_attempt_at <= ?1) "
            "OR (status = 'sending' AND claimed_until < ?1) LIMIT 1",
            (now,),
        ).fetchone()
        is not None
    )


def claim_delivery(
    conn: sqlite3.Connection, now: int, claimed_until: int, at: str
) -> tuple[int, str, int | None, int, int | None] | None:
    """Mark the next due attempt as being sent until ``claimed_until``: (id, subscription
    id, seq, attempt, change_seq), or None. Run it inside the caller's write transaction."""
    return conn.execute(
        "UPDATE deliveries SET status = 'sending', claimed_until = ?, updated_at = ? "
        "WHERE id = (SELECT id FROM deliveries WHERE (status = 'pending' AND "
        "next_attempt_at <= ?) OR (status = 'sending' AND claimed_until < ?) "
        "ORDER BY next_attempt_at, id LIMIT 1) "
        "RETURNING id, subscription_id, seq, attempt, change_seq",
        (claimed_until, at, now, now),
    ).fetchone()


def set_delivery_status(
    conn: sqlite3.Connection, delivery_id: int, status: str, error: str | None, at: str
) -> None:
    """Close an attempt as ``status`` (its claim released), with the error if any."""
    conn.execute(
        "UPDATE deliveries SET status = ?, last_error = ?, claimed_until = NULL, "
        "updated_at = ? WHERE id = ?",
        (status, error, at, delivery_id),
    )


def delivery_log(conn: sqlite3.Connection, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` attempts with their subscription's client and URL, newest
    first (``next_attempt_at`` as stored: seconds since the epoch; ``seq`` a profile
    change, ``change_seq`` a record change)."""
    cur = conn.execute(
        "SELECT d.id, d.subscription_id, s.client_id, s.url, d.seq, d.change_seq, d.attempt, "
        "d.status, "
        "d.next_attempt_at, d.last_error, d.updated_at FROM deliveries d "
        "JOIN subscriptions s ON s.id = d.subscription_id ORDER BY d.id DESC LIMIT ?",
        (limit,),
    )
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur]
