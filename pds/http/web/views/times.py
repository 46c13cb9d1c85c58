"""Dates and times as the views write them, beside the locale's filters
(:mod:`pds.http.locale`): a time of day, a date and time read in this machine's time zone
(as the ``moment`` filter shows it), and a day of the year without a year (a birthday
given as ``--02-03``)."""

from __future__ import annotations

import re
from datetime import date, datetime

from babel.dates import format_skeleton, format_time
from flask_babel import get_locale

from pds.http import locale

_NO_YEAR = re.compile(r"--(\d{2})-?(\d{2})\Z")


def parse(value: object) -> datetime | None:
    """An ISO date and time (``Z`` or an offset: read in this machine's time zone; none: a
    wall-clock time, kept as it is); None for anything else, a bare date included."""
    text = str(value or "")
    if len(text) <= 10:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.astimezone() if when.tzinfo is not None else when


def hour(when: datetime) -> str:
    """The time of day as the locale writes it short: ``15:00`` (en_GB), ``3:00 PM`` (en_US)."""
    return format_time(when, "short", locale=get_locale())


def day_of_year(value: object) -> str:
    """A date as :func:`pds.http.locale.day` writes it, and ``--02-03`` (a birthday with no
    year) as ``3 Feb``."""
    found = _NO_YEAR.match(str(value or ""))
    if found is None:
        return locale.day(value)
    try:
        when = date(2000, int(found[1]), int(found[2]))  # a leap year: 29 Feb exists
    except ValueError:
        return str(value)
    return format_skeleton("MMMd", when, locale=get_locale())
