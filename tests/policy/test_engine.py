"""The policy engine: every rule kind, table-driven, with the exact words it gives."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from pds.policy import (
    NO_RULE,
    AggregatesOnly,
    AllowedPurposes,
    Constraints,
    DenyCategory,
    DenyPurpose,
    MaxGrant,
    MaxHistory,
    MinBucket,
    RateLimit,
    RedactFields,
    Request,
    RuleSet,
    covered_by,
    decide,
    explain_request,
    label,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
YEAR_AGO = date(2025, 11, 23)
DAY = 86400

HEALTH = DenyCategory(id="health-never-leaves", category="health")
HEALTH_GP = DenyCategory(id="health-gp", category="health", except_clients=frozenset({"gp"}))
HEALTH_WRITE = DenyCategory(id="no-health-writes", category="health", actions=frozenset({"write"}))
HEALTH_OWN = DenyCategory(
    id="health-mine", category="health", reason="health data never leaves this vault"
)
NO_MARKETING = DenyPurpose(id="no-marketing", purpose="dpv:Marketing", actions=frozenset({"read"}))
NO_TX_RESEARCH = DenyPurpose(
    id="no-tx-research",
    purpose="dpv:ResearchAndDevelopment",
    actions=frozenset({"read", "aggregate"}),
    category="transactions",
)
TOTALS_TX = AggregatesOnly(id="tx-totals", category="transactions")
TOTALS_MARKETING = AggregatesOnly(id="marketing-totals", purpose="dpv:Marketing")
TOTALS_BOTH = AggregatesOnly(id="ads-energy", category="energy", purpose="dpv:Advertising")
YEAR = MaxHistory(id="one-year", days=365)
TX_MONTH = MaxHistory(id="tx-month", days=30, category="transactions")
GRANT_90 = MaxGrant(id="grants-90", days=90)
REDACT = RedactFields(
    id="no-counterparty", category="transactions", fields=frozenset({"counterparty", "reference"})
)
REDACT_ONE = RedactFields(id="no-account", category="transactions", fields=frozenset({"account"}))
RATE = RateLimit(id="rate", per_day=100)
TX_PURPOSES = AllowedPurposes(
    id="tx-purposes",
    category="transactions",
    purposes=frozenset({"dpv:CreditChecking", "dpv:ServiceProvision"}),
)
K10 = MinBucket(id="k10", k=10)


def req(action: str = "read", categories: str | tuple[str, ...] = "transactions", **kw) -> Request:
    return Request(kw.pop("client_id", "acme"), action, categories, **kw)


# (rule, request, allowed, reason); rule_ids are the rule's id whenever it speaks.
CASES = [
    # deny-category
    (
        HEALTH,
        req(categories="health"),
        False,
        'rule "health-never-leaves": health data never leaves this vault',
    ),
    (
        HEALTH,
        req("aggregate", "health"),
        False,
        'rule "health-never-leaves": health data never leaves this vault',
    ),
    (HEALTH, req("write", "health"), True, NO_RULE),
    (
        HEALTH,
        req(categories=("energy", "health")),
        False,
        'rule "health-never-leaves": health data never leaves this vault',
    ),
    (HEALTH, req(categories="energy"), True, NO_RULE),
    (
        HEALTH_GP,
        req(categories="health"),
        False,
        'rule "health-gp": health data leaves this vault only for gp',
    ),
    (HEALTH_GP, req(categories="health", client_id="gp"), True, NO_RULE),
    (
        HEALTH_WRITE,
        req("write", "health"),
        False,
        'rule "no-health-writes": no business may write health data',
    ),
    (HEALTH_WRITE, req(categories="health"), True, NO_RULE),
    (
        HEALTH_OWN,
        req(categories="health"),
        False,
        'rule "health-mine": health data never leaves this vault',
    ),
    # deny-purpose (narrower purposes are covered)
    (
        NO_MARKETING,
        req(purpose="dpv:Marketing"),
        False,
        'rule "no-marketing": no business may read your data for marketing',
    ),
    (
        NO_MARKETING,
        req(purpose="dpv:PersonalisedAdvertising"),
        False,
        'rule "no-marketing": no business may read your data for marketing',
    ),
    (NO_MARKETING, req("aggregate", purpose="dpv:Marketing"), True, NO_RULE),
    (NO_MARKETING, req(purpose="dpv:CreditChecking"), True, NO_RULE),
    (NO_MARKETING, req(), True, NO_RULE),
    (
        NO_TX_RESEARCH,
        req("aggregate", purpose="dpv:AcademicResearch"),
        False,
        'rule "no-tx-research": no business may read or total transactions data for research and development',
    ),
    (NO_TX_RESEARCH, req(categories="energy", purpose="dpv:AcademicResearch"), True, NO_RULE),
    # aggregates-only
    (
        TOTALS_TX,
        req(),
        False,
        'rule "tx-totals": only totals of transactions data leave this vault, never the records',
    ),
    (TOTALS_TX, req("aggregate"), True, NO_RULE),
    (TOTALS_TX, req("write"), True, NO_RULE),
    (
        TOTALS_MARKETING,
        req(purpose="dpv:DirectMarketing"),
        False,
        'rule "marketing-totals": for marketing, only totals leave this vault, never the records',
    ),
    (TOTALS_MARKETING, req(purpose="dpv:ServiceProvision"), True, NO_RULE),
    (
        TOTALS_BOTH,
        req(categories="energy", purpose="dpv:PersonalisedAdvertising"),
        False,
        'rule "ads-energy": for advertising, only totals of energy data leave this vault, never the records',
    ),
    (TOTALS_BOTH, req(purpose="dpv:Advertising"), True, NO_RULE),
    # max-history
    (
        YEAR,
        req(),
        True,
        'rule "one-year": nothing older than 365 days (before 2025-11-23) leaves this vault',
    ),
    (
        YEAR,
        req(since=date(2020, 1, 1)),
        True,
        'rule "one-year": nothing older than 365 days (before 2025-11-23) leaves this vault',
    ),
    (YEAR, req(since=date(2026, 1, 1)), True, NO_RULE),
    (
        YEAR,
        req(since=date(2020, 1, 1), until=date(2024, 12, 31)),
        False,
        'rule "one-year": nothing older than 365 days (before 2025-11-23) leaves this vault, and the time range asked for ends 2024-12-31',
    ),
    (YEAR, req("write"), True, NO_RULE),
    (
        TX_MONTH,
        req(),
        True,
        'rule "tx-month": no transactions data older than 30 days (before 2026-10-24) leaves this vault',
    ),
    (TX_MONTH, req(categories="energy"), True, NO_RULE),
    # max-grant
    (
        GRANT_90,
        req(expires_in=365 * DAY),
        True,
        'rule "grants-90": no grant lasts more than 90 days',
    ),
    (GRANT_90, req(expires_in=30 * DAY), True, NO_RULE),
    (GRANT_90, req(), True, NO_RULE),
    # redact-fields
    (
        REDACT,
        req(),
        True,
        'rule "no-counterparty": transactions data is shared without its counterparty and reference fields',
    ),
    (
        REDACT,
        req(fields=("amount", "counterparty")),
        True,
        'rule "no-counterparty": transactions data is shared without its counterparty and reference fields',
    ),
    (REDACT, req(fields=("amount", "date")), True, NO_RULE),
    (
        REDACT,
        req(fields=("counterparty",)),
        False,
        'rule "no-counterparty": transactions data is shared without its counterparty and reference fields, and nothing else was asked for',
    ),
    (
        REDACT_ONE,
        req("aggregate", fields=("account",)),
        False,
        'rule "no-account": transactions data is shared without its account field, so they cannot be totalled either',
    ),
    (REDACT_ONE, req("aggregate", fields=("amount",)), True, NO_RULE),
    (REDACT, req("write"), True, NO_RULE),
    # rate-limit
    (RATE, req(requests_today=99), True, NO_RULE),
    (
        RATE,
        req(requests_today=100),
        False,
        'rule "rate": a business may make at most 100 requests a day; acme has made 100 today',
    ),
    # allowed-purposes
    (TX_PURPOSES, req(purpose="dpv:CreditChecking"), True, NO_RULE),
    (
        TX_PURPOSES,
        req(purpose="dpv:Marketing"),
        False,
        'rule "tx-purposes": transactions data may only be used for checking your creditworthiness or providing the service you signed up for; this request is for marketing',
    ),
    (
        TX_PURPOSES,
        req(),
        False,
        'rule "tx-purposes": transactions data may only be used for checking your creditworthiness or providing the service you signed up for; this request gives no purpose',
    ),
    (
        TX_PURPOSES,
        req(purpose="credit-check"),
        False,
        'rule "tx-purposes": transactions data may only be used for checking your creditworthiness or providing the service you signed up for; this request is for "credit-check" (not a purpose pds knows)',
    ),
    (TX_PURPOSES, req(categories="energy"), True, NO_RULE),
    # min-bucket
    (
        K10,
        req("aggregate"),
        True,
        'rule "k10": totals built from fewer than 10 records are withheld',
    ),
    (K10, req(), True, NO_RULE),
]


@pytest.mark.parametrize(("rule", "request_", "allowed", "reason"), CASES)
def test_each_rule_kind(rule, request_: Request, allowed: bool, reason: str) -> None:
    d = decide(request_, [rule], NOW)
    assert (d.allowed, d.reason) == (allowed, reason)
    assert d.rule_ids == (() if reason == NO_RULE else (rule.id,))
    assert d.audit_decision == ("allowed" if allowed else "refused")


@pytest.mark.parametrize(
    ("rules", "request_", "constraints"),
    [
        ([], req(), Constraints()),
        ([YEAR], req(), Constraints(earliest=YEAR_AGO)),
        ([YEAR, TX_MONTH], req(), Constraints(earliest=date(2026, 10, 24))),
        ([GRANT_90, MaxGrant(id="g30", days=30)], req(), Constraints(max_expires_in=30 * DAY)),
        (
            [REDACT, REDACT_ONE],
            req(),
            Constraints(
                redacted=(("transactions", frozenset({"account", "counterparty", "reference"})),)
            ),
        ),
        ([RATE, RateLimit(id="r2", per_day=50)], req(), Constraints(rate_limit=50)),
        ([K10, MinBucket(id="k7", k=7)], req("aggregate"), Constraints(min_bucket=10)),
        ([K10], req(), Constraints()),
    ],
)
def test_limits_intersect(rules, request_: Request, constraints: Constraints) -> None:
    assert decide(request_, rules, NOW).constraints == constraints


def test_no_rule_means_the_grant_decides() -> None:
    d = decide(req(categories=("energy", "health")), [TX_PURPOSES, REDACT], NOW)
    assert (d.allowed, d.rule_ids, d.reason) == (
        True,
        (),
        "no policy rule applies; the grant decides",
    )


def test_deny_wins_and_names_only_the_refusing_rules() -> None:
    d = decide(req(categories="health", expires_in=400 * DAY), [GRANT_90, HEALTH, YEAR], NOW)
    assert not d.allowed
    assert d.rule_ids == ("health-never-leaves",)
    assert d.reason == 'rule "health-never-leaves": health data never leaves this vault'


def test_several_refusals_are_all_named_in_rule_order() -> None:
    d = decide(req(purpose="dpv:Marketing", requests_today=100), [TOTALS_MARKETING, RATE], NOW)
    assert d.rule_ids == ("marketing-totals", "rate")
    assert d.reason == (
        'rule "marketing-totals": for marketing, only totals leave this vault, never the records; '
        'rule "rate": a business may make at most 100 requests a day; acme has made 100 today'
    )


def test_narrowings_are_all_named() -> None:
    d = decide(req(expires_in=365 * DAY), [YEAR, GRANT_90, REDACT], NOW)
    assert d.allowed
    assert d.rule_ids == ("one-year", "grants-90", "no-counterparty")
    assert d.audit_fields() == {
        "decision": "allowed",
        "rule_ids": ("one-year", "grants-90", "no-counterparty"),
        "reason": d.reason,
    }


def test_ruleset_and_list_decide_the_same() -> None:
    rules = [HEALTH, TX_PURPOSES, YEAR, GRANT_90, REDACT, RATE, K10, TOTALS_MARKETING]
    rs = RuleSet(rules)
    for _, r, _, _ in CASES:
        assert decide(r, rs, NOW) == decide(r, rules, NOW)
    assert decide(req(categories="energy"), rs, NOW.date()) == decide(
        req(categories="energy"), rs, NOW
    )


def test_ruleset_words_with_a_detail_are_memoised_and_the_same() -> None:
    rs = RuleSet([YEAR, REDACT])
    detail = (date(2025, 11, 23), None)
    first = rs.words(YEAR, detail)
    assert first == YEAR.words(detail)
    assert rs.words(YEAR, (date(2025, 11, 23), None)) is first  # from the memo
    assert rs.words(YEAR, (date(2025, 11, 24), None)) == YEAR.words((date(2025, 11, 24), None))
    assert rs.words(REDACT, ["unhashable"]) == REDACT.words(["unhashable"])
    assert rs.words(YEAR) == YEAR.words()


def test_a_request_needs_a_known_action() -> None:
    with pytest.raises(ValueError, match="action 'delete' is not one of read, write, aggregate"):
        Request("acme", "delete", ("transactions",))


def test_constraints_helpers() -> None:
    c = Constraints(
        earliest=YEAR_AGO,
        max_expires_in=90 * DAY,
        redacted=(("transactions", frozenset({"counterparty"})),),
    )
    assert c.redact("transactions", {"amount": "1.00", "counterparty": "Shop"}) == {
        "amount": "1.00"
    }
    assert c.redact("energy", {"kwh": "3"}) == {"kwh": "3"}
    assert c.clip_since(None) == YEAR_AGO
    assert c.clip_since(date(2020, 1, 1)) == YEAR_AGO
    assert c.clip_since(date(2026, 1, 1)) == date(2026, 1, 1)
    assert c.cap_expires_in(None) == 90 * DAY
    assert c.cap_expires_in(10) == 10
    assert Constraints().cap_expires_in(None) is None
    assert c.within(Constraints())
    assert not Constraints().within(c)
    assert c.as_dict() == {
        "earliest": "2025-11-23",
        "max_expires_in": 7776000,
        "redacted": {"transactions": ["counterparty"]},
        "rate_limit": None,
        "min_bucket": 5,
    }


def test_purposes_vocabulary() -> None:
    assert covered_by("dpv:PersonalisedAdvertising") == {
        "dpv:PersonalisedAdvertising",
        "dpv:Advertising",
        "dpv:Marketing",
        "dpv:Personalisation",
    }
    assert covered_by("made-up") == {"made-up"}
    assert covered_by(None) == frozenset()
    assert label("dpv:CreditChecking") == "checking your creditworthiness"
    assert label(None) == "no stated purpose"


# -- explain_request: the consent page's view -------------------------------------------------


def test_explain_request_per_category_field_and_time() -> None:
    rules = [HEALTH, YEAR, GRANT_90, REDACT]
    asked = req(
        categories=("transactions", "health"),
        fields=("date", "amount", "counterparty"),
        since=date(2020, 1, 1),
        expires_in=365 * DAY,
        purpose="dpv:CreditChecking",
    )
    e = explain_request(asked, rules, NOW)
    tx, health = e.items
    assert not e.decision.allowed
    assert not e.refused_entirely
    assert (tx.category, tx.allowed, tx.rule_ids) == (
        "transactions",
        True,
        ("one-year", "grants-90", "no-counterparty"),
    )
    assert [(f.name, f.allowed, f.reason) for f in tx.fields] == [
        ("date", True, None),
        ("amount", True, None),
        (
            "counterparty",
            False,
            'rule "no-counterparty": transactions data is shared without its counterparty and reference fields',
        ),
    ]
    assert (tx.since, tx.until) == (YEAR_AGO, None)
    assert (
        tx.time_reason
        == 'rule "one-year": nothing older than 365 days (before 2025-11-23) leaves this vault'
    )
    assert (health.allowed, health.reason) == (
        False,
        'rule "health-never-leaves": health data never leaves this vault',
    )
    assert (e.expires_in, e.expires_reason) == (
        90 * DAY,
        'rule "grants-90": no grant lasts more than 90 days',
    )
    assert e.narrowed() == Request(
        "acme",
        "read",
        ("transactions",),
        fields=("date", "amount"),
        purpose="dpv:CreditChecking",
        since=YEAR_AGO,
        expires_in=90 * DAY,
    )


def test_explain_lists_every_schema_field_when_none_asked() -> None:
    e = explain_request(req(), [REDACT_ONE], NOW)
    (tx,) = e.items
    assert [f.name for f in tx.fields if not f.allowed] == ["account"]
    assert len(tx.fields) == 9
    assert e.narrowed().fields == (
        "date",
        "amount",
        "currency",
        "description",
        "counterparty",
        "balance",
        "type",
        "reference",
    )


def test_explain_request_that_can_never_be_satisfied() -> None:
    e = explain_request(req(categories=("health",)), [HEALTH], NOW)
    assert e.refused_entirely
    assert e.narrowed() is None


def test_explain_without_rules_changes_nothing() -> None:
    asked = req(categories=("transactions", "energy"), since=date(2020, 1, 1), expires_in=DAY)
    e = explain_request(asked, [], NOW)
    assert e.narrowed() == asked
    assert all(i.allowed and i.reason == NO_RULE for i in e.items)
