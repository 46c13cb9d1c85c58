"""Contacts as cards, in alphabetical order of their names (not by date): the name, the
organisation and title, email addresses and phone numbers as links a browser or phone
opens (``mailto:``, ``tel:``), postal addresses written as addresses, the birthday and the
note. An index of initial letters picks the contacts under one letter (``letter``); the
common filters (search words, source, dates) apply first.

Sorting needs every selected card in memory: an address book is thousands of cards at most.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import render_template
from flask_babel import gettext, lazy_gettext

from pds.http.web.views import common, times

if TYPE_CHECKING:
    from pds.vault import Vault

FILTERS = ("letter",)
PAGE = 100
OTHER = "#"
"""The index entry of names that do not start with a letter."""
TYPES = {
    "home": lazy_gettext("home"),
    "work": lazy_gettext("work"),
    "cell": lazy_gettext("mobile"),
    "fax": lazy_gettext("fax"),
    "pager": lazy_gettext("pager"),
    "text": lazy_gettext("text"),
    "video": lazy_gettext("video"),
}
"""The vCard TYPE labels worth saying (``voice``, ``pref``, ``internet`` say nothing)."""
_DIALLED = re.compile(r"[^0-9+*#;,=a-zA-Z]")


@dataclass
class Card:
    id: int
    name: str
    sort_key: str
    letter: str
    work: str = ""
    emails: list[tuple[str, str, str]] = field(default_factory=list)  # text, href, kind
    phones: list[tuple[str, str, str]] = field(default_factory=list)
    addresses: list[tuple[list[str], str]] = field(default_factory=list)  # lines, kind
    birthday: str = ""
    nickname: str = ""
    note: str = ""


def render(vault: Vault, category: str, f: common.Filters) -> str:
    cards = sorted(
        (card(r.id, r.payload) for r in common.selected(vault, category, f)),
        key=lambda c: (c.sort_key, c.id),
    )
    letters = list(dict.fromkeys(c.letter for c in cards))
    letter = f.extra.get("letter", "")
    shown = [c for c in cards if c.letter == letter] if letter else cards
    page = shown[f.skip : f.skip + PAGE]
    return render_template(
        "views/contacts.html",
        category=category,
        cards=page,
        total=len(shown),
        letters=letters,
        letter=letter,
        sources=common.sources(vault, category, f.source),
        f=f,
        more=len(shown) > f.skip + PAGE,
        size=PAGE,
    )


def card(record_id: int, p: dict[str, Any]) -> Card:
    """The card of one contact's payload (as ``connectors/vcard.py`` writes it)."""
    name = display_name(p)
    key = sort_key(name)
    initial = key[:1].upper()
    c = Card(
        id=record_id,
        name=name,
        sort_key=key,
        letter=initial if initial.isalpha() else OTHER,
        work=work(p),
        birthday=times.day_of_year(p["birthday"]) if p.get("birthday") else "",
        nickname=_text(p.get("nickname")),
        note=_text(p.get("note")),
    )
    for e in _dicts(p.get("emails")):
        value = _text(e.get("value"))
        if value:
            c.emails.append((value, f"mailto:{value}" if "@" in value else "", _kind(e)))
    for t in _dicts(p.get("phones")):
        value = _text(t.get("value"))
        if value:
            c.phones.append((_phone_text(value), _phone_href(value), _kind(t)))
    for a in _dicts(p.get("addresses")):
        lines = address_lines(a)
        if lines:
            c.addresses.append((lines, _kind(a)))
    return c


def display_name(p: dict[str, Any]) -> str:
    """The formatted name; else the name's parts; else the organisation; else the first
    email address or phone number; else "No name"."""
    if full := _text(p.get("full_name")):
        return full
    parts = p.get("name") if isinstance(p.get("name"), dict) else {}
    keys = ("prefix", "given", "additional", "family", "suffix")
    joined = " ".join(t.replace(",", " ") for t in (_text(parts.get(k)) for k in keys) if t)
    if joined:
        return joined
    org = [t for t in (_text(o) for o in _list(p.get("org"))) if t]
    if org:
        return org[0]
    for key in ("emails", "phones"):
        for item in _dicts(p.get(key)):
            if value := _text(item.get("value")):
                return _phone_text(value)
    return gettext("No name")


def sort_key(name: str) -> str:
    """The name without accents, case-folded: "Émile" files under E, beside "emma"."""
    plain = unicodedata.normalize("NFKD", name)
    return "".join(ch for ch in plain if not unicodedata.combining(ch)).casefold().strip()


def work(p: dict[str, Any]) -> str:
    """The title and the organisation with its units: "Money Counter, IBM (Accounting)"."""
    org = [t for t in (_text(o) for o in _list(p.get("org"))) if t]
    where = org[0] + (f" ({', '.join(org[1:])})" if org[1:] else "") if org else ""
    title = _text(p.get("title"))
    return ", ".join(t for t in (title, where) if t)


def address_lines(a: dict[str, Any]) -> list[str]:
    """A postal address as it is written on an envelope: the PO box, extended address and
    street (each of its lines), then "locality region postal code", then the country."""
    lines: list[str] = []
    for key in ("po_box", "extended", "street"):
        lines.extend(t.strip() for t in _text(a.get(key)).splitlines() if t.strip())
    town = " ".join(
        t for t in (_text(a.get(k)) for k in ("locality", "region", "postal_code")) if t
    )
    if town:
        lines.append(town)
    if country := _text(a.get("country")):
        lines.append(country)
    return lines


def _kind(item: dict[str, Any]) -> str:
    kinds = [str(TYPES[t]) for t in _list(item.get("types")) if isinstance(t, str) and t in TYPES]
    return ", ".join(dict.fromkeys(kinds))


def _phone_text(value: str) -> str:
    return value.removeprefix("tel:")


def _phone_href(value: str) -> str:
    """A ``tel:`` link (RFC 3966): a ``tel:`` URI as given, else the number without spaces,
    dots or brackets; none when it holds no digit."""
    if not any(ch.isdigit() for ch in value):
        return ""
    if value.startswith("tel:"):
        return value
    return "tel:" + _DIALLED.sub("", value)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _list(value: Any) -> list[Any]:
    return [v for v in value if v] if isinstance(value, list) else []


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in _list(value) if isinstance(v, dict)]
