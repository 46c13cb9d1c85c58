"""Marshmallow schemas: one per category's normalized payload (names in ``pds.vocabulary``).

Every record a connector produces (or a business writes back) is validated by the schema of
its category before it is sealed. Payloads are plain JSON: strings, with amounts as decimal
strings so that no float ever rounds a penny. Documented in docs/categories.md.

Longer than 500 lines because it holds one schema per category side by side, with the
field types they share and the compiled fast path the importer uses (:func:`fast_validator`),
so that a category's shape is read and changed in one place.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

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


class BalanceSchema(Schema):
    """An account balance on a date, as a statement reports it (category ``balances``)."""

    date = IsoDate(required=True)
    amount = DecimalString(required=True)
    currency = fields.String(required=True, validate=validate.Regexp(r"[A-Z]{3}\Z"))
    type = fields.String(
        required=True, validate=validate.Regexp(r"\s*\S", error="must not be empty")
    )
    account = fields.String(load_default=None, allow_none=True)

    class Meta:
        ordered = True


SCHEMAS["balances"] = BalanceSchema


# -- energy and health (connectors greenbutton, applehealth, fhir) ---------------------------

_UTC_SECOND = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z", re.ASCII)
_HEALTH_TIME = re.compile(
    r"[0-9]{4}(-[0-9]{2}(-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z)?)?)?\Z", re.ASCII
)
_HEALTH_TIME_ERROR = '"{input}" is not a date or a UTC time like 2024-03-31T09:30:00Z'
_NOT_EMPTY = validate.Regexp(r"\S", error="must not be empty")


def _optional(*validators: validate.Validator) -> fields.String:
    return fields.String(load_default=None, allow_none=True, validate=list(validators))


class EnergySchema(Schema):
    """One meter reading over an interval (category ``energy``): a Green Button IntervalReading."""

    start = fields.String(
        required=True,
        validate=validate.Regexp(
            _UTC_SECOND, error='"{input}" is not a UTC time like 2024-03-31T09:00:00Z'
        ),
    )
    duration = fields.String(
        required=True,
        validate=validate.Regexp(r"[0-9]{1,12}\Z", error='"{input}" is not whole seconds'),
    )
    value = DecimalString(required=True)
    unit = fields.String(required=True, validate=_NOT_EMPTY)
    cost = DecimalString(load_default=None, allow_none=True)
    currency = _optional(validate.Regexp(r"[A-Z]{3}\Z", error="must be an ISO 4217 code like USD"))
    flow = _optional()
    commodity = _optional()
    usage_point = _optional()
    meter_reading = _optional()
    quality = _optional()

    class Meta:
        ordered = True


SCHEMAS["energy"] = EnergySchema

HEALTH_KINDS = ("record", "workout", "activity_summary", "fhir")


class HealthSchema(Schema):
    """One health measurement, workout, daily summary or FHIR resource (category ``health``)."""

    kind = fields.String(
        required=True,
        validate=validate.Regexp(
            r"(record|workout|activity_summary|fhir)\Z",
            error="must be one of: " + ", ".join(HEALTH_KINDS),
        ),
    )
    type = fields.String(required=True, validate=_NOT_EMPTY)
    start = _optional(validate.Regexp(_HEALTH_TIME, error=_HEALTH_TIME_ERROR))
    end = _optional(validate.Regexp(_HEALTH_TIME, error=_HEALTH_TIME_ERROR))
    tz_offset = _optional(
        validate.Regexp(r"[+-][0-9]{2}:[0-9]{2}\Z", error="must be an offset like +01:00")
    )
    value = _optional()
    unit = _optional()
    source = _optional()
    id = _optional()
    code = _optional()
    display = _optional()
    details = fields.Dict(
        keys=fields.String(), values=fields.String(), load_default=None, allow_none=True
    )
    resource = fields.Dict(keys=fields.String(), load_default=None, allow_none=True)

    class Meta:
        ordered = True


SCHEMAS["health"] = HealthSchema


# -- profile and intentions (pds.profile.profile) ---------------------------------------------

CONTACT_CHANNELS = ("email", "phone", "sms", "post", "app")
# RFC 5646 §2.1 language tags, well-formed form without extensions or private use: pds
# checks the shape of one field, so a regex stands in for a language-tag dependency.
_BCP47 = re.compile(
    r"[A-Za-z]{2,3}(-[A-Za-z]{3}){0,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?"
    r"(-([A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*\Z"
)
_NEED = fields.String(validate=validate.Length(min=1, max=200))


class AddressSchema(Schema):
    """One postal address of the owner's profile."""

    label = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=50))
    lines = fields.List(
        fields.String(validate=validate.Length(min=1, max=200)),
        required=True,
        validate=validate.Length(min=1, max=5),
    )
    locality = fields.String(load_default=None, allow_none=True)
    region = fields.String(load_default=None, allow_none=True)
    postcode = fields.String(load_default=None, allow_none=True)
    country = fields.String(
        required=True,
        validate=validate.Regexp(r"[A-Z]{2}\Z", error="must be an ISO 3166 code like GB"),
    )

    class Meta:
        ordered = True


