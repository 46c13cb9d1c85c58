"""What a grant lets a business do, in the words a person reads on Home and Businesses.

:func:`in_words` turns an :class:`~pds.oauth.access.Access` into one phrase to follow "may":
per category what it may do (read the records, learn totals, add records), the fields when
they are limited and the time range when it is limited, e.g. ``read your transactions (date,
amount) from 1 January 2025, and learn totals of your energy``; the Businesses page lists
the same phrases one a line (:func:`lines`). Dates are written as a person reads them
(:func:`day`), not as ISO strings. The purpose has its own words (``pds.policy.label``).
"""

from __future__ import annotations

from datetime import date

from pds.oauth.access import Access, CategoryAccess
from pds.words import long_date


def day(iso: str) -> str:
    """``2027-03-07`` (or a longer ISO time) as ``7 March 2027``."""
    return long_date(date.fromisoformat(iso[:10]))


def _span(c: CategoryAccess) -> str:
    if c.time_from and c.time_to:
        return f" from {day(c.time_from)} to {day(c.time_to)}"
    if c.time_from:
        return f" from {day(c.time_from)}"
    if c.time_to:
        return f" up to {day(c.time_to)}"
    return ""


def part_in_words(c: CategoryAccess) -> str:
    """One category part of a grant: ``read your transactions (date, amount) from 1 January
    2025``; ``learn totals of your energy``; ``add records to your events``."""
    verbs = [v for a, v in (("read", "read"), ("aggregate", "learn totals of")) if a in c.actions]
    if not verbs:
        return f"add records to your {c.category}" if "write" in c.actions else ""
    fields = f" ({', '.join(c.fields)})" if c.fields else ""
    text = f"{' and '.join(verbs)} your {c.category}{fields}{_span(c)}"
    if "write" in c.actions:
        text += " and add records to them"
    return text


def lines(access: Access) -> list[str]:
    """What ``access`` allows, one phrase per category part (two for a category whose totals
    have limits of their own), then the access log; each follows "may"."""
    parts = [part_in_words(p) for whole in access.categories.values() for p in whole.parts()]
    parts = [p for p in parts if p]
    if access.audit:
        parts.append("read the access log (no data)")
    return parts


def in_words(access: Access) -> str:
    """Everything ``access`` allows, as one phrase to follow "may" (``do nothing`` when
    it allows nothing): the :func:`lines` joined."""
    parts = lines(access)
    if not parts:
        return "do nothing"
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + ", and " + parts[-1]
