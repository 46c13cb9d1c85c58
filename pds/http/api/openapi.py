"""The OpenAPI 3 description of the business API (``/api/v1``) and the auditor API
(``/audit``), built with apispec from the marshmallow schemas, served at
``GET /api/v1/openapi.json`` (and shown at ``/api/docs``, ``pds.http.api.docs``).

It is the contract: every category's payload is a named component generated from its schema
in ``pds.payloads`` (so the two cannot drift), and a record is typed by its category (a
``oneOf`` discriminated by ``category``, see :func:`_categories`). Schemathesis checks the
running server against it (tests/http/api/test_schemathesis.py).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, jsonify

from pds import __version__
from pds.http.api.aggregates import BUCKETS, DEFAULT_BY, MEASURES, UNITS
from pds.http.api.audit import openapi_paths as audit_paths
from pds.http.api.receipts import OPERATIONS as RECEIPT_OPERATIONS
from pds.http.api.receipts import RECEIPT_RESPONSE
from pds.http.api.records import DEFAULT_LIMIT, MAX_LIMIT
from pds.http.api.schemas import (
    GrantOutSchema,
    ProblemSchema,
    RecordCreatedSchema,
    component,
)
from pds.http.api.subscriptions import openapi_paths
from pds.http.context import authorization_server
from pds.oauth.access import AUDIT_SCOPE
from pds.payloads import SCHEMAS, DecimalString, IsoDate
from pds.vocabulary import CATEGORIES

API = "/api/v1"

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


def _errors(*codes: int, about: dict[int, str] | None = None) -> dict[str, Any]:
    """The problem+json answers ``codes`` (their words from ``about`` where it has them).
    With 401, the answers every authenticated call can meet are added: 400 (an access token
    in the URL), 414 (a request line too long for the server), 429 and 503."""
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
        503: "vault_busy: another write holds the vault (an import), so nothing was done; "
        "try again after Retry-After seconds",
        **(about or {}),
    }
    if 401 in codes:
        codes = (*codes, *(c for c in (400, 429, 503) if c not in codes))
    answers = {str(c): {"description": words[c], "content": PROBLEM} for c in sorted(codes)}
    if 401 in codes:
        answers["414"] = URI_TOO_LONG
    return answers


URI_TOO_LONG = {
    "description": "the request line is longer than the server reads (gunicorn's "
    "limit_request_line, 4,094 bytes): gunicorn answers before pds sees the request, with an "
    "HTML page; shorten the query",
    "content": {"text/html": {"schema": {"type": "string"}}},
}
"""414 from the HTTP server in front of the app: any call can meet it with a long query."""


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


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


END_OF_TEXT = r"\Z"


def _anchored(converter: Any, field: Any, ret: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A field's pattern as JSON Schema reads it, the same as marshmallow does: marshmallow's
    ``Regexp`` matches from the start (``re.match``) and ends its patterns with Python's
    ``\\Z``, which ECMA 262 regular expressions (JSON Schema's) read as a literal ``Z``;
    JSON Schema searches anywhere. So: ``^(?:...)``, and ``$`` for a final ``\\Z``. A
    ``DecimalString`` gets its own pattern."""
    if isinstance(field, DecimalString):
        return {"pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
    pattern = ret.get("pattern")
    if pattern is None:
        return {}
    body = pattern.removesuffix(END_OF_TEXT)
    return {"pattern": f"^(?:{body})" + ("$" if body != pattern else "")}


def _categories(s: APISpec) -> None:
    """Each category's components (``pds.http.api.schemas.KINDS``), and ``Record`` and
    ``RecordIn``: a ``oneOf`` of the categories' records, discriminated by ``category``.

    A ``oneOf`` with a ``discriminator`` (and each branch's ``category`` an enum of one
    value, so that the branches exclude each other for any JSON Schema validator, the
    discriminator aside) is what openapi-generator, Swagger UI and Redoc render as one type
    per category, and what schemathesis checks answers against exactly."""
    for category in CATEGORIES:
        cls = SCHEMAS[category]
        payload, granted = component(category, "Payload"), component(category, "GrantedPayload")
        s.components.schema(payload, {"description": cls.__doc__}, schema=cls)
        s.components.schema(
            granted,
            {
                "description": f"A {category} payload as read: only the fields your grant and "
                f"the owner's policies let out, none required (the fields of {payload})."
            },
            schema=cls(partial=True),
        )
        one = {"type": "string", "enum": [category]}
        s.components.schema(
            component(category, "Record"),
            component={
                "type": "object",
                "required": ["id", "category", "occurred_at", "payload"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "integer"},
                    "category": one,
                    "occurred_at": {"type": "string", "description": "its date (or time)"},
                    "payload": _ref(granted),
                },
            },
        )
        s.components.schema(
            component(category, "RecordIn"),
            component={
                "type": "object",
                "required": ["category", "occurred_at", "payload"],
                "additionalProperties": False,
                "properties": {
                    "category": one,
                    "occurred_at": {"type": "string", "format": "date"},
                    "payload": _ref(payload),
                },
            },
        )
    for name, kind in (("Record", "Record"), ("RecordIn", "RecordIn")):
        s.components.schema(
            name,
            component={
                "oneOf": [_ref(component(c, kind)) for c in CATEGORIES],
                "discriminator": {
                    "propertyName": "category",
                    "mapping": {
                        c: f"#/components/schemas/{component(c, kind)}" for c in CATEGORIES
                    },
                },
            },
        )


