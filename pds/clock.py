"""The one clock: now, as Unix seconds and as the ISO 8601 UTC text pds stores and shows.

Stored times are ``2025-03-31T09:30:00Z`` (second precision, ``Z``); audit entries carry
milliseconds (:func:`now_iso_ms`). Everything that asks for the time asks here, so a test
that moves time moves it for all of pds."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> int:
    """Unix seconds, whole."""
    return int(time.time())


def iso(ts: float) -> str:
    """Unix seconds as ``YYYY-MM-DDTHH:MM:SSZ`` (fractions dropped)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso() -> str:
    """Now as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso_ms() -> str:
    """Now with milliseconds, ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (an audit entry's ``time``)."""
    at = datetime.now(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
