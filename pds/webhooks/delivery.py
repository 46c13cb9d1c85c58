"""The webhook sender: queue the record changes' deliveries, claim due deliveries, POST them
signed, log every attempt.

A change of the profile or intentions queues its deliveries itself (pds.profile.changes);
a change of records (pds.db.changes, logged by the vault) is queued here, by
:func:`queue_record_changes`: each live subscription to its category made before it, whose
grant reads the category, gets one, and ``meta`` keeps the last change queued. So an import
costs no more than its change rows, whatever the number of subscriptions.

:func:`run_once` drains what is due now (``pds deliveries run``); :func:`ensure_worker`
starts one background thread per server process that calls it every
:data:`POLL_SECONDS`. A claim is an ``UPDATE ... RETURNING`` inside ``BEGIN IMMEDIATE``, so
two processes never send the same attempt; a claim left by a crashed worker is taken again
after ``CLAIM_SECONDS``. The HTTP request itself runs outside any transaction.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from pds import clock
from pds.background import ProcessThread
from pds.db import changes as db_changes
from pds.db import profile as db_profile
from pds.db import transaction
from pds.db import webhooks as db_webhooks
from pds.db.webhooks import Subscription
from pds.oauth import store
from pds.profile import intentions
from pds.profile.changes import FEED_CATEGORIES, record_entry, visible
from pds.vocabulary import category_fields
from pds.webhooks import net as webhook_net
from pds.webhooks import propagation as prop

if TYPE_CHECKING:
    from pds.policy import Decision
    from pds.vault import Vault

POLL_SECONDS = 2.0
QUEUE_BATCH = 500
Sender = Callable[[str, dict[str, str], bytes], tuple[int | None, str | None]]
log = logging.getLogger("pds.deliveries")


@dataclass(frozen=True)
class Attempt:
    """One claimed delivery attempt."""

    id: int
    subscription_id: str
    seq: int | None
    attempt: int
    change_seq: int | None = None


def claim(vault: Vault, now: int) -> Attempt | None:
    """The next due delivery, marked as being sent by this process (None: nothing due).
    Looks first without the write lock: the common case, nothing due, takes no lock."""
    if not db_webhooks.delivery_due(vault.conn, now):
        return None
    with transaction(vault.conn) as conn:
        row = db_webhooks.claim_delivery(conn, now, now + prop.CLAIM_SECONDS, clock.iso(now))
    return Attempt(*row) if row else None


def run_once(vault: Vault, *, now: int | None = None, send: Sender | None = None) -> dict[str, int]:
    """Send every delivery due at ``now``; counts of delivered, failed and dropped ones.

    ``send`` defaults to :func:`pds.webhooks.net.post`, which refuses non-public
    addresses unless the vault's settings allow them."""
    if send is None:
        send = partial(webhook_net.post, allow_private=vault.settings.webhooks_allow_private)

    intentions.remove_expired(vault)
    counts = {"delivered": 0, "failed": 0, "dropped": 0}
    at = clock.now() if now is None else now
    queue_record_changes(vault, at)
    while (attempt := claim(vault, at)) is not None:
        counts[_deliver(vault, attempt, at, send)] += 1
    return counts


def queue_record_changes(vault: Vault, now: int) -> int:
    """Queue a delivery of each record change not queued yet to each subscription that
    hears it; how many were queued. Reads first without the write lock: the common case,
    nothing new, takes no lock."""
    queued = 0
    while db_changes.unqueued(vault.conn, 1):
        with transaction(vault.conn) as conn:
            rows = db_changes.unqueued(conn, QUEUE_BATCH)  # again, under the lock
            for seq, at, category, *_ in rows:
                if category in FEED_CATEGORIES:
                    continue  # told by field name, in pds.profile.changes
                for sub in db_webhooks.live_subscriptions(conn, category, now):
                    grant = store.get_grant(conn, sub.grant_id)
                    if sub.created_at <= at and grant.access.allows("read", category):
                        db_webhooks.add_delivery(conn, sub.id, None, 1, now, clock.iso(now), seq)
                        queued += 1
            if rows:
                db_changes.set_queued(conn, rows[-1][0])
    return queued


def _deliver(vault: Vault, attempt: Attempt, now: int, send: Sender) -> str:
    conn = vault.conn
    sub = prop.get(conn, attempt.subscription_id)
    grant = store.get_grant(conn, sub.grant_id) if sub else None
    if attempt.change_seq is not None:
        category, note = _records_note(vault, attempt.change_seq, grant, now)
    else:
        category, note = _fields_note(vault, attempt.seq or 0, grant, now)
    if (
        sub is None
        or grant is None
        or note is None
        or db_webhooks.subscription_deleted(conn, sub.id)
    ):
        return _drop(vault, attempt, sub, grant, category)
    body = json.dumps(note, separators=(",", ":")).encode()
    if attempt.change_seq is not None:
        msg_id = f"{sub.id}.r{attempt.change_seq}"
    else:
        msg_id = f"{sub.id}.{attempt.seq}"
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "pds-webhooks",
        "Webhook-Id": msg_id,
        "Webhook-Timestamp": str(now),
        "Webhook-Signature": prop.sign(prop.secret(vault, sub), msg_id, now, body),
    }
    status, error = send(sub.url, headers, body)
    ok = status is not None and 200 <= status < 300 and error is None
    _finish(vault, attempt, sub, grant, category, now, ok, status, error)
    return "delivered" if ok else "failed"


