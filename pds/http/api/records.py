"""The records endpoints of ``/api/v1`` (read, and write back) and the caller's grant.

Thin: parse (marshmallow), ask the grant (``pds.http.api.auth``), call the vault, render. Every
error is ``application/problem+json`` (``pds.http.errors``). A record outside the grant answers
exactly as a record that does not exist.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import date, timedelta
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from marshmallow import ValidationError as MarshmallowError

from pds.db import transaction
from pds.errors import BadRequest, InsufficientScope, NotFound, ValidationError
from pds.http.api.auth import api_call, audit_allowed, current_access
from pds.http.api.params import object_body, query_day, query_whole
from pds.http.api.policy import enforce
from pds.http.api.schemas import RecordInSchema
from pds.http.context import current_vault
from pds.payloads import first_error, load_written, schema_for
from pds.policy import Decision
from pds.profile import intentions
from pds.vocabulary import CATEGORIES

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
NO_SUCH_RECORD = "there is no record with this id that your grant covers"


def _limit() -> int:
    # An empty limit is refused, as before (only the date parameters may be empty).
    return query_whole("limit", 1, MAX_LIMIT, None) or DEFAULT_LIMIT


def encode_cursor(category: str, occurred_at: str, record_id: int) -> str:
    raw = json.dumps([category, occurred_at, record_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, category: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cat, occurred_at, record_id = json.loads(raw)
        if cat != category or not isinstance(occurred_at, str) or type(record_id) is not int:
            raise ValueError
        if not 0 < record_id < 2**63:
            raise ValueError
        # A stored occurred_at is ASCII and starts with a date (``0001-01-01`` when undated).
        if not (occurred_at.isascii() and len(occurred_at) <= 64):
            raise ValueError
        date.fromisoformat(occurred_at[:10])
    except (ValueError, TypeError, binascii.Error):
        raise BadRequest(
            "cursor is not one this API gave out for this category",
            hint="Pass next_cursor from the previous page unchanged, with the same category.",
        ) from None
    return occurred_at, record_id


def _next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def register(bp: Blueprint) -> None:
    """Add the records and grant endpoints to the API's blueprint, and the removal of expired
    intentions before a records read (an intention past its last day is never served)."""

    @bp.before_request
    def _expire_intentions() -> None:
        if request.endpoint in ("api.list_records", "api.get_record"):
            intentions.remove_expired(current_vault())

    bp.add_url_rule("/records", view_func=list_records, methods=["GET"])
    bp.add_url_rule("/records/<lookup_id:record_id>", view_func=get_record, methods=["GET"])
    bp.add_url_rule("/records", view_func=add_record, methods=["POST"])
    bp.add_url_rule("/grant", view_func=show_grant, methods=["GET"])


@api_call("api.records.read")
def list_records() -> Any:
    """One page of one category, oldest first, cut down to the grant."""
    category = request.args.get("category")
    if not category:
        raise BadRequest("category is required", hint=f"One of: {', '.join(CATEGORIES)}.")
    if category not in CATEGORIES:
        raise BadRequest(
            f"{category!r} is not a category", hint=f"One of: {', '.join(CATEGORIES)}."
        )
    g.pds_category = category
    allowed = current_access().access.allows("read", category)
    if allowed is None:
        raise InsufficientScope(
            f"the grant does not allow reading {category}", scope=f"read:{category}"
        )
    since, until = query_day("since"), query_day("until")
    limit = _limit()
    cursor = request.args.get("cursor")
    after = decode_cursor(cursor, category) if cursor else None
    lo = max(d for d in (since, allowed.time_from) if d) if since or allowed.time_from else None
    hi = min(d for d in (until, allowed.time_to) if d) if until or allowed.time_to else None
    decision = enforce("read", category, allowed.fields, _as_date(lo), _as_date(hi))
    lo = _as_iso(decision.constraints.clip_since(_as_date(lo)))
    # Nothing cut from the payloads: pass their stored canonical JSON on without parsing it.
    whole = allowed.fields is None and not decision.constraints.redacted_fields(category)
    records: list = []
    if not (lo and hi and lo > hi):
        fetch = current_vault().page_plain if whole else current_vault().page
        records = fetch(
            category,
            since=lo,
            until=_next_day(hi) if hi else None,
            after=after,
            limit=limit + 1,
        )
    more = len(records) > limit
    records = records[:limit]
    audit_allowed(category=category, count=len(records), span=_span(records, whole))
    if whole:
        last_id, last_at = (records[-1][0], records[-1][1]) if records else (0, "")
        cursor = encode_cursor(category, last_at, last_id) if more and records else None
        return _spliced(category, records, cursor)
    last = records[-1] if records else None
    return jsonify(
        records=[_out(r, allowed, decision) for r in records],
        next_cursor=encode_cursor(category, last.occurred_at, last.id) if more and last else None,
    )


def _span(records: list, whole: bool) -> list[list[Any]] | None:
    """The page's first and last ``[occurred_at, id]`` keys, for its audit entry: a page is
    the run of the category's records between them in (occurred_at, id) order, so the
    entry tells which records were read without listing them (None for an empty page)."""
    if not records:
        return None
    if whole:  # (id, occurred_at, payload) rows
        return [[records[0][1], records[0][0]], [records[-1][1], records[-1][0]]]
    return [[records[0].occurred_at, records[0].id], [records[-1].occurred_at, records[-1].id]]


def _spliced(category: str, records: list[tuple[int, str, bytes]], cursor: str | None) -> Any:
    """The page as ``jsonify`` would write it (keys sorted, compact), the payloads' stored
    canonical JSON (sorted keys, compact, UTF-8) spliced in as they are."""
    cat = json.dumps(category).encode()
    items = b",".join(
        b'{"category":%s,"id":%d,"occurred_at":%s,"payload":%s}'
        % (cat, rid, json.dumps(occurred_at).encode(), plain)
        for rid, occurred_at, plain in records
    )
    body = b'{"next_cursor":%s,"records":[%s]}\n' % (json.dumps(cursor).encode(), items)
    return current_app.response_class(body, mimetype="application/json")


def _as_date(day: str | None) -> date | None:
    return date.fromisoformat(day) if day else None


def _as_iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _out(record: Any, allowed: Any, decision: Decision) -> dict[str, Any]:
    payload = allowed.filter_payload(record.payload)
    if decision.constraints.redacted:  # fields the owner's policies withhold
        payload = decision.constraints.redact(record.category, payload)
    return {
        "id": record.id,
        "category": record.category,
        "occurred_at": record.occurred_at,
        "payload": payload,
    }


@api_call("api.records.read")
def get_record(record_id: int) -> Any:
    """One record, if the grant covers it; otherwise exactly as if it did not exist."""
    if record_id >= 2**63:
        raise NotFound(NO_SUCH_RECORD)
    try:
        record = current_vault().get(record_id)
    except NotFound:
        raise NotFound(NO_SUCH_RECORD) from None
    allowed = current_access().access.allows("read", record.category)
    if allowed is None or not allowed.covers_time(record.occurred_at):
        raise NotFound(NO_SUCH_RECORD)
    decision = enforce("read", record.category, allowed.fields)
    earliest = decision.constraints.earliest
    if earliest is not None and record.occurred_at[:10] < earliest.isoformat():
        raise NotFound(NO_SUCH_RECORD)  # older than the policies let out: as if not there
    audit_allowed(category=record.category, count=1, record=record.id)
    return jsonify(_out(record, allowed, decision))


IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")


def _idempotency_key() -> str | None:
    """The ``Idempotency-Key`` header (1-255 printable ASCII characters), if sent."""
    sent = request.headers.get("Idempotency-Key")
    if sent is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(sent):
        raise BadRequest(
            "the Idempotency-Key header must be 1 to 255 printable ASCII characters",
            hint="Send a new random key (e.g. a UUID) with each new record.",
        )
    return sent


@api_call("api.records.write")
def add_record() -> Any:
    """A business hands a record back to the person (needs ``write:<category>``)."""
    idempotency_key = _idempotency_key()
    body = object_body()
    try:
        data = RecordInSchema().load(body)
    except MarshmallowError as exc:
        raise ValidationError(first_error(exc.messages)) from None
    category = g.pds_category = data["category"]
    acc = current_access()
    if acc.access.allows("write", category) is None:
        raise InsufficientScope(
            f"the grant does not allow adding {category}", scope=f"write:{category}"
        )
    enforce("write", category)
    schema = schema_for(category)
    if schema is None:
        raise ValidationError(f"pds cannot accept {category} records yet: it has no schema")
    try:
        payload = load_written(schema, data["payload"])
    except MarshmallowError as exc:
        raise ValidationError(f"payload.{first_error(exc.messages)}") from None
    vault = current_vault()
    with transaction(vault.conn):
        record_id, created = vault.add_record(
            category,
            data["occurred_at"],
            payload,
            source=acc.actor,
            idempotency_key=idempotency_key,
        )
        audit_allowed(category=category, count=1 if created else 0)
    body = {
        "id": record_id,
        "category": category,
        "occurred_at": data["occurred_at"],
        "created": created,
    }
    if created:
        return body, 201, {"Location": f"/api/v1/records/{record_id}"}
    return body, 200


@api_call("api.grant.read")
def show_grant() -> Any:
    """The caller's own grant, as its token may use it."""
    acc = current_access()
    body = acc.grant.as_dict()
    body["scope"] = acc.token.scope
    body["authorization_details"] = acc.access.authorization_details()
    body.pop("revoked_at")
    return jsonify(body)
