"""The decision: every rule that applies judges the request; deny wins; limits intersect.

``decide(request, rules, now)`` is pure: no I/O, no clock (``now`` is passed in; the day used
for history limits is ``now.date()``). ``explain_request`` splits a request per category and
per field for the consent page.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime

from pds.policy.model import NO_RULE, Constraints, Decision, Request
from pds.policy.purposes import covered_by
from pds.policy.rules import RedactFields, Rule, Verdict
from pds.vocabulary import CATEGORIES, LEAVING, category_fields


class RuleSet:
    """Rules compiled for fast decisions: indexed by category, in their original order."""

    __slots__ = ("_by_category", "_cache", "_global", "_words", "rules")
    CACHE_SIZE = 4096

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

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"RuleSet({len(self.rules)} rules)"


def _today(now: datetime | date) -> date:
    return now.date() if isinstance(now, datetime) else now


def judge(request: Request, rules: RuleSet | Iterable[Rule], now: datetime | date) -> Verdict:
    """Every applicable rule's effect on the request (the raw material of a Decision)."""
    ruleset = rules if isinstance(rules, RuleSet) else RuleSet(rules)
    today = _today(now)
    verdict = Verdict()
    for rule in ruleset.for_request(request):
        rule.judge(request, today, verdict)
    return verdict


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
    ``PolicySet.current()`` returns) for speed; a plain list is compiled on each call.
    """
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
