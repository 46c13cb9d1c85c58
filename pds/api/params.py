"""Query parameters read exactly as ``/api/v1/openapi.json`` declares them.

A date is RFC 3339 ``full-date`` (``YYYY-MM-DD``, OpenAPI ``format: date``): not the other
ISO 8601 spellings Python's ``date.fromisoformat`` also takes (``20250131``, ``2025-W05-1``).
A whole number is ASCII digits only, its length checked before it is converted (so neither
``²`` nor a 5000-digit number reaches ``int()``). An empty value means the parameter is absent
(``allowEmptyValue`` in the description).
"""

from __future__ import annotations

import re
from datetime import date

from flask import request

from pds.errors import BadRequest
from pds.numbers import whole

_FULL_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def query_day(name: str) -> str | None:
    """``name`` as ``YYYY-MM-DD``, or None when absent or empty."""
    value = request.args.get(name)
    if value is None or value == "":
        return None
    shown = value if len(value) <= 40 else value[:39] + "\u2026"
    try:
        if not _FULL_DATE.fullmatch(value):
            raise ValueError
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise BadRequest(f"{name} {shown!r} is not a date like 2025-01-31") from None


def query_whole(name: str, lo: int, hi: int, default: int | None) -> int | None:
    """``name`` as a whole number from ``lo`` to ``hi``; ``default`` when absent or empty."""
    raw = request.args.get(name)
    if raw is None or (raw == "" and default is not None):
        return default
    value = whole(raw, lo, hi)
    if value is None:
        raise BadRequest(f"{name} must be a whole number from {lo} to {hi}")
    return value
