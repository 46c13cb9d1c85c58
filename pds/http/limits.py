"""Rate limits and back-off on what callers without a valid credential can do, counted
across every worker process.

This is pds's one limit mechanism: two kinds of counter, a fixed window
(:class:`RateLimiter`) and an exponential back-off (:class:`LoginThrottle`), both kept in
``limits.db`` beside vault.db (``pds.db.counters``, which holds their SQL: shared by all of
``pds serve``'s workers and kept over a restart; a successful request at most reads it).
Every limit below is one of them, registered by :func:`init_app`, and each answers its 429
where it is used. Callers are keyed by :func:`address` (IPv4 as is, IPv6 by its /64), or by
client id:

- :data:`REGISTRATIONS_PER_WINDOW` registrations per :data:`REGISTRATION_WINDOW` seconds;
  beyond that ``POST /oauth/register`` answers 429 and writes nothing (``pds.http.oauth``).
- :data:`ANONYMOUS_REFUSALS_PER_WINDOW` logged refusals of calls without a valid access
  token per :data:`ANONYMOUS_REFUSAL_WINDOW` seconds; the next one writes a single
  ``api.refused.throttled`` entry and, like every further one in that window, answers 429
  (``pds.http.api.auth``). Calls with a valid token are never counted or refused here.
- :data:`CLIENT_FAILURES_PER_WINDOW` failed requests per client id and
  :data:`ADDRESS_FAILURES_PER_WINDOW` per address per :data:`FAILURE_WINDOW` seconds at the
  token, revocation and introspection endpoints; past either, those endpoints answer 429
  until the window ends (``pds.http.throttle``).
- The owner's and the auditor's sign-in forms: :class:`LoginThrottle`, exponential back-off
  per address after :data:`FREE_FAILURES` failures, at most :data:`MAX_BLOCK` seconds,
  failures forgotten :data:`FORGET_FAILURES_AFTER` seconds after the last one. Attempts it
  refuses (429) write no access-log entry, so it bounds a stranger's entries as well
  (``pds.http.web.owner``, ``pds.http.web.auditor``).

Hand-written rather than ``limits``/``flask-limiter``: those bring their own storage back
ends (memory, Redis, memcached, MongoDB), decorators and a string syntax for limits, while
this needs two small tables in a file pds already knows how to keep, an undo for
registrations that failed, counting only failures, and a window end to name in the log.
Windows are fixed, opened by a key's first hit after the previous one ended, so a key gets
at most twice the limit in any span of one window length. Every hit is one atomic upsert, so
concurrent workers never lose or double a count.

Behind a reverse proxy every caller has the proxy's address, and they would share one
allowance: set PDS_PROXY_HOPS to the number of proxies (``pds.settings``), and the address is
the one they name in ``X-Forwarded-For`` (werkzeug's ProxyFix, ``pds.http.app``). Never set it
when clients can reach pds without the proxy: they could then name any address. Addresses
and client ids are never stored, only keyed hashes of them (``pds.db.counters``), and
never written to the access log (addresses are third parties' personal data). At most
:attr:`RateLimiter.MAX_TRACKED` keys per limit are remembered; the one whose window opened
first is forgotten first. The clock is wall time (the log entry names the window's end, and
the counts outlive the process); a clock that jumps back closes a window early.
"""

from __future__ import annotations

import ipaddress
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app, request

from pds import clock
from pds.db import counters as counters_db
from pds.db.counters import FILE_NAME, Counters, counter_key

REGISTRATIONS_PER_WINDOW = 10
REGISTRATION_WINDOW = 3600
ANONYMOUS_REFUSALS_PER_WINDOW = 30
ANONYMOUS_REFUSAL_WINDOW = 60
CLIENT_FAILURES_PER_WINDOW = 10
ADDRESS_FAILURES_PER_WINDOW = 20
FAILURE_WINDOW = 60
FREE_FAILURES = 3
MAX_BLOCK = 300.0
FORGET_FAILURES_AFTER = 24 * 3600

