"""The engine's plain data: a Request, the Constraints a decision sets, and the Decision."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pds.vocabulary import ACTIONS

DEFAULT_MIN_BUCKET = 5
NO_RULE = "no policy rule applies; the grant decides"


@dataclass(frozen=True, slots=True)
class Request:
    """What a business asks for, as the engine sees it (one action, one or more categories).

    ``fields`` None means every field; ``since``/``until`` are inclusive dates (None: open);
    ``expires_in`` is the grant length asked for, in seconds (None: not a grant question);
    ``requests_today`` is how many requests this client has already made today (the engine
    does no I/O; the caller counts).
    """

    client_id: str
    action: str
    categories: tuple[str, ...]
    fields: tuple[str, ...] | None = None
    purpose: str | None = None
    since: date | None = None
    until: date | None = None
    expires_in: int | None = None
    requests_today: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.categories, str):
            object.__setattr__(self, "categories", (self.categories,))
        if self.action not in ACTIONS:
            raise ValueError(f"action {self.action!r} is not one of {', '.join(ACTIONS)}")


@dataclass(frozen=True, slots=True)
class Constraints:
    """Limits every answer under a decision must respect; each only ever narrows.

    ``earliest``: no record dated before it; ``max_expires_in``: the longest grant, seconds;
    ``redacted``: per category, fields removed from every payload (sorted pairs);
    ``rate_limit``: requests a day per client; ``min_bucket``: the smallest count an
    aggregate bucket may be built from (smaller buckets are suppressed).
    """

    earliest: date | None = None
    max_expires_in: int | None = None
    redacted: tuple[tuple[str, frozenset[str]], ...] = ()
    rate_limit: int | None = None
    min_bucket: int = DEFAULT_MIN_BUCKET

    def redacted_fields(self, category: str) -> frozenset[str]:
        for name, names in self.redacted:
            if name == category:
                return names
        return frozenset()

    def redact(self, category: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The payload without the fields policy withholds for its category."""
        hidden = self.redacted_fields(category)
        return {k: v for k, v in payload.items() if k not in hidden}

    def clip_since(self, since: date | None) -> date | None:
        """The later of ``since`` and ``earliest``: the start of what may be read."""
        if self.earliest is None:
            return since
        return self.earliest if since is None or since < self.earliest else since

    def cap_expires_in(self, expires_in: int | None) -> int | None:
        """The shorter of ``expires_in`` and ``max_expires_in`` (None: no limit either side)."""
        if self.max_expires_in is None:
            return expires_in
        if expires_in is None:
            return self.max_expires_in
        return min(expires_in, self.max_expires_in)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (dates as ISO strings, redacted fields sorted)."""
        return {
            "earliest": self.earliest.isoformat() if self.earliest else None,
            "max_expires_in": self.max_expires_in,
            "redacted": {c: sorted(names) for c, names in self.redacted},
            "rate_limit": self.rate_limit,
            "min_bucket": self.min_bucket,
        }

    def within(self, other: Constraints) -> bool:
        """True when these constraints are at least as narrow as ``other`` in every way."""
        return (
            _later_or_same(self.earliest, other.earliest)
            and _smaller_or_same(self.max_expires_in, other.max_expires_in)
            and _smaller_or_same(self.rate_limit, other.rate_limit)
            and self.min_bucket >= other.min_bucket
            and all(other.redacted_fields(c) <= self.redacted_fields(c) for c, _ in other.redacted)
        )


def _later_or_same(a: date | None, b: date | None) -> bool:
    return b is None or (a is not None and a >= b)


def _smaller_or_same(a: int | None, b: int | None) -> bool:
    return b is None or (a is not None and a <= b)


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer: allowed or refused, the limits, and which rules made it and why.

    ``rule_ids`` and ``reason`` name the rules that refused the request (when refused) or
    narrowed it (when allowed); ``reason`` is what the owner and the auditor read.
    """

    allowed: bool
    constraints: Constraints = field(default_factory=Constraints)
    rule_ids: tuple[str, ...] = ()
    reason: str = NO_RULE

    @property
    def audit_decision(self) -> str:
        """The access log's word for it: ``allowed`` or ``refused``."""
        return "allowed" if self.allowed else "refused"

    def as_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "decision": self.audit_decision,
            "rule_ids": list(self.rule_ids),
            "reason": self.reason,
            "constraints": self.constraints.as_dict(),
        }

    def audit_fields(self) -> dict[str, Any]:
        """Keyword arguments for ``vault.audit``: decision, rule_ids and reason."""
        return {"decision": self.audit_decision, "rule_ids": self.rule_ids, "reason": self.reason}
