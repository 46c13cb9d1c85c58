"""RFC 9396 ``authorization_details`` of type ``pds_records``: what a business asks for
(categories, actions, fields, a time range, a purpose, a length), validated by marshmallow."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from pds.payloads import IsoDate
from pds.vocabulary import ACTIONS, CATEGORIES, category_fields

RAR_TYPE = "pds_records"
MAX_GRANT_SECONDS = 365 * 24 * 3600
MIN_GRANT_SECONDS = 60


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
