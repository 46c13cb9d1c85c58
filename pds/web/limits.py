"""Per-address rate limits on what a caller without any credential can make the vault write.

Two doors let a stranger add rows to the vault: open dynamic client registration (a client
row and a ``client.register`` entry each) and API calls without a valid access token (a
``refused`` entry each). Each gets a :class:`RateLimiter`, per worker process, keyed by
the caller's address (:func:`address`: IPv4 as is, IPv6 by its /64):

- :data:`REGISTRATIONS_PER_WINDOW` registrations per :data:`REGISTRATION_WINDOW` seconds;
  beyond that ``POST /oauth/register`` answers 429 and writes nothing (``pds.oauth.views``).
- :data:`ANONYMOUS_REFUSALS_PER_WINDOW` logged refusals of calls without a valid access
  token per :data:`ANONYMOUS_REFUSAL_WINDOW` seconds; the next one writes a single
  ``api.refused.throttled`` entry and, like every further one in that window, answers 429
  (``pds.api.auth``). Calls with a valid token are never counted or refused here.

The owner's and the auditor's sign-in forms already have ``LoginThrottle``
(``pds.web.security``): exponential back-off per address, at most one refused entry per
:data:`~pds.web.security.MAX_BLOCK` seconds once blocked. That bounds their writes as well,
so they keep it rather than get a second limiter. The token, revocation and introspection
endpoints write only for a caller holding a real code, refresh token or access token, and the
consent pages only for the signed-in owner.

Hand-written rather than ``limits``/``flask-limiter``: those bring storage back ends,
decorators and a string syntax for limits, while this needs one counter per address in
memory, an undo for registrations that failed, and a window end to name in the log — about
forty lines. The window is fixed, opened by an address's first hit after the previous one
ended, so an address gets at most twice the limit in any span of one window length.

Behind a reverse proxy every caller has the proxy's address and they share one allowance;
``pds serve`` is meant to be reached directly (or through a proxy on the same host for TLS,
where that sharing is the price). Addresses are kept only here, in memory, never in the
access log (they are third parties' personal data). At most
:attr:`RateLimiter.MAX_TRACKED` addresses are remembered; the one whose window opened first
is forgotten first. The clock is wall time (the log entry names the window's end); a clock
that jumps back closes the window early.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Flask, current_app, request

REGISTRATIONS_PER_WINDOW = 10
REGISTRATION_WINDOW = 3600
ANONYMOUS_REFUSALS_PER_WINDOW = 30
ANONYMOUS_REFUSAL_WINDOW = 60

REGISTRATION_EXTENSION = "pds_registration_limit"
ANONYMOUS_EXTENSION = "pds_anonymous_refusal_limit"


@dataclass(frozen=True)
class Hit:
    """One counted request: the address's count in its window (this one included)."""

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
        return datetime.fromtimestamp(math.ceil(self.ends_at), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class RateLimiter:
    """At most ``limit`` hits per ``window`` seconds per key; thread-safe, per process."""

    MAX_TRACKED = 4096

    def __init__(
        self,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.time,
        max_tracked: int = MAX_TRACKED,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_tracked = max_tracked
        self._windows: dict[str, list[float]] = {}  # key -> [opened_at, count], oldest first
        self._lock = threading.Lock()

    def hit(self, key: str) -> Hit:
        """Count one request from ``key`` (over the limit too) and say where it stands."""
        with self._lock:
            now = self.clock()
            found = self._windows.get(key)
            if found is None or not found[0] <= now < found[0] + self.window:
                self._windows.pop(key, None)
                found = self._windows[key] = [now, 0]
                while len(self._windows) > self.max_tracked:
                    del self._windows[next(iter(self._windows))]
            found[1] += 1
            count, ends = int(found[1]), found[0] + self.window
        return Hit(count, self.limit, ends, max(1, math.ceil(ends - now)))

    def release(self, key: str) -> None:
        """Give back the last hit of ``key`` (a request that, in the end, wrote nothing)."""
        with self._lock:
            found = self._windows.get(key)
            if found is not None and found[1] > 0:
                found[1] -= 1

    def tracked(self) -> int:
        with self._lock:
            return len(self._windows)


def init_app(app: Flask) -> None:
    """Register this process's limiters in ``app.extensions``."""
    extensions = app.extensions
    extensions[REGISTRATION_EXTENSION] = RateLimiter(REGISTRATIONS_PER_WINDOW, REGISTRATION_WINDOW)
    extensions[ANONYMOUS_EXTENSION] = RateLimiter(
        ANONYMOUS_REFUSALS_PER_WINDOW, ANONYMOUS_REFUSAL_WINDOW
    )


def registrations() -> RateLimiter:
    return current_app.extensions[REGISTRATION_EXTENSION]


def anonymous_refusals() -> RateLimiter:
    return current_app.extensions[ANONYMOUS_EXTENSION]


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
