"""The OpenAPI 3 description of ``/api/v1``, built with apispec from the marshmallow schemas,
served at ``GET /api/v1/openapi.json``."""

from __future__ import annotations

from functools import cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, jsonify

from pds import __version__
from pds.http.api.aggregates import BUCKETS, DEFAULT_BY, MEASURES, UNITS
from pds.http.api.receipts import OPERATIONS as RECEIPT_OPERATIONS
from pds.http.api.receipts import RECEIPT_RESPONSE
from pds.http.api.records import DEFAULT_LIMIT, MAX_LIMIT
from pds.http.api.schemas import (
    GrantOutSchema,
    ProblemSchema,
    RecordCreatedSchema,
    RecordInSchema,
    RecordOutSchema,
    RecordPageSchema,
)
from pds.http.api.subscriptions import openapi_paths
from pds.http.context import authorization_server
from pds.payloads import IsoDate
from pds.vocabulary import CATEGORIES

_AGGREGATES = {
    "type": "object",
    "required": [
        "category", "measure", "field", "by", "since", "until", "min_bucket", "per", "buckets",
        "suppressed",
    ],
    "properties": {
        "category": {"type": "string"},
        "measure": {"type": "string", "enum": list(MEASURES)},
        "field": {"type": "string", "nullable": True},
        "by": {"type": "string", "enum": list(BUCKETS)},
        "since": {"type": "string", "format": "date", "nullable": True},
        "until": {"type": "string", "format": "date", "nullable": True},
        "min_bucket": {"type": "integer", "description": "k: smaller buckets are left out"},
        "per": {
            "type": "string",
            "enum": sorted(set(UNITS.values())),
            "nullable": True,
            "description": "sums and means are per value of this field (never added across "
            "currencies or units): each bucket names it; null for count",
        },
        "buckets": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["bucket", "count", "value"],
                "properties": {
                    "bucket": {"type": "string", "example": "2024-03"},
                    "currency": {
                        "type": "string",
                        "nullable": True,
                        "example": "GBP",
                        "description": "when per is currency: the currency of this bucket's "
                        "records (null: records that name none)",
                    },
                    "unit": {
                        "type": "string",
                        "example": "kWh",
                        "description": "when per is unit: the unit of this bucket's records",
                    },
                    "count": {"type": "integer"},
                    "value": {
                        "description": "an integer for count; a decimal string for sum and mean",
                        "oneOf": [{"type": "integer"}, {"type": "string"}],
                    },
                },
            },
        },
        "suppressed": {"type": "integer", "description": "buckets left out (fewer than k)"},
    },
}  # fmt: skip

PROBLEM = {"application/problem+json": {"schema": "Problem"}}

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
    "description": "a new key (e.g. a UUID) for each new record. The same key with the same "
    "record answers the first answer again (200, created false); with a different record, "
    "422 idempotency_key_reused and nothing stored. Keys are per client. Without a key, "
    "the same category, occurred_at and payload again is the same record.",
}


def _errors(*codes: int) -> dict[str, Any]:
    words = {
        400: "malformed request, or an access token in the URL",
        401: "missing, unknown, expired or revoked access token (see WWW-Authenticate)",
        403: "insufficient_scope: the grant does not cover this; or policy_refused: the "
        "owner's sharing policies refuse it (the detail gives their reason)",
        404: "no such record, or one outside the grant (the two are indistinguishable)",
        422: "validation_error: the record does not match its category's schema; or "
        "idempotency_key_reused: the Idempotency-Key was already used with another record",
        429: "rate_limited: the owner's policies allow no more requests from you today "
        "(Retry-After: seconds to 00:00 UTC); or too_many_refusals: too many calls without a "
        "valid access token from your address (Retry-After: seconds until that ends)",
    }
    if 401 in codes and 429 not in codes:  # every authenticated call can meet the latter
        codes = (*codes, 429)
    return {str(c): {"description": words[c], "content": PROBLEM} for c in codes}


# The server reads dates with pds.http.api.params.query_day: YYYY-MM-DD, an empty value = absent.
_INCLUSIVE = {"allowEmptyValue": True, "description": "inclusive"}


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def register(bp: Blueprint) -> None:
    """Add ``GET /openapi.json`` to the API's blueprint."""
    bp.add_url_rule("/openapi.json", view_func=openapi, methods=["GET"])


def openapi() -> Any:
    return jsonify(spec())


def spec() -> dict[str, Any]:
    issuer = authorization_server().issuer
    return _build(issuer)


