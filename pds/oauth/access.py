"""What a business asks for and what the owner approves: one model for scopes and RAR.

A request arrives as ``scope`` (``read:<category>``, ``write:<category>``,
``aggregate:<category>`` (totals only, never a record), ``audit:read``)
and/or RFC 9396 ``authorization_details`` items of type ``pds_records``. Both are turned into
one :class:`Access`: per category the actions, the fields (None: every field) and the time
range, plus the purpose, the expiry and whether the access log may be read. Items naming the
same category are merged per action (their union). The consent page shows an ``Access``; the
owner can only narrow it (:func:`narrow`); the grant stores the approved ``Access``.

Fields and the time range of ``read`` items limit what is read per record; those of
``aggregate`` items limit what is totalled, kept apart (``CategoryAccess.totals``) when they
differ, so an ``aggregate`` item never widens what may be read per record. A ``write`` lets
the business add records of that category (validated by the category's schema).
``purpose`` must be one of the DPV terms in ``pds.policy.PURPOSES``. The owner's policies
then narrow an ``Access`` further (``pds.oauth.policy``).

authlib has no RAR support: parsing and validation live here, on the marshmallow schema
``pds.oauth.details.PdsRecordsDetailSchema``.
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
from pds.oauth.details import MAX_GRANT_SECONDS, RAR_TYPE, PdsRecordsDetailSchema
from pds.payloads import first_error
from pds.policy.purposes import PURPOSES
from pds.vocabulary import ACTIONS, CATEGORIES, LEAVING, category_fields

AUDIT_SCOPE = "audit:read"
DEFAULT_GRANT_SECONDS = 90 * 24 * 3600
MAX_DETAILS = 20
MAX_DETAILS_BYTES = 16384


def all_scopes() -> list[str]:
    """Every scope pds knows, in a stable order (advertised as ``scopes_supported``)."""
    return [f"{a}:{c}" for c in CATEGORIES for a in ACTIONS] + [AUDIT_SCOPE]


class AccessError(ValidationError):
    """Malformed scope or ``authorization_details`` (RFC 9396 ``invalid_authorization_details``)."""

    code = "invalid_authorization_details"


Limits = tuple[tuple[str, ...] | None, str | None, str | None]  # fields, from, to


def _union(a: Limits | None, b: Limits | None) -> Limits | None:
    """The union of two limits (None: that side does not have the action)."""
    if a is None or b is None:
        return a if b is None else b
    return (
        None if a[0] is None or b[0] is None else tuple(dict.fromkeys(a[0] + b[0])),
        None if not a[1] or not b[1] else min(a[1], b[1]),
        None if not a[2] or not b[2] else max(a[2], b[2]),
    )


@dataclass(frozen=True)
class CategoryAccess:
    """One category of a grant. ``fields`` and the time range limit ``read`` (per record);
    ``totals``, when set, holds the ``aggregate`` action's own limits (they differ from the
    read limits). Without ``read``, the fields and time range are the ``aggregate`` limits."""

    category: str
    actions: frozenset[str]
    fields: tuple[str, ...] | None = None
    time_from: str | None = None
    time_to: str | None = None
    totals: CategoryAccess | None = None

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
        return not self.actions.isdisjoint(LEAVING)

    def limits(self, action: str) -> Limits | None:
        """The fields and time range of ``action`` (None: not granted, or ``write``)."""
        if action not in self.actions or action not in LEAVING:
            return None
        if action == "aggregate" and self.totals is not None:
            return self.totals.limits(action)
        return (self.fields, self.time_from, self.time_to)

    def for_action(self, action: str) -> CategoryAccess:
        """This category as ``action`` sees it: the totals' own limits for ``aggregate``."""
        return self.totals if action == "aggregate" and self.totals is not None else self

    def parts(self) -> list[CategoryAccess]:
        """One part per distinct set of limits: read (with write), then the totals if they
        have their own limits."""
        if self.totals is None:
            return [self]
        return [replace(self, actions=self.actions - {"aggregate"}, totals=None), self.totals]

    @classmethod
    def build(
        cls, category: str, actions: frozenset[str], read: Limits | None, agg: Limits | None
    ) -> CategoryAccess:
        """``actions`` of ``category`` with the read and the aggregate limits (None when that
        action is not among ``actions``), kept apart when they differ."""
        totals = None
        if read is not None and agg is not None and agg != read:
            totals = cls(category, frozenset({"aggregate"}), *agg)
        return cls(category, actions, *(read or agg or (None, None, None)), totals)

    def merged(self, other: CategoryAccess) -> CategoryAccess:
        """The union of two requests for one category, per action: the read limits are the
        union of what the read sides asked, the totals' limits that of the aggregate sides;
        a write-only side limits nothing and widens nothing, and an aggregate never widens
        what may be read per record."""
        return self.build(
            self.category,
            self.actions | other.actions,
            _union(self.limits("read"), other.limits("read")),
            _union(self.limits("aggregate"), other.limits("aggregate")),
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
        """The part of ``category`` that grants ``action`` (its fields and time range are
        that action's limits), or None."""
        c = self.categories.get(category)
        return c.for_action(action) if c is not None and action in c.actions else None

    def restricted_to(self, scopes: Iterable[str]) -> Access:
        """This access cut down to the given scopes (a token's scope may be narrower)."""
        allowed = set(scopes)
        cats = {}
        for name, c in self.categories.items():
            actions = frozenset(a for a in c.actions if f"{a}:{name}" in allowed)
            if actions:
                cats[name] = CategoryAccess.build(
                    name,
                    actions,
                    c.limits("read") if "read" in actions else None,
                    c.limits("aggregate") if "aggregate" in actions else None,
                )
        return replace(self, categories=cats, audit=self.audit and AUDIT_SCOPE in allowed)

    def authorization_details(self) -> list[dict[str, Any]]:
        """The RFC 9396 form: one ``pds_records`` item per category (as in token responses),
        two when the totals have limits of their own (``aggregate`` in the second)."""
        items = []
        for c in (p for whole in self.categories.values() for p in whole.parts()):
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
                        "totals": None
                        if c.totals is None
                        else {
                            "fields": list(c.totals.fields)
                            if c.totals.fields is not None
                            else None,
                            "from": c.totals.time_from,
                            "to": c.totals.time_to,
                        },
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
        cats = {}
        for c in doc["categories"]:
            t = c.get("totals")  # absent in grants stored before totals had their own limits
            cats[c["category"]] = CategoryAccess(
                c["category"],
                frozenset(c["actions"]),
                tuple(c["fields"]) if c["fields"] is not None else None,
                c["from"],
                c["to"],
                None
                if t is None
                else CategoryAccess(
                    c["category"],
                    frozenset({"aggregate"}),
                    tuple(t["fields"]) if t["fields"] is not None else None,
                    t["from"],
                    t["to"],
                ),
            )
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
            reads = not actions.isdisjoint(LEAVING)  # fields and time limit reading only
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


def _within(
    name: str, lim: Limits | None, day_from: str | None, day_to: str | None
) -> Limits | None:
    """``lim`` with its time range cut to the owner's dates."""
    if lim is None:
        return None
    t_from, t_to = lim[1], lim[2]
    if day_from:
        t_from = max(t_from, day_from) if t_from else day_from
    if day_to:
        t_to = min(t_to, day_to) if t_to else day_to
    if t_from and t_to and t_from > t_to:
        raise ValidationError(
            f"the time range for {name} starts after it ends",
            hint="Choose a start date on or before the end date.",
        )
    return (lim[0], t_from, t_to)


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
        read = req.limits("read") if "read" in actions else None
        agg = req.limits("aggregate") if "aggregate" in actions else None
        if read is not None:
            known = read[0] if read[0] is not None else category_fields(name)
            if known is not None:
                chosen = tuple(f for f in known if f in set(form.getlist(f"field.{name}")))  # type: ignore[attr-defined]
                if not chosen:
                    raise ValidationError(
                        f"no field of {name} is ticked",
                        hint=f"Tick at least one field, or untick reading {name}.",
                    )
                read = (None if read[0] is None and chosen == known else chosen, *read[1:])
        day_from = day_to = None
        if raw := (form.get(f"from.{name}") or "").strip():
            day_from = _day(raw, "the start date")
        if raw := (form.get(f"to.{name}") or "").strip():
            day_to = _day(raw, "the end date")
        read, agg = (_within(name, lim, day_from, day_to) for lim in (read, agg))
        cats[name] = CategoryAccess.build(name, actions, read, agg)
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
