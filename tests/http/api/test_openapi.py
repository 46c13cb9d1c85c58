"""The OpenAPI document is the contract: a valid OpenAPI 3.0 document whose per-category
components are generated from ``pds.payloads`` (the same fields, in the same order, as
``pds.vocabulary.FIELDS``), whose records are typed by category, which describes the auditor
API and links the OAuth authorization server, and which the API's real answers conform to."""

from __future__ import annotations

import json
import re

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from pds.demo import load_demo
from pds.http.api.openapi import _build
from pds.oauth.access import all_scopes
from pds.payloads import SCHEMAS
from pds.vocabulary import CATEGORIES, FIELDS
from tests.conftest import fixture
from tests.http.api.test_records import READ_SPRING
from tests.http.web.test_pages import upload
from tests.oauth_kit import ISSUER, bearer, seed


@pytest.fixture
def doc(kit) -> dict:
    resp = kit.http.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    return resp.json


def schemas(doc: dict) -> dict:
    return doc["components"]["schemas"]


def validator(doc: dict, name: str) -> OAS30Validator:
    """A validator of the component ``name`` (formats checked: dates are dates)."""
    schema = {"$ref": f"#/components/schemas/{name}", **doc}
    return OAS30Validator(schema, format_checker=OAS30Validator.FORMAT_CHECKER)


def test_the_document_is_valid_openapi_3_0(doc) -> None:
    validate(doc)  # openapi-spec-validator: raises on the first error
    assert doc["openapi"] == "3.0.3"


def test_every_category_has_its_payload_components_with_its_fields(doc) -> None:
    names = {f"{c.title()}{kind}" for c in CATEGORIES for kind in ("Payload", "GrantedPayload")}
    assert names <= set(schemas(doc))
    for category in CATEGORIES:
        payload = schemas(doc)[f"{category.title()}Payload"]
        granted = schemas(doc)[f"{category.title()}GrantedPayload"]
        assert sorted(payload["properties"]) == sorted(FIELDS[category]), category
        assert sorted(granted["properties"]) == sorted(FIELDS[category]), category
        assert granted["properties"] == payload["properties"], category
        assert "required" not in granted, category  # a grant may leave any field out
        required = [n for n, f in SCHEMAS[category]().fields.items() if f.required]
        assert sorted(payload.get("required", [])) == sorted(required), category
        assert payload["additionalProperties"] is False


def test_payload_properties_are_in_the_schema_s_order() -> None:
    """The served JSON sorts its keys (Flask); the document as built keeps the schema's order."""
    built = _build(ISSUER)["components"]["schemas"]
    for category in CATEGORIES:
        for kind in ("Payload", "GrantedPayload"):
            props = built[f"{category.title()}{kind}"]["properties"]
            assert tuple(props) == FIELDS[category], (category, kind)


