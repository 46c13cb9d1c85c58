"""Laws of the policy engine, checked with hypothesis over random rules and requests.

Deny always wins (in any order); adding a deny rule never widens a decision; constraints
only ever narrow as rules are added.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st

from pds.policy import (
    PURPOSES,
    AggregatesOnly,
    AllowedPurposes,
    Constraints,
    Decision,
    DenyCategory,
    DenyPurpose,
    MaxGrant,
    MaxHistory,
    MinBucket,
    RateLimit,
    RedactFields,
    Request,
    decide,
)

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
CATS = ("transactions", "energy", "health")
FIELDS = ("date", "amount", "counterparty", "reference")
CLIENTS = ("acme", "gp", "shop")
ACTIONS = ("read", "write", "aggregate")
TERMS = sorted(PURPOSES)

ids = st.text("abcdefgh", min_size=1, max_size=6)
cats = st.sampled_from(CATS)
purpose = st.sampled_from(TERMS)
actions = st.frozensets(st.sampled_from(ACTIONS), min_size=1)

deny_rules = st.one_of(
    st.builds(
        DenyCategory,
        id=ids,
        category=cats,
        except_clients=st.frozensets(st.sampled_from(CLIENTS)),
        actions=actions,
    ),
    st.builds(DenyPurpose, id=ids, purpose=purpose, actions=actions, category=st.none() | cats),
    st.builds(AggregatesOnly, id=ids, category=cats, purpose=st.none() | purpose),
    st.builds(AllowedPurposes, id=ids, category=cats, purposes=st.frozensets(purpose, min_size=1)),
    st.builds(RateLimit, id=ids, per_day=st.integers(1, 20)),
)
limit_rules = st.one_of(
    st.builds(MaxHistory, id=ids, days=st.integers(1, 2000), category=st.none() | cats),
    st.builds(MaxGrant, id=ids, days=st.integers(1, 400)),
    st.builds(
        RedactFields,
        id=ids,
        category=cats,
        fields=st.frozensets(st.sampled_from(FIELDS), min_size=1),
    ),
    st.builds(MinBucket, id=ids, k=st.integers(5, 50), category=st.none() | cats),
)
any_rule = deny_rules | limit_rules
days = st.dates(date(2015, 1, 1), date(2027, 1, 1))


@st.composite
def requests(draw: st.DrawFn) -> Request:
    since = draw(st.none() | days)
    until = draw(st.none() | days)
    if since and until and since > until:
        since, until = until, since
    return Request(
        draw(st.sampled_from(CLIENTS)),
        draw(st.sampled_from(ACTIONS)),
        tuple(draw(st.lists(cats, min_size=1, max_size=3, unique=True))),
        fields=draw(
            st.none() | st.lists(st.sampled_from(FIELDS), min_size=1, unique=True).map(tuple)
        ),
        purpose=draw(st.none() | purpose | st.just("free text")),
        since=since,
        until=until,
        expires_in=draw(st.none() | st.integers(60, 400 * 86400)),
        requests_today=draw(st.integers(0, 25)),
    )


def no_wider(after: Decision, before: Decision) -> bool:
    """``after`` allows nothing ``before`` refused, and its limits are at least as narrow."""
    return (before.allowed or not after.allowed) and after.constraints.within(before.constraints)


@given(st.lists(any_rule, max_size=8), deny_rules, requests(), st.integers(0, 8))
def test_adding_a_deny_rule_never_widens(rules, deny, request, at) -> None:
    before = decide(request, rules, NOW)
    after = decide(request, [*rules[:at], deny, *rules[at:]], NOW)
    assert no_wider(after, before)


@given(st.lists(any_rule, max_size=8), any_rule, requests())
def test_adding_any_rule_only_narrows(rules, extra, request) -> None:
    before = decide(request, rules, NOW)
    assert no_wider(decide(request, [*rules, extra], NOW), before)


@given(st.lists(any_rule, max_size=8), deny_rules, requests(), st.randoms(use_true_random=False))
def test_deny_beats_allow_in_any_order(rules, deny, request, rnd) -> None:
    if decide(request, [deny], NOW).allowed:
        return  # this deny rule does not apply to this request
    shuffled = [*rules, deny]
    rnd.shuffle(shuffled)
    d = decide(request, shuffled, NOW)
    assert not d.allowed
    assert deny.id in d.rule_ids


@given(st.lists(any_rule, max_size=10), requests(), st.randoms(use_true_random=False))
def test_order_changes_neither_verdict_nor_limits(rules, request, rnd) -> None:
    a = decide(request, rules, NOW)
    shuffled = list(rules)
    rnd.shuffle(shuffled)
    b = decide(request, shuffled, NOW)
    assert (a.allowed, a.constraints) == (b.allowed, b.constraints)
    assert sorted(a.rule_ids) == sorted(b.rule_ids)


@given(st.lists(any_rule, max_size=10), requests())
def test_constraints_never_widen_the_request(rules, request) -> None:
    c = decide(request, rules, NOW).constraints
    assert c.within(Constraints())
    since = c.clip_since(request.since)
    assert request.since is None or (since is not None and since >= request.since)
    expires = c.cap_expires_in(request.expires_in)
    assert request.expires_in is None or expires <= request.expires_in