@cache
def _build(issuer: str) -> dict[str, Any]:
    marshmallow = MarshmallowPlugin()
    s = APISpec(
        title="pds records API",
        version=__version__,
        openapi_version="3.0.3",
        plugins=[marshmallow],
        info={"description": "Read (and write back) the records an owner granted you."},
        servers=[{"url": f"{issuer}/api/v1"}],
    )
    # IsoDate takes only YYYY-MM-DD calendar dates: RFC 3339 full-date, OpenAPI's "date".
    marshmallow.map_to_openapi_type(IsoDate, "string", "date")
    s.components.security_scheme(
        "oauth2",
        {
            "type": "oauth2",
            "flows": {
                "authorizationCode": {
                    "authorizationUrl": f"{issuer}/oauth/authorize",
                    "tokenUrl": f"{issuer}/oauth/token",
                    "refreshUrl": f"{issuer}/oauth/token",
                    "scopes": {
                        **{f"read:{c}": f"read {c}" for c in CATEGORIES},
                        **{f"write:{c}": f"add {c} records" for c in CATEGORIES},
                        **{f"aggregate:{c}": f"totals of {c}, never a record" for c in CATEGORIES},
                    },
                }
            },
        },
    )
    for name, schema in (
        ("Problem", ProblemSchema),
        ("Record", RecordOutSchema),
        ("RecordPage", RecordPageSchema),
        ("RecordIn", RecordInSchema),
        ("RecordCreated", RecordCreatedSchema),
        ("Grant", GrantOutSchema),
    ):
        s.components.schema(name, schema=schema)
    s.components.schema("Aggregates", component=_AGGREGATES)
    day = {"type": "string", "format": "date"}
    s.path(
        path="/records",
        operations={
            "get": {
                "summary": "One page of one category's records, oldest first",
                "security": [{"oauth2": []}],
                "parameters": [
                    {
                        "name": "category",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "enum": list(CATEGORIES)},
                    },
                    {"name": "since", "in": "query", "schema": day, **_INCLUSIVE},
                    {"name": "until", "in": "query", "schema": day, **_INCLUSIVE},
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_LIMIT,
                            "default": DEFAULT_LIMIT,
                        },
                    },
                ],
                "responses": {
                    "200": {"description": "a page", "content": _json("RecordPage")},
                    **_errors(400, 401, 403),
                },
            },
            "post": {
                "summary": "Hand a record back to the person (needs write:<category>)",
                "security": [{"oauth2": []}],
                "parameters": [IDEMPOTENCY_KEY],
                "requestBody": {"required": True, "content": _json("RecordIn")},
                "responses": {
                    "201": {"description": "stored", "content": _json("RecordCreated")},
                    "200": {"description": "already there", "content": _json("RecordCreated")},
                    **_errors(400, 401, 403, 422),
                },
            },
        },
    )
    s.path(
        path="/records/{record_id}",
        operations={
            "get": {
                "summary": "One record the grant covers",
                "security": [{"oauth2": []}],
                "parameters": [
                    {
                        "name": "record_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    }
                ],
                "responses": {
                    "200": {"description": "the record", "content": _json("Record")},
                    **_errors(401, 404),
                },
            }
        },
    )
    s.path(
        path="/aggregates",
        operations={
            "get": {
                "summary": "Counts, sums or means of one category by calendar cell; buckets "
                "of fewer than min_bucket records are left out (needs aggregate:<category> or "
                "read:<category>)",
                "security": [{"oauth2": []}],
                "parameters": [
                    {
                        "name": "category",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "enum": list(CATEGORIES)},
                    },
                    {
                        "name": "measure",
                        "in": "query",
                        "schema": {"type": "string", "enum": list(MEASURES), "default": "count"},
                    },
                    {
                        "name": "field",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "a decimal field (e.g. amount); required for sum and mean",
                    },
                    {
                        "name": "by",
                        "in": "query",
                        "schema": {"type": "string", "enum": list(BUCKETS), "default": DEFAULT_BY},
                    },
                    {
                        "name": "since",
                        "in": "query",
                        "schema": day,
                        "allowEmptyValue": True,
                        "description": "inclusive; moved forward to the start of a whole bucket",
                    },
                    {
                        "name": "until",
                        "in": "query",
                        "schema": day,
                        "allowEmptyValue": True,
                        "description": "inclusive; moved back to the end of a whole bucket",
                    },
                ],
                "responses": {
                    "200": {"description": "the totals", "content": _json("Aggregates")},
                    **_errors(400, 401, 403, 429),
                },
            }
        },
    )
    s.path(
        path="/grant",
        operations={
            "get": {
                "summary": "Your own grant, as your token may use it",
                "security": [{"oauth2": []}],
                "responses": {
                    "200": {"description": "the grant", "content": _json("Grant")},
                    **_errors(401),
                },
            }
        },
    )
    s.components.schema("GrantReceipt", component=RECEIPT_RESPONSE)
    s.path(path="/grant/receipt", operations=RECEIPT_OPERATIONS)
    for path, operations in openapi_paths(_errors).items():
        s.path(path=path, operations=operations)
    return s.to_dict()
