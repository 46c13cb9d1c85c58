"""JSON from requests: nesting capped at 64 before parsing, on every endpoint that reads it."""

from __future__ import annotations

import json

import pytest

from pds.errors import ValidationError
from pds.jsonbody import MAX_DEPTH, TooDeep, check_depth, loads
from pds.oauth.access import AccessError, parse_request
from pds.profile import profile
from tests.http.api.test_records import problem
from tests.oauth_kit import CB, bearer

DEEP = "[" * 100_000 + "]" * 100_000  # 200,000 bytes: under the 256 KiB body cap


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def test_depth_is_counted_outside_strings() -> None:
    assert loads(nested(MAX_DEPTH)) is not None
    assert loads('{"a": ' * MAX_DEPTH + "1" + "}" * MAX_DEPTH) is not None
    for text in (nested(MAX_DEPTH + 1), '{"a": ' * 65 + "1" + "}" * 65, DEEP, "[" * 100_000):
        with pytest.raises(TooDeep) as exc:
            loads(text)
        assert str(exc.value) == "the JSON is nested more than 64 levels deep"
    # brackets inside strings (escaped quotes too) do not count
    text = json.dumps({"a": "[" * 10_000, "b": '\\"{' * 10_000, "c": [["]]]]"]]})
    assert loads(text) == json.loads(text)
    assert loads(text.encode("utf-16")) == json.loads(text)  # any JSON encoding
    check_depth('["[[[[", ' + nested(MAX_DEPTH - 1) + "]")
    with pytest.raises(TooDeep):
        check_depth('["[[[[", ' + nested(MAX_DEPTH) + "]")
    with pytest.raises(ValueError, match="Expecting value"):
        loads("[1,")  # not JSON: the parser's own error


def test_records_api_refuses_deep_json_with_400(kit) -> None:
    client_id, secret = kit.add_client("Writer")
    tok = kit.tokens(client_id, secret, scope="write:health")["access_token"]
    for body in (DEEP, '{"category": "health", "payload": ' + DEEP + "}"):
        resp = kit.http.post(
            "/api/v1/records",
            data=body,
            headers={**bearer(tok), "Content-Type": "application/json"},
        )
        answer = problem(
            resp, 400, "bad_request", "the body is JSON nested more than 64 levels deep"
        )
        assert answer["hint"] == "Send at most 64 levels of arrays and objects inside each other."
        assert kit.audit_actions()[-1] == ("api.records.write", "refused")
    # 64 levels in all (the body, its payload, a FHIR resource nested 61 more) are parsed
    resource: dict = {"x": "[[[{{{"}
    for _ in range(61):
        resource = {"x": resource}
    record = {
        "category": "health",
        "occurred_at": "2024-07-01",
        "payload": {"kind": "fhir", "type": "Observation", "resource": resource},
    }
    ok = kit.http.post("/api/v1/records", json=record, headers=bearer(tok))
    assert ok.status_code == 201, ok.text
    too_deep = {"x": resource}
    record["payload"]["resource"] = too_deep
    refused = kit.http.post("/api/v1/records", json=record, headers=bearer(tok))
    problem(refused, 400, "bad_request", "the body is JSON nested more than 64 levels deep")
    assert kit.vault.status()["records"] == 1


def test_subscriptions_api_refuses_deep_json_with_400(kit) -> None:
    from tests.webhooks.test_propagation import business, profile_grant

    token = business(kit, "Acme Energy", profile_grant())
    resp = kit.http.post(
        "/api/v1/subscriptions",
        data=DEEP,
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    problem(resp, 400, "bad_request", "the body is JSON nested more than 64 levels deep")
    assert kit.vault.conn.execute("SELECT count(*) FROM subscriptions").fetchone()[0] == 0


def test_open_registration_refuses_deep_json_with_400_invalid_request(kit) -> None:
    for body in (DEEP, '{"redirect_uris": ["' + CB + '"], "x": ' + DEEP + "}"):
        resp = kit.http.post(
            "/oauth/register", data=body, headers={"Content-Type": "application/json"}
        )
        assert (resp.status_code, resp.json) == (
            400,
            {
                "error": "invalid_request",
                "error_description": "The body is JSON nested more than 64 levels deep.",
            },
        )
    assert kit.vault.conn.execute("SELECT count(*) FROM clients").fetchone()[0] == 0
    # refused registrations do not count against the address's limit; 64 deep is parsed
    metadata = {"redirect_uris": [CB], "client_name": "Deep", "x": json.loads(nested(62))}
    made = kit.http.post("/oauth/register", json=metadata)
    assert made.status_code == 201, made.text


def test_authorization_details_and_profile_fields_refuse_deep_json() -> None:
    with pytest.raises(AccessError) as exc:
        parse_request(None, nested(5_000))
    assert exc.value.message == "authorization_details is JSON nested more than 64 levels deep"
    with pytest.raises(ValidationError) as err:
        profile.parse_value("addresses", DEEP)
    assert err.value.message == "addresses is JSON nested more than 64 levels deep"
