"""The API's query parameters and the OpenAPI description say the same thing: dates are
YYYY-MM-DD (``format: date``), whole numbers are ASCII digits within their bounds, and a
number too long for Python's int conversion gets the parameter's own message, not a 500."""

from __future__ import annotations

import json

import pytest

from tests.http.api.test_records import READ_SPRING, problem
from tests.oauth_kit import bearer, seed

BIG = "9" * 5000


@pytest.fixture
def token(kit, vault) -> str:
    seed(vault)
    client_id, secret = kit.add_client()
    details = json.dumps(READ_SPRING)
    return kit.tokens(client_id, secret, scope=None, authorization_details=details)["access_token"]


def test_openapi_declares_dates_and_bounds_as_the_server_reads_them(kit) -> None:
    doc = kit.http.get("/api/v1/openapi.json").json
    record_in = doc["components"]["schemas"]["TransactionsRecordIn"]["properties"]
    assert record_in["occurred_at"] == {"type": "string", "format": "date"}
    params = {
        (path, p["name"]): p
        for path, item in doc["paths"].items()
        for op in item.values()
        for p in op.get("parameters", [])
    }
    for path in ("/api/v1/records", "/api/v1/aggregates"):
        for name in ("since", "until"):
            p = params[(path, name)]
            assert p["schema"] == {"type": "string", "format": "date"}, (path, name)
            assert p["allowEmptyValue"] is True
    assert params[("/api/v1/records", "limit")]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 500,
        "default": 50,
    }
    assert "allowEmptyValue" not in params[("/api/v1/records", "limit")]
    assert params[("/api/v1/changes", "since")] == {
        "name": "since",
        "in": "query",
        "allowEmptyValue": True,
        "description": "the earlier feed of the profile and intentions by field name: "
        "changes after this seq (with it, cursor is ignored)",
        "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1, "default": 0},
    }
    assert params[("/api/v1/changes", "limit")]["allowEmptyValue"] is True


@pytest.mark.parametrize("path", ["/api/v1/records", "/api/v1/aggregates"])
def test_dates_are_yyyy_mm_dd_only(kit, token, path) -> None:
    for good in ("2024-03-05", "", "2024-02-29"):
        for name in ("since", "until"):
            q = {"category": "transactions", name: good}
            resp = kit.http.get(path, query_string=q, headers=bearer(token))
            assert resp.status_code == 200, (name, good, resp.text)
    for bad, shown in [
        ("20240305", "'20240305'"),  # ISO 8601 basic: Python takes it, format: date does not
        ("2024-W10-2", "'2024-W10-2'"),
        ("2024W102", "'2024W102'"),
        ("2024-03-05T00:00", "'2024-03-05T00:00'"),
        ("\uff12\uff10\uff12\uff14-03-05", "'\uff12\uff10\uff12\uff14-03-05'"),
        ("2023-02-29", "'2023-02-29'"),
        ("2024-13-01", "'2024-13-01'"),
        (BIG, repr(BIG[:39] + "\u2026")),
    ]:
        for name in ("since", "until"):
            q = {"category": "transactions", name: bad}
            resp = kit.http.get(path, query_string=q, headers=bearer(token))
            problem(resp, 400, "bad_request", f"{name} {shown} is not a date like 2025-01-31")


def test_whole_numbers_are_ascii_digits_within_bounds(kit, token) -> None:
    url = "/api/v1/records"
    for good, n in (("1", 1), ("0003", 3), ("0" * 5000 + "2", 2), ("500", 500)):
        q = {"category": "transactions", "limit": good}
        resp = kit.http.get(url, query_string=q, headers=bearer(token))
        assert resp.status_code == 200, (good, resp.text)
        assert len(resp.json["records"]) == min(n, 3)
    for bad in ("", "0", "501", "-1", "+5", " 5", "5.0", "\u00b2", "\u0663", BIG, "1" + "0" * 4400):
        for _ in range(2):
            q = {"category": "transactions", "limit": bad}
            resp = kit.http.get(url, query_string=q, headers=bearer(token))
            problem(resp, 400, "bad_request", "limit must be a whole number from 1 to 500")


def test_changes_since_and_limit_refuse_big_and_odd_numbers(kit) -> None:
    client_id, secret = kit.add_client()
    profile = kit.tokens(client_id, secret, scope="read:profile")["access_token"]
    for q in ("", "since=", "limit=", "since=0&limit=500", "since=9223372036854775807"):
        resp = kit.http.get(f"/api/v1/changes?{q}", headers=bearer(profile))
        assert resp.status_code == 200, (q, resp.text)
    top = 2**63 - 1
    for name, detail in [
        ("since", f"since must be a whole number from 0 to {top}"),
        ("limit", "limit must be a whole number from 1 to 500"),
    ]:
        for bad in (BIG, "9223372036854775808", "-1", "\u00b2", "1e3", "0x10"):
            if name == "limit" and bad == "9223372036854775808":
                bad = "501"
            for _ in range(2):
                resp = kit.http.get(
                    "/api/v1/changes", query_string={name: bad}, headers=bearer(profile)
                )
                problem(resp, 400, "bad_request", detail)