COUNTERS_EXTENSION = "pds_counters"
REGISTRATION_EXTENSION = "pds_registration_limit"
ANONYMOUS_EXTENSION = "pds_anonymous_refusal_limit"
CLIENT_FAILURE_EXTENSION = "pds_client_failure_limit"
ADDRESS_FAILURE_EXTENSION = "pds_address_failure_limit"
LOGIN_EXTENSION = "pds_login_throttle"


@dataclass(frozen=True)
class Hit:
    """One counted request: the key's count in its window (this one included)."""

    count: int
    limit: int
    ends_at: float
    retry_after: int

    @property
    def allowed(self) -> bool:
        return self.count <= self.limit

    @property
    def first_over(self) -> bool:
        """The request that passed the limit (the one that says so in the log)."""
        return self.count == self.limit + 1

    def ends_iso(self) -> str:
        """The window's end, UTC, to the second (rounded up)."""
        return clock.iso(math.ceil(self.ends_at))


def _private() -> Counters:
    return Counters(None, os.urandom(32))


def _seconds(left: float) -> int:
    """Seconds to name in ``Retry-After``: rounded up, at least 1."""
    return max(1, math.ceil(left))


class RateLimiter:
    """At most ``limit`` hits per ``window`` seconds per key, in a fixed window; counted in
    ``counters`` under ``scope`` (None: a private, in-memory store of this process)."""

    MAX_TRACKED = 4096

    def __init__(
        self,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.time,
        max_tracked: int = MAX_TRACKED,
        *,
        counters: Counters | None = None,
        scope: str = "limit",
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_tracked = max_tracked
        self.counters = counters or _private()
        self.scope = scope

    def hit(self, key: str) -> Hit:
        """Count one request from ``key`` (over the limit too) and say where it stands."""
        hashed = self.counters.key(key)
        with self.counters.writing() as conn:
            now = self.clock()  # read under the lock: a writer before us never has a later one
            opened, count = counters_db.hit_window(
                conn, self.scope, hashed, now, self.window, self.max_tracked
            )
        ends = opened + self.window
        return Hit(count, self.limit, ends, _seconds(ends - now))

    def wait(self, key: str) -> int:
        """Seconds until ``key`` may be counted again, if it has used up its window (0: now).
        Only reads."""
        now = self.clock()
        with self.counters.reading() as conn:
            found = counters_db.window(conn, self.scope, self.counters.key(key))
        if found is None or not found[0] <= now < found[0] + self.window:
            return 0
        return _seconds(found[0] + self.window - now) if found[1] >= self.limit else 0

    def release(self, key: str) -> None:
        """Give back the last hit of ``key`` (a request that, in the end, wrote nothing)."""
        with self.counters.writing() as conn:
            counters_db.release_window(conn, self.scope, self.counters.key(key))

    def tracked(self) -> int:
        with self.counters.reading() as conn:
            return counters_db.windows(conn, self.scope)


class LoginThrottle:
    """Exponential back-off after failed sign-ins, per key (the caller's address); capped;
    reset by a success from that key; forgotten a day after the last failure.

    Keyed by address so that a stranger guessing passphrases slows down only themself: the
    owner, from another address, is never kept out by someone else's failures. After
    :data:`FREE_FAILURES` failures each further one blocks the key for 1, 2, 4 ... seconds,
    at most :data:`MAX_BLOCK`. There is never a permanent lock-out. At most
    :attr:`MAX_TRACKED` keys are remembered (those that failed longest ago go first).
    """

    MAX_TRACKED = 4096

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        *,
        counters: Counters | None = None,
        scope: str = "login",
    ) -> None:
        self.clock = clock
        self.counters = counters or _private()
        self.scope = scope

    def _state(self, key: str) -> tuple[int, float]:
        with self.counters.reading() as conn:
            found = counters_db.backoff(conn, self.scope, self.counters.key(key))
        if found is None or self.clock() - found[2] >= FORGET_FAILURES_AFTER:
            return 0, 0.0
        return int(found[0]), float(found[1])

    def failures(self, key: str) -> int:
        return self._state(key)[0]

    def wait(self, key: str) -> int:
        """Seconds until the next attempt from ``key`` is allowed (0: now). Only reads."""
        left = self._state(key)[1] - self.clock()
        return math.ceil(left) if left > 0 else 0

    def failed(self, key: str, *, at_least: int = 0) -> None:
        hashed = self.counters.key(key)
        with self.counters.writing() as conn:
            now = self.clock()
            found = counters_db.backoff(conn, self.scope, hashed)
            failures, blocked = 0, 0.0
            if found is not None and now - found[2] < FORGET_FAILURES_AFTER:
                failures, blocked = int(found[0]), float(found[1])
            failures = max(failures + 1, at_least)
            extra = failures - FREE_FAILURES
            if extra >= 0:
                blocked = now + min(2.0 ** min(extra, 32), MAX_BLOCK)
            counters_db.set_backoff(
                conn, self.scope, hashed, failures=failures, blocked_until=blocked, last_failure=now
            )
            if found is None:
                counters_db.forget_backoff(
                    conn,
                    self.scope,
                    failed_before=now - FORGET_FAILURES_AFTER,
                    keep=self.MAX_TRACKED,
                )

    def succeeded(self, key: str) -> None:
        if self.failures(key) == 0:  # nothing to forget: no write
            return
        with self.counters.writing() as conn:
            counters_db.clear_backoff(conn, self.scope, self.counters.key(key))