class ProfileSchema(Schema):
    """The owner's profile, told once (category ``profile``); every field may be unset."""

    name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    addresses = fields.List(
        fields.Nested(AddressSchema),
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=10),
    )
    email = fields.Email(load_default=None, allow_none=True)
    phone = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(
            r"\+[1-9][0-9]{6,14}\Z", error="must be an international number like +447700900123"
        ),
    )
    preferred_language = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(_BCP47, error="must be a BCP 47 language tag like en-GB"),
    )
    contact_channel = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(CONTACT_CHANNELS)
    )
    contact_hours = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(
            r"([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]\Z",
            error="must be a time range like 09:00-17:30",
        ),
    )
    accessibility_needs = fields.List(_NEED, load_default=None, allow_none=True)
    dietary_needs = fields.List(_NEED, load_default=None, allow_none=True)
    marketing = fields.Dict(
        keys=fields.String(validate=validate.OneOf(CONTACT_CHANNELS)),
        values=fields.Boolean(),
        load_default=None,
        allow_none=True,
        metadata={"description": "per channel: true = opted in"},
    )

    class Meta:
        ordered = True


SCHEMAS["profile"] = ProfileSchema

INTENTION_KINDS = ("buy", "switch", "move", "other")


class IntentionSchema(Schema):
    """What the owner tells the market they intend (category ``intentions``)."""

    text = fields.String(required=True, validate=validate.Length(min=1, max=500))
    kind = fields.String(load_default="other", validate=validate.OneOf(INTENTION_KINDS))
    from_date = IsoDate(load_default=None, allow_none=True)
    until_date = IsoDate(load_default=None, allow_none=True)
    expires_at = IsoDate(required=True, metadata={"description": "last day it is shown"})

    class Meta:
        ordered = True

    @validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        start, end = data.get("from_date"), data.get("until_date")
        if start and end and start > end:
            raise ValidationError("from_date is after until_date", "until_date")


SCHEMAS["intentions"] = IntentionSchema


# -- contacts, events, locations, activity (connectors vcard, ical, takeout) -----------------

_INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z\Z")
_EVENT_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}Z?)?\Z", re.ASCII)
_BIRTHDAY = re.compile(r"([0-9]{4}|--)-?[0-9]{2}-?[0-9]{2}\Z", re.ASCII)
_COORDINATE = r"-?[0-9]{1,3}\.[0-9]{7}\Z"


def _maybe(**kwargs: Any) -> fields.String:
    return fields.String(load_default=None, allow_none=True, **kwargs)


