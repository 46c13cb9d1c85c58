"""Webhook subscriptions and the change feed of the profile and intentions (``/api/v1``).

- ``POST /subscriptions`` ``{"url": ..., "categories": ["profile"]}``: needs a live grant
  that reads every category named; ``url`` is https to a public host (400
  ``unsafe_webhook_url`` otherwise, see pds.webhooks.net). 201 with the id and the
  signing secret, shown this once.
- ``GET /subscriptions``, ``DELETE /subscriptions/<id>``: this grant's own.
- ``GET /changes?cursor=<opaque>&limit=<n>``: what was added, changed or forgotten in the
  categories the grant reads, in the order it happened in the vault (ids and counts, never
  payloads; see pds.profile.changes for what a grant sees), and ``next_cursor`` to go on.
- ``GET /changes?since=<seq>&limit=<n>`` (with ``since``): the earlier feed of the profile
  and intentions only, by field name (never values); a change touching only fields outside
  the grant is not listed.

Every route goes through ``api_call`` (one audit entry per call). See pds.webhooks.propagation
and pds.profile.changes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from flask import Blueprint, g, jsonify, request
from marshmallow import Schema, fields, validate
from marshmallow import ValidationError as MarshmallowError

from pds.db import transaction
from pds.errors import BadRequest, InsufficientScope, PolicyRefused, RateLimited, ValidationError
from pds.http.api.auth import api_call, audit_allowed, current_access
from pds.http.api.params import object_body, query_whole
from pds.http.context import current_vault
from pds.numbers import SQLITE_MAX
from pds.oauth.access import CategoryAccess
from pds.payloads import first_error, load_written
from pds.profile import changes as feed
from pds.vocabulary import CATEGORIES
from pds.webhooks import propagation as prop

MAX_CHANGES = 500
DEFAULT_CHANGES = 100
MAX_SEQ = SQLITE_MAX  # change sequence numbers are SQLite integers
SUBSCRIBABLE = tuple(sorted({*CATEGORIES, *feed.FEED_CATEGORIES}))
"""What a subscription may name: every category (profile and intentions by field name, the
others by ``records.*`` events)."""
BAD_CURSOR = "cursor is not one this API gave out for the change feed"


class SubscriptionInSchema(Schema):
    """``POST /api/v1/subscriptions``."""

    url = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    categories = fields.List(
        fields.String(
            validate=validate.OneOf(
                SUBSCRIBABLE, error="{input!r} is not a category of the vocabulary"
            )
        ),
        required=True,
        validate=validate.Length(min=1, max=len(SUBSCRIBABLE)),
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
        if "since" in request.args:
            return _profile_changes()
        after, limit = _cursor(), _int_arg("limit", 1, MAX_CHANGES, 0) or DEFAULT_CHANGES
        acc = current_access()
        if not any(acc.access.allows("read", c) for c in acc.access.categories):
            raise InsufficientScope("the grant does not allow reading any category", scope="read")
        conn = current_vault().conn
        found, last, more = feed.record_changes(conn, acc.grant, _reader(), after, limit)
        audit_allowed(count=len(found))
        return jsonify(changes=found, next_cursor=encode_cursor(last), more=more)


def _profile_changes() -> Any:
    """``GET /changes?since=``: the profile and intentions by field name."""
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


def encode_cursor(seq: int) -> str:
    """The opaque cursor that reads on after change ``seq``."""
    return base64.urlsafe_b64encode(f"changes:{seq}".encode()).rstrip(b"=").decode()


def _cursor() -> int:
    """The seq the ``cursor`` parameter reads on after (0: none or empty, from the start)."""
    text = request.args.get("cursor", "")
    if not text:
        return 0
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
        name, _, number = raw.partition(":")
        if name != "changes" or not number.isdigit() or number != str(int(number)):
            raise ValueError
        seq = int(number)
        if seq > MAX_SEQ:
            raise ValueError
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise BadRequest(
            BAD_CURSOR, hint="Pass next_cursor from the previous answer unchanged."
        ) from None
    return seq


def _reader() -> feed.Reader:
    """category -> what this call may read of it (the grant's part and the owner's earliest
    day), None when the grant or the owner's policies refuse it."""
    from pds.http.api.policy import enforce

    acc = current_access()
    cache: dict[str, tuple[CategoryAccess, str | None] | None] = {}

    def reader(category: str) -> tuple[CategoryAccess, str | None] | None:
        if category not in cache:
            allowed = acc.access.allows("read", category)
            cache[category] = None
            if allowed is not None:
                try:
                    decision = enforce("read", category, allowed.fields)
                except RateLimited:
                    raise
                except PolicyRefused:
                    return None
                earliest = decision.constraints.earliest
                cache[category] = (allowed, earliest.isoformat() if earliest else None)
        return cache[category]

    return reader


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
            "items": {"type": "string", "enum": list(SUBSCRIBABLE)},
            "description": "profile and intentions: a note of the changed field names; "
            "any other category: records.added, records.changed and records.forgotten",
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
_RECORD_CHANGE = {
    "type": "object",
    "required": ["seq", "at", "kind", "category", "first_id", "last_id", "count"],
    "properties": {
        "seq": {"type": "integer", "description": "the change's number, growing"},
        "at": {
            "type": "string",
            "format": "date-time",
            "description": "when it happened in the vault (not the records' dates)",
        },
        "kind": {"type": "string", "enum": list(feed.RECORD_KINDS)},
        "category": {"type": "string"},
        "first_id": {"type": "integer", "description": "the first record id concerned"},
        "last_id": {
            "type": "integer",
            "description": "the last record id concerned (ids between may be of other "
            "categories, or outside your grant)",
        },
        "count": {
            "type": "integer",
            "description": "how many records: for added and changed, those still held "
            "that your grant covers",
        },
    },
}
_RECORD_CHANGES = {
    "type": "object",
    "required": ["changes", "next_cursor", "more"],
    "properties": {
        "changes": {"type": "array", "items": _RECORD_CHANGE},
        "next_cursor": {
            "type": "string",
            "description": "pass as ?cursor= to read on (also when nothing was listed)",
        },
        "more": {"type": "boolean", "description": "true: read on now, more may follow"},
    },
}

