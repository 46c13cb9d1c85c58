"""The decision: every rule that applies judges the request; deny wins; limits intersect.

``decide(request, rules, now)`` is pure: no I/O, no clock (``now`` is passed in; the day used
for history limits is ``now.date()``). Given a :class:`RuleSet` it goes through a
:class:`Plan`, compiled once per (categories, action, purpose, client) and kept on the rule
set, so a decision costs a few comparisons whatever the number of rules; :func:`evaluate`
makes the same decision from the rules every time. ``explain_request`` splits a request per
category and per field for the consent page.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime

from pds.policy.model import NO_RULE, Constraints, Decision, Request
from pds.policy.purposes import covered_by
from pds.policy.rules import (
    DAY,
    AggregatesOnly,
    AllowedPurposes,
    DenyCategory,
    DenyPurpose,
    MaxGrant,
    MaxHistory,
    MinBucket,
    RateLimit,
    RedactFields,
    Rule,
    Verdict,
)
from pds.vocabulary import CATEGORIES, LEAVING, category_fields

# the rule kinds whose use of a request Plan.situation accounts for (exact types: a subclass
# may judge differently, and a plan with one is judged afresh on every call)
_PLANNED = frozenset(
    {
        DenyCategory,
        DenyPurpose,
        AggregatesOnly,
        AllowedPurposes,
        MinBucket,
        MaxHistory,
        MaxGrant,
        RedactFields,
        RateLimit,
    }
)
_Situation = tuple[object, ...]


class Plan:
    """The rules that can apply to one (categories, action, purpose, client), compiled:
    what a decision under them reads from the request and the day, as sorted thresholds.

    Judging these rules reads the client (deny-category's exceptions, a rate limit's words)
    and the purpose (allowed-purposes' words), which the plan is made for, and besides those
    only: ``since`` and ``until`` against ``today`` minus each max-history's days (and the
    day itself, in the earliest date and the words); ``expires_in`` against each max-grant's
    limit; ``fields`` (redact-fields); ``requests_today`` against each rate limit.
    :meth:`situation` reduces a request and a day to which of those comparisons hold (how
    many thresholds lie below the value: the rules that fire are exactly those), the day
    when a max-history rule is in the plan and the fields when a redact-fields rule is. Two
    requests in the same situation are judged alike rule by rule, so the decision is made
    once per situation (by judging the rules) and kept. Where the words would carry the
    request's own value (a time range ending before a history limit; a count at or over a
    rate limit) the decision is made afresh every time, as it is for a plan holding a rule
    of another kind.
    """

    __slots__ = ("days", "fields", "limits", "planned", "rate", "rules")

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        self.planned = all(type(r) in _PLANNED for r in rules)
        self.days = tuple(sorted(r.days for r in rules if type(r) is MaxHistory))
        self.limits = tuple(sorted(r.days * DAY for r in rules if type(r) is MaxGrant))
        rates = [r.per_day for r in rules if type(r) is RateLimit]
        self.rate = min(rates) if rates else None
        self.fields = any(type(r) is RedactFields for r in rules)

    def situation(self, req: Request, today: date) -> _Situation | None:
        """What the decision on ``req`` on ``today`` depends on, beyond the plan's own key
        (None: decide afresh)."""
        if not self.planned or (self.rate is not None and req.requests_today >= self.rate):
            return None
        days = self.days
        day: date | None = None
        since: int | None = None
        if days:
            # a max-history rule of d days refuses when today - until > d, else narrows when
            # today - since > d: the rules narrowing are the first ``since`` of them
            if req.until is not None and (today - req.until).days > days[0]:
                return None
            day = today
            since = len(days) if req.since is None else bisect_left(days, (today - req.since).days)
        # a max-grant rule narrows when expires_in is over its limit: the first ``grants``
        grants = 0 if req.expires_in is None else bisect_left(self.limits, req.expires_in)
        names = req.fields if self.fields else None
        if names is not None and type(names) is not tuple:
            return None  # fields given as a list (not hashable): judged all the same
        return (self, day, since, grants, names)


class RuleSet:
    """Rules compiled for fast decisions: indexed by category, in their original order, with
    a :class:`Plan` per (categories, action, purpose, client) and the decision per situation
    made on first use. Never changed once made: new policies make a new RuleSet (as
    ``PolicySet`` does on reload), so nothing kept here outlives the rules it was made from.
    """

    __slots__ = ("_by_category", "_cache", "_decided", "_global", "_plans", "_words", "rules")
    CACHE_SIZE = 4096
    DECISIONS = 1024

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self._global = tuple(r for r in self.rules if r.category is None)
        self._by_category = {
            c: tuple(r for r in self.rules if r.category is None or r.category == c)
            for c in CATEGORIES
        }
        self._cache: dict[tuple[tuple[str, ...], str, str | None], tuple[Rule, ...]] = {}
        # each rule's request-independent words, made once (the rules live as long as this)
        self._words: dict[object, str] = {id(r): r.words() for r in self.rules}
        self._plans: dict[tuple[tuple[str, ...], str, str | None, str], Plan] = {}
        self._decided: dict[_Situation, Decision] = {}

    def words(self, rule: Rule, detail: object = None) -> str:
        """``rule.words(detail)``, from the precomputed ones when there is no detail, else
        memoised by (rule, detail): details are dates and field names, which repeat from one
        request to the next (the same day, the same fields)."""
        if detail is None:
            found = self._words.get(id(rule))
            if found is not None:
                return found
            return rule.words(detail)
        try:
            key = (id(rule), detail)
            found = self._words.get(key)
        except TypeError:  # an unhashable detail: say it afresh
            return rule.words(detail)
        if found is None:
            if len(self._words) >= len(self.rules) + self.CACHE_SIZE:
                self._words = {id(r): r.words() for r in self.rules}
            found = self._words[key] = rule.words(detail)
        return found

    def for_request(self, req: Request) -> tuple[Rule, ...]:
        """The rules that can apply to the request's categories, action and purpose, in
        order (the rest cannot, whatever the client, fields, dates or counts); memoised."""
        key = (req.categories, req.action, req.purpose)
        found = self._cache.get(key)
        if found is None:
            cats = req.categories
            if len(cats) == 1:
                base = self._by_category.get(cats[0], self._global)
            else:
                base = tuple(r for r in self.rules if r.category is None or r.category in cats)
            purposes = covered_by(req.purpose)
            found = tuple(r for r in base if r.may_apply(req.action, purposes))
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = found
        return found

    def plan(self, req: Request) -> Plan:
        """The compiled :class:`Plan` for the request's categories, action, purpose and
        client; made on first use."""
        key = (req.categories, req.action, req.purpose, req.client_id)
        found = self._plans.get(key)
        if found is None:
            if len(self._plans) >= self.CACHE_SIZE:
                self._plans.clear()
                self._decided.clear()
            found = self._plans[key] = Plan(self.for_request(req))
        return found

    def decide(self, req: Request, today: date) -> Decision:
        """:func:`decide` through the request's plan: once per situation, then kept."""
        plan = self.plan(req)
        key = plan.situation(req, today)
        if key is None:
            return _decision(_verdict(req, plan.rules, today), self)
        found = self._decided.get(key)
        if found is None:
            found = _decision(_verdict(req, plan.rules, today), self)
            if len(self._decided) >= self.DECISIONS:
                self._decided.clear()
            self._decided[key] = found
        return found

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"RuleSet({len(self.rules)} rules)"


