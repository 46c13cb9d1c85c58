"""Rule kinds: one frozen dataclass each, and what each does to a request.

``may_apply(action, purposes)`` says whether a rule can apply at all (the RuleSet filters on
it, with the category, before judging); ``judge(request, today, verdict)`` then refuses the
request or narrows it (sets a constraint) on the ``Verdict``. Words are
generated from the rule (or are the owner's own, from the rule's ``reason``), always as
``rule "<id>": <words>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, ClassVar

from pds.policy.model import DEFAULT_MIN_BUCKET, Request
from pds.policy.purposes import label
from pds.vocabulary import LEAVING, SHOWN_ORDER
from pds.words import plural

DAY = 86400
_VERBS = {"read": "read", "aggregate": "total", "write": "write"}


def _or(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _verbs(actions: frozenset[str]) -> str:
    return _or([_VERBS[a] for a in SHOWN_ORDER if a in actions])


class Verdict:
    """What the matching rules did to one request (filled in by ``Rule.judge``).

    Words are made only for what the decision reports: ``refusals`` and ``narrowings`` hold
    ``(rule, detail, aspect)``; ``rule.words(detail)`` says it.
    """

    __slots__ = (
        "earliest",
        "max_expires_in",
        "min_bucket",
        "narrowings",
        "rate_limit",
        "redacted",
        "refusals",
    )

    def __init__(self) -> None:
        self.refusals: list[tuple[Rule, Any, str]] = []
        self.narrowings: list[tuple[Rule, Any, str]] = []
        self.earliest: date | None = None
        self.max_expires_in: int | None = None
        self.redacted: dict[str, frozenset[str]] = {}
        self.rate_limit: int | None = None
        self.min_bucket = DEFAULT_MIN_BUCKET

    def refuse(self, rule: Rule, detail: Any = None) -> None:
        self.refusals.append((rule, detail, ""))

    def narrow(self, rule: Rule, aspect: str, detail: Any = None) -> None:
        """``aspect``: what was narrowed: ``time``, ``expiry``, ``fields`` or ``buckets``."""
        self.narrowings.append((rule, detail, aspect))


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """Common to every rule: an id (unique across the policies in force), the owner's own
    words for it (``reason``, optional), and the category it is about (None: every one)."""

    kind: ClassVar[str] = ""
    id: str
    reason: str | None = None
    category: str | None = None

    def words(self, detail: Any = None) -> str:
        """``rule "<id>": <words>``: the owner's own words, else generated ones."""
        return f'rule "{self.id}": {self.reason or self.text(detail)}'

    def summary(self) -> str:
        """What the rule does, in plain words, independent of any request."""
        return self.reason or self.text()

    def may_apply(self, action: str, purposes: frozenset[str]) -> bool:
        """Whether the rule can apply to this action and purpose (``covered_by`` of it);
        :class:`RuleSet` uses it to skip rules before judging."""
        return True

    def text(self, detail: Any = None) -> str:  # pragma: no cover
        raise NotImplementedError

    def judge(self, req: Request, today: date, v: Verdict) -> None:  # pragma: no cover
        raise NotImplementedError


@dataclass(frozen=True, slots=True, kw_only=True)
class DenyCategory(Rule):
    """A category never leaves (``actions``, default read and aggregate), except to the named
    clients when ``except_clients`` is given."""

    kind: ClassVar[str] = "deny-category"
    category: str
    except_clients: frozenset[str] = frozenset()
    actions: frozenset[str] = LEAVING

    def may_apply(self, action: str, purposes: frozenset[str]) -> bool:
        return action in self.actions

    def judge(self, req: Request, today: date, v: Verdict) -> None:
        if req.client_id not in self.except_clients:
            v.refuse(self)

    def text(self, detail: Any = None) -> str:
        data = f"{self.category} data"
        only = _and(sorted(self.except_clients)) if self.except_clients else ""
        if self.actions == LEAVING:
            if only:
                return f"{data} leaves this vault only for {only}"
            return f"{data} never leaves this vault"
        if only:
            return f"only {only} may {_verbs(self.actions)} {data}"
        return f"no business may {_verbs(self.actions)} {data}"


@dataclass(frozen=True, slots=True, kw_only=True)
class DenyPurpose(Rule):
    """No business may do ``actions`` for ``purpose`` (or a narrower one), optionally only
    for one category."""

    kind: ClassVar[str] = "deny-purpose"
    purpose: str
    actions: frozenset[str]

    def may_apply(self, action: str, purposes: frozenset[str]) -> bool:
        return action in self.actions and self.purpose in purposes

    def judge(self, req: Request, today: date, v: Verdict) -> None:
        v.refuse(self)

    def text(self, detail: Any = None) -> str:
        data = f"{self.category} data" if self.category else "your data"
        return f"no business may {_verbs(self.actions)} {data} for {label(self.purpose)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class AggregatesOnly(Rule):
    """Only totals leave, never the records: for a category, for a purpose, or both."""

    kind: ClassVar[str] = "aggregates-only"
    purpose: str | None = None

    def may_apply(self, action: str, purposes: frozenset[str]) -> bool:
        return action == "read" and (self.purpose is None or self.purpose in purposes)

    def judge(self, req: Request, today: date, v: Verdict) -> None:
        v.refuse(self)

    def text(self, detail: Any = None) -> str:
        data = f" of {self.category} data" if self.category else ""
        text = f"only totals{data} leave this vault, never the records"
        if self.purpose is not None:
            text = f"for {label(self.purpose)}, {text}"
        return text


