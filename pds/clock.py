"""The one clock: now, as Unix seconds, as an aware UTC datetime and as the ISO 8601 UTC
text pds stores and shows; that text read back as Unix seconds; and the machine's local day
and time, for what a person reads in their own time (a deadline, a zip's file times).

Stored times are ``2025-03-31T09:30:00Z`` (second precision, ``Z``); audit entries carry
milliseconds (:func:`now_iso_ms`). Code that asks for the time of day asks here, so a test
that moves time moves it for all of pds. Durations are another matter: timeouts and waits
measure elapsed time on ``time.monotonic``; the rate limits (unless their caller passes
them a clock) and the access log's checkpoint timer on the float ``time.time``, which every
worker shares."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
"""The shape of a stored time (second precision, ``Z``)."""


def now() -> int:
    """Unix seconds, whole."""
    return int(time.time())


def utcnow() -> datetime:
    """Now as an aware UTC datetime (microseconds kept)."""
    return datetime.now(UTC)


def today() -> date:
    """The owner's calendar day, on the machine's local clock (a request's deadline, a
    grant's "until" shown on the consent page)."""
    return date.today()


def local_now() -> datetime:
    """Now on the machine's local clock, naive (the time stamped on a zip's entries)."""
    return datetime.now()


def iso(ts: float) -> str:
    """Unix seconds as ``YYYY-MM-DDTHH:MM:SSZ`` (fractions dropped)."""
    return datetime.fromtimestamp(ts, UTC).strftime(ISO_FORMAT)


def epoch(text: str) -> int:
    """A stored ``YYYY-MM-DDTHH:MM:SSZ`` time as Unix seconds (the inverse of :func:`iso`).
    Raises ValueError on any other shape."""
    return int(datetime.strptime(text, ISO_FORMAT).replace(tzinfo=UTC).timestamp())


def now_iso() -> str:
    """Now as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return utcnow().strftime(ISO_FORMAT)


def now_iso_ms() -> str:
    """Now with milliseconds, ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (an audit entry's ``time``)."""
    at = utcnow()
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
