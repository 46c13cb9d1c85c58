"""Aggregates never add different currencies or units together: a bucket per currency/unit."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest

from pds.http.api.aggregates import UNITS, numeric_fields, reduce
from pds.vault import Prepared, SourceInfo
from pds.vault.records import canonical
from pds.vocabulary import CATEGORIES
from tests.factories import transaction
from tests.oauth.test_policy import problem, write_policy
from tests.oauth_kit import bearer, csrf, pkce, query


@pytest.fixture
def kit(kit):
    """The kit, with the worker's policies re-checked on every request."""
    with kit.app.app_context():
        from pds.http.context import current_policies

        current_policies().check_every = 0
    return kit


def tx(day: str, amount: str, currency: str, n: int) -> Prepared:
    payload = transaction(day, amount, f"SHOP {n}", currency=currency, balance=amount)
    return Prepared("transactions", day, canonical(payload), f"t{n}", 0)


def reading(start: str, value: str, unit: str, n: int, cost=None, currency=None) -> Prepared:
    payload = {
        "start": f"{start}T00:00:00Z",
        "duration": "3600",
        "value": value,
        "unit": unit,
        "cost": cost,
        "currency": currency,
        "flow": None,
        "commodity": None,
        "usage_point": f"meter {n}",
        "meter_reading": None,
        "quality": None,
    }
    return Prepared("energy", start, canonical(payload), None, 0)


def store(vault, items: list[Prepared]) -> None:
    vault.ingest(SourceInfo("test", "mixed", b"mixed"), [items])


def mixed_money(vault) -> None:
    """January 2024: 5 in GBP, 5 in EUR, 2 in USD; February: 6 in GBP, 4 in EUR."""
    n = iter(range(1000))
    items = [tx(f"2024-01-0{d}", f"-{d}.10", "GBP", next(n)) for d in range(1, 6)]
    items += [tx(f"2024-01-1{d}", f"-{d}00.05", "EUR", next(n)) for d in range(1, 6)]
    items += [tx(f"2024-01-2{d}", "-9999.00", "USD", next(n)) for d in (1, 2)]
    items += [tx(f"2024-02-0{d}", f"{d}.5", "GBP", next(n)) for d in range(1, 7)]
    items += [tx(f"2024-02-1{d}", "-1.00", "EUR", next(n)) for d in range(1, 5)]
    store(vault, items)


def token(kit, categories=("transactions",), fields=None, actions=("aggregate",)) -> dict:
    item = {
        "type": "pds_records",
        "actions": list(actions),
        "categories": list(categories),
        "purpose": "dpv:ServiceProvision",
    }
    if fields is not None:
        item["fields"] = fields
    client_id, secret = kit.add_client()
    tok = kit.tokens(client_id, secret, scope=None, authorization_details=json.dumps([item]))
    return bearer(tok["access_token"])


def totals(kit, auth, **params) -> dict:
    resp = kit.http.get("/api/v1/aggregates", query_string=params, headers=auth)
    assert resp.status_code == 200, resp.text
    return resp.json


def test_every_numeric_field_names_its_currency_or_unit() -> None:
    numeric = {(c, f) for c in CATEGORIES for f in numeric_fields(c)}
    assert numeric == set(UNITS)
    assert all(u in ("currency", "unit") for u in UNITS.values())


def test_sums_and_means_are_per_currency(kit, vault) -> None:
    mixed_money(vault)
    auth = token(kit)
    got = totals(kit, auth, category="transactions", measure="sum", field="amount")
    assert got["per"] == "currency"
    assert got["buckets"] == [
        {"bucket": "2024-01", "currency": "EUR", "count": 5, "value": "-1500.25"},
        {"bucket": "2024-01", "currency": "GBP", "count": 5, "value": "-15.50"},
        {"bucket": "2024-02", "currency": "GBP", "count": 6, "value": "24.0"},
    ]
    assert got["suppressed"] == 2  # January's 2 USD, February's 4 EUR: never in a total
    mean = totals(kit, auth, category="transactions", measure="mean", field="amount")
    assert mean["buckets"] == [
        {"bucket": "2024-01", "currency": "EUR", "count": 5, "value": "-300.0500"},
        {"bucket": "2024-01", "currency": "GBP", "count": 5, "value": "-3.1000"},
        {"bucket": "2024-02", "currency": "GBP", "count": 6, "value": "4.000"},
    ]
    # the figures are exact decimals, as the records hold them
    assert Decimal(mean["buckets"][0]["value"]) * 5 == Decimal("-1500.25")
    year = totals(kit, auth, category="transactions", measure="sum", field="balance", by="year")
    assert year["buckets"] == [
        {"bucket": "2024", "currency": "EUR", "count": 5, "value": "-1500.25"},
        {"bucket": "2024", "currency": "GBP", "count": 11, "value": "8.50"},
    ]
    # a count adds no amounts: one bucket per cell, as before
    count = totals(kit, auth, category="transactions")
    assert (count["per"], count["buckets"]) == (
        None,
        [
            {"bucket": "2024-01", "count": 12, "value": 12},
            {"bucket": "2024-02", "count": 10, "value": 10},
        ],
    )


