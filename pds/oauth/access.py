"""What a business asks for and what the owner approves: one model for scopes and RAR.

A request arrives as ``scope`` (``read:<category>``, ``write:<category>``,
``aggregate:<category>`` (totals only, never a record), ``audit:read``)
and/or RFC 9396 ``authorization_details`` items of type ``pds_records``. Both are turned into
one :class:`Access`: per category the actions, the fields (None: every field) and the time
range, plus the purpose, the expiry and whether the access log may be read. Items naming the
same category are merged (their union). The consent page shows an ``Access``; the owner can
only narrow it (:func:`narrow`); the grant stores the approved ``Access``.

Fields and the time range limit what is *read* (and totalled); a ``write`` lets the business
add records of that category (validated by the category's schema). ``purpose`` must be one of
the DPV terms in ``pds.policy.PURPOSES``. The owner's policies then narrow an ``Access``
further (``pds.oauth.policy``).

authlib has no RAR support: parsing and validation live here, on the marshmallow schema
``pds.schemas.PdsRecordsDetailSchema``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from marshmallow import ValidationError as MarshmallowError

from pds import jsonbody
from pds.errors import ValidationError
from pds.jsonbody import TooDeep
from pds.numbers import TooManyDigits
from pds.policy.purposes import PURPOSES
from pds.schemas import (
    ACTIONS,
    CATEGORIES,
    MAX_GRANT_SECONDS,
    RAR_TYPE,
    PdsRecordsDetailSchema,
    category_fields,
    first_error,
)

AUDIT_SCOPE = "audit:read"
DEFAULT_GRANT_SECONDS = 90 * 24 * 3600
MAX_DETAILS = 20
MAX_DETAILS_BYTES = 16384
READ_ACTIONS = frozenset({"read", "aggregate"})  # the actions that fields and time range limit


def all_scopes() -> list[str]:
    """Every scope pds knows, in a stable order (advertised as ``scopes_supported``)."""
    return [f"{a}:{c}" for c in CATEGORIES for a in ACTIONS] + [AUDIT_SCOPE]


class AccessError(ValidationError):
    """Malformed scope or ``authorization_details`` (RFC 9396 ``invalid_authorization_details``)."""

    code = "invalid_authorization_details"


@dataclass(frozen=True)
class CategoryAccess:
    category: str
    actions: frozenset[str]
    fields: tuple[str, ...] | None = None
    time_from: str | None = None
    time_to: str | None = None

    def covers_time(self, occurred_at: str) -> bool:
        day = occurred_at[:10]
        if self.time_from and day < self.time_from:
            return False
        return not (self.time_to and day > self.time_to)

    def filter_payload(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        if self.fields is None:
            return dict(payload)
        return {k: v for k, v in payload.items() if k in self.fields}

    @property
    def reads(self) -> bool:
        """Whether this covers reading (``read`` or ``aggregate``): only then do the fields
        and the time range mean anything."""
        return bool(self.actions & READ_ACTIONS)

    def merged(self, other: CategoryAccess) -> CategoryAccess:
        """The union of two requests for one category. Fields and time range are the union of
        what the *reading* sides asked: a write-only side limits nothing and widens nothing."""
        actions = self.actions | other.actions
        if not other.reads:
            return replace(self, actions=actions)
        if not self.reads:
            return replace(other, actions=actions)
        fields_ = (
            None
            if self.fields is None or other.fields is None
            else tuple(dict.fromkeys(self.fields + other.fields))
        )
        return CategoryAccess(
            self.category,
            actions,
            fields_,
            None
            if not self.time_from or not other.time_from
            else min(self.time_from, other.time_from),
            None if not self.time_to or not other.time_to else max(self.time_to, other.time_to),
        )


@dataclass(frozen=True)
class Access:
    """What a grant covers (requested, or approved by the owner)."""

    categories: dict[str, CategoryAccess] = field(default_factory=dict)
    audit: bool = False
    purpose: str | None = None
    expires_in: int = DEFAULT_GRANT_SECONDS

    @property
    def empty(self) -> bool:
        return not self.audit and not any(c.actions for c in self.categories.values())

    def scopes(self) -> list[str]:
        out = [
            f"{a}:{name}" for name, c in self.categories.items() for a in ACTIONS if a in c.actions
        ]
        if self.audit:
            out.append(AUDIT_SCOPE)
        return out

    @property
    def scope(self) -> str:
        return " ".join(self.scopes())

    def allows(self, action: str, category: str) -> CategoryAccess | None:
        c = self.categories.get(category)
        return c if c is not None and action in c.actions else None

    def restricted_to(self, scopes: Iterable[str]) -> Access:
        """This access cut down to the given scopes (a token's scope may be narrower)."""
        allowed = set(scopes)
        cats = {}
        for name, c in self.categories.items():
            actions = frozenset(a for a in c.actions if f"{a}:{name}" in allowed)
            if actions:
                cats[name] = replace(c, actions=actions)
        return replace(self, categories=cats, audit=self.audit and AUDIT_SCOPE in allowed)

    def authorization_details(self) -> list[dict[str, Any]]:
        """The RFC 9396 form: one ``pds_records`` item per category (as in token responses)."""
        items = []
        for c in self.categories.values():
            item: dict[str, Any] = {
                "type": RAR_TYPE,
                "actions": [a for a in ACTIONS if a in c.actions],
                "categories": [c.category],
            }
            if c.fields is not None:
                item["fields"] = list(c.fields)
            if c.time_from or c.time_to:
                item["time_range"] = {
                    k: v for k, v in (("from", c.time_from), ("to", c.time_to)) if v
                }
            if self.purpose:
                item["purpose"] = self.purpose
            item["expires_in"] = self.expires_in
            items.append(item)
        return items

    def to_json(self) -> str:
        return json.dumps(
            {
                "categories": [
                    {
                        "category": c.category,
                        "actions": sorted(c.actions),
                        "fields": list(c.fields) if c.fields is not None else None,
                        "from": c.time_from,
                        "to": c.time_to,
                    }
                    for c in self.categories.values()
                ],
                "audit": self.audit,
                "purpose": self.purpose,
                "expires_in": self.expires_in,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Access:
        doc = json.loads(text)
        cats = {
            c["category"]: CategoryAccess(
                c["category"],
                frozenset(c["actions"]),
                tuple(c["fields"]) if c["fields"] is not None else None,
                c["from"],
                c["to"],
            )
            for c in doc["categories"]
        }
        return cls(cats, doc["audit"], doc["purpose"], doc["expires_in"])


def unknown_purpose(n: int, purpose: str) -> str:
    return (
        f"authorization_details[{n}].purpose: {purpose!r} is not a purpose pds knows; "
        "use a W3C DPV purpose term such as 'dpv:ServiceProvision' (see docs/oauth.md)"
    )


def _add(cats: dict[str, CategoryAccess], item: CategoryAccess) -> None:
    old = cats.get(item.category)
    cats[item.category] = old.merged(item) if old else item


def _ordered(cats: dict[str, CategoryAccess]) -> dict[str, CategoryAccess]:
    return {name: cats[name] for name in CATEGORIES if name in cats}


def parse_request(scope: str | None, authorization_details: str | None) -> Access:
    """The access a request asks for; AccessError says what is malformed.

    ``scope`` has already been checked against ``scopes_supported`` by authlib.
    """
    cats: dict[str, CategoryAccess] = {}
    audit = False
    for s in (scope or "").split():
        if s == AUDIT_SCOPE:
            audit = True
            continue
        action, _, category = s.partition(":")
        if action not in ACTIONS or category not in CATEGORIES:
            raise AccessError(f"unknown scope {s!r}")
        _add(cats, CategoryAccess(category, frozenset({action})))
    purposes: set[str] = set()
    expiries: list[int] = []
    if authorization_details is not None:
        try:
            if len(authorization_details) > MAX_DETAILS_BYTES:
                raise ValueError
            items = jsonbody.loads(authorization_details)
        except TooDeep as exc:
            raise AccessError(
                f"authorization_details is JSON nested more than {exc.limit} levels deep"
            ) from None
        except TooManyDigits as exc:
            raise AccessError(f"authorization_details: {exc}") from None
        except ValueError:
            raise AccessError(
                f"authorization_details is not valid JSON of at most {MAX_DETAILS_BYTES} bytes"
            ) from None
        if not isinstance(items, list) or not items:
            raise AccessError("authorization_details must be a non-empty JSON array")
        if len(items) > MAX_DETAILS:
            raise AccessError(f"authorization_details may hold at most {MAX_DETAILS} items")
        schema = PdsRecordsDetailSchema()
        for n, raw in enumerate(items):
            if not isinstance(raw, dict):
                raise AccessError(f"authorization_details[{n}] is not a JSON object")
            if raw.get("type") != RAR_TYPE:
                raise AccessError(
                    f"authorization_details[{n}]: unsupported type {raw.get('type')!r}; "
                    f"pds supports {RAR_TYPE!r}"
                )
            try:
                item = schema.load(raw)
            except MarshmallowError as exc:
                raise AccessError(
                    f"authorization_details[{n}].{first_error(exc.messages)}"
                ) from None
            tr = item["time_range"] or {}
            actions = frozenset(item["actions"])
            reads = bool(actions & READ_ACTIONS)  # fields and time limit reading only
            for category in item["categories"]:
                _add(
                    cats,
                    CategoryAccess(
                        category,
                        actions,
                        tuple(item["fields_"]) if reads and item["fields_"] is not None else None,
                        tr.get("from_") if reads else None,
                        tr.get("to") if reads else None,
                    ),
                )
            if item["purpose"] is not None:
                if item["purpose"] not in PURPOSES:
                    raise AccessError(unknown_purpose(n, item["purpose"]))
                purposes.add(item["purpose"])
            if item["expires_in"] is not None:
                expiries.append(item["expires_in"])
    if len(purposes) > 1:
        raise AccessError("all pds_records items of one request must state the same purpose")
    access = Access(
        _ordered(cats),
        audit,
        purposes.pop() if purposes else None,
        min(expiries) if expiries else DEFAULT_GRANT_SECONDS,
    )
    if access.empty:
        raise AccessError("the request asks for nothing: send a scope or authorization_details")
    return access


def _day(value: str, what: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValidationError(f"{what} {value!r} is not a date like 2025-01-31") from None


def narrow(requested: Access, form: Mapping[str, Any]) -> Access:
    """The owner's decision on the consent form, never wider than ``requested``.

    ``form`` is a MultiDict with ``item`` (``read:<category>``, ``write:<category>``,
    ``audit:read``; ticked ones), ``field.<category>`` (ticked fields), ``from.<category>`` /
    ``to.<category>`` (YYYY-MM-DD) and ``expires_days``. Values outside the request are
    ignored or clamped to it.
    """
    ticked = set(form.getlist("item"))  # type: ignore[attr-defined]
    cats: dict[str, CategoryAccess] = {}
    for name, req in requested.categories.items():
        actions = frozenset(a for a in req.actions if f"{a}:{name}" in ticked)
        if not actions:
            continue
        fields_ = req.fields
        known = req.fields if req.fields is not None else category_fields(name)
        if "read" in actions and known is not None:
            chosen = tuple(f for f in known if f in set(form.getlist(f"field.{name}")))  # type: ignore[attr-defined]
            if not chosen:
                raise ValidationError(
                    f"no field of {name} is ticked",
                    hint=f"Tick at least one field, or untick reading {name}.",
                )
            fields_ = None if req.fields is None and chosen == known else chosen
        t_from, t_to = req.time_from, req.time_to
        if raw := (form.get(f"from.{name}") or "").strip():
            day = _day(raw, "the start date")
            t_from = max(t_from, day) if t_from else day
        if raw := (form.get(f"to.{name}") or "").strip():
            day = _day(raw, "the end date")
            t_to = min(t_to, day) if t_to else day
        if t_from and t_to and t_from > t_to:
            raise ValidationError(
                f"the time range for {name} starts after it ends",
                hint="Choose a start date on or before the end date.",
            )
        cats[name] = CategoryAccess(name, actions, fields_, t_from, t_to)
    expires_in = requested.expires_in
    if raw := (form.get("expires_days") or "").strip():
        try:
            days = int(raw)
        except ValueError:
            raise ValidationError(f"{raw!r} is not a number of days") from None
        if days < 1:
            raise ValidationError("the grant must last at least one day")
        expires_in = min(expires_in, days * 86400, MAX_GRANT_SECONDS)
    return replace(
        requested,
        categories=cats,
        audit=requested.audit and AUDIT_SCOPE in ticked,
        expires_in=expires_in,
    )