def init_app(app: Flask, master: bytes | None) -> None:
    """Open (on first use) the shared counters of ``app``'s vault, keyed under ``master``
    (None: a locked server; a random key), and register the limiters in ``app.extensions``."""
    home = app.config["PDS_SETTINGS"].home
    secret = counter_key(master) if master is not None else os.urandom(32)
    counters = Counters(home / FILE_NAME, secret)
    extensions = app.extensions
    extensions[COUNTERS_EXTENSION] = counters

    def limiter(limit: int, window: float, scope: str) -> RateLimiter:
        return RateLimiter(limit, window, counters=counters, scope=scope)

    extensions[REGISTRATION_EXTENSION] = limiter(
        REGISTRATIONS_PER_WINDOW, REGISTRATION_WINDOW, "registration"
    )
    extensions[ANONYMOUS_EXTENSION] = limiter(
        ANONYMOUS_REFUSALS_PER_WINDOW, ANONYMOUS_REFUSAL_WINDOW, "anonymous"
    )
    extensions[CLIENT_FAILURE_EXTENSION] = limiter(
        CLIENT_FAILURES_PER_WINDOW, FAILURE_WINDOW, "client-failure"
    )
    extensions[ADDRESS_FAILURE_EXTENSION] = limiter(
        ADDRESS_FAILURES_PER_WINDOW, FAILURE_WINDOW, "address-failure"
    )
    extensions[LOGIN_EXTENSION] = LoginThrottle(counters=counters)


def registrations() -> RateLimiter:
    return current_app.extensions[REGISTRATION_EXTENSION]


def anonymous_refusals() -> RateLimiter:
    return current_app.extensions[ANONYMOUS_EXTENSION]


def client_failures() -> RateLimiter:
    return current_app.extensions[CLIENT_FAILURE_EXTENSION]


def address_failures() -> RateLimiter:
    return current_app.extensions[ADDRESS_FAILURE_EXTENSION]


def login_throttle() -> LoginThrottle:
    return current_app.extensions[LOGIN_EXTENSION]


def address() -> str:
    """The key of this request's caller (kept in memory only): its IPv4 address, or the /64
    network of its IPv6 address (one host usually holds a whole /64, so keying on the
    address alone would give it 2^64 allowances)."""
    remote = request.remote_addr or "unknown"
    try:
        ip = ipaddress.ip_address(remote)
    except ValueError:
        return remote
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is the IPv4 caller a.b.c.d
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
