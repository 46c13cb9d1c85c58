"""The owner's policies on every data request of the API: ``decide`` and the day's count.

:func:`enforce` asks ``pds.policy.decide`` about the request (the grant's purpose and
fields, the query's category and time range, the client's requests so far today) and
raises :class:`~pds.errors.PolicyRefused` (403) or :class:`~pds.errors.RateLimited` (429)
when it refuses; the decision is kept in ``g.pds_decision`` so the call's audit entry
carries its ``rule_ids`` and ``reason``.

Requests today are counted by :class:`RequestCounter`, one per worker process: the number of
access-log entries with an ``api.*`` action for the client since 00:00 UTC. It reads the log
incrementally (only entries appended since its last look, by any process), so a request
costs one indexed range read of a handful of rows, not a scan of the day.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import UTC, date, datetime, timedelta

from flask import current_app, g

from pds import clock
from pds.db import audit as db_audit
from pds.errors import PolicyRefused, RateLimited
from pds.http.api.auth import current_access
from pds.http.context import current_policies, current_vault
from pds.policy import Decision, Request, decide


class RequestCounter:
    """API requests per client today (UTC), kept up to date from the access log.

    The first call of a day finds the day's first entry by binary search on ``idx``
    (entry times grow with it) and counts from there, once; every later call reads only the
    entries appended since (by this process or any other), so the count is exact across
    workers.
    """

    def __init__(self) -> None:
        self.day: str | None = None
        self.last = -1
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def count(self, conn: sqlite3.Connection, client_id: str, today: str) -> int:
        with self._lock:
            if today != self.day:
                self._start(conn, today)
            counts = self.counts
            for idx, day, client, action in db_audit.calls_after(conn, self.last):
                self.last = idx
                if day == today and client and action.startswith("api."):
                    counts[client] = counts.get(client, 0) + 1
            return counts.get(client_id, 0)

    def _start(self, conn: sqlite3.Connection, today: str) -> None:
        last = db_audit.last_index(conn)
        lo, hi = 0, (last if last is not None else -1) + 1
        while lo < hi:
            mid = (lo + hi) // 2
            day = db_audit.entry_day(conn, mid)
            if day < today:
                lo = mid + 1
            else:
                hi = mid
        self.day, self.last, self.counts = today, lo - 1, {}


def _counter() -> RequestCounter:
    counters: dict[int, RequestCounter] = current_app.extensions.setdefault(
        "pds_request_counters", {}
    )
    pid = os.getpid()
    found = counters.get(pid)
    if found is None:
        found = counters[pid] = RequestCounter()
    return found


def _seconds_to_midnight(now: datetime) -> int:
    tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    return max(1, int((tomorrow - now).total_seconds()))


def enforce(
    action: str,
    category: str,
    fields: tuple[str, ...] | None = None,
    since: date | None = None,
    until: date | None = None,
) -> Decision:
    """The policies' decision on this API call; PolicyRefused / RateLimited when refused."""
    acc = current_access()
    rules = current_policies().current()
    now = clock.utcnow()
    done = _counter().count(current_vault().conn, acc.client_id, now.date().isoformat())
    request = Request(
        acc.client_id,
        action,
        (category,),
        fields,
        acc.grant.purpose,
        since,
        until,
        None,
        done,
    )
    decision = decide(request, rules, now)
    g.pds_decision = decision
    if not decision.allowed:
        kinds = {r.kind for r in rules.rules if r.id in decision.rule_ids}
        if kinds == {"rate-limit"}:
            raise RateLimited(decision, _seconds_to_midnight(now))
        raise PolicyRefused(decision)
    return decision