def test_energy_values_are_per_unit_and_costs_per_currency(kit, vault) -> None:
    items = [reading(f"2024-03-0{d}", "1.5", "kWh", d, "0.30", "GBP") for d in range(1, 6)]
    items += [reading(f"2024-03-1{d}", "250", "Wh", 10 + d, "0.05", "EUR") for d in range(1, 6)]
    items += [reading(f"2024-03-2{d}", "0.75", "m3", 20 + d, "0.10") for d in range(1, 6)]
    store(vault, items)
    auth = token(kit, categories=("energy",))
    values = totals(kit, auth, category="energy", measure="sum", field="value")
    assert values["per"] == "unit"
    assert values["buckets"] == [
        {"bucket": "2024-03", "unit": "Wh", "count": 5, "value": "1250"},
        {"bucket": "2024-03", "unit": "kWh", "count": 5, "value": "7.5"},
        {"bucket": "2024-03", "unit": "m3", "count": 5, "value": "3.75"},
    ]
    costs = totals(kit, auth, category="energy", measure="sum", field="cost")
    assert costs["per"] == "currency"
    assert costs["buckets"] == [
        {"bucket": "2024-03", "currency": None, "count": 5, "value": "0.50"},
        {"bucket": "2024-03", "currency": "EUR", "count": 5, "value": "0.25"},
        {"bucket": "2024-03", "currency": "GBP", "count": 5, "value": "1.50"},
    ]


def test_a_grant_or_policy_without_the_currency_cannot_total(kit, vault) -> None:
    mixed_money(vault)
    auth = token(kit, fields=["date", "amount"])
    resp = kit.http.get(
        "/api/v1/aggregates?category=transactions&measure=sum&field=amount", headers=auth
    )
    problem(
        resp,
        403,
        "insufficient_scope",
        "totals of amount are given per currency, and the grant does not allow the currency "
        "field of transactions",
    )
    assert totals(kit, auth, category="transactions")["buckets"][0]["count"] == 12  # counts: fine
    whole = token(kit)  # granted before the owner's policy withholds the currency
    write_policy(
        vault,
        "mine",
        '[[rule]]\nid = "no-currency"\nkind = "redact-fields"\ncategory = "transactions"\n'
        'fields = ["currency"]\n',
    )
    refused = kit.http.get(
        "/api/v1/aggregates?category=transactions&measure=sum&field=amount", headers=whole
    )
    problem(
        refused,
        403,
        "policy_refused",
        'refused by the owner\'s policies: rule "no-currency": transactions data is shared '
        "without its currency field, so they cannot be totalled either",
    )


@pytest.mark.parametrize("k", [5, 6])
def test_reduce_suppresses_each_currency_on_its_own_count(k: int) -> None:
    rows = [("2024-01-05", {"amount": "1.00", "currency": "GBP"})] * 6
    rows += [("2024-01-06", {"amount": "2.00", "currency": "EUR"})] * 5
    rows += [("2024-01-07", {"amount": "3.00", "currency": None})] * 5
    rows += [("2024-01-08", {"amount": None, "currency": "EUR"})] * 3  # no amount: not counted
    buckets, suppressed = reduce(rows, "month", "amount", k, "currency")
    got = [(label, unit, c.count, c.value("sum")) for label, unit, c in buckets]
    if k == 5:
        assert got == [
            ("2024-01", None, 5, "15.00"),
            ("2024-01", "EUR", 5, "10.00"),
            ("2024-01", "GBP", 6, "6.00"),
        ]
        assert suppressed == 0
    else:
        assert got == [("2024-01", "GBP", 6, "6.00")]
        assert suppressed == 2
    # one currency: the very figures of an ungrouped total
    single = rows[:6]
    assert [
        (c.count, c.value("sum"), c.value("mean"))
        for *_, c in reduce(single, "month", "amount", 5, "currency")[0]
    ] == [(6, "6.00", "1.0000")]
    assert [(c.count, c.value("sum")) for *_, c in reduce(single, "month", "amount", 5)[0]] == [
        (6, "6.00")
    ]