def _utc_time() -> fields.String:
    """A required UTC instant like ``2024-03-31T09:30:00Z`` (fractions of a second allowed)."""
    return fields.String(
        required=True,
        validate=validate.Regexp(_INSTANT, error="is not a UTC time like 2024-03-31T09:30:00Z"),
    )


class TypedValueSchema(Schema):
    """An email address or phone number with its vCard TYPE labels (lower case)."""

    value = fields.String(required=True, validate=validate.Length(min=1))
    types = fields.List(fields.String(), load_default=list)

    class Meta:
        ordered = True


class ContactNameSchema(Schema):
    """vCard N: the structured name, each part "" where absent."""

    family = fields.String(load_default="")
    given = fields.String(load_default="")
    additional = fields.String(load_default="")
    prefix = fields.String(load_default="")
    suffix = fields.String(load_default="")

    class Meta:
        ordered = True


class ContactAddressSchema(Schema):
    """vCard ADR: one postal address, each part "" where absent."""

    types = fields.List(fields.String(), load_default=list)
    po_box = fields.String(load_default="")
    extended = fields.String(load_default="")
    street = fields.String(load_default="")
    locality = fields.String(load_default="")
    region = fields.String(load_default="")
    postal_code = fields.String(load_default="")
    country = fields.String(load_default="")

    class Meta:
        ordered = True


class ContactSchema(Schema):
    """One person or organisation from an address book (category ``contacts``)."""

    full_name = _maybe()
    name = fields.Nested(ContactNameSchema, load_default=None, allow_none=True)
    nickname = _maybe()
    emails = fields.List(fields.Nested(TypedValueSchema), load_default=list)
    phones = fields.List(fields.Nested(TypedValueSchema), load_default=list)
    addresses = fields.List(fields.Nested(ContactAddressSchema), load_default=list)
    org = fields.List(fields.String(), load_default=list)
    title = _maybe()
    birthday = _maybe(
        validate=validate.Regexp(_BIRTHDAY, error="is not a date like 1980-02-03 or --02-03")
    )
    urls = fields.List(fields.String(), load_default=list)
    note = _maybe()
    uid = _maybe()

    class Meta:
        ordered = True

    @validates_schema
    def _someone(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not (
            data.get("full_name")
            or data.get("name")
            or data.get("emails")
            or data.get("phones")
            or data.get("org")
        ):
            raise ValidationError("the card has no name, email, phone or organisation", "full_name")


SCHEMAS["contacts"] = ContactSchema


class EventSchema(Schema):
    """One calendar event (category ``events``).

    ``start``/``end`` are UTC instants ``YYYY-MM-DDTHH:MM:SSZ``, dates ``YYYY-MM-DD`` for
    all-day events, or wall-clock ``YYYY-MM-DDTHH:MM:SS`` for floating times;
    ``start_local``/``end_local`` keep the time as written in ``timezone`` (the TZID).
    """

    uid = _maybe()
    summary = _maybe()
    description = _maybe()
    location = _maybe()
    start = fields.String(
        required=True,
        validate=validate.Regexp(
            _EVENT_TIME, error="is not a date or a time like 2024-03-31T09:30:00Z"
        ),
    )
    end = _maybe(
        validate=validate.Regexp(
            _EVENT_TIME, error="is not a date or a time like 2024-03-31T09:30:00Z"
        )
    )
    all_day = fields.Boolean(required=True)
    timezone = _maybe()
    start_local = _maybe()
    end_local = _maybe()
    recurrence = _maybe()
    status = _maybe()
    organizer = _maybe()

    class Meta:
        ordered = True


SCHEMAS["events"] = EventSchema


class LocationSchema(Schema):
    """One recorded position (category ``locations``); coordinates in decimal degrees."""

    time = _utc_time()
    latitude = fields.String(
        required=True,
        validate=validate.Regexp(_COORDINATE, error="is not a latitude like 51.5007292"),
    )
    longitude = fields.String(
        required=True,
        validate=validate.Regexp(_COORDINATE, error="is not a longitude like -0.1246254"),
    )
    accuracy = _maybe(
        validate=validate.Regexp(r"[0-9]+\Z", error="is not a whole number of metres")
    )
    source = _maybe()
    device = _maybe()

    class Meta:
        ordered = True


SCHEMAS["locations"] = LocationSchema


class ActivitySchema(Schema):
    """One entry of an online activity history (category ``activity``), e.g. Google My Activity."""

    time = _utc_time()
    product = fields.String(required=True)
    title = fields.String(required=True)
    url = _maybe()
    header = _maybe()

    class Meta:
        ordered = True


SCHEMAS["activity"] = ActivitySchema


Check = Callable[[Any], bool]


def _field_check(field: fields.Field) -> Check | None:
    """A fast check equivalent to the field's marshmallow load, or None if unknown."""
    if isinstance(field, IsoDate):
        base: Check = lambda v: isinstance(v, str) and _valid_date(v)  # noqa: E731
    elif isinstance(field, DecimalString):
        base = lambda v: isinstance(v, str) and _DECIMAL.fullmatch(v) is not None  # noqa: E731
    elif type(field) is fields.String:
        base = lambda v: isinstance(v, str)  # noqa: E731
    elif type(field) is fields.Dict and _plain_strings(field):
        strings = field.value_field is not None
        base = lambda v: (  # noqa: E731
            isinstance(v, dict)
            and all(type(k) is str for k in v)
            and (not strings or all(type(x) is str for x in v.values()))
        )
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


def _plain_strings(field: fields.Dict) -> bool:
    """A Dict whose keys (and values, if typed) are plain unvalidated Strings: its load
    returns an equal dict for any dict of such keys and values."""
    inner = [f for f in (field.key_field, field.value_field) if f is not None]
    return field.key_field is not None and all(
        type(f) is fields.String and not f.validators for f in inner
    )


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


# C0 control characters but tab, line feed and carriage return: file imports refuse NUL
# bytes, and text written through the API or by the owner refuses all of these, and lone
# UTF-16 surrogates (JSON's "\ud800" escape), which are no text at all and cannot be stored.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def _printable(text: str) -> str:
    """``text`` with its control characters shown as escapes (for naming a bad key)."""
    return CONTROL.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if m.group() < "\x80" else f"\\u{ord(m.group()):04x}",
        text,
    )


