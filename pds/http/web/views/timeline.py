"""Locations and activity as a timeline, day by day (days in this machine's time zone, as
the ``moment`` filter writes times), newest day first unless the order filter says
otherwise, a few days a page (``skip`` counts days here).

Locations: a phone reports its place every minute or so, so a day lists *visits*, not
pings: a run of consecutive reports at one place (coordinates rounded to three decimals,
about 100 metres) is one visit, with its number of reports, its first and last time and
the accuracy the reports claimed, in metres. Activity: each entry's time, product and
title, and the web address as its host name (a Google redirect as the host it leads to).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from flask import render_template

from pds.http.web.views import common, times

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pds.vault import Vault
    from pds.vault.records import StoredRecord

DAYS = 7
"""Days a page shows."""
PLACES = 3
"""Decimals of a visit's coordinates (0.001° is at most 111 metres)."""


@dataclass
class Visit:
    id: int  # the record of its earliest report
    place: tuple[str, str]  # latitude, longitude, rounded
    reports: int = 0
    first: datetime | None = None
    last: datetime | None = None
    accuracies: list[int] = field(default_factory=list)

    @property
    def span(self) -> str:
        if self.first is None or self.last is None:
            return ""
        first, last = times.hour(self.first), times.hour(self.last)
        return first if first == last else f"{first}–{last}"

    @property
    def accuracy(self) -> tuple[int, int] | None:
        return (min(self.accuracies), max(self.accuracies)) if self.accuracies else None


@dataclass
class Item:
    id: int
    time: str
    product: str
    title: str
    host: str


@dataclass
class Day:
    day: str  # YYYY-MM-DD
    visits: list[Visit] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)

    @property
    def reports(self) -> int:
        return sum(v.reports for v in self.visits)


def render(vault: Vault, category: str, f: common.Filters) -> str:
    days, more = page_of_days(common.selected(vault, category, f), f.skip, category)
    return render_template(
        "views/timeline.html",
        category=category,
        days=days,
        sources=common.sources(vault, category, f.source),
        f=f,
        more=more,
        size=DAYS,
    )


def page_of_days(
    records: Iterator[StoredRecord], skip: int, category: str
) -> tuple[list[Day], bool]:
    """The days after the first ``skip`` (in the records' order), at most :data:`DAYS` of
    them, and whether more follow."""
    days: list[Day] = []
    seen = 0
    current: str | None = None
    for rec in records:
        when = times.parse(rec.payload.get("time")) or times.parse(rec.occurred_at)
        key = when.date().isoformat() if when else rec.occurred_at[:10]
        if key != current:
            current = key
            seen += 1
            if seen > skip + DAYS:
                return days, True
            if seen > skip:
                days.append(Day(key))
        if seen <= skip:
            continue
        if category == "locations":
            add_report(days[-1], rec, when)
        else:
            days[-1].items.append(item(rec, when))
    return days, False


def add_report(day: Day, rec: StoredRecord, when: datetime | None) -> None:
    """Count one location report in the day's visit at its place (a new visit when the
    place differs from the last one's)."""
    p = rec.payload
    place = (rounded(p.get("latitude")), rounded(p.get("longitude")))
    if not day.visits or day.visits[-1].place != place:
        day.visits.append(Visit(rec.id, place))
    visit = day.visits[-1]
    visit.reports += 1
    if when is not None:
        if visit.first is None or when < visit.first:
            visit.id = rec.id
        visit.first = when if visit.first is None else min(visit.first, when)
        visit.last = when if visit.last is None else max(visit.last, when)
    accuracy = _whole(p.get("accuracy"))
    if accuracy is not None:
        visit.accuracies.append(accuracy)


def rounded(value: Any) -> str:
    """A coordinate to :data:`PLACES` decimals (``"37.6955289"`` → ``"37.696"``)."""
    try:
        return str(round(Decimal(str(value)), PLACES))
    except (InvalidOperation, ValueError, OverflowError):
        return "?"


def item(rec: StoredRecord, when: datetime | None) -> Item:
    p = rec.payload
    return Item(
        id=rec.id,
        time=times.hour(when) if when else "",
        product=_text(p.get("product")) or _text(p.get("header")),
        title=_text(p.get("title")),
        host=host(_text(p.get("url"))),
    )


def host(url: str) -> str:
    """The host a web address names, without ``www.``; a Google redirect
    (``google.com/url?q=...``) as the host it leads to."""
    try:
        parts = urlsplit(url)
        name = (parts.hostname or "").removeprefix("www.")
        if name.startswith("google.") and parts.path == "/url":
            target = parse_qs(parts.query).get("q", [""])[0]
            if target.startswith(("http://", "https://")):
                return host(target)
    except ValueError:
        return ""
    return name


def _whole(value: Any) -> int | None:
    try:
        return round(Decimal(str(value)))
    except (InvalidOperation, ValueError, OverflowError):
        return None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
