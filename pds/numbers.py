"""Whole numbers read from outside (command lines, query strings, JSON, TOML).

Python refuses to convert a string of more than 4,300 digits to an int with a message meant
for programmers ("Exceeds the limit (4300 digits) for integer string conversion ..."), and
SQLite refuses an int past 2**63 - 1 with an OverflowError. Everything pds reads goes through
here instead, so a person gets a message about the value they gave.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from typing import Any

MAX_DIGITS = sys.get_int_max_str_digits() or 4300
"""The longest whole number (in digits) Python converts; pds reads none longer."""

SQLITE_MAX = 2**63 - 1
"""The largest whole number SQLite stores (a 64-bit signed INTEGER)."""

_DIGITS = re.compile(r"[0-9]+")


class TooManyDigits(ValueError):
    """A whole number longer than :data:`MAX_DIGITS` digits; the message says so in words."""

    def __init__(self, digits: int) -> None:
        self.digits = digits
        super().__init__(
            f"a whole number of {digits:,} digits is too long (pds reads at most "
            f"{MAX_DIGITS:,} digits)"
        )


def shown(text: str, limit: int = 24) -> str:
    """``text`` cut for a message: a long number shows its start and its length."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}\u2026 ({len(text):,} characters)"


def whole(text: str, lo: int = 0, hi: int = SQLITE_MAX) -> int | None:
    """``text`` as a whole number from ``lo`` to ``hi`` in ASCII digits, else None."""
    if not _DIGITS.fullmatch(text):
        return None
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(hi)):
        return None
    value = int(digits)
    return value if lo <= value <= hi else None


def json_int(text: str) -> int:
    """``parse_int`` for :mod:`json`: refuses what ``int()`` would refuse, in words."""
    digits = len(text.lstrip("-"))
    if digits > MAX_DIGITS:
        raise TooManyDigits(digits)
    return int(text)


def json_loads(text: str | bytes, **kwargs: Any) -> Any:
    """:func:`json.loads`, with :class:`TooManyDigits` for a number ``int()`` cannot read."""
    return json.loads(text, parse_int=json_int, **kwargs)


def json_decoder() -> json.JSONDecoder:
    return json.JSONDecoder(parse_int=json_int)


def toml_loads(text: str) -> dict[str, Any]:
    """:func:`tomllib.loads`, with :class:`TooManyDigits` for a number ``int()`` cannot read
    (tomllib lets Python's own ValueError out)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        raise
    except ValueError as exc:
        found = int_digits_error(exc)
        if found is None:
            raise
        raise found from None


def int_digits_error(exc: BaseException) -> TooManyDigits | None:
    """Python's int-digits ValueError as a :class:`TooManyDigits`, else None."""
    if isinstance(exc, TooManyDigits):
        return exc
    match = re.search(r"integer string conversion[^0-9]*value has (\d+) digits", str(exc))
    if not isinstance(exc, ValueError) or match is None:
        return None
    return TooManyDigits(int(match.group(1)))


def describe(exc: BaseException) -> str:
    """``str(exc)``, except Python's int-digits message, which is put in words."""
    found = int_digits_error(exc)
    return str(found if found is not None else exc)