_RECORDS_EVENT = {
    "type": "object",
    "required": ["type", *_RECORD_CHANGE["required"]],
    "properties": {
        "type": {
            "type": "string",
            "enum": [f"records.{kind}" for kind in feed.RECORD_KINDS],
        },
        **_RECORD_CHANGE["properties"],
    },
}
_EVENT = {
    "summary": "A change, signed as Standard Webhooks (Webhook-Id, Webhook-Timestamp, "
    "Webhook-Signature)",
    "description": "records.added (one per import and category), records.changed, "
    "records.forgotten for the categories other than profile and intentions; for these "
    "two, the names of the changed fields. Never a payload: fetch what you need from "
    "/records with your own token.",
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": [_RECORDS_EVENT, _CHANGES["properties"]["changes"]["items"]]}
            }
        },
    },
    "responses": {"2XX": {"description": "received; anything else is retried"}},
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
                "maxItems": len(SUBSCRIBABLE),
            },
        },
    }
    since = {
        "name": "since",
        "in": "query",
        "allowEmptyValue": True,
        "description": "the earlier feed of the profile and intentions by field name: "
        "changes after this seq (with it, cursor is ignored)",
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_SEQ, "default": 0},
    }
    cursor = {
        "name": "cursor",
        "in": "query",
        "allowEmptyValue": True,
        "description": "next_cursor of the previous answer (none: from when your grant began)",
        "schema": {"type": "string"},
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
                "summary": "Register a webhook for changes in categories your grant reads "
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
                "callbacks": {"change": {"{$request.body#/url}": {"post": _EVENT}}},
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
                "summary": "What was added, changed or forgotten in the categories your grant "
                "reads, in the order it happened (ids only: fetch the records from /records)",
                "security": sec,
                "parameters": [cursor, since, limit],
                "responses": {
                    "200": {
                        "description": "the changes: with cursor (or neither), records by "
                        "id; with since, the profile and intentions by field name",
                        "content": {
                            "application/json": {"schema": {"oneOf": [_RECORD_CHANGES, _CHANGES]}}
                        },
                    },
                    **errors(400, 401, 403),
                },
            }
        },
    }