@dataclass(frozen=True, slots=True, kw_only=True)
class MaxHistory(Rule):
    """Nothing dated more than ``days`` days back leaves (optionally: of one category)."""

    kind: ClassVar[str] = "max-history"
    days: int

    def may_apply(self, action: str, purposes: frozenset[str]) -> bool:
        return action in LEAVING

    def judge(self, req: Request, today: date, v: Verdict) -> None:
        earliest = today - timedelta(days=self.days)
        if v.earliest is None or earliest > v.earliest:
            v.earliest = earliest
        if req.until is not None and req.until < earliest:
            v.refuse(self, (earliest, req.until))
        elif req.since is None or req.since < earliest:
            v.narrow(self, "time", (earliest, None))

    def text(self, detail: Any = None) -> str:
        data = f"no {self.category} data" if self.category else "nothing"
        if detail is None:
            return f"{data} older than {plural(self.days, 'day')} leaves this vault"
        earliest, until = detail
        text = f"{data} older than {plural(self.days, 'day')} (before {earliest}) leaves this vault"
        return f"{text}, and the time range asked for ends {until}" if until else text


@dataclass(frozen=True, slots=True, kw_only=True)
class MaxGrant(Rule):
    """No grant lasts longer than ``days`` days."""

    kind: ClassVar[str] = "max-grant"
    days: int

    def judge(self, req: Request, today: date, v: Verdict) -> None:
        limit = self.days * DAY
        if v.max_expires_in is None or limit < v.max_expires_in:
            v.max_expires_in = limit
        if req.expires_in is not None and req.expires_in > limit:
            v.narrow(self, "expiry")

    def text(self, detail: Any = None) -> str:
        return f"no grant lasts more than {plural(self.days, 'day')}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RedactFields(Rule):
    """These fields of a category are removed from everything that leaves."""

    kind: ClassVar[str] = "redact-fields"
    category: str
    fields: frozenset[str]

    def may_apply(self, action: str, purposes: frozenset[str]) -> bool:
        return action in LEAVING

    def judge(self, req: Request, today: date, v: Verdict) -> None:
        old = v.redacted.get(self.category)
        v.redacted[self.category] = self.fields | old if old else self.fields
        asked = req.fields
        if req.action == "aggregate":
            if asked and not self.fields.isdisjoint(asked):
                v.refuse(self, ", so they cannot be totalled either")
        elif asked is None:
            v.narrow(self, "fields")
        elif self.fields.issuperset(asked):
            v.refuse(self, ", and nothing else was asked for")
        elif not self.fields.isdisjoint(asked):
            v.narrow(self, "fields")

    def text(self, detail: Any = None) -> str:
        names = _and(sorted(self.fields))
        plural = "fields" if len(self.fields) > 1 else "field"
        return f"{self.category} data is shared without its {names} {plural}{detail or ''}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimit(Rule):
    """A business may make at most ``per_day`` requests a day."""

    kind: ClassVar[str] = "rate-limit"
    per_day: int

    def judge(self, req: Request, today: date, v: Verdict) -> None:
        if v.rate_limit is None or self.per_day < v.rate_limit:
            v.rate_limit = self.per_day
        if req.requests_today >= self.per_day:
            v.refuse(self, (req.client_id, req.requests_today))

    def text(self, detail: Any = None) -> str:
        text = f"a business may make at most {plural(self.per_day, 'request')} a day"
        return f"{text}; {detail[0]} has made {detail[1]} today" if detail else text


@dataclass(frozen=True, slots=True, kw_only=True)
class AllowedPurposes(Rule):
    """A category may be used only for these purposes (or narrower ones)."""

    kind: ClassVar[str] = "allowed-purposes"
    category: str
    purposes: frozenset[str]

    def may_apply(self, action: str, purposes: frozenset[str]) -> bool:
        return self.purposes.isdisjoint(purposes)

    def judge(self, req: Request, today: date, v: Verdict) -> None:
        v.refuse(self, (req.purpose,))

    def text(self, detail: Any = None) -> str:
        allowed = _or([label(p) for p in sorted(self.purposes)])
        text = f"{self.category} data may only be used for {allowed}"
        if detail is None:
            return text
        (purpose,) = detail
        asked = "gives no purpose" if purpose is None else f"is for {label(purpose)}"
        return f"{text}; this request {asked}"


@dataclass(frozen=True, slots=True, kw_only=True)
class MinBucket(Rule):
    """Aggregate buckets built from fewer than ``k`` records are suppressed (k >= 5)."""

    kind: ClassVar[str] = "min-bucket"
    k: int

    def may_apply(self, action: str, purposes: frozenset[str]) -> bool:
        return action == "aggregate"

    def judge(self, req: Request, today: date, v: Verdict) -> None:
        if self.k > v.min_bucket:
            v.min_bucket = self.k
        v.narrow(self, "buckets")

    def text(self, detail: Any = None) -> str:
        data = f" of {self.category} data" if self.category else ""
        return f"totals{data} built from fewer than {plural(self.k, 'record')} are withheld"


KINDS: dict[str, type[Rule]] = {
    cls.kind: cls
    for cls in (
        DenyCategory,
        DenyPurpose,
        AggregatesOnly,
        MaxHistory,
        MaxGrant,
        RedactFields,
        RateLimit,
        AllowedPurposes,
        MinBucket,
    )
}
