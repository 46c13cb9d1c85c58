"""The shapes of the records API's bodies and of its errors (RFC 9457 problem details),
for request validation and the OpenAPI document."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from pds.payloads import IsoDate
from pds.vocabulary import CATEGORIES


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
