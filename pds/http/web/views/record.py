"""The page of one record: what it is (where its category's view says so, ``DESCRIBE``),
its fields by name with their labels and values written for a person (a web address as the
host it names, as the activity timeline writes it: the page links no other host), its
category, source file and when it was stored, and which businesses read it through the API.

Who read it comes from the access log (:func:`pds.db.audit.record_readers`): an allowed
records read names the record it returned (``record``) or the first and last keys of the
page it returned (``span``); a page is the run of its category's records between them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import render_template
from flask_babel import gettext, ngettext

from pds.db import audit as db_audit
from pds.db import records as db_records
from pds.http import locale
from pds.http.web.views import contacts, energy, fhirtext, health, labels, timeline, times
from pds.oauth import admin

if TYPE_CHECKING:
    from pds.vault import Vault
    from pds.vault.records import StoredRecord


def _health(vault: Vault, rec: StoredRecord) -> list[tuple[str, str]]:
    return health.describe(rec.payload, health.references(vault, rec.source_id))


DESCRIBE: dict[str, Callable[[Vault, StoredRecord], list[tuple[str, str]]]] = {
    "health": _health,
}
"""What a record of a category is, in labelled lines of words (a health record's type,
medication, prescriber...), shown above its fields; given by the view that knows it."""

MONEY = frozenset({"amount", "balance", "cost"})
"""Fields written as an amount in the payload's ``currency``."""
_WEB = re.compile(r"https?://\S+\Z")
UNDATED = frozenset({"contacts"})
"""Categories whose records have no date of their own (a contact's is its import day)."""
HIDDEN = {"energy": frozenset({"usage_point", "meter_reading", "unit"})}
"""Fields a category's record page leaves out: a meter's Green Button addresses (the
energy page never shows them), the unit the value is written with."""
DESCRIBED = frozenset({"resource", "details"})
"""Raw fields left out when the category's ``DESCRIBE`` says what the record is."""
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?\Z")


def render(vault: Vault, record_id: int) -> str:
    rec = vault.get(record_id)
    source = next((s for s in vault.sources() if s["id"] == rec.source_id), None)
    describe = DESCRIBE.get(rec.category)
    what = describe(vault, rec) if describe else None
    return render_template(
        "record.html",
        rec=rec,
        what=what,
        dated=rec.category not in UNDATED,
        fields=fields(rec.payload, rec.category, described=bool(what)),
        source=_source_name(source, _names(vault)) if source else None,
        stored=db_records.created_at(vault.conn, rec.id),
        readers=readers(vault, rec.category, rec.occurred_at, rec.id),
    )


def fields(
    payload: dict[str, Any], category: str = "", described: bool = False
) -> list[tuple[str, str]]:
    """(label, value as text) of each field that holds something: the fields with a label
    in the labels' order (which keeps related fields together), then the others. A field
    the category's view writes in words is written so (an energy reading's "1 hour",
    "0.273 kWh", "Imported"; an activity's host name); ``described``: the raw fields
    :data:`DESCRIBED` are left out."""
    rank = {name: n for n, name in enumerate(labels.LABELS)}
    names = sorted(payload, key=lambda name: rank.get(name, len(rank)))
    hidden = HIDDEN.get(category, frozenset()) | (DESCRIBED if described else frozenset())
    worded = WORDED.get(category, {})
    out = []
    for name in names:
        if payload[name] in (None, "", [], {}) or name in hidden:
            continue
        if name in worded:
            label, text = worded[name](payload)
            if text:
                out.append((label, text))
            continue
        text = value_text(name, payload[name], payload)
        if name == "name" and text == payload.get("full_name"):
            continue  # a contact's name parts that say what its name says
        out.append((labels.label(name), text))
    return out


def _usage(payload: dict[str, Any]) -> tuple[str, str]:
    """An energy value in the unit the energy page writes (Wh as kWh)."""
    value = fhirtext.number(payload.get("value"))
    unit = payload.get("unit")
    if value is None or not isinstance(unit, str) or not unit:
        return labels.label("value"), labels.cell(payload.get("value"))
    shown, divisor = energy.shown_unit(unit)
    return gettext("Usage"), f"{locale.number(value / divisor)} {shown}"


WORDED: dict[str, dict[str, Callable[[dict[str, Any]], tuple[str, str]]]] = {
    "energy": {
        "value": _usage,
        "duration": lambda p: (gettext("Duration"), energy.duration(p["duration"])),
        "flow": lambda p: (labels.label("flow"), energy.flow_name(str(p["flow"]))),
        "commodity": lambda p: (
            labels.label("commodity"),
            energy.commodity_name(str(p["commodity"])),
        ),
    },
    "health": {"type": lambda p: (labels.label("type"), fhirtext.type_name(str(p["type"])))},
    "activity": {
        "url": lambda p: (gettext("Site"), timeline.host(str(p["url"]))),
    },
}
"""The fields of a category written as its view writes them: field → (label, text)."""


def value_text(name: str, value: Any, payload: dict[str, Any]) -> str:
    """One field's value written for a person: an amount with its currency, a date or a
    time as the locale writes it, a web address as its host, anything else as
    :func:`labels.cell` writes it."""
    if name in MONEY and not isinstance(value, bool):
        currency = payload.get("currency")
        return locale.money(value, currency if isinstance(currency, str) else None)
    if name in CONTACT_FIELDS and isinstance(value, list | dict):
        return CONTACT_FIELDS[name](value)
    if isinstance(value, str):
        if name == "birthday":
            return times.day_of_year(value)
        if _WEB.match(value):
            return timeline.host(value) or value
        if _ISO.match(value):
            return locale.moment(value) if "T" in value else locale.day(value)
    return labels.cell(value)


def _typed(items: list[Any]) -> str:
    """Email addresses or phone numbers: "905-555-1234 (mobile); 905-666-1234 (home)"."""
    return "; ".join(f"{text} ({kind})" if kind else text for text, _, kind in items)


CONTACT_FIELDS: dict[str, Callable[[Any], str]] = {
    "emails": lambda v: _typed(contacts.card(0, {"emails": v}).emails),
    "phones": lambda v: _typed(contacts.card(0, {"phones": v}).phones),
    "addresses": lambda v: "; ".join(
        ", ".join(lines) + (f" ({kind})" if kind else "")
        for lines, kind in contacts.card(0, {"addresses": v}).addresses
    ),
    "name": lambda v: contacts.display_name({"name": v}),
}
"""A contact's structured fields written as the contact cards write them."""


def readers(vault: Vault, category: str, occurred_at: str, record_id: int) -> list[str]:
    """ "Read by Acme Energy on 5 Mar 2026 (3 times)", one line per business and day."""
    stored = db_records.created_at(vault.conn, record_id)
    if stored is None:
        return []
    names = _names(vault)
    found = db_audit.record_readers(vault.conn, category, occurred_at, record_id, stored)
    lines = []
    for client, day, reads in sorted(found, key=lambda r: (r[1], names.get(r[0], r[0]))):
        times_read = ngettext("once", "%(num)s times", reads)
        lines.append(
            gettext(
                "Read by %(business)s on %(day)s (%(times)s)",
                business=names.get(client, client),
                day=locale.day(day),
                times=times_read,
            )
        )
    return lines


def _names(vault: Vault) -> dict[str, str]:
    return {c.client_id: c.name for c in admin.list_clients(vault)}


def _source_name(source: dict[str, Any], names: dict[str, str]) -> str:
    if source["connector"] == "api":
        writer = source["filename"].removeprefix("client:")
        return gettext("written by %(business)s", business=names.get(writer, writer))
    return source["filename"]
