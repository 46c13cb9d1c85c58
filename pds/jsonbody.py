"""JSON from a request, with its nesting depth capped before it is parsed.

Python's ``json`` parser recurses once per ``[`` or ``{``: a body nested 100,000 deep
raises ``RecursionError`` (a 500) instead of a clear refusal. Every place that parses JSON
a request carries (the API bodies, OAuth registration, ``authorization_details``, profile
fields typed in a form) goes through :func:`loads`, which first counts the brackets outside
strings and refuses more than :data:`MAX_DEPTH` levels, then parses (a whole number longer
than Python converts is :class:`pds.numbers.TooManyDigits`, said in words).
"""

from __future__ import annotations

import json
import re
from typing import Any

from pds.numbers import TooManyDigits, json_loads

MAX_DEPTH = 64

# A JSON string (escapes included) or one bracket: strings are skipped whole, in C.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


class TooDeep(ValueError):
    """JSON nested deeper than the cap (refused before parsing)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the JSON is nested more than {limit} levels deep")
        self.limit = limit


def check_depth(text: str, limit: int = MAX_DEPTH) -> None:
    """TooDeep if ``text`` opens more than ``limit`` arrays/objects inside each other.

    Brackets inside strings do not count. Stops at the first level too many, so a hostile
    document costs no more than its first ``limit + 1`` openings.
    """
    if text.count("[") + text.count("{") <= limit:
        return  # cannot be deeper than it has brackets
    depth = 0
    for m in _TOKEN.finditer(text):
        part = m.group()
        if part == "[" or part == "{":
            depth += 1
            if depth > limit:
                raise TooDeep(limit)
        elif part == "]" or part == "}":
            depth -= 1


def loads(data: str | bytes, limit: int = MAX_DEPTH) -> Any:
    """``json.loads`` after :func:`check_depth`: ValueError (TooDeep, TooManyDigits, or the
    parser's JSONDecodeError / UnicodeDecodeError) for anything that is not JSON within the
    caps."""
    if isinstance(data, bytes | bytearray):
        data = bytes(data).decode(json.detect_encoding(data))
    check_depth(data, limit)
    return json_loads(data)


def request_json(request: Any) -> Any:
    """A web request's JSON body, or None when it is not JSON (wrong content type, or not
    parseable): what Flask's ``request.get_json(silent=True)`` answers. ``request`` is the
    framework's request (``is_json``, ``get_data``). Raises TooDeep for a body nested deeper
    than :data:`MAX_DEPTH`, which is never parsed, and TooManyDigits for a whole number too
    long to read."""
    if not request.is_json:
        return None
    try:
        return loads(request.get_data(cache=True))
    except (TooDeep, TooManyDigits):
        raise
    except ValueError:
        return None
