"""The vocabulary every layer shares: the categories of data a vault holds, the payload
fields of each, and the actions a grant may name. Plain tuples, no validation library: the
policy engine, the OAuth request parser and the API all speak these words, and the
marshmallow schemas in ``pds.payloads`` are checked against them (tests/test_payloads.py).
"""

from __future__ import annotations

CATEGORIES = (
    "transactions",
    "balances",
    "energy",
    "contacts",
    "events",
    "health",
    "locations",
    "activity",
    "profile",
    "intentions",
)

FIELDS: dict[str, tuple[str, ...]] = {
    "transactions": (
        "date",
        "amount",
        "currency",
        "description",
        "counterparty",
        "balance",
        "type",
        "account",
        "reference",
    ),
    "balances": (
        "date",
        "amount",
        "currency",
        "type",
        "account",
    ),
    "energy": (
        "start",
        "duration",
        "value",
        "unit",
        "cost",
        "currency",
        "flow",
        "commodity",
        "usage_point",
        "meter_reading",
        "quality",
    ),
    "contacts": (
        "full_name",
        "name",
        "nickname",
        "emails",
        "phones",
        "addresses",
        "org",
        "title",
        "birthday",
        "urls",
        "note",
        "uid",
    ),
    "events": (
        "uid",
        "summary",
        "description",
        "location",
        "start",
        "end",
        "all_day",
        "timezone",
        "start_local",
        "end_local",
        "recurrence",
        "status",
        "organizer",
    ),
    "health": (
        "kind",
        "type",
        "start",
        "end",
        "tz_offset",
        "value",
        "unit",
        "source",
        "id",
        "code",
        "display",
        "details",
        "resource",
    ),
    "locations": (
        "time",
        "latitude",
        "longitude",
        "accuracy",
        "source",
        "device",
    ),
    "activity": (
        "time",
        "product",
        "title",
        "url",
        "header",
    ),
    "profile": (
        "name",
        "addresses",
        "email",
        "phone",
        "preferred_language",
        "contact_channel",
        "contact_hours",
        "accessibility_needs",
        "dietary_needs",
        "marketing",
    ),
    "intentions": (
        "text",
        "kind",
        "from_date",
        "until_date",
        "expires_at",
    ),
}
"""The payload field names of each category, in the order its schema declares them."""

ACTIONS = ("read", "write", "aggregate")
"""What a grant may let a business do with a category."""

LEAVING = frozenset({"read", "aggregate"})
"""The actions by which data leaves the vault: only they are limited by fields and time,
and they are what a sharing policy covers unless it names its actions."""

SHOWN_ORDER = ("read", "aggregate", "write")
"""The order in which actions are listed to people (consent page, grant lists, rule text)."""


def category_fields(category: str) -> tuple[str, ...] | None:
    """The payload field names of a category, or None where it has no schema yet."""
    return FIELDS.get(category)
