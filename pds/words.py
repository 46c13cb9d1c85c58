"""Words a person reads: counted words in messages ("1 second", "2 seconds", "1 entry",
"3 entries") and a day written out ("31 January 2026")."""

from __future__ import annotations

from datetime import date

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def plural(n: int, word: str, words: str | None = None, *, grouped: bool = False) -> str:
    """``n`` and ``word``, made plural unless ``n`` is 1 (or -1).

    ``words`` is the plural where adding "s" (or "ies" for a consonant and "y") is wrong;
    ``grouped`` writes the number with thousands separators (``1,234``).
    """
    if abs(n) != 1:
        if words is None:
            vowel_y = len(word) > 1 and word.endswith("y") and word[-2] in "aeiou"
            words = word[:-1] + "ies" if word.endswith("y") and not vowel_y else word + "s"
        word = words
    return f"{n:,} {word}" if grouped else f"{n} {word}"


def long_date(day: date) -> str:
    """``31 January 2026``: English month names whatever the machine's locale."""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"