def _fields_note(
    vault: Vault, seq: int, grant: store.Grant | None, now: int
) -> tuple[str, dict[str, Any] | None]:
    """A profile or intentions change as this grant may hear it (None: not at all)."""
    category, fields, at = db_profile.get_change(vault.conn, seq)
    names = visible(grant, category, fields, now) if grant else []
    if names and grant is not None:
        names = _policy_allows(vault, grant, category, names)
    note = {"seq": seq, "category": category, "fields": names, "at": at}
    return category, note if names else None


def _records_note(
    vault: Vault, change_seq: int, grant: store.Grant | None, now: int
) -> tuple[str | None, dict[str, Any] | None]:
    """A record change as this grant may hear it: ``{"type": "records.<kind>", ...}``, the
    feed's entry (None: not at all, or the change was dropped with its category)."""
    row = db_changes.get(vault.conn, change_seq)
    if row is None:
        return None, None
    category = row[2]
    allowed = grant.access.allows("read", category) if grant and grant.is_active(now) else None
    if grant is None or allowed is None:
        return category, None
    names = allowed.fields or category_fields(category) or ()
    decision = _decision(vault, grant, category, names)
    if not decision.allowed:
        return category, None
    earliest = decision.constraints.earliest
    entry = record_entry(vault.conn, row, allowed, earliest.isoformat() if earliest else None)
    return category, None if entry is None else {"type": f"records.{row[3]}", **entry}


def _decision(vault: Vault, grant: store.Grant, category: str, names: Iterable[str]) -> Decision:
    """The owner's policies' decision on this business reading ``names`` of ``category``."""
    from pds.policy import Request, decide
    from pds.policyfiles.loader import PolicySet

    home = vault.settings.home
    if (policies := _policies.get(home)) is None:
        policies = _policies[home] = PolicySet(home, check_every=1.0)
    ask = Request(grant.client_id, "read", (category,), tuple(names), grant.purpose)
    return decide(ask, policies.current(), clock.utcnow())


def _policy_allows(vault: Vault, grant: store.Grant, category: str, names: list[str]) -> list[str]:
    """The names the owner's policies let out to this business now (none if refused)."""
    decision = _decision(vault, grant, category, names)
    if not decision.allowed:
        return []
    hidden = decision.constraints.redacted_fields(category)
    return [n for n in names if n not in hidden]


_policies: dict[Any, Any] = {}


def _drop(
    vault: Vault,
    attempt: Attempt,
    sub: Subscription | None,
    grant: store.Grant | None,
    category: str | None,
) -> str:
    reason = (
        "the subscription or its grant has ended, or neither the grant nor the owner's "
        "policies let the change out"
    )
    with transaction(vault.conn) as conn:
        _set(conn, attempt.id, "dropped", reason)
        vault.audit(
            "webhook.drop",
            actor="pds",
            decision="dropped",
            client_id=sub.client_id if sub else None,
            grant_id=grant.id if grant else None,
            category=category,
            reason=reason,
            detail={"subscription": attempt.subscription_id, **_which(attempt)},
        )
    return "dropped"


def _finish(
    vault: Vault,
    attempt: Attempt,
    sub: Subscription,
    grant: store.Grant,
    category: str | None,
    now: int,
    ok: bool,
    status: int | None,
    error: str | None,
) -> None:
    with transaction(vault.conn) as conn:
        if ok:
            _set(conn, attempt.id, "delivered", None)
        elif attempt.attempt < prop.MAX_ATTEMPTS:
            _set(conn, attempt.id, "failed", error)
            db_webhooks.add_delivery(
                conn,
                sub.id,
                attempt.seq,
                attempt.attempt + 1,
                now + prop.BACKOFF[attempt.attempt - 1],
                clock.iso(now),
                attempt.change_seq,
            )
        else:
            _set(conn, attempt.id, "gave_up", error)
        vault.audit(
            "webhook.deliver",
            actor="pds",
            client_id=sub.client_id,
            grant_id=grant.id,
            category=category,
            purpose=grant.purpose,
            detail={
                "subscription": sub.id,
                **_which(attempt),
                "attempt": attempt.attempt,
                "status": status,
                "delivered": ok,
            },
        )


def _which(attempt: Attempt) -> dict[str, int | None]:
    """The change an attempt sends, for its audit entry."""
    if attempt.change_seq is not None:
        return {"change_seq": attempt.change_seq}
    return {"seq": attempt.seq}


def _set(conn: sqlite3.Connection, delivery_id: int, status: str, error: str | None) -> None:
    db_webhooks.set_delivery_status(conn, delivery_id, status, error, clock.iso(clock.now()))


def log_rows(vault: Vault, limit: int = 100) -> list[dict[str, Any]]:
    """The delivery log, newest first."""
    rows = db_webhooks.delivery_log(vault.conn, limit)
    for r in rows:
        r["next_attempt_at"] = clock.iso(r["next_attempt_at"])
    return rows


# -- the server's background sender ---------------------------------------------------------


def _loop(settings: Any, keyring: Any, stop: threading.Event, _wake: threading.Event) -> None:
    from pds.vault import Vault

    with Vault.with_keyring(settings, keyring) as vault:
        while not stop.wait(POLL_SECONDS):
            try:
                run_once(vault)
            except Exception:  # keep sending; the owner sees failures in the delivery log
                log.exception("the webhook sender failed; retrying in %s s", POLL_SECONDS)


worker = ProcessThread("pds-deliveries", "PDS_DELIVERY_WORKER", _loop)
ensure_worker = worker.ensure
"""Start this process's sender thread once, under ``pds serve`` or with
``PDS_DELIVERY_WORKER``."""
stop_worker = worker.stop
"""Stop this process's sender thread (if any) and wait for it."""
