"""Events as an agenda by month: a heading per month, each event with its day, its time
range in the event's own time zone (the wall-clock time the calendar gave, with the zone
named), all-day events marked as such, its place, and how it repeats, in words where the
rule is simple ("every week on Monday") and as the rule itself otherwise.

By default the agenda shows what is coming, oldest first from today; ``when=past`` shows
the months before today, newest first (or oldest first, as the order filter says). Dates
chosen in the filters show those days instead. Repeating events are listed once, at their
first occurrence: the importer keeps the rule, not each occurrence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from flask import render_template
from flask_babel import gettext, lazy_gettext, ngettext

from pds import clock
from pds.http import locale
from pds.http.web.views import common, times

if TYPE_CHECKING:
    from pds.vault import Vault

FILTERS = ("when",)
DAYS = {
    "MO": lazy_gettext("Monday"),
    "TU": lazy_gettext("Tuesday"),
    "WE": lazy_gettext("Wednesday"),
    "TH": lazy_gettext("Thursday"),
    "FR": lazy_gettext("Friday"),
    "SA": lazy_gettext("Saturday"),
    "SU": lazy_gettext("Sunday"),
}
_UNTIL = re.compile(r"(\d{4})(\d{2})(\d{2})")


@dataclass(frozen=True)
class Event:
    id: int
    month: str  # YYYY-MM of its start, in its own time zone
    day: str  # as the locale writes it
    when: str  # "15:00–16:00", "All day"
    zone: str  # the time zone named, or ""
    summary: str
    place: str
    repeats: str
    status: str


def render(vault: Vault, category: str, f: common.Filters) -> str:
    past = f.extra.get("when") == "past"
    chosen = window(f, past, clock.utcnow().date())
    found, more = common.page(common.selected(vault, category, chosen), f)
    months: dict[str, list[Event]] = {}
    for rec in found:
        e = event(rec.id, rec.payload, rec.occurred_at)
        months.setdefault(e.month, []).append(e)
    return render_template(
        "views/events.html",
        category=category,
        months=months,
        past=past,
        dated=bool(f.since or f.until),
        sources=common.sources(vault, category, f.source),
        f=f,
        more=more,
    )


def window(f: common.Filters, past: bool, today: date) -> common.Filters:
    """The filters the agenda reads: chosen dates as they are; else from today on, oldest
    first, or (``past``) up to yesterday."""
    if f.since or f.until:
        return f
    if past:
        return replace(f, until=(today - timedelta(days=1)).isoformat())
    return replace(f, since=today.isoformat(), oldest=True)


def event(record_id: int, p: dict[str, Any], occurred_at: str) -> Event:
    """One event of the agenda from its payload (as ``connectors/ical.py`` writes it)."""
    zone = p.get("timezone") if isinstance(p.get("timezone"), str) else None
    start = _text(p.get("start_local") if zone else p.get("start")) or occurred_at
    end = _text(p.get("end_local") if zone else p.get("end"))
    if p.get("all_day"):
        when = all_day(start, end)
        zone = None
    else:
        when = time_range(start, end)
    return Event(
        id=record_id,
        month=start[:7],
        day=locale.day(start[:10]),
        when=when,
        zone=zone or "",
        summary=_text(p.get("summary")) or gettext("(no title)"),
        place=_text(p.get("location")),
        repeats=repeats(_text(p.get("recurrence"))),
        status=gettext("cancelled") if _text(p.get("status")).upper() == "CANCELLED" else "",
    )


def all_day(start: str, end: str) -> str:
    """ "All day", or "All day, until 25 Oct 2024" (an all-day end is the day after)."""
    try:
        last = date.fromisoformat(end[:10]) - timedelta(days=1) if end else None
    except ValueError:
        last = None
    if last is None or last.isoformat() <= start[:10]:
        return gettext("All day")
    return gettext("All day, until %(day)s", day=locale.day(last.isoformat()))


def time_range(start: str, end: str) -> str:
    """ "15:00–16:00" (wall-clock times as given); an end on a later day names that day."""
    first = _wall(start) if len(start) > 10 else None
    if first is None:
        return ""
    last = _wall(end) if end else None
    if last is None or last == first:
        return times.hour(first)
    if last.date() != first.date():
        return gettext(
            "%(start)s – %(end)s on %(day)s",
            start=times.hour(first),
            end=times.hour(last),
            day=locale.day(last.date().isoformat()),
        )
    return f"{times.hour(first)}–{times.hour(last)}"


def repeats(rule: str) -> str:
    """An RRULE in words when it is simple ("every week", "every 2 weeks on Monday and
    Friday", "every month, 10 times", "every year, until 1 Jan 2030"); else the rule."""
    if not rule:
        return ""
    parts = dict(p.partition("=")[::2] for p in rule.upper().split(";") if p)
    freq = parts.pop("FREQ", "")
    interval = parts.pop("INTERVAL", "1")
    count = parts.pop("COUNT", None)
    until = parts.pop("UNTIL", None)
    days = parts.pop("BYDAY", None) if freq == "WEEKLY" else None
    parts.pop("WKST", None)
    units = {
        "DAILY": ("day", "days"),
        "WEEKLY": ("week", "weeks"),
        "MONTHLY": ("month", "months"),
        "YEARLY": ("year", "years"),
    }
    if parts or freq not in units or not interval.isdigit() or int(interval) < 1:
        return rule
    n = int(interval)
    words = {
        "DAILY": ngettext("every day", "every %(num)s days", n),
        "WEEKLY": ngettext("every week", "every %(num)s weeks", n),
        "MONTHLY": ngettext("every month", "every %(num)s months", n),
        "YEARLY": ngettext("every year", "every %(num)s years", n),
    }[freq]
    if days:
        names = [DAYS.get(d) for d in days.split(",")]
        if None in names:
            return rule
        said = [str(d) for d in names]
        joined = (
            said[0]
            if len(said) == 1
            else gettext("%(days)s and %(last)s", days=", ".join(said[:-1]), last=said[-1])
        )
        words = gettext("%(every)s on %(days)s", every=words, days=joined)
    if count is not None:
        if not count.isdigit():
            return rule
        words = gettext(
            "%(every)s, %(times)s", every=words, times=ngettext("once", "%(num)s times", int(count))
        )
    if until is not None:
        found = _UNTIL.match(until)
        if found is None:
            return rule
        try:
            last = date(int(found[1]), int(found[2]), int(found[3]))
        except ValueError:
            return rule
        words = gettext("%(every)s, until %(day)s", every=words, day=locale.day(last.isoformat()))
    return words


def _wall(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
