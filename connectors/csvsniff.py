"""Sniffing bank CSV conventions: delimiter, header cells, and money in any local style.

Hand-written rather than ``csv.Sniffer`` or a locale library: ``csv.Sniffer`` guesses from
a whole sample and often picks a letter or a space as the delimiter, and locale parsing
needs the locale installed and knows nothing of ``"+ £1,100.00"`` or ``11'373.94``. Here the
delimiter is the one of ``, ; tab |`` that splits the header line into the most cells, and
an amount is read by the rules in ``parse_amount``.
"""

from __future__ import annotations

import csv
import re
from functools import lru_cache

DELIMITERS = (",", ";", "\t", "|")
DECIMALS = ("auto", ".", ",")
THOUSANDS = ("", ",", ".", "'", " ")
_MARKERS = ("CR", "DR")
_SYMBOLS = "£$€¥₣₹"
_CODE = re.compile(r"[A-Z]{3}\Z")
MAX_AMOUNT_CHARS = 64  # longer money cells are refused before any pattern is tried
_NUMBER = re.compile(r"[0-9][0-9.,' \u00a0\u202f]*\Z|[.,][0-9]+\Z")


def cells(line: str, delimiter: str) -> list[str]:
    """The cells of one CSV line; [] if it is not readable as CSV."""
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return []


def normalized(row: list[str]) -> tuple[str, ...]:
    """Header cells compared loosely: stripped, case-folded, trailing empty cells dropped."""
    out = [cell.strip().casefold() for cell in row]
    while out and not out[-1]:
        out.pop()
    return tuple(out)


def sniff_delimiter(line: str) -> str:
    """The delimiter that splits ``line`` into the most cells (``,`` when none splits it)."""
    best, width = ",", 1
    for delimiter in DELIMITERS:
        n = len(normalized(cells(line, delimiter)))
        if n > width:
            best, width = delimiter, n
    return best


def parse_amount(raw: str, decimal: str = "auto", thousands: str | None = None) -> str:
    """A money cell as a plain signed decimal string: ``"+ £1,100.00"`` -> ``"1100.00"``.

    Accepts a leading or trailing sign (``-5``, ``5-``), parentheses for negatives, a currency
    symbol or ISO code before or after, and a ``CR``/``DR`` marker (``DR`` makes it negative).
    ``decimal`` is ``.``, ``,`` or ``auto``; ``thousands`` is one of ``THOUSANDS`` or None for
    any separator other than the decimal one. In ``auto``, the last of ``.``/``,`` is the
    decimal mark when both appear; a lone ``.``/``,`` followed by exactly three digits is
    ambiguous (``1,100`` or ``1.1``) and refused. Raises ValueError saying what is wrong.
    Cells longer than ``MAX_AMOUNT_CHARS`` are refused first, so no pattern sees them.
    """
    if len(raw.strip()) > MAX_AMOUNT_CHARS:
        raise ValueError(f"is longer than {MAX_AMOUNT_CHARS} characters")
    plain = _plain(decimal, thousands)
    if plain is not None:
        found = plain.match(raw.strip())
        if found is not None:  # the common forms: "-1,036.47", "$20.00", "1234,5"
            sign, whole, fraction = found.groups()
            number = whole.replace(_GROUP[decimal], "") + (f".{fraction}" if fraction else "")
            return "-" + number if sign and number.strip("0.") else number
    text, negative = _strip_decorations(raw)
    if not _NUMBER.match(text):
        raise ValueError("is not a number")
    mark = _decimal_mark(text, decimal)
    whole, _, fraction = text.rpartition(mark) if mark and mark in text else (text, "", "")
    if not whole and fraction:
        whole = "0"
    digits = _ungroup(whole, thousands, mark)
    if not fraction.isdigit() and fraction:
        raise ValueError("is not a number")
    number = digits + (f".{fraction}" if fraction else "")
    return "-" + number if negative and number.strip("0.") else number


_GROUP = {".": ",", ",": "."}


@lru_cache(maxsize=32)
def _plain(decimal: str, thousands: str | None) -> re.Pattern[str] | None:
    """The fast path of ``parse_amount``: a pattern for the plain forms under one mapping's
    conventions (an optional leading minus, an optional currency symbol, digits grouped by
    the other mark or not at all, an optional fraction), read exactly as the full rules
    would read them. None when the decimal mark is ``auto`` or the thousands separator is
    another one (those go through the full rules only)."""
    if decimal not in _GROUP:
        return None
    group = _GROUP[decimal]
    if thousands not in (None, "", group):
        return None
    grouped = "" if thousands == "" else rf"[0-9]{{1,3}}(?:{re.escape(group)}[0-9]{{3}})+|"
    return re.compile(rf"(-?)[{_SYMBOLS}]?({grouped}[0-9]+)(?:{re.escape(decimal)}([0-9]+))?\Z")


def _strip_decorations(raw: str) -> tuple[str, bool]:
    """Remove signs, brackets, symbols, codes and CR/DR; return the number and its sign."""
    text = raw.strip()
    negative = False
    upper = text.upper()
    for marker in _MARKERS:
        if upper.endswith(marker):
            text = text[: -len(marker)].rstrip()
            negative = marker == "DR"
            break
    if text.startswith("(") and text.endswith(")"):
        text, negative = text[1:-1].strip(), True
    for _ in range(3):  # "+ £5", "£-5", "-CHF 5": peel in any order
        if text[:1] in "+-" and text:
            negative = negative or text[0] == "-"
            text = text[1:].lstrip()
        elif text[-1:] in "+-" and text:
            negative = negative or text[-1] == "-"
            text = text[:-1].rstrip()
        text = text.strip(_SYMBOLS).strip()
    return _strip_code(text), negative


def _strip_code(text: str) -> str:
    """Drop an ISO currency code before or after the number (``CHF 5``, ``5 EUR``).

    Done on whitespace-split tokens, not with one pattern, so the time stays linear."""
    first = text.split(maxsplit=1)
    if len(first) == 2 and _CODE.match(first[0]):
        text = first[1]
    last = text.rsplit(maxsplit=1)
    if len(last) == 2 and _CODE.match(last[1]):
        text = last[0]
    return text


def _decimal_mark(text: str, decimal: str) -> str:
    if decimal != "auto":
        return decimal
    last = max(text.rfind("."), text.rfind(","))
    if last < 0:
        return ""
    mark = text[last]
    other = "," if mark == "." else "."
    if other in text[:last]:
        return mark  # "1,234.56" / "1.234,56"
    if text.count(mark) > 1:
        return ""  # "1,234,567": thousands only
    tail = text[last + 1 :]
    if len(tail) == 3 and tail.isdigit() and text[:last].strip("0"):
        raise ValueError(
            f'is ambiguous ("{mark}" may mark thousands or decimals); set decimal in the mapping'
        )
    return mark


def _ungroup(whole: str, thousands: str | None, mark: str) -> str:
    """The integer part without its thousands separators, checking the groups of three."""
    if whole.isdigit():
        return whole
    separators = {thousands} if thousands is not None else set(THOUSANDS[1:]) - {mark}
    separators.discard("")
    if " " in separators:
        separators |= {"\u00a0", "\u202f"}
    if not separators:
        raise ValueError("is not a number")
    groups = re.split("[" + re.escape("".join(sorted(separators))) + "]", whole)
    if not all(g.isdigit() for g in groups):
        raise ValueError("is not a number")
    if not (0 < len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])):
        raise ValueError("has misplaced thousands separators")
    return "".join(groups)
