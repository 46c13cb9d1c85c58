"""The owner's policies enforced end to end: consent page, every API request, refresh,
aggregate-only answers."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from itertools import product

import pytest

from pds.oauth import store
from pds.vault import SourceInfo
from tests.factories import prepared, transaction
from tests.oauth_kit import CB, ISSUER, bearer, pkce, query, seed

CREDIT = [
    {
        "type": "pds_records",
        "actions": ["read"],
        "categories": ["transactions"],
        "purpose": "dpv:CreditChecking",
    }
]


@pytest.fixture
def kit(kit):
    """The kit, with the worker's policies re-checked on every request."""
    with kit.app.app_context():
        from pds.http.context import current_policies

        current_policies().check_every = 0
    return kit


def write_policy(vault, name: str, text: str) -> None:
    folder = vault.settings.home / "policies"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.toml").write_text(text, encoding="utf-8")


def entries(vault) -> list[dict]:
    rows = vault.conn.execute("SELECT entry FROM audit_log ORDER BY idx").fetchall()
    return [json.loads(r[0]) for r in rows]


def days_back_to(day: date) -> int:
    return (datetime.now(UTC).date() - day).days


def problem(resp, status: int, code: str, detail: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"] == "application/problem+json"
    body = resp.json
    assert body["type"] == f"https://pds.invalid/problems/{code}"
    assert body["detail"] == detail
    return body


def grant_tokens(kit, **params) -> tuple[str, str | None, dict]:
    client_id, secret = kit.add_client()
    params.setdefault("scope", None)
    params.setdefault("authorization_details", json.dumps(CREDIT))
    return client_id, secret, kit.tokens(client_id, secret, **params)


NARROWING = """
[[rule]]
id = "no-references"
kind = "redact-fields"
category = "transactions"
fields = ["counterparty", "reference"]

[[rule]]
id = "since-march"
kind = "max-history"
days = {days}
"""


def test_policy_added_after_grant_narrows_next_api_response_and_refresh(kit, vault) -> None:
    seed(vault)
    client_id, secret, tok = grant_tokens(kit)
    before = kit.http.get(
        "/api/v1/records?category=transactions", headers=bearer(tok["access_token"])
    )
    assert [r["payload"]["reference"] for r in before.json["records"]] == [
        "R1", "R2", "R3", "R4", "R5", "R6"
    ]  # fmt: skip
    write_policy(vault, "mine", NARROWING.format(days=days_back_to(date(2024, 3, 1))))

    resp = kit.http.get(
        "/api/v1/records?category=transactions", headers=bearer(tok["access_token"])
    )
    assert resp.status_code == 200, resp.text
    records = resp.json["records"]
    assert [r["occurred_at"] for r in records] == [
        "2024-03-05", "2024-04-05", "2024-05-05", "2024-06-05"
    ]  # fmt: skip
    assert all(
        "reference" not in r["payload"] and "counterparty" not in r["payload"] for r in records
    )
    assert records[0]["payload"] == {
        "date": "2024-03-05",
        "amount": "-3.00",
        "currency": "GBP",
        "description": "SHOP 3",
        "balance": None,
        "type": "VIS",
        "account": None,
    }
    entry = entries(vault)[-1]
    assert entry["action"] == "api.records.read"
    assert entry["decision"] == "allowed"
    assert entry["count"] == 4
    assert entry["rules"] == ["no-references", "since-march"]
    assert entry["reason"] == (
        'rule "no-references": transactions data is shared without its counterparty and '
        'reference fields; rule "since-march": nothing older than '
        f"{days_back_to(date(2024, 3, 1))} days (before 2024-03-01) leaves this vault"
    )
    # one record by id, older than the policy allows: as if it did not exist
    old = before.json["records"][0]["id"]
    gone = kit.http.get(f"/api/v1/records/{old}", headers=bearer(tok["access_token"]))
    problem(gone, 404, "not_found", "there is no record with this id that your grant covers")
    assert entries(vault)[-1]["rules"] == ["no-references", "since-march"]

    # the next refresh narrows the stored grant
    refreshed = kit.token(
        client_id, secret, grant_type="refresh_token", refresh_token=tok["refresh_token"]
    )
    assert refreshed.status_code == 200, refreshed.text
    (detail,) = refreshed.json["authorization_details"]
    assert detail["fields"] == [
        "date",
        "amount",
        "currency",
        "description",
        "balance",
        "type",
        "account",
    ]
    assert detail["time_range"] == {"from": "2024-03-01"}
    grant_id = store.find_access_token(vault.conn, refreshed.json["access_token"]).grant_id
    stored = store.get_grant(vault.conn, grant_id)
    assert stored.access.categories["transactions"].time_from == "2024-03-01"
    assert stored.access.categories["transactions"].fields == tuple(detail["fields"])
    narrow = [e for e in entries(vault) if e["action"] == "grant.narrow"]
    assert len(narrow) == 1
    assert narrow[0]["rules"] == ["no-references", "since-march"]
    assert narrow[0]["grant"] == str(grant_id)
    # a second refresh finds nothing more to narrow
    again = kit.token(
        client_id, secret, grant_type="refresh_token", refresh_token=refreshed.json["refresh_token"]
    )
    assert again.status_code == 200, again.text
    assert [e["action"] for e in entries(vault)].count("grant.narrow") == 1


DENY_TX = """
[[rule]]
id = "tx-stay-home"
kind = "deny-category"
category = "transactions"
"""
DENY_TX_WORDS = 'rule "tx-stay-home": transactions data never leaves this vault'


def test_deny_category_on_consent_page_and_api(kit, vault) -> None:
    seed(vault)
    client_id, _, tok = grant_tokens(kit)  # granted before the policy
    write_policy(vault, "mine", DENY_TX)

    _, challenge = pkce()
    url = kit.authorize_url(client_id, challenge, scope="read:transactions read:energy")
    page = kit.http.get(url).text
    assert (
        f'<span class="refused">Refused by your policies: {DENY_TX_WORDS}</span>'
        in page.replace("&#34;", '"')
    )
    assert 'value="read:transactions"' not in page
    assert 'value="read:energy" checked>' in page
    # allowing everything stores only what the policies allow
    resp = kit.consent(url, item=["read:transactions", "read:energy"])
    assert resp.status_code == 303
    code = query(resp.headers["Location"])["code"]
    row = store.find_code(vault.conn, code)
    assert store.get_grant(vault.conn, row.grant_id).scope == "read:energy"
    created = entries(vault)[-1]
    assert (created["action"], created["rules"], created["reason"]) == (
        "grant.create",
        ["tx-stay-home"],
        DENY_TX_WORDS,
    )

    api = kit.http.get("/api/v1/records?category=transactions", headers=bearer(tok["access_token"]))
    problem(api, 403, "policy_refused", f"refused by the owner's policies: {DENY_TX_WORDS}")
    entry = entries(vault)[-1]
    assert entry["action"] == "api.records.read"
    assert entry["decision"] == "refused"
    assert entry["rules"] == ["tx-stay-home"]
    assert entry["reason"] == DENY_TX_WORDS
    assert entry["category"] == "transactions"


def test_request_refused_entirely_is_access_denied_without_asking(kit, vault) -> None:
    write_policy(vault, "mine", DENY_TX)
    client_id, _ = kit.add_client()
    _, challenge = pkce()
    kit.login()
    resp = kit.http.get(kit.authorize_url(client_id, challenge))
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith(CB + "?")
    q = query(resp.headers["Location"])
    assert q == {
        "error": "access_denied",
        "error_description": "refused by the owner's policies: rule 'tx-stay-home': "
        "transactions data never leaves this vault",
        "state": "st-123",
        "iss": ISSUER,
    }
    entry = entries(vault)[-1]
    assert (entry["action"], entry["decision"], entry["rules"]) == (
        "grant.create",
        "refused",
        ["tx-stay-home"],
    )
    assert not vault.conn.execute("SELECT count(*) FROM grants").fetchone()[0]


def test_consent_page_shows_narrowing_and_purpose_in_plain_words(kit, vault) -> None:
    write_policy(vault, "mine", NARROWING.format(days=days_back_to(date(2024, 3, 1))))
    client_id, _ = kit.add_client()
    _, challenge = pkce()
    url = kit.authorize_url(
        client_id, challenge, scope=None, authorization_details=json.dumps(CREDIT)
    )
    kit.login()
    page = kit.http.get(url).text.replace("&#34;", '"')
    assert (
        "<strong>Purpose:</strong> checking your creditworthiness "
        "(<code>dpv:CreditChecking</code>)" in page
    )
    assert (
        'Narrowed by your policies: the counterparty field is withheld (rule "no-references": '
        "transactions data is shared without its counterparty and reference fields)" in page
    )
    assert 'value="counterparty"' not in page
    assert 'Narrowed by your policies: records from 2024-03-01 on only (rule "since-march"' in page
    form = {"narrowing": "1", "field.transactions": ["date", "amount", "counterparty"]}
    resp = kit.consent(url, item=["read:transactions"], **form)
    code = query(resp.headers["Location"])["code"]
    grant = store.get_grant(vault.conn, store.find_code(vault.conn, code).grant_id)
    cat = grant.access.categories["transactions"]
    assert (cat.fields, cat.time_from, cat.time_to) == (("date", "amount"), "2024-03-01", None)


def test_unknown_purpose_is_invalid_authorization_details(kit) -> None:
    client_id, _ = kit.add_client()
    _, challenge = pkce()
    details = [{**CREDIT[0], "purpose": "budgeting"}]
    resp = kit.http.get(
        kit.authorize_url(
            client_id, challenge, scope=None, authorization_details=json.dumps(details)
        )
    )
    q = query(resp.headers["Location"])
    assert q["error"] == "invalid_authorization_details"
    assert q["error_description"] == (
        "authorization_details[0].purpose: 'budgeting' is not a purpose pds knows; use a W3C "
        "DPV purpose term such as 'dpv:ServiceProvision' (see docs/oauth.md)"
    )


def test_refresh_revokes_a_grant_nothing_of_which_remains(kit, vault) -> None:
    client_id, secret, tok = grant_tokens(kit)
    write_policy(vault, "mine", DENY_TX)
    resp = kit.token(
        client_id, secret, grant_type="refresh_token", refresh_token=tok["refresh_token"]
    )
    assert resp.status_code == 400
    assert resp.json == {
        "error": "invalid_grant",
        "error_description": "The grant was revoked: the owner's policies no longer allow any "
        "of it: rule 'tx-stay-home': transactions data never leaves this vault",
    }
    entry = entries(vault)[-1]
    assert (entry["action"], entry["decision"], entry["rules"], entry["reason"]) == (
        "grant.revoke",
        "refused",
        ["tx-stay-home"],
        DENY_TX_WORDS,
    )
    api = kit.http.get("/api/v1/grant", headers=bearer(tok["access_token"]))
    assert api.status_code == 401


def test_rate_limit_is_429_after_n_requests(kit, vault) -> None:
    seed(vault)
    client_id, _, tok = grant_tokens(kit)
    write_policy(vault, "mine", '[[rule]]\nid = "three-a-day"\nkind = "rate-limit"\nper_day = 3\n')
    url = "/api/v1/records?category=transactions&limit=1"
    for _ in range(3):
        assert kit.http.get(url, headers=bearer(tok["access_token"])).status_code == 200
    resp = kit.http.get(url, headers=bearer(tok["access_token"]))
    words = f'rule "three-a-day": a business may make at most 3 requests a day; {client_id} has made 3 today'
    problem(resp, 429, "rate_limited", f"refused by the owner's policies: {words}")
    assert 1 <= int(resp.headers["Retry-After"]) <= 86400
    entry = entries(vault)[-1]
    assert (entry["decision"], entry["rules"], entry["reason"]) == (
        "refused",
        ["three-a-day"],
        words,
    )
    # refused requests count too: still refused; another client has its own count
    again = kit.http.get(url, headers=bearer(tok["access_token"]))
    assert again.status_code == 429
    assert "has made 4 today" in again.json["detail"]
    _, _, other = grant_tokens(kit)
    assert kit.http.get(url, headers=bearer(other["access_token"])).status_code == 200


# -- aggregates ---------------------------------------------------------------------------------


def seed_for_totals(vault) -> None:
    """5 in January, 3 in March (big amounts, to spot them), 6 in May 2024."""
    jan = [("2024-01-02", "-1.10"), ("2024-01-09", "-2.20"), ("2024-01-16", "-3.30"),
           ("2024-01-23", "-4.40"), ("2024-01-30", "-5.55")]  # fmt: skip
    mar = [("2024-03-04", "-1000.00"), ("2024-03-18", "-2000.00"), ("2024-03-29", "-3000.00")]
    may = [(f"2024-05-{d:02d}", "-10.00") for d in (1, 2, 3, 4, 5, 6)]
    items = [
        prepared(transaction(d, a, f"SHOP {i}"), identity=f"t{i}")
        for i, (d, a) in enumerate(jan + mar + may)
    ]
    vault.ingest(SourceInfo("test", "totals.csv", b"totals"), [items])


def aggregate_token(kit) -> str:
    _, _, tok = grant_tokens(
        kit,
        scope=None,
        authorization_details=json.dumps([{**CREDIT[0], "actions": ["aggregate"]}]),
    )
    assert tok["scope"] == "aggregate:transactions"
    return tok["access_token"]


def test_aggregate_grant_cannot_read_rows(kit, vault) -> None:
    seed_for_totals(vault)
    token = aggregate_token(kit)
    rows = kit.http.get("/api/v1/records?category=transactions", headers=bearer(token))
    problem(rows, 403, "insufficient_scope", "the grant does not allow reading transactions")
    some = vault.conn.execute("SELECT min(id) FROM records").fetchone()[0]
    one = kit.http.get(f"/api/v1/records/{some}", headers=bearer(token))
    problem(one, 404, "not_found", "there is no record with this id that your grant covers")
    totals = kit.http.get(
        "/api/v1/aggregates?category=transactions&measure=sum&field=amount", headers=bearer(token)
    )
    assert totals.status_code == 200, totals.text
    assert totals.json == {
        "category": "transactions",
        "measure": "sum",
        "field": "amount",
        "by": "month",
        "since": None,
        "until": None,
        "min_bucket": 5,
        "per": "currency",
        "buckets": [
            {"bucket": "2024-01", "currency": "GBP", "count": 5, "value": "-16.55"},
            {"bucket": "2024-05", "currency": "GBP", "count": 6, "value": "-60.00"},
        ],
        "suppressed": 1,
    }
    mean = kit.http.get(
        "/api/v1/aggregates?category=transactions&measure=mean&field=amount&by=year",
        headers=bearer(token),
    )
    assert mean.json["buckets"] == [
        {"bucket": "2024", "currency": "GBP", "count": 11, "value": "-6.9591"}
    ]
    entry = entries(vault)[-1]
    assert (entry["action"], entry["decision"], entry["count"], entry["category"]) == (
        "api.aggregates.read",
        "allowed",
        11,
        "transactions",
    )
    # the scope is advertised
    meta = kit.http.get("/.well-known/oauth-authorization-server").json
    assert "aggregate:transactions" in meta["scopes_supported"]


def test_suppressed_bucket_stays_suppressed_whatever_the_parameters(kit, vault) -> None:
    seed_for_totals(vault)
    token = aggregate_token(kit)
    ends = [
        None,
        "2024-01-01",
        "2024-03-01",
        "2024-03-10",
        "2024-03-31",
        "2024-04-01",
        "2024-12-31",
    ]
    seen = 0
    for by, measure, since, until in product(
        ("day", "week", "month", "year"), ("count", "sum", "mean"), ends, ends
    ):
        params = {"category": "transactions", "measure": measure, "by": by}
        if measure != "count":
            params["field"] = "amount"
        if since:
            params["since"] = since
        if until:
            params["until"] = until
        resp = kit.http.get("/api/v1/aggregates", query_string=params, headers=bearer(token))
        assert resp.status_code == 200, (params, resp.text)
        for b in resp.json["buckets"]:
            seen += 1
            # no published bucket holds a March record: never a big amount, never March
            assert not b["bucket"].startswith("2024-03"), params
            assert b["count"] >= 5
            if measure != "count":
                assert abs(float(b["value"])) < 1000 / b["count"], (params, b)
            if by == "year":
                assert b["count"] in (5, 6, 11), (params, b)
    assert seen > 0


def test_min_bucket_policy_and_redacted_fields_apply_to_totals(kit, vault) -> None:
    seed_for_totals(vault)
    token = aggregate_token(kit)
    write_policy(
        vault,
        "mine",
        '[[rule]]\nid = "six"\nkind = "min-bucket"\nk = 6\n\n'
        '[[rule]]\nid = "no-amounts"\nkind = "redact-fields"\ncategory = "transactions"\n'
        'fields = ["amount"]\n',
    )
    counts = kit.http.get("/api/v1/aggregates?category=transactions", headers=bearer(token))
    assert counts.json["min_bucket"] == 6
    assert counts.json["buckets"] == [{"bucket": "2024-05", "count": 6, "value": 6}]
    assert counts.json["suppressed"] == 2
    assert entries(vault)[-1]["rules"] == ["six"]
    sums = kit.http.get(
        "/api/v1/aggregates?category=transactions&measure=sum&field=amount", headers=bearer(token)
    )
    problem(
        sums,
        403,
        "policy_refused",
        'refused by the owner\'s policies: rule "no-amounts": transactions data is shared '
        "without its amount field, so they cannot be totalled either",
    )


def test_read_grant_may_total_what_it_may_read(kit, vault) -> None:
    seed_for_totals(vault)
    _, _, tok = grant_tokens(kit)
    resp = kit.http.get(
        "/api/v1/aggregates?category=transactions&since=2024-01-15",
        headers=bearer(tok["access_token"]),
    )
    assert resp.json["since"] == "2024-02-01"  # moved inward to a whole month
    assert resp.json["buckets"] == [{"bucket": "2024-05", "count": 6, "value": 6}]
    other = kit.http.get("/api/v1/aggregates?category=energy", headers=bearer(tok["access_token"]))
    problem(other, 403, "insufficient_scope", "the grant does not allow totals of energy")


def test_per_process_policy_set_and_counter(kit, vault) -> None:
    seed(vault)
    _, _, tok = grant_tokens(kit)
    kit.http.get("/api/v1/grant", headers=bearer(tok["access_token"]))
    assert list(kit.app.extensions["pds_policies"]) == [os.getpid()]


def test_openapi_describes_aggregates(kit) -> None:
    doc = kit.http.get("/api/v1/openapi.json").json
    op = doc["paths"]["/api/v1/aggregates"]["get"]
    assert [p["name"] for p in op["parameters"]] == [
        "category", "measure", "field", "by", "since", "until"
    ]  # fmt: skip
    assert set(op["responses"]) == {"200", "400", "401", "403", "414", "429", "503"}
    scopes = doc["components"]["securitySchemes"]["oauth2"]["flows"]["authorizationCode"]["scopes"]
    assert scopes["aggregate:transactions"] == "totals of transactions, never a record"
