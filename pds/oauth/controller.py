"""How to reach a business: the contact details its consent receipts name it by.

A Kantara v1.1 consent receipt names the PII controller with a ``contact``, an ``address``,
an ``email`` and a ``phone``. pds takes them from what the business gave when it registered:
RFC 7591 allows metadata beyond the standard names (§2), so besides the standard
``contacts`` (ways to reach the people responsible, typically email addresses) a business may
send

- ``controller_address``: its postal address on one line (``"1 Meter Lane, Leeds LS1 4AP"``),
  at most :data:`MAX_ADDRESS` characters, with at least one letter;
- ``controller_country``: the address's country as an ISO 3166-1 alpha-2 code (``"GB"``);
- ``controller_phone``: a phone number: digits with an optional leading ``+`` and spaces,
  hyphens, dots or brackets between them, :data:`MIN_DIGITS` to :data:`MAX_DIGITS` digits.

The owner gives the same with ``pds clients add --email --address --country --phone``. What is
refused is refused by name (:func:`problem`; registration answers RFC 7591
``invalid_client_metadata``); what a business left out stays empty in its receipts, and the
consent page says so (:func:`details` reads them back).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_ADDRESS = 300
"""The longest postal address (characters)."""
MAX_CONTACTS = 5
"""The most ``contacts`` a business may give."""
MAX_CONTACT = 254
"""The longest contact (the longest email address RFC 5321 allows)."""
MIN_DIGITS = 5
MAX_DIGITS = 15
"""A phone number's digits: ITU-T E.164 numbers have at most 15."""
FIELDS = ("controller_address", "controller_country", "controller_phone")

_PHONE = re.compile(r"\+?[0-9][0-9 ().\-/]*[0-9)]")
_COUNTRY = re.compile(r"[A-Z]{2}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


@dataclass(frozen=True)
class Controller:
    """A business's contact details as it gave them; ``""`` (or none) for what it did not."""

    contacts: tuple[str, ...] = ()
    email: str = ""
    address: str = ""
    country: str = ""
    phone: str = ""

    def as_metadata(self) -> dict[str, Any]:
        """The registration metadata that says the same (what was given only)."""
        out: dict[str, Any] = {"contacts": list(self.contacts)} if self.contacts else {}
        for key, value in zip(FIELDS, (self.address, self.country, self.phone), strict=True):
            if value:
                out[key] = value
        return out


def problem(metadata: dict[str, Any]) -> str | None:
    """Why the contact details in ``metadata`` cannot be registered, or None."""
    contacts = metadata.get("contacts")
    if contacts is not None:
        if not isinstance(contacts, list) or not all(isinstance(c, str) for c in contacts):
            return "contacts must be an array of strings"
        if len(contacts) > MAX_CONTACTS:
            return f"contacts lists {len(contacts)}; give at most {MAX_CONTACTS}"
        for c in contacts:
            if not c.strip() or len(c) > MAX_CONTACT:
                return f"each of contacts must be 1 to {MAX_CONTACT} characters long"
    for key in FIELDS:
        value = metadata.get(key)
        if value is not None and not isinstance(value, str):
            return f"{key} must be a string"
    address = metadata.get("controller_address")
    if address is not None:
        if len(address) > MAX_ADDRESS:
            return (
                f"controller_address is {len(address):,} characters long; keep it to {MAX_ADDRESS}"
            )
        if not any(c.isalpha() for c in address):
            return "controller_address must be a postal address, with at least one letter"
    country = metadata.get("controller_country")
    if country is not None and not _COUNTRY.fullmatch(country):
        return "controller_country must be an ISO 3166-1 alpha-2 code in capitals, such as GB"
    phone = metadata.get("controller_phone")
    if phone is not None:
        digits = sum(c.isdigit() for c in phone)
        if not _PHONE.fullmatch(phone) or not MIN_DIGITS <= digits <= MAX_DIGITS:
            return (
                f"controller_phone must be a phone number: {MIN_DIGITS} to {MAX_DIGITS} digits, "
                "an optional leading +, and spaces, hyphens, dots or brackets between them"
            )
    return None


def details(metadata: dict[str, Any]) -> Controller:
    """The contact details a business registered with (stored metadata, read leniently: a
    value of the wrong type counts as not given)."""
    contacts = metadata.get("contacts")
    if not isinstance(contacts, list):
        contacts = []
    given = tuple(str(c) for c in contacts)
    text = {k: v.strip() if isinstance(v, str) else "" for k in FIELDS for v in [metadata.get(k)]}
    return Controller(
        contacts=given,
        email=next((c for c in given if _EMAIL.fullmatch(c)), ""),
        address=text["controller_address"],
        country=text["controller_country"],
        phone=text["controller_phone"],
    )