def test_payload_components_say_what_the_schemas_say(doc) -> None:
    tx = schemas(doc)["TransactionsPayload"]
    assert tx["required"] == ["amount", "currency", "date", "description"]
    assert tx["description"] == "One movement of money on an account (category ``transactions``)."
    assert tx["properties"]["date"] == {"type": "string", "format": "date"}
    assert tx["properties"]["amount"] == {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
    assert tx["properties"]["balance"] == {
        "type": "string",
        "default": None,
        "nullable": True,
        "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
    }
    energy = schemas(doc)["EnergyPayload"]["properties"]
    assert energy["currency"]["pattern"] == "^(?:[A-Z]{3})$"
    assert energy["unit"]["pattern"] == r"^(?:\S)"
    profile = schemas(doc)["ProfilePayload"]["properties"]
    assert profile["contact_channel"]["enum"] == ["email", "phone", "sms", "post", "app", None]
    assert profile["addresses"]["items"] == {"$ref": "#/components/schemas/Address"}
    assert schemas(doc)["Address"]["required"] == ["country", "lines"]


@pytest.mark.parametrize(
    ("text", "matches"),
    [("GBP", True), ("EUR", True), ("GBPZ", False), ("xGBP", False), ("GB", False), ("gbp", False)],
)
def test_patterns_read_as_marshmallow_reads_them(doc, text: str, matches: bool) -> None:
    """marshmallow matches from the start and ends with \\Z; JSON Schema searches."""
    pattern = schemas(doc)["EnergyPayload"]["properties"]["currency"]["pattern"]
    field = SCHEMAS["energy"]().fields["currency"]
    assert (re.search(pattern, text) is not None) is matches
    assert all(v.regex.match(text) for v in field.validators) is matches


def test_records_are_typed_by_category(doc) -> None:
    for name, kind in (("Record", "Record"), ("RecordIn", "RecordIn")):
        union = schemas(doc)[name]
        refs = [f"#/components/schemas/{c.title()}{kind}" for c in CATEGORIES]
        assert union["oneOf"] == [{"$ref": r} for r in refs]
        assert union["discriminator"] == {
            "propertyName": "category",
            "mapping": dict(zip(CATEGORIES, refs, strict=True)),
        }
    energy = schemas(doc)["EnergyRecord"]
    assert energy["properties"]["category"] == {"type": "string", "enum": ["energy"]}
    assert energy["properties"]["payload"] == {"$ref": "#/components/schemas/EnergyGrantedPayload"}
    write = schemas(doc)["EnergyRecordIn"]
    assert write["required"] == ["category", "occurred_at", "payload"]
    assert write["properties"]["payload"] == {"$ref": "#/components/schemas/EnergyPayload"}
    page = schemas(doc)["RecordPage"]["properties"]["records"]
    assert page == {"type": "array", "items": {"$ref": "#/components/schemas/Record"}}
    post = doc["paths"]["/api/v1/records"]["post"]["requestBody"]["content"]
    assert post == {"application/json": {"schema": {"$ref": "#/components/schemas/RecordIn"}}}


def test_oauth_is_linked(kit, doc) -> None:
    meta = kit.http.get("/.well-known/oauth-authorization-server").json
    scheme = doc["components"]["securitySchemes"]["oauth2"]
    flow = scheme["flows"]["authorizationCode"]
    assert flow["authorizationUrl"] == meta["authorization_endpoint"] == f"{ISSUER}/oauth/authorize"
    assert flow["tokenUrl"] == flow["refreshUrl"] == meta["token_endpoint"]
    assert sorted(flow["scopes"]) == sorted(meta["scopes_supported"]) == sorted(all_scopes())
    assert flow["scopes"]["audit:read"] == "the access log, its checkpoints and proofs (no data)"
    where = f"{ISSUER}/.well-known/oauth-authorization-server"
    assert doc["externalDocs"] == {
        "description": "OAuth authorization server metadata",
        "url": where,
    }
    assert scheme["description"].endswith(f"metadata: {where}")
    assert meta["service_documentation"] == f"{ISSUER}/api/v1/openapi.json"


def test_the_auditor_api_is_described(doc) -> None:
    audit = {p: item for p, item in doc["paths"].items() if p.startswith("/audit/")}
    assert sorted(audit) == [
        "/audit/checkpoint",
        "/audit/entries",
        "/audit/key",
        "/audit/proof/consistency",
        "/audit/proof/inclusion",
    ]
    for path, item in audit.items():
        assert list(item) == ["get"], path
        assert item["get"]["security"] == [{"oauth2": ["audit:read"]}], path
        assert item["get"]["tags"] == ["auditor"], path
        assert {"200", "401", "403", "429"} <= set(item["get"]["responses"]), path
    checkpoint = audit["/audit/checkpoint"]["get"]["responses"]["200"]["content"]
    assert checkpoint == {"text/plain": {"schema": {"type": "string"}}}
    inclusion = audit["/audit/proof/inclusion"]["get"]
    assert [p["name"] for p in inclusion["parameters"]] == ["index", "size"]
    assert set(inclusion["responses"]) == {"200", "400", "401", "403", "404", "414", "429", "503"}
    first, second = audit["/audit/proof/consistency"]["get"]["parameters"]
    assert first["schema"] == {"type": "integer", "minimum": 1, "maximum": 10**19 - 1}
    assert second["schema"] == {"type": "integer", "minimum": 0, "maximum": 10**19 - 1}


REAL = (
    "greenbutton/TestGBDataHourlyNineDaysBinnedDaily.xml",
    "apple-health/tdda-export6s3sample.xml",
    "google-takeout/Records_2024_format.json",
    "google-takeout/My_Activity_Search.json",
    "camt053/camt053.v8.xml",
)


def test_real_records_of_every_category_conform(kit, vault, doc) -> None:
    """The demo vault and real files of the other categories, read back through the API."""
    load_demo(vault)
    kit.login()
    for name in REAL:
        assert upload(kit, fixture(name)).status_code == 200, name
    client_id, secret = kit.add_client()
    scope = " ".join(f"read:{c}" for c in CATEGORIES)
    token = kit.tokens(client_id, secret, scope=scope)["access_token"]
    page, one = validator(doc, "RecordPage"), validator(doc, "Record")
    counts = {}
    for category in CATEGORIES:
        resp = kit.http.get(
            "/api/v1/records",
            query_string={"category": category, "limit": 500},
            headers=bearer(token),
        )
        assert resp.status_code == 200, resp.text
        errors = [e.message for e in page.iter_errors(resp.json)]
        assert errors == [], (category, errors[:3])
        counts[category] = len(resp.json["records"])
        if resp.json["records"]:
            rid = resp.json["records"][0]["id"]
            got = kit.http.get(f"/api/v1/records/{rid}", headers=bearer(token)).json
            assert [e.message for e in one.iter_errors(got)] == []
    assert counts == {
        "transactions": 500,  # a full page
        "balances": 4,
        "energy": 500,  # a full page: the demo's 500 days and the 216 hours
        "contacts": 3,
        "events": 3,
        "health": 18,
        "locations": 1,
        "activity": 2,
        "profile": 0,
        "intentions": 0,
    }


def test_a_record_of_another_category_does_not_conform(doc) -> None:
    one = validator(doc, "Record")
    record = {
        "id": 1,
        "category": "energy",
        "occurred_at": "2024-01-05",
        "payload": {"date": "2024-01-05", "amount": "-1.00"},  # a transaction's fields
    }
    assert not one.is_valid(record)
    record["category"] = "transactions"
    assert one.is_valid(record)
    record["payload"]["amount"] = "lots"
    assert not one.is_valid(record)


def test_a_subscription_names_one_to_all_categories(doc) -> None:
    body = doc["paths"]["/api/v1/subscriptions"]["post"]["requestBody"]["content"]
    categories = body["application/json"]["schema"]["properties"]["categories"]
    assert categories.pop("description") == (
        "profile and intentions: a note of the changed field names; any other category: "
        "records.added, records.changed and records.forgotten"
    )
    assert categories == {
        "type": "array",
        "items": {"type": "string", "enum": sorted(CATEGORIES)},
        "minItems": 1,
        "maxItems": len(CATEGORIES),
    }
    assert {"profile", "intentions", "energy"} <= set(CATEGORIES)


def test_the_change_feed_and_its_events_are_described(doc) -> None:
    get = doc["paths"]["/api/v1/changes"]["get"]
    assert [p["name"] for p in get["parameters"]] == ["cursor", "since", "limit"]
    answer = get["responses"]["200"]["content"]["application/json"]["schema"]["oneOf"][0]
    assert answer["required"] == ["changes", "next_cursor", "more"]
    entry = answer["properties"]["changes"]["items"]
    assert entry["required"] == ["seq", "at", "kind", "category", "first_id", "last_id", "count"]
    assert entry["properties"]["kind"]["enum"] == ["added", "changed", "forgotten"]
    callback = doc["paths"]["/api/v1/subscriptions"]["post"]["callbacks"]["change"]
    body = callback["{$request.body#/url}"]["post"]["requestBody"]["content"]
    event = body["application/json"]["schema"]["oneOf"][0]
    assert event["properties"]["type"]["enum"] == [
        "records.added",
        "records.changed",
        "records.forgotten",
    ]


def test_every_authenticated_call_documents_what_any_call_can_meet(doc) -> None:
    busy = (
        "vault_busy: another write holds the vault (an import), so nothing was done; "
        "try again after Retry-After seconds"
    )
    operations = [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if op.get("security")
    ]
    assert len(operations) == 15
    for path, method, op in operations:
        assert {"400", "401", "414", "429", "503"} <= set(op["responses"]), (path, method)
        assert op["responses"]["503"]["description"] == busy, (path, method)
        assert list(op["responses"]["414"]["content"]) == ["text/html"], (path, method)
        problem = op["responses"]["401"]["content"]["application/problem+json"]["schema"]
        assert problem == {"$ref": "#/components/schemas/Problem"}, (path, method)
    receipt = doc["paths"]["/api/v1/grant/receipt"]["get"]["responses"]
    assert sorted(receipt) == ["200", "400", "401", "404", "414", "429", "503"]
    assert receipt["404"]["description"] == "the grant has no receipt (made before pds issued them)"
    stop = doc["paths"]["/api/v1/subscriptions/{sub_id}"]["delete"]["responses"]
    assert stop["404"]["description"] == "no such subscription of your grant"
    entries = doc["paths"]["/audit/entries"]["get"]["responses"]
    assert entries["404"]["description"] == "start or size is past the end of the log"
    listed = doc["paths"]["/api/v1/subscriptions"]["get"]["responses"]["200"]["content"]
    assert listed["application/json"]["schema"]["required"] == ["subscriptions"]


def test_the_grant_and_its_details_are_typed(kit, vault, doc) -> None:
    seed(vault)
    client_id, secret = kit.add_client()
    details = json.dumps(READ_SPRING)
    token = kit.tokens(client_id, secret, scope=None, authorization_details=details)
    grant = kit.http.get("/api/v1/grant", headers=bearer(token["access_token"])).json
    [item] = grant["authorization_details"]
    assert item == {**READ_SPRING[0], "expires_in": 7776000}
    detail = schemas(doc)["AuthorizationDetail"]
    assert detail["required"] == ["actions", "categories", "expires_in", "type"]
    assert detail["properties"]["time_range"] == {"$ref": "#/components/schemas/TimeRange"}
    check = validator(doc, "Grant")
    assert [e.message for e in check.iter_errors(grant)] == []
    item["time_range"]["from"] = "spring"
    item["colour"] = "blue"
    assert sorted(e.message for e in check.iter_errors(grant)) == [
        "'spring' is not a 'date'",
        "Additional properties are not allowed ('colour' was unexpected)",
    ]