@cache
def _build(issuer: str) -> dict[str, Any]:
    marshmallow = MarshmallowPlugin()
    metadata = f"{issuer}/.well-known/oauth-authorization-server"
    s = APISpec(
        title="pds API",
        version=__version__,
        openapi_version="3.0.3",
        plugins=[marshmallow],
        info={
            "description": "Read (and write back) the records an owner granted you "
            f"({API}), and check the vault's access log as an auditor (/audit). Access "
            f"tokens come from the vault's OAuth authorization server: {metadata}"
        },
        servers=[{"url": issuer}],
        externalDocs={"description": "OAuth authorization server metadata", "url": metadata},
    )
    # IsoDate takes only YYYY-MM-DD calendar dates: RFC 3339 full-date, OpenAPI's "date".
    marshmallow.map_to_openapi_type(IsoDate, "string", "date")
    marshmallow.converter.add_attribute_function(_anchored)
    s.components.security_scheme(
        "oauth2",
        {
            "type": "oauth2",
            "description": "Authorization code with PKCE (S256), RFC 9396 "
            f"authorization_details, refresh tokens that rotate; metadata: {metadata}",
            "flows": {
                "authorizationCode": {
                    "authorizationUrl": f"{issuer}/oauth/authorize",
                    "tokenUrl": f"{issuer}/oauth/token",
                    "refreshUrl": f"{issuer}/oauth/token",
                    "scopes": {
                        **{f"read:{c}": f"read {c}" for c in CATEGORIES},
                        **{f"write:{c}": f"add {c} records" for c in CATEGORIES},
                        **{f"aggregate:{c}": f"totals of {c}, never a record" for c in CATEGORIES},
                        AUDIT_SCOPE: "the access log, its checkpoints and proofs (no data)",
                    },
                }
            },
        },
    )
    for name, schema in (
        ("Problem", ProblemSchema),
        ("RecordCreated", RecordCreatedSchema),
        ("Grant", GrantOutSchema),
    ):
        s.components.schema(name, schema=schema)
    _categories(s)
    s.components.schema(
        "RecordPage",
        component={
            "type": "object",
            "required": ["records", "next_cursor"],
            "additionalProperties": False,
            "properties": {
                "records": {"type": "array", "items": _ref("Record")},
                "next_cursor": {
                    "type": "string",
                    "nullable": True,
                    "description": "pass as ?cursor= for the next page; null on the last page",
                },
            },
        },
    )
    s.components.schema("Aggregates", component=_AGGREGATES)
    s.components.schema("GrantReceipt", component=RECEIPT_RESPONSE)
    receipt = {
        m: {**o, "responses": {**_errors(401), **o["responses"]}}
        for m, o in RECEIPT_OPERATIONS.items()
    }
    business = {**_records_paths(), "/grant/receipt": receipt, **openapi_paths(_errors)}
    for path, operations in business.items():
        tag = TAGS[path.split("/")[1]]
        s.path(path=API + path, operations={m: {"tags": [tag], **o} for m, o in operations.items()})
    for path, operations in audit_paths(_errors).items():
        s.path(path=path, operations=operations)
    for name, description in TAG_WORDS.items():
        s.tag({"name": name, "description": description})
    return s.to_dict()


TAGS = {
    "records": "records",
    "grant": "grant",
    "aggregates": "totals",
    "subscriptions": "changes",
    "changes": "changes",
}
"""The tag of each business path, by its first segment (the auditor's are tagged auditor)."""
TAG_WORDS = {
    "records": "The records your grant covers, typed by category; and records you hand back",
    "totals": "Counts, sums and means by calendar cell, never a record",
    "changes": "What changed, as a feed and as webhooks",
    "grant": "Your grant and its signed consent receipt",
    "auditor": "The vault's access log, its signed checkpoints and RFC 9162 proofs "
    "(needs audit:read, which grants no data)",
}


def _records_paths() -> dict[str, dict[str, Any]]:
    """The records, aggregates and grant path items (under ``/api/v1``)."""
    day = {"type": "string", "format": "date"}
    return {
        "/records": {
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
        "/records/{record_id}": {
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
        "/aggregates": {
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
        "/grant": {
            "get": {
                "summary": "Your own grant, as your token may use it",
                "security": [{"oauth2": []}],
                "responses": {
                    "200": {"description": "the grant", "content": _json("Grant")},
                    **_errors(401),
                },
            }
        },
    }
