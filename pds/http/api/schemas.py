"""The shapes of the API's bodies and of its errors (RFC 9457 problem details), for request
validation and the OpenAPI document, and the names of the per-category components the
document builds from the payload schemas of ``pds.payloads`` (:func:`component`)."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields, validate

from pds.payloads import IsoDate
from pds.vocabulary import ACTIONS, CATEGORIES

KINDS = ("Payload", "GrantedPayload", "Record", "RecordIn")
"""What each category has a component of: its payload as a complete record holds it (and as
a write must send it), the same as a read returns it (only the fields the grant and the
owner's policies let out: none required), a record as read, and a record to write."""


def component(category: str, kind: str) -> str:
    """The OpenAPI component name of one of a category's shapes: ``TransactionsPayload``."""
    return category.title() + kind


class RecordInSchema(Schema):
    """``POST /api/v1/records``: one record a business hands back to the person."""

    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    occurred_at = IsoDate(required=True)
    payload = fields.Dict(keys=fields.String(), required=True)


class RecordCreatedSchema(Schema):
    id = fields.Integer(required=True)
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    occurred_at = IsoDate(required=True)
    created = fields.Boolean(
        required=True, metadata={"description": "false when the same record was already there"}
    )


class TimeRangeSchema(Schema):
    from_ = IsoDate(data_key="from", metadata={"description": "the first day (inclusive)"})
    to = IsoDate(metadata={"description": "the last day (inclusive)"})


class AuthorizationDetailSchema(Schema):
    """One RFC 9396 ``pds_records`` item of a grant: what it allows on one category."""

    type = fields.String(required=True, validate=validate.OneOf(["pds_records"]))
    actions = fields.List(fields.String(validate=validate.OneOf(ACTIONS)), required=True)
    categories = fields.List(
        fields.String(validate=validate.OneOf(CATEGORIES)),
        required=True,
        validate=validate.Length(equal=1),
    )
    fields_ = fields.List(
        fields.String(),
        data_key="fields",
        metadata={"description": "the payload fields it covers (absent: all)"},
    )
    time_range = fields.Nested(TimeRangeSchema)
    purpose = fields.String()
    expires_in = fields.Integer(required=True, metadata={"description": "seconds"})

    class Meta:
        ordered = True


class GrantOutSchema(Schema):
    id = fields.Integer(required=True)
    client_id = fields.String(required=True)
    scope = fields.String(required=True)
    authorization_details = fields.List(fields.Nested(AuthorizationDetailSchema), required=True)
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

    class Meta:
        unknown = INCLUDE  # RFC 9457 §3.2: a problem type may add members of its own
