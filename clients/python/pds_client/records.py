"""Records as typed objects: one dataclass per category, built from a table of its fields.

Each class has the record's ``id``, ``category`` and ``occurred_at``, one attribute per
payload field of its category (``None`` when the payload lacks it: a grant limited to some
fields, or a field the record does not have), ``payload`` (the payload exactly as received)
and ``extra`` (payload fields this table does not know, kept as received: a newer vault may
send more). Money and meter amounts are :class:`decimal.Decimal`; everything else is the
JSON value as sent. A payload field whose name is taken by a record attribute (health's
``id``) gets a trailing underscore (``id_``).

The table follows ``docs/categories.md``; a category it does not know becomes a plain
:class:`Record`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from decimal import Decimal, InvalidOperation
from typing import Any

_TABLE: dict[str, tuple[str, tuple[str, ...]]] = {
    "transactions": (
        "Transaction",
        ("date", "amount", "currency", "description", "counterparty", "balance", "type",
         "account", "reference"),
    ),
    "balances": ("Balance", ("date", "amount", "currency", "type", "account")),
    "energy": (
        "EnergyReading",
        ("start", "duration", "value", "unit", "cost", "currency", "flow", "commodity",
         "usage_point", "meter_reading", "quality"),
    ),
    "contacts": (
        "Contact",
        ("full_name", "name", "nickname", "emails", "phones", "addresses", "org", "title",
         "birthday", "urls", "note", "uid"),
    ),
    "events": (
        "Event",
        ("uid", "summary", "description", "location", "start", "end", "all_day", "timezone",
         "start_local", "end_local", "recurrence", "status", "organizer"),
    ),
    "health": (
        "HealthRecord",
        ("kind", "type", "start", "end", "tz_offset", "value", "unit", "source", "id", "code",
         "display", "details", "resource"),
    ),
    "locations": ("Location", ("time", "latitude", "longitude", "accuracy", "source", "device")),
    "activity": ("Activity", ("time", "product", "title", "url", "header")),
    "profile": (
        "Profile",
        ("name", "addresses", "email", "phone", "preferred_language", "contact_channel",
         "contact_hours", "accessibility_needs", "dietary_needs", "marketing"),
    ),
    "intentions": ("Intention", ("text", "kind", "from_date", "until_date", "expires_at")),
}  # fmt: skip
"""category -> (class name, payload field names in the order the vault's schema lists them)."""

_DECIMALS = {
    "transactions": {"amount", "balance"},
    "balances": {"amount"},
    "energy": {"value", "cost"},
}
"""The fields read as Decimal (decimal strings in the payload, e.g. ``"-12.30"``)."""


@dataclasses.dataclass(frozen=True)
class Record:
    """One record as the API gave it; the category classes add their fields."""

    id: int
    category: str
    occurred_at: str
    payload: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


_RESERVED = {f.name for f in dataclasses.fields(Record)}


def _attribute(name: str) -> str:
    return name + "_" if name in _RESERVED else name


CLASSES: dict[str, type[Record]] = {
    category: dataclasses.make_dataclass(
        name,
        [(_attribute(f), Any, dataclasses.field(default=None)) for f in names],
        bases=(Record,),
        frozen=True,
        namespace={"__module__": __name__},
    )
    for category, (name, names) in _TABLE.items()
}
Transaction = CLASSES["transactions"]
Balance = CLASSES["balances"]
EnergyReading = CLASSES["energy"]
Contact = CLASSES["contacts"]
Event = CLASSES["events"]
HealthRecord = CLASSES["health"]
Location = CLASSES["locations"]
Activity = CLASSES["activity"]
Profile = CLASSES["profile"]
Intention = CLASSES["intentions"]


def _value(category: str, name: str, value: Any) -> Any:
    if name in _DECIMALS.get(category, ()) and isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            return value
    return value


def record_from(item: dict[str, Any], fields: Collection[str] | None = None) -> Record:
    """The typed record for one item of ``GET /api/v1/records`` (or ``/records/{id}``);
    with ``fields``, only those payload fields are kept (the others are dropped)."""
    category = item["category"]
    payload = item.get("payload") or {}
    if fields is not None:
        payload = {k: v for k, v in payload.items() if k in fields}
    known = _TABLE.get(category, ("", ()))[1]
    values = {_attribute(n): _value(category, n, payload[n]) for n in known if n in payload}
    extra = {k: v for k, v in payload.items() if k not in known}
    cls = CLASSES.get(category, Record)
    return cls(
        id=item["id"],
        category=category,
        occurred_at=item["occurred_at"],
        payload=payload,
        extra=extra,
        **values,
    )