def _today(now: datetime | date) -> date:
    return now.date() if isinstance(now, datetime) else now


def _verdict(request: Request, rules: Iterable[Rule], today: date) -> Verdict:
    verdict = Verdict()
    for rule in rules:
        rule.judge(request, today, verdict)
    return verdict


def judge(request: Request, rules: RuleSet | Iterable[Rule], now: datetime | date) -> Verdict:
    """Every applicable rule's effect on the request (the raw material of a Decision)."""
    ruleset = rules if isinstance(rules, RuleSet) else RuleSet(rules)
    return _verdict(request, ruleset.for_request(request), _today(now))


def _decision(v: Verdict, ruleset: RuleSet) -> Decision:
    constraints = Constraints(
        v.earliest,
        v.max_expires_in,
        tuple(sorted(v.redacted.items())),
        v.rate_limit,
        v.min_bucket,
    )
    said = v.refusals or v.narrowings
    if not said:
        return Decision(True, constraints, (), NO_RULE)
    return Decision(
        not v.refusals,
        constraints,
        tuple(rule.id for rule, _, _ in said),
        "; ".join(ruleset.words(rule, detail) for rule, detail, _ in said),
    )


def decide(request: Request, rules: RuleSet | Iterable[Rule], now: datetime | date) -> Decision:
    """Allowed or refused, with the constraints to apply and the rules (and words) behind it.

    Deny always wins: one refusing rule refuses the request, whatever else allows. Limits
    intersect: the latest ``earliest``, the shortest grant, the union of redacted fields,
    the smallest rate limit, the largest aggregate bucket size. No rule applying means
    allowed with no constraints: the grant decides. Pass a :class:`RuleSet` (as
    ``PolicySet.current()`` returns) for speed: it decides through a :class:`Plan` made once
    per (categories, action, purpose, client); a plain list is judged rule by rule on each
    call, as :func:`evaluate` does.
    """
    if isinstance(rules, RuleSet):
        return rules.decide(request, _today(now))
    return evaluate(request, rules, now)