def control_characters(value: Any) -> dict[str, Any] | list[str] | None:
    """Marshmallow-shaped messages (``{"field": {0: ["..."]}}``) for the first string in
    ``value`` (keys included, at any depth) holding a C0 control character other than tab,
    line feed and carriage return, or a lone surrogate; None if there is none."""
    if isinstance(value, str):
        m = CONTROL.search(value)
        if m is None:
            return None
        code, at = ord(m.group()), m.start() + 1
        if code >= 0xD800:
            return [
                f"contains a lone surrogate U+{code:04X} at character {at}, which is not "
                "text; send the character it was part of, or remove it"
            ]
        return [
            f"contains the control character U+{code:04X} at character "
            f"{at}; remove it (tab, line feed and carriage return are allowed)"
        ]
    items: Any = ()
    if isinstance(value, dict):
        for key in value:
            if isinstance(key, str) and (found := control_characters(key)):
                return {_printable(key): [f"this key {found[0]}"]}
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    for key, item in items:
        found = control_characters(item)
        if found is not None:
            return {key: found}
    return None


def load_written(schema: Schema, data: Any) -> Any:
    """``schema.load(data)`` for a payload written through the API or by the owner (the
    profile, intentions): a string holding a control character (other than tab, LF, CR)
    is a marshmallow ``ValidationError`` naming its field, like any other bad value."""
    found = control_characters(data)
    if found is not None:
        raise ValidationError(found if isinstance(found, dict) else {"_schema": found})
    return schema.load(data)


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
