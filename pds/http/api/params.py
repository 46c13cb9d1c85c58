"""Query parameters read exactly as ``/api/v1/openapi.json`` declares them, and the JSON
object body (:func:`object_body`).

A date is RFC 3339 ``full-date`` (``YYYY-MM-DD``, OpenAPI ``format: date``): not the other
ISO 8601 spellings Python's ``date.fromisoformat`` also takes (``20250131``, ``2025-W05-1``).
A whole number is ASCII digits only, its length checked before it is converted (so neither
``²`` nor a 5000-digit number reaches ``int()``). An empty value means the parameter is absent
(``allowEmptyValue`` in the description).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from flask import request

from pds.errors import BadRequest
from pds.jsonbody import TooDeep, request_json
from pds.numbers import MAX_DIGITS, TooManyDigits, whole

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


def object_body() -> dict[str, Any]:
    """The request's JSON object body for the API, or ``BadRequest`` (problem+json) saying
    what is wrong with it: not JSON, not an object, nested deeper than ``pds.jsonbody.MAX_DEPTH``,
    a whole number too long to read."""
    try:
        body = request_json(request)
    except TooDeep as exc:
        raise BadRequest(
            f"the body is JSON nested more than {exc.limit} levels deep",
            hint=f"Send at most {exc.limit} levels of arrays and objects inside each other.",
        ) from None
    except TooManyDigits as exc:
        raise BadRequest(
            f"the body holds a whole number of {exc.digits:,} digits; pds reads at most "
            f"{MAX_DIGITS:,}"
        ) from None
    if not isinstance(body, dict):
        raise BadRequest(
            "the body must be a JSON object", hint="Send Content-Type: application/json."
        )
    return body
