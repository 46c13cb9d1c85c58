"""The names a person reads for the payload fields (``usage_point`` is "Meter point"),
and payload values written as text for a page, never as Python's dict or list text."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import gettext, lazy_gettext

LABELS = {
    "amount": lazy_gettext("Amount"),
    "currency": lazy_gettext("Currency"),
    "description": lazy_gettext("Description"),
    "counterparty": lazy_gettext("Counterparty"),
    "balance": lazy_gettext("Balance after"),
    "type": lazy_gettext("Type"),
    "account": lazy_gettext("Account"),
    "reference": lazy_gettext("Reference"),
    "date": lazy_gettext("Date"),
    "start": lazy_gettext("Start"),
    "end": lazy_gettext("End"),
    "duration": lazy_gettext("Duration (seconds)"),
    "value": lazy_gettext("Value"),
    "unit": lazy_gettext("Unit"),
    "cost": lazy_gettext("Cost"),
    "flow": lazy_gettext("Direction"),
    "commodity": lazy_gettext("Commodity"),
    "usage_point": lazy_gettext("Meter point"),
    "meter_reading": lazy_gettext("Meter reading"),
    "quality": lazy_gettext("Reading quality"),
    "full_name": lazy_gettext("Name"),
    "name": lazy_gettext("Name parts"),
    "nickname": lazy_gettext("Nickname"),
    "emails": lazy_gettext("Email addresses"),
    "phones": lazy_gettext("Phone numbers"),
    "addresses": lazy_gettext("Addresses"),
    "org": lazy_gettext("Organisation"),
    "title": lazy_gettext("Title"),
    "birthday": lazy_gettext("Birthday"),
    "urls": lazy_gettext("Web addresses"),
    "note": lazy_gettext("Note"),
    "uid": lazy_gettext("Identifier"),
    "summary": lazy_gettext("Summary"),
    "location": lazy_gettext("Place"),
    "all_day": lazy_gettext("All day"),
    "timezone": lazy_gettext("Time zone"),
    "start_local": lazy_gettext("Start (local time)"),
    "end_local": lazy_gettext("End (local time)"),
    "recurrence": lazy_gettext("Repeats"),
    "status": lazy_gettext("Status"),
    "organizer": lazy_gettext("Organiser"),
    "kind": lazy_gettext("Kind"),
    "tz_offset": lazy_gettext("Time zone offset"),
    "source": lazy_gettext("Source"),
    "id": lazy_gettext("Identifier"),
    "code": lazy_gettext("Code"),
    "display": lazy_gettext("What"),
    "details": lazy_gettext("Details"),
    "resource": lazy_gettext("Full record"),
    "time": lazy_gettext("Time"),
    "latitude": lazy_gettext("Latitude"),
    "longitude": lazy_gettext("Longitude"),
    "accuracy": lazy_gettext("Accuracy (metres)"),
    "device": lazy_gettext("Device"),
    "product": lazy_gettext("Product"),
    "url": lazy_gettext("Web address"),
    "header": lazy_gettext("Service"),
}


NAMESPACES = frozenset({"system", "url"})
"""Keys of a nested object whose URI names a vocabulary or an extension (a FHIR coding's or
identifier's ``system``, an extension's ``url``): words for a machine, not for a person."""
_URI = re.compile(r"(https?|urn):", re.IGNORECASE)


def label(name: str) -> str:
    """The label of a payload field; an unknown field's name with its underscores as spaces."""
    known = LABELS.get(name)
    return str(known) if known is not None else name.replace("_", " ").capitalize()


def cell(value: Any) -> str:
    """A payload value as text: lists joined by commas, an object as its values, true and
    false as yes and no; never Python's dict or list text, nor an object's namespace URIs
    (:data:`NAMESPACES`)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, list):
        return ", ".join(t for t in (cell(v) for v in value) if t)
    if isinstance(value, dict):
        shown = (
            v
            for k, v in value.items()
            if not (k in NAMESPACES and isinstance(v, str) and _URI.match(v))
        )
        return ", ".join(t for t in (cell(v) for v in shown) if t)
    return str(value)