def allowed_as_shown(kit, items: list[dict]) -> tuple[dict, dict]:
    """The owner presses Allow on the consent page as shown; the token response and header."""
    details = json.dumps(
        [{"type": "pds_records", "categories": ["transactions"], **i} for i in items]
    )
    client_id, secret = kit.add_client()
    verifier, challenge = pkce()
    url = kit.authorize_url(client_id, challenge, scope=None, authorization_details=details)
    kit.login()
    page = kit.http.get(url).text
    form: dict[str, list[str]] = {}
    for name, value in re.findall(r'name="([^"]+)" value="([^"]+)"[^>]* checked>', page):
        form.setdefault(name, []).append(value)
    resp = kit.http.post(
        url, data={"csrf_token": csrf(page), "decision": "allow", "narrowing": "1", **form}
    )
    code = query(resp.headers["Location"])["code"]
    tok = kit.redeem(client_id, secret, code, verifier).json
    return tok, bearer(tok["access_token"])


def payloads(kit, auth) -> list[dict]:
    resp = kit.http.get("/api/v1/records?category=transactions&limit=100", headers=auth)
    assert resp.status_code == 200, resp.text
    return [r["payload"] for r in resp.json["records"]]


def test_totals_of_any_field_never_read_per_record(kit, vault) -> None:
    """aggregate (every field) + read (date): records show the date only; totals still work."""
    mixed_money(vault)
    tok, auth = allowed_as_shown(
        kit, [{"actions": ["aggregate"]}, {"actions": ["read"], "fields": ["date"]}]
    )
    assert tok["scope"] == "read:transactions aggregate:transactions"
    assert [(i["actions"], i.get("fields")) for i in tok["authorization_details"]] == [
        (["read"], ["date"]),
        (["aggregate"], None),
    ]
    got = payloads(kit, auth)
    assert len(got) == 22
    assert {tuple(p) for p in got} == {("date",)}
    sums = totals(kit, auth, category="transactions", measure="sum", field="balance", by="year")
    assert sums["buckets"] == [
        {"bucket": "2024", "currency": "EUR", "count": 5, "value": "-1500.25"},
        {"bucket": "2024", "currency": "GBP", "count": 11, "value": "8.50"},
    ]


def test_totals_of_the_amount_never_make_it_readable(kit, vault) -> None:
    """aggregate (amount, currency) + read (date): the amount is totalled, never read."""
    mixed_money(vault)
    tok, auth = allowed_as_shown(
        kit,
        [
            {"actions": ["aggregate"], "fields": ["amount", "currency"]},
            {"actions": ["read"], "fields": ["date"]},
        ],
    )
    assert [(i["actions"], i.get("fields")) for i in tok["authorization_details"]] == [
        (["read"], ["date"]),
        (["aggregate"], ["amount", "currency"]),
    ]
    for _ in range(2):  # the second request as the first
        got = payloads(kit, auth)
        assert (len(got), {tuple(p) for p in got}) == (22, {("date",)})
    one = kit.http.get("/api/v1/records?category=transactions&limit=1", headers=auth)
    rid = one.json["records"][0]["id"]
    single = kit.http.get(f"/api/v1/records/{rid}", headers=auth)
    assert single.status_code == 200, single.text
    assert single.json["payload"] == {"date": "2024-01-01"}
    sums = totals(kit, auth, category="transactions", measure="sum", field="amount")
    assert sums["buckets"] == [
        {"bucket": "2024-01", "currency": "EUR", "count": 5, "value": "-1500.25"},
        {"bucket": "2024-01", "currency": "GBP", "count": 5, "value": "-15.50"},
        {"bucket": "2024-02", "currency": "GBP", "count": 6, "value": "24.0"},
    ]
    refused = kit.http.get(
        "/api/v1/aggregates?category=transactions&measure=sum&field=balance", headers=auth
    )
    problem(
        refused,
        403,
        "insufficient_scope",
        "the grant does not allow totalling the balance field of transactions",
    )
