"""Webhook subscriptions and the change feed of the profile and intentions (``/api/v1``).

- ``POST /subscriptions`` ``{"url": ..., "categories": ["profile"]}``: needs a live grant
  that reads every category named; ``url`` is https to a public host (400
  ``unsafe_webhook_url`` otherwise, see pds.webhooks.net). 201 with the id and the
  signing secret, shown this once.
- ``GET /subscriptions``, ``DELETE /subscriptions/<id>``: this grant's own.
- ``GET /changes?since=<seq>&limit=<n>``: changes the caller's grant may see (field names,
  never values); a change touching only fields outside the grant is not listed.

Every route goes through ``api_call`` (one audit entry per call). See pds.webhooks.propagation
and pds.profile.changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, g, jsonify
from marshmallow import Schema, fields, validate
from marshmallow import ValidationError as MarshmallowError

from pds.db import transaction
from pds.errors import InsufficientScope, ValidationError
from pds.http.api.auth import api_call, audit_allowed, current_access
from pds.http.api.params import object_body, query_whole
from pds.http.context import current_vault
from pds.numbers import SQLITE_MAX
from pds.payloads import first_error, load_written
from pds.profile import changes as feed
from pds.webhooks import propagation as prop

MAX_CHANGES = 500
DEFAULT_CHANGES = 100
MAX_SEQ = SQLITE_MAX  # change sequence numbers are SQLite integers


class SubscriptionInSchema(Schema):
    """``POST /api/v1/subscriptions``."""

    url = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    categories = fields.List(
        fields.String(
            validate=validate.OneOf(
                feed.FEED_CATEGORIES,
                error="{input!r} has no change notifications; use profile or intentions",
            )
        ),
        required=True,
        validate=validate.Length(min=1, max=len(feed.FEED_CATEGORIES)),
    )


def register(bp: Blueprint) -> None:
    """Add the subscription and change-feed routes to ``bp``."""

    @bp.post("/subscriptions")
    @api_call("api.subscriptions.create")
    def create_subscription() -> Any:
        data = _body()
        acc = current_access()
        for category in data["categories"]:
            if acc.access.allows("read", category) is None:
                g.pds_category = category
                raise InsufficientScope(
                    f"the grant does not allow reading {category}", scope=f"read:{category}"
                )
        v = current_vault()
        # resolves the host (SSRF check) before taking the write lock; create checks again
        prop.check_url(data["url"], allow_private=v.settings.webhooks_allow_private)
        with transaction(v.conn):
            sub, secret = prop.create(v, acc.grant, data["url"], data["categories"])
            audit_allowed(count=1, detail={"subscription": sub.id})
        body = {**sub.as_dict(), "secret": secret}
        return body, 201, {"Location": f"/api/v1/subscriptions/{sub.id}"}

    @bp.get("/subscriptions")
    @api_call("api.subscriptions.read")
    def list_subscriptions() -> Any:
        subs = prop.for_grant(current_vault().conn, current_access().grant.id)
        audit_allowed(count=len(subs))
        return jsonify(subscriptions=[s.as_dict() for s in subs])

    @bp.delete("/subscriptions/<sub_id>")
    @api_call("api.subscriptions.delete")
    def delete_subscription(sub_id: str) -> Any:
        v = current_vault()
        with transaction(v.conn):
            prop.delete(v.conn, current_access().grant.id, sub_id)
            audit_allowed(count=1, detail={"subscription": sub_id})
        return "", 204

    @bp.get("/changes")
    @api_call("api.changes.read")
    def list_changes() -> Any:
        since, limit = _int_arg("since", 0, MAX_SEQ, 0), _int_arg("limit", 1, MAX_CHANGES, 0)
        acc = current_access()
        if not any(acc.access.allows("read", c) for c in feed.FEED_CATEGORIES):
            raise InsufficientScope(
                "the grant does not allow reading profile or intentions", scope="read:profile"
            )
        conn = current_vault().conn
        found = feed.changes(conn, acc.grant, _readable(), since, limit or DEFAULT_CHANGES)
        audit_allowed(count=len(found))
        last = found[-1]["seq"] if found else max(since, 0)
        return jsonify(changes=found, next_since=last)


def _readable() -> Callable[[str], tuple[str, ...] | None]:
    """category -> the field names this call may read (policy-redacted ones left out)."""
    from pds.http.api.policy import enforce
    from pds.vocabulary import category_fields

    acc = current_access()
    cache: dict[str, tuple[str, ...] | None] = {}

    def readable(category: str) -> tuple[str, ...] | None:
        if category not in cache:
            allowed = acc.access.allows("read", category)
            if allowed is None:
                cache[category] = None
            else:
                decision = enforce("read", category, allowed.fields)
                names = allowed.fields or category_fields(category) or ()
                hidden = decision.constraints.redacted_fields(category)
                cache[category] = tuple(n for n in names if n not in hidden)
        return cache[category]

    return readable


def _body() -> dict[str, Any]:
    try:
        return load_written(SubscriptionInSchema(), object_body())
    except MarshmallowError as exc:
        raise ValidationError(first_error(exc.messages)) from None


def _int_arg(name: str, lo: int, hi: int, default: int) -> int:
    value = query_whole(name, lo, hi, default)
    return default if value is None else value


# -- OpenAPI (pds.http.api.openapi adds these) -----------------------------------------------------

_SUBSCRIPTION = {
    "type": "object",
    "required": ["id", "url", "categories", "created_at"],
    "properties": {
        "id": {"type": "string", "example": "sub_3q2v9Xb0aH1kTt0w"},
        "url": {"type": "string", "format": "uri"},
        "categories": {
            "type": "array",
            "items": {"type": "string", "enum": list(feed.FEED_CATEGORIES)},
        },
        "created_at": {"type": "string", "format": "date-time"},
        "secret": {
            "type": "string",
            "description": "only in the POST answer: whsec_ + base64 of the HMAC-SHA256 key",
        },
    },
}
_SUBSCRIPTIONS = {
    "type": "object",
    "required": ["subscriptions"],
    "properties": {"subscriptions": {"type": "array", "items": _SUBSCRIPTION}},
}
_CHANGES = {
    "type": "object",
    "required": ["changes", "next_since"],
    "properties": {
        "changes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["seq", "category", "fields", "at"],
                "properties": {
                    "seq": {"type": "integer"},
                    "category": {"type": "string", "enum": list(feed.FEED_CATEGORIES)},
                    "fields": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "changed fields your grant may read (names, no values)",
                    },
                    "at": {"type": "string", "format": "date-time"},
                },
            },
        },
        "next_since": {"type": "integer", "description": "pass as ?since= next time"},
    },
}


def openapi_paths(errors: Callable[..., dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The OpenAPI path items of this module (``errors(*codes)`` gives the problem responses)."""
    sec = [{"oauth2": []}]
    one = {"application/json": {"schema": _SUBSCRIPTION}}
    body = {
        "type": "object",
        "required": ["url", "categories"],
        "properties": {
            "url": _SUBSCRIPTION["properties"]["url"],
            "categories": {
                **_SUBSCRIPTION["properties"]["categories"],
                "minItems": 1,
                "maxItems": len(feed.FEED_CATEGORIES),
            },
        },
    }
    since = {
        "name": "since",
        "in": "query",
        "allowEmptyValue": True,
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_SEQ, "default": 0},
    }
    limit = {
        "name": "limit",
        "in": "query",
        "allowEmptyValue": True,
        "schema": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_CHANGES,
            "default": DEFAULT_CHANGES,
        },
    }
    return {
        "/subscriptions": {
            "post": {
                "summary": "Register a webhook for changes to the profile or intentions "
                "(https to a public host); the secret is shown once",
                "security": sec,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                },
                "responses": {
                    "201": {"description": "subscribed", "content": one},
                    **errors(400, 401, 403, 422),
                },
            },
            "get": {
                "summary": "Your grant's subscriptions",
                "security": sec,
                "responses": {
                    "200": {
                        "description": "the subscriptions",
                        "content": {"application/json": {"schema": _SUBSCRIPTIONS}},
                    },
                    **errors(401),
                },
            },
        },
        "/subscriptions/{sub_id}": {
            "delete": {
                "summary": "Stop one of your subscriptions",
                "security": sec,
                "parameters": [
                    {"name": "sub_id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "204": {"description": "stopped"},
                    **errors(401, 404, about={404: "no such subscription of your grant"}),
                },
            }
        },
        "/changes": {
            "get": {
                "summary": "Changes to the profile and intentions your grant may see, oldest "
                "first (field names only: fetch the values from /records)",
                "security": sec,
                "parameters": [since, limit],
                "responses": {
                    "200": {
                        "description": "the changes",
                        "content": {"application/json": {"schema": _CHANGES}},
                    },
                    **errors(400, 401, 403),
                },
            }
        },
    }
