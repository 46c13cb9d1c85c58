"""Marshmallow schemas: one per category's normalized payload.

Every record a connector produces (or a business writes back) is validated by the schema of
its category before it is sealed. Payloads are plain JSON: strings, with amounts as decimal
strings so that no float ever rounds a penny. Documented in docs/categories.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

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

_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class DecimalString(fields.String):
    """A decimal number kept as its canonical string: ``-12.30``, never a float."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not _DECIMAL.fullmatch(text):
            raise ValidationError(f'"{text}" is not a decimal number like -12.30')
        try:
            Decimal(text)
        except InvalidOperation:  # pragma: no cover - the regex already ruled it out
            raise ValidationError(f'"{text}" is not a decimal number like -12.30') from None
        return text


class IsoDate(fields.String):
    """A calendar date as ``YYYY-MM-DD``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not _DATE.fullmatch(text):
            raise ValidationError(f'"{text}" is not a date like 2024-03-31')
        try:
            date.fromisoformat(text)
        except ValueError:
            raise ValidationError(f'"{text}" is not a real calendar date') from None
        return text


class TransactionSchema(Schema):
    """One movement of money on an account (category ``transactions``)."""

    date = IsoDate(required=True)
    amount = DecimalString(required=True)
    currency = fields.String(required=True, validate=validate.Regexp(r"[A-Z]{3}\Z"))
    description = fields.String(required=True)
    counterparty = fields.String(load_default=None, allow_none=True)
    balance = DecimalString(load_default=None, allow_none=True)
    type = fields.String(load_default=None, allow_none=True)
    account = fields.String(load_default=None, allow_none=True)
    reference = fields.String(load_default=None, allow_none=True)

    class Meta:
        ordered = True


SCHEMAS: dict[str, type[Schema]] = {"transactions": TransactionSchema}


Check = Callable[[Any], bool]


def _field_check(field: fields.Field) -> Check | None:
    """A fast check equivalent to the field's marshmallow load, or None if unknown."""
    if isinstance(field, IsoDate):
        base: Check = lambda v: isinstance(v, str) and _valid_date(v)  # noqa: E731
    elif isinstance(field, DecimalString):
        base = lambda v: isinstance(v, str) and _DECIMAL.fullmatch(v) is not None  # noqa: E731
    elif type(field) is fields.String:
        base = lambda v: isinstance(v, str)  # noqa: E731
    else:
        return None
    regexes = []
    for v in field.validators:
        if not isinstance(v, validate.Regexp):
            return None
        regexes.append(v.regex)
    if regexes:
        inner = base
        base = lambda v: inner(v) and all(r.match(v) for r in regexes)  # noqa: E731
    if field.allow_none:
        strict = base
        return lambda v: v is None or strict(v)
    return base


def _valid_date(text: str) -> bool:
    if not _DATE.fullmatch(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def fast_validator(schema: Schema) -> Callable[[dict[str, Any]], bool]:
    """A quick test that ``schema.load(payload) == payload`` without running marshmallow.

    True means the payload is valid and already normalized; False means "ask marshmallow"
    (which either normalizes it or says exactly what is wrong). Marshmallow stays the one
    definition; this only skips its ~20 µs a row on the import path. A property test holds
    the two together.
    """
    checks = {name: _field_check(f) for name, f in schema.load_fields.items()}
    if any(c is None for c in checks.values()):
        return lambda payload: False
    names = frozenset(checks)
    items = tuple(checks.items())

    def check(payload: dict[str, Any]) -> bool:
        if payload.keys() != names:
            return False
        return all(c(payload[k]) for k, c in items)  # type: ignore[misc]

    return check


def schema_for(category: str) -> Schema | None:
    """A schema instance for the category, or None where none is defined yet."""
    cls = SCHEMAS.get(category)
    return cls() if cls else None


def first_error(messages: dict[str, Any] | list[Any] | str) -> str:
    """The first marshmallow error as ``field: message`` for one-line reports."""
    if isinstance(messages, dict):
        key, value = next(iter(messages.items()))
        inner = first_error(value)
        return f"{key}: {inner}" if not isinstance(value, dict) else f"{key}.{inner}"
    if isinstance(messages, list):
        return first_error(messages[0]) if messages else "invalid"
    return str(messages)
