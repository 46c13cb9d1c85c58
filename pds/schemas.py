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

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

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


# -- OAuth: RFC 9396 authorization_details of type "pds_records" ------------------------------

ACTIONS = ("read", "write", "aggregate")
RAR_TYPE = "pds_records"
MAX_GRANT_SECONDS = 365 * 24 * 3600
MIN_GRANT_SECONDS = 60


def category_fields(category: str) -> tuple[str, ...] | None:
    """The payload field names of a category, or None where it has no schema yet."""
    cls = SCHEMAS.get(category)
    return tuple(cls().fields) if cls else None


class TimeRangeSchema(Schema):
    """``{"from": "2025-01-01", "to": "2025-06-30"}``; both ends optional and inclusive."""

    from_ = IsoDate(data_key="from", load_default=None)
    to = IsoDate(load_default=None)

    @validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["from_"] and data["to"] and data["from_"] > data["to"]:
            raise ValidationError('"from" is after "to"', "from")


class PdsRecordsDetailSchema(Schema):
    """One RFC 9396 ``authorization_details`` item of type ``pds_records``."""

    type = fields.String(required=True, validate=validate.Equal(RAR_TYPE))
    actions = fields.List(
        fields.String(validate=validate.OneOf(ACTIONS)),
        required=True,
        validate=validate.Length(min=1),
    )
    categories = fields.List(
        fields.String(validate=validate.OneOf(CATEGORIES)),
        required=True,
        validate=validate.Length(min=1),
    )
    fields_ = fields.List(
        fields.String(validate=validate.Length(min=1, max=100)),
        data_key="fields",
        load_default=None,
        validate=validate.Length(min=1),
    )
    time_range = fields.Nested(TimeRangeSchema, load_default=None)
    purpose = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    expires_in = fields.Integer(
        load_default=None,
        strict=True,
        validate=validate.Range(min=MIN_GRANT_SECONDS, max=MAX_GRANT_SECONDS),
    )

    @validates_schema
    def _known_fields(self, data: dict[str, Any], **kwargs: Any) -> None:
        wanted = data.get("fields_")
        if not wanted:
            return
        known: set[str] = set()
        for category in data["categories"]:
            names = category_fields(category)
            if names is None:
                return  # a category without a schema: any payload key may be named
            known.update(names)
        unknown = [f for f in wanted if f not in known]
        if unknown:
            raise ValidationError(
                f"unknown field {unknown[0]!r} for {', '.join(data['categories'])}", "fields"
            )


# -- Records API bodies -------------------------------------------------------------------


class RecordInSchema(Schema):
    """``POST /api/v1/records``: one record a business hands back to the person."""

    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    occurred_at = IsoDate(required=True)
    payload = fields.Dict(keys=fields.String(), required=True)


class RecordOutSchema(Schema):
    id = fields.Integer(required=True)
    category = fields.String(required=True)
    occurred_at = fields.String(required=True)
    payload = fields.Dict(required=True, metadata={"description": "only the granted fields"})


class RecordPageSchema(Schema):
    records = fields.List(fields.Nested(RecordOutSchema), required=True)
    next_cursor = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "pass as ?cursor= for the next page; null on the last page"},
    )


class RecordCreatedSchema(Schema):
    id = fields.Integer(required=True)
    category = fields.String(required=True)
    occurred_at = fields.String(required=True)
    created = fields.Boolean(
        required=True, metadata={"description": "false when the same record was already there"}
    )


class GrantOutSchema(Schema):
    id = fields.Integer(required=True)
    client_id = fields.String(required=True)
    scope = fields.String(required=True)
    authorization_details = fields.List(fields.Dict(), required=True)
    purpose = fields.String(allow_none=True, required=True)
    created_at = fields.String(required=True)
    expires_at = fields.String(required=True)


class ProblemSchema(Schema):
    """RFC 9457 problem details, as every API error is sent."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    hint = fields.String()
    instance = fields.String()