def evaluate(request: Request, rules: RuleSet | Iterable[Rule], now: datetime | date) -> Decision:
    """The same decision as :func:`decide`, made by judging every rule that can apply on
    every call: no plan, no decision kept (the reference the plans are tested against)."""
    ruleset = rules if isinstance(rules, RuleSet) else RuleSet(rules)
    return _decision(judge(request, ruleset, now), ruleset)


# -- the consent page: per category, per field ----------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldVerdict:
    name: str
    allowed: bool
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CategoryVerdict:
    """One requested category: allowed or refused and why, each field, the time range."""

    category: str
    allowed: bool
    reason: str
    rule_ids: tuple[str, ...]
    fields: tuple[FieldVerdict, ...]
    since: date | None
    until: date | None
    time_reason: str | None
    constraints: Constraints


@dataclass(frozen=True, slots=True)
class Explanation:
    """A request taken apart for the consent page (see :func:`explain_request`)."""

    request: Request
    decision: Decision
    items: tuple[CategoryVerdict, ...]
    expires_in: int | None
    expires_reason: str | None

    @property
    def refused_entirely(self) -> bool:
        """Nothing of it can ever be granted: answer ``access_denied`` without asking."""
        return not any(i.allowed for i in self.items)

    def narrowed(self) -> Request | None:
        """The widest request today's policies allow within this one (None: nothing).

        Refused categories are dropped, withheld fields removed from the asked fields (or,
        for one category with a schema and no fields asked, the category's other fields
        listed), the start of the time range moved up, the grant length capped. Use it for
        the consent form's starting point and to narrow a grant on refresh.
        """
        allowed = [i for i in self.items if i.allowed]
        if not allowed:
            return None
        req = self.request
        hidden = set().union(*(i.constraints.redacted_fields(i.category) for i in allowed))
        fields = req.fields
        if fields is not None:
            fields = tuple(f for f in fields if f not in hidden)
        elif hidden and len(allowed) == 1:
            known = category_fields(allowed[0].category)
            if known is not None:
                fields = tuple(f for f in known if f not in hidden)
        starts = [i.since for i in allowed if i.since is not None]
        return replace(
            req,
            categories=tuple(i.category for i in allowed),
            fields=fields,
            since=max(starts) if starts else None,
            expires_in=self.expires_in,
        )


def _joined(v: Verdict, aspect: str) -> str | None:
    words = [rule.words(detail) for rule, detail, a in v.narrowings if a == aspect]
    return "; ".join(words) if words else None


def _why_redacted(ruleset: RuleSet, req: Request) -> dict[str, str]:
    """Per field of the request's one category, the words of the first rule withholding it."""
    why: dict[str, str] = {}
    if req.action in LEAVING:
        for rule in ruleset.for_request(req):
            if isinstance(rule, RedactFields):
                for name in sorted(rule.fields):
                    why.setdefault(name, rule.words())
    return why


def explain_request(
    request: Request, rules: RuleSet | Iterable[Rule], now: datetime | date
) -> Explanation:
    """Each requested category (and each of its fields, and its time range) allowed or
    refused, with the reason; pure, like :func:`decide`.

    Fields shown are the asked ones, or every field of the category's schema when none were
    asked (categories without a schema list only the fields policy withholds).
    """
    ruleset = rules if isinstance(rules, RuleSet) else RuleSet(rules)
    whole = judge(request, ruleset, now)
    items = []
    for category in request.categories:
        one = replace(request, categories=(category,))
        v = judge(one, ruleset, now)
        d = _decision(v, ruleset)
        why = _why_redacted(ruleset, one)
        names = request.fields or category_fields(category) or ()
        withheld = () if request.fields else sorted(f for f in why if f not in names)
        fields = tuple(FieldVerdict(n, n not in why, why.get(n)) for n in (*names, *withheld))
        items.append(
            CategoryVerdict(
                category,
                d.allowed,
                d.reason,
                d.rule_ids,
                fields,
                d.constraints.clip_since(request.since),
                request.until,
                _joined(v, "time"),
                d.constraints,
            )
        )
    return Explanation(
        request,
        _decision(whole, ruleset),
        tuple(items),
        Constraints(max_expires_in=whole.max_expires_in).cap_expires_in(request.expires_in),
        _joined(whole, "expiry"),
    )
