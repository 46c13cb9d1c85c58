"""Compiled decisions: a RuleSet's plans decide exactly as judging every rule does.

``decide`` given a RuleSet goes through a Plan per (categories, action, purpose, client) and
keeps each decision per situation; ``evaluate`` judges every rule each time. The property
test compares the two, word for word, over random rules and requests whose dates, grant
lengths and counts sit on both sides of the rules' limits, on days on both sides of
midnight, with one RuleSet kept across many requests so kept decisions are reused.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pds.policy import (
    NO_RULE,
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
    RuleSet,
    decide,
)
from pds.policy.engine import evaluate
from pds.policyfiles.loader import PolicySet

DAY = 86400
TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
CATS = ("transactions", "energy", "health")
FIELDS = ("date", "amount", "counterparty", "reference")
CLIENTS = ("acme", "gp", "shop")
ACTIONS = ("read", "write", "aggregate")
TERMS = ("dpv:Marketing", "dpv:Advertising", "dpv:CreditChecking", "dpv:ServiceProvision")
HISTORY_DAYS = (1, 30, 365)
GRANT_DAYS = (1, 90)
PER_DAY = (1, 5, 10)

# -- random rules and requests around the rules' limits --------------------------------------

ids = st.text("abcdef", min_size=1, max_size=3)
reasons = st.none() | st.just("the owner's own words")
cats = st.sampled_from(CATS)
purpose = st.sampled_from(TERMS)
actions = st.frozensets(st.sampled_from(ACTIONS), min_size=1)
rules = st.one_of(
    st.builds(
        DenyCategory,
        id=ids,
        reason=reasons,
        category=cats,
        except_clients=st.frozensets(st.sampled_from(CLIENTS)),
        actions=actions,
    ),
    st.builds(
        DenyPurpose,
        id=ids,
        reason=reasons,
        purpose=purpose,
        actions=actions,
        category=st.none() | cats,
    ),
    st.builds(AggregatesOnly, id=ids, reason=reasons, category=cats, purpose=st.none() | purpose),
    st.builds(
        AllowedPurposes,
        id=ids,
        reason=reasons,
        category=cats,
        purposes=st.frozensets(purpose, min_size=1),
    ),
    st.builds(RateLimit, id=ids, reason=reasons, per_day=st.sampled_from(PER_DAY)),
    st.builds(
        MaxHistory,
        id=ids,
        reason=reasons,
        days=st.sampled_from(HISTORY_DAYS),
        category=st.none() | cats,
    ),
    st.builds(MaxGrant, id=ids, reason=reasons, days=st.sampled_from(GRANT_DAYS)),
    st.builds(
        RedactFields,
        id=ids,
        reason=reasons,
        category=cats,
        fields=st.frozensets(st.sampled_from(FIELDS), min_size=1),
    ),
    st.builds(MinBucket, id=ids, reason=reasons, k=st.integers(5, 7), category=st.none() | cats),
)

# the day before, of and after TODAY, each at its first and last instant: every history
# limit moves by a day across each midnight
NOWS = tuple(
    datetime.combine(TODAY + timedelta(days=shift), at, tzinfo=UTC)
    for shift in (-1, 0, 1)
    for at in (datetime.min.time(), datetime.max.time())
)
# dates a day or two either side of every history limit, whichever of NOWS it is
EDGES = sorted({TODAY - timedelta(days=d + s) for d in HISTORY_DAYS for s in range(-2, 3)})
dates = st.none() | st.sampled_from(EDGES)
# grant lengths a second either side of every grant limit
expiries = st.none() | st.sampled_from([d * DAY + s for d in GRANT_DAYS for s in (-1, 0, 1)])
fields = st.none() | st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3, unique=True).map(
    tuple
)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    since, until = draw(dates), draw(dates)
    if since and until and since > until:
        since, until = until, since
    return Request(
        draw(st.sampled_from(CLIENTS)),
        draw(st.sampled_from(ACTIONS)),
        tuple(draw(st.lists(cats, min_size=1, max_size=2, unique=True))),
        fields=draw(fields),
        purpose=draw(st.none() | purpose | st.just("free text")),
        since=since,
        until=until,
        expires_in=draw(expiries),
        requests_today=draw(st.integers(0, 11)),
    )


def same(got: Decision, want: Decision) -> None:
    assert got == want
    assert repr(got) == repr(want)  # word for word, in the same order


@settings(max_examples=300, deadline=None)
@given(
    st.lists(rules, max_size=12),
    st.lists(st.tuples(requests(), st.sampled_from(NOWS)), min_size=1, max_size=30),
    st.lists(st.tuples(st.integers(0, 11), dates, dates, expiries, fields), max_size=3),
)
def test_compiled_decisions_are_the_plain_ones(rules, asks, variants) -> None:
    ruleset = RuleSet(rules)
    for request, now in asks:
        same(decide(request, ruleset, now), evaluate(request, rules, now))
        # the same plan, other counts, dates, grant lengths and fields, each day around midnight
        for count, since, until, expires_in, names in variants:
            other = replace(
                request,
                requests_today=count,
                since=since,
                until=until,
                expires_in=expires_in,
                fields=names,
            )
            for at in NOWS:
                same(decide(other, ruleset, at), evaluate(other, rules, at))


SWEPT = [
    MaxHistory(id="day", days=1),
    MaxHistory(id="month", days=30, category="transactions"),
    MaxHistory(id="year", days=365, reason="a year is enough"),
    MaxGrant(id="grant-day", days=1),
    MaxGrant(id="grant-90", days=90),
    RateLimit(id="five", per_day=5),
    RateLimit(id="ten", per_day=10),
    RedactFields(id="no-ref", category="transactions", fields=frozenset({"reference"})),
    MinBucket(id="k6", k=6),
]


@pytest.mark.parametrize("action", ["read", "aggregate"])
def test_every_edge_in_turn_against_one_rule_set(action: str) -> None:
    """Every start and end date around every limit, each grant length and count around its
    limits, on each day around midnight: all through one RuleSet, in an order that reuses
    what an earlier request left kept."""
    ruleset, plain = RuleSet(SWEPT), RuleSet(SWEPT)
    days = [None, *EDGES]
    for now in NOWS:
        for since in days:
            for until in days:
                for expires_in, count, names in itertools.product(
                    (None, DAY, DAY + 1, 90 * DAY + 1),
                    (0, 4, 5),
                    (None, ("amount",), ("reference",), ("amount", "reference")),
                ):
                    request = req(
                        action=action,
                        since=since,
                        until=until,
                        expires_in=expires_in,
                        requests_today=count,
                        fields=names,
                    )
                    same(decide(request, ruleset, now), evaluate(request, plain, now))


@settings(max_examples=100, deadline=None)
@given(st.lists(rules, max_size=12), requests(), st.sampled_from(NOWS))
def test_a_date_is_decided_as_its_datetime(rules, request, now) -> None:
    ruleset = RuleSet(rules)
    same(decide(request, ruleset, now.date()), evaluate(request, rules, now))


# -- the plan, with exact values ----------------------------------------------------------

YEAR = MaxHistory(id="one-year", days=365)
TX_MONTH = MaxHistory(id="tx-month", days=30, category="transactions")
GRANT_90 = MaxGrant(id="grants-90", days=90)
GRANT_7 = MaxGrant(id="grants-7", days=7)
REDACT = RedactFields(
    id="no-counterparty", category="transactions", fields=frozenset({"counterparty"})
)
RATE = RateLimit(id="rate", per_day=100)
RATE_10 = RateLimit(id="rate-10", per_day=10)
HEALTH = DenyCategory(id="health-gp", category="health", except_clients=frozenset({"gp"}))
RULES = [YEAR, TX_MONTH, GRANT_90, GRANT_7, REDACT, RATE, RATE_10, HEALTH]


def req(**kw) -> Request:
    base = {
        "client_id": "acme",
        "action": "read",
        "categories": ("transactions",),
        "purpose": "dpv:CreditChecking",
    }
    return Request(**{**base, **kw})


def test_a_plan_holds_the_rules_that_can_apply_and_their_limits_sorted() -> None:
    rs = RuleSet(RULES)
    plan = rs.plan(req())
    assert plan.rules == (YEAR, TX_MONTH, GRANT_90, GRANT_7, REDACT, RATE, RATE_10)
    assert plan.days == (30, 365)
    assert plan.limits == (7 * DAY, 90 * DAY)
    assert plan.rate == 10
    assert plan.fields is True
    assert plan.planned is True
    assert rs.plan(req(requests_today=3, since=TODAY)) is plan  # one per key, made once
    assert rs.plan(req(client_id="gp")) is not plan
    energy = rs.plan(req(categories=("energy",)))
    assert (energy.days, energy.limits, energy.rate, energy.fields) == (
        (365,),
        (7 * DAY, 90 * DAY),
        10,
        False,
    )
    assert rs.plan(req(action="write")).rules == (GRANT_90, GRANT_7, RATE, RATE_10)


@pytest.mark.parametrize(
    ("request_", "situation"),
    [
        # no since: both history rules narrow; no grant asked; every field
        (req(), (TODAY, 2, 0, None)),
        # since 30 days back: only the one-year rule narrows (30 < 30 is false)
        (req(since=TODAY - timedelta(days=30)), (TODAY, 0, 0, None)),
        (req(since=TODAY - timedelta(days=31)), (TODAY, 1, 0, None)),
        (req(since=TODAY - timedelta(days=366)), (TODAY, 2, 0, None)),
        # a grant of exactly 7 days is within both limits; a second more is over one
        (req(expires_in=7 * DAY), (TODAY, 2, 0, None)),
        (req(expires_in=7 * DAY + 1), (TODAY, 2, 1, None)),
        (req(expires_in=91 * DAY), (TODAY, 2, 2, None)),
        (req(fields=("amount", "counterparty")), (TODAY, 2, 0, ("amount", "counterparty"))),
        # the count below every rate limit does not matter
        (req(requests_today=9), (TODAY, 2, 0, None)),
        # a range ending exactly at the 30-day limit is narrowed, not refused
        (req(until=TODAY - timedelta(days=30)), (TODAY, 2, 0, None)),
    ],
)
def test_situations(request_: Request, situation: tuple) -> None:
    rs = RuleSet(RULES)
    plan = rs.plan(request_)
    assert plan.situation(request_, TODAY) == (plan, *situation)


def test_without_history_rules_the_day_is_not_part_of_the_situation() -> None:
    rs = RuleSet([GRANT_90, REDACT])
    request = req(categories=("energy",), since=date(2020, 1, 1), expires_in=100 * DAY)
    plan = rs.plan(request)
    assert plan.situation(request, TODAY) == (plan, None, None, 1, None)
    assert plan.situation(request, TODAY + timedelta(days=400)) == (plan, None, None, 1, None)


@pytest.mark.parametrize(
    "request_",
    [
        req(until=TODAY - timedelta(days=31)),  # refused for ending before a limit: words name it
        req(requests_today=10),  # at a rate limit: the words give the count
        req(requests_today=250),
    ],
)
def test_refusals_whose_words_carry_the_request_are_decided_afresh(request_: Request) -> None:
    rs = RuleSet(RULES)
    assert rs.plan(request_).situation(request_, TODAY) is None
    assert decide(request_, rs, NOW) == evaluate(request_, RULES, NOW)
    assert decide(request_, rs, NOW) is not decide(request_, rs, NOW)


def test_the_words_give_the_count_each_time() -> None:
    rs = RuleSet([RATE_10])
    for count in (10, 11, 12):
        d = decide(req(requests_today=count), rs, NOW)
        assert d == Decision(
            False,
            Constraints(rate_limit=10),
            ("rate-10",),
            f'rule "rate-10": a business may make at most 10 requests a day; acme has made'
            f" {count} today",
        )


def test_fields_in_a_list_are_judged_afresh() -> None:
    rs = RuleSet(RULES)
    request = req(fields=["amount", "counterparty"])
    assert rs.plan(request).situation(request, TODAY) is None
    assert decide(request, rs, NOW) == Decision(
        True,
        Constraints(
            earliest=date(2026, 10, 24),
            max_expires_in=7 * DAY,
            redacted=(("transactions", frozenset({"counterparty"})),),
            rate_limit=10,
        ),
        ("one-year", "tx-month", "no-counterparty"),
        'rule "one-year": nothing older than 365 days (before 2025-11-23) leaves this vault; '
        'rule "tx-month": no transactions data older than 30 days (before 2026-10-24) leaves'
        ' this vault; rule "no-counterparty": transactions data is shared without its'
        " counterparty field",
    )


def test_a_rule_of_another_kind_is_judged_afresh() -> None:
    class Always(DenyCategory):
        def judge(self, req: Request, today: date, v) -> None:
            if req.requests_today % 2:
                v.refuse(self)

    odd = Always(id="odd", category="transactions")
    rs = RuleSet([YEAR, odd])
    assert rs.plan(req()).planned is False
    assert rs.plan(req()).situation(req(), TODAY) is None
    assert decide(req(requests_today=1), rs, NOW).allowed is False
    assert decide(req(requests_today=2), rs, NOW).allowed is True


def test_one_decision_per_situation_is_kept_and_reused() -> None:
    rs = RuleSet(RULES)
    first = decide(req(since=date(2025, 1, 1), requests_today=0), rs, NOW)
    assert first == Decision(
        True,
        Constraints(
            earliest=date(2026, 10, 24),
            max_expires_in=7 * DAY,
            redacted=(("transactions", frozenset({"counterparty"})),),
            rate_limit=10,
        ),
        ("one-year", "tx-month", "no-counterparty"),
        'rule "one-year": nothing older than 365 days (before 2025-11-23) leaves this vault; '
        'rule "tx-month": no transactions data older than 30 days (before 2026-10-24) leaves'
        ' this vault; rule "no-counterparty": transactions data is shared without its'
        " counterparty field",
    )
    # another count below the limit, another start past both limits, later the same day
    again = decide(
        req(since=date(2024, 6, 1), requests_today=9),
        rs,
        datetime(2026, 11, 23, 23, 59, tzinfo=UTC),
    )
    assert again is first
    # the next day: the limits move a day on
    tomorrow = decide(req(since=date(2025, 1, 1)), rs, datetime(2026, 11, 24, tzinfo=UTC))
    assert tomorrow.constraints.earliest == date(2026, 10, 25)
    assert tomorrow.reason == (
        'rule "one-year": nothing older than 365 days (before 2025-11-24) leaves this vault; '
        'rule "tx-month": no transactions data older than 30 days (before 2026-10-25) leaves'
        ' this vault; rule "no-counterparty": transactions data is shared without its'
        " counterparty field"
    )


def test_a_start_crossing_a_limit_at_midnight_changes_the_decision() -> None:
    rs = RuleSet([TX_MONTH])
    request = req(since=date(2026, 10, 24))  # exactly 30 days before 2026-11-23
    before = decide(request, rs, datetime(2026, 11, 23, 23, 59, 59, 999999, tzinfo=UTC))
    after = decide(request, rs, datetime(2026, 11, 24, tzinfo=UTC))
    assert (before.allowed, before.rule_ids, before.reason) == (True, (), NO_RULE)
    assert before.constraints.earliest == date(2026, 10, 24)
    assert (after.allowed, after.rule_ids) == (True, ("tx-month",))
    assert after.constraints.earliest == date(2026, 10, 25)


def test_the_decisions_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RuleSet, "DECISIONS", 3)
    rs = RuleSet([YEAR, GRANT_90])
    recent = TODAY - timedelta(days=1)
    asks = [
        req(expires_in=DAY),
        req(expires_in=91 * DAY),
        req(since=recent),
        req(since=recent, expires_in=91 * DAY),
    ]
    for request in asks:
        assert decide(request, rs, NOW) == evaluate(request, [YEAR, GRANT_90], NOW)
    assert len(rs._decided) == 1  # the fourth situation found three kept: they were dropped
    assert decide(asks[0], rs, NOW) == evaluate(asks[0], [YEAR, GRANT_90], NOW)


def test_a_reload_makes_a_new_rule_set_with_nothing_kept(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    folder = tmp_path / "home" / "policies"
    folder.mkdir(parents=True)
    path = folder / "mine.toml"
    path.write_text('[[rule]]\nid = "short"\nkind = "max-grant"\ndays = 90\n')
    ps = PolicySet(tmp_path / "home", templates=templates)
    request = req(expires_in=30 * DAY)
    first = ps.current()
    assert decide(request, first, NOW) == Decision(
        True, Constraints(max_expires_in=90 * DAY), (), NO_RULE
    )
    path.write_text('[[rule]]\nid = "shorter"\nkind = "max-grant"\ndays = 7\n')
    assert ps.current() is not first
    assert decide(request, ps.current(), NOW) == Decision(
        True,
        Constraints(max_expires_in=7 * DAY),
        ("shorter",),
        'rule "shorter": no grant lasts more than 7 days',
    )
