"""The records API: bearer tokens only in the header, grants enforced, one audit entry each."""

from __future__ import annotations

import base64
import json

import pytest

from pds import clock
from pds.db.records import query_rows
from pds.oauth import store
from pds.vault import SourceInfo
from tests.factories import prepared, transaction
from tests.oauth_kit import bearer, seed

READ_SPRING = [
    {
        "type": "pds_records",
        "actions": ["read"],
        "categories": ["transactions"],
        "fields": ["date", "amount"],
        "time_range": {"from": "2024-02-01", "to": "2024-04-30"},
        "purpose": "dpv:ServiceProvision",
    }
]


@pytest.fixture
def ids(vault) -> list[int]:
    return seed(vault)


@pytest.fixture
def token(kit, ids) -> str:
    client_id, secret = kit.add_client()
    return kit.tokens(client_id, secret, scope=None, authorization_details=json.dumps(READ_SPRING))[
        "access_token"
    ]


def problem(resp, status: int, code: str, detail: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"] == "application/problem+json"
    body = resp.json
    assert body["type"] == f"https://pds.invalid/problems/{code}"
    assert body["detail"] == detail
    return body


def test_token_in_query_string_is_refused(kit, token) -> None:
    resp = kit.http.get(f"/api/v1/records?category=transactions&access_token={token}")
    problem(
        resp,
        400,
        "invalid_request",
        "send the access token in the Authorization header, never in the URL or body",
    )
    assert kit.audit_actions()[-1] == ("api.records.read", "refused")
    form = kit.http.post("/api/v1/records", data={"access_token": token})
    assert form.status_code == 400


def test_missing_and_bad_tokens_get_401_with_www_authenticate(kit, token) -> None:
    none = kit.http.get("/api/v1/grant")
    problem(none, 401, "invalid_token", "no access token was sent")
    assert none.headers["WWW-Authenticate"] == 'Bearer realm="pds"'
    bad = kit.http.get("/api/v1/grant", headers=bearer("x" * 43))
    problem(bad, 401, "invalid_token", "the access token is unknown, expired or revoked")
    assert bad.headers["WWW-Authenticate"] == 'Bearer realm="pds", error="invalid_token"'
    basic = kit.http.get("/api/v1/grant", headers={"Authorization": "Basic eDp5"})
    problem(basic, 401, "invalid_token", "the Authorization header is not a Bearer token")
    # expired
    kit.vault.conn.execute("UPDATE tokens SET expires_at = ?", (clock.now() - 1,))
    expired = kit.http.get("/api/v1/grant", headers=bearer(token))
    problem(expired, 401, "invalid_token", "the access token is unknown, expired or revoked")
    assert kit.audit_actions()[-4:] == [("api.grant.read", "refused")] * 4


def test_insufficient_scope(kit, token) -> None:
    resp = kit.http.get("/api/v1/records?category=health", headers=bearer(token))
    body = problem(resp, 403, "insufficient_scope", "the grant does not allow reading health")
    assert body["title"] == "Insufficient scope"
    assert resp.headers["WWW-Authenticate"] == (
        'Bearer realm="pds", error="insufficient_scope", scope="read:health"'
    )
    write = kit.http.post(
        "/api/v1/records",
        json={"category": "transactions", "occurred_at": "2024-05-01", "payload": {}},
        headers=bearer(token),
    )
    problem(write, 403, "insufficient_scope", "the grant does not allow adding transactions")
    entry = json.loads(
        kit.vault.conn.execute("SELECT entry FROM audit_log ORDER BY idx DESC LIMIT 1").fetchone()[
            0
        ]
    )
    assert (entry["action"], entry["decision"], entry["category"], entry["reason"]) == (
        "api.records.write",
        "refused",
        "transactions",
        "insufficient_scope: the grant does not allow adding transactions",
    )


def test_only_the_granted_slice(kit, token, ids) -> None:
    resp = kit.http.get("/api/v1/records?category=transactions", headers=bearer(token))
    assert resp.json == {
        "records": [
            {
                "id": ids[m - 1],
                "category": "transactions",
                "occurred_at": f"2024-0{m}-05",
                "payload": {"date": f"2024-0{m}-05", "amount": f"-{m}.00"},
            }
            for m in (2, 3, 4)
        ],
        "next_cursor": None,
    }
    # since/until intersect the grant's range (until is inclusive)
    narrow = kit.http.get(
        "/api/v1/records?category=transactions&since=2024-03-05&until=2024-03-05&limit=10",
        headers=bearer(token),
    )
    assert [r["id"] for r in narrow.json["records"]] == [ids[2]]
    outside = kit.http.get(
        "/api/v1/records?category=transactions&since=2024-05-01", headers=bearer(token)
    )
    assert outside.json == {"records": [], "next_cursor": None}


def test_pagination_with_cursor(kit, token, ids) -> None:
    seen, cursor, pages = [], None, 0
    while True:
        q = {"category": "transactions", "limit": "2"}
        if cursor:
            q["cursor"] = cursor
        page = kit.http.get("/api/v1/records", query_string=q, headers=bearer(token)).json
        seen += [r["id"] for r in page["records"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert (seen, pages) == ([ids[1], ids[2], ids[3]], 2)
    bad = kit.http.get(
        "/api/v1/records?category=transactions&cursor=nonsense", headers=bearer(token)
    )
    problem(bad, 400, "bad_request", "cursor is not one this API gave out for this category")
    # Well-formed JSON, but no occurred_at a record can have: a lone surrogate (cannot be
    # bound to SQLite), text that is no date, a date beyond any stored one's length.
    for forged in (
        '["transactions","\\ud800",5]',
        '["transactions","zzzz",5]',
        '["transactions","2024-01-01' + "0" * 60 + '",5]',
    ):
        cursor = base64.urlsafe_b64encode(forged.encode()).rstrip(b"=").decode()
        resp = kit.http.get(
            f"/api/v1/records?category=transactions&cursor={cursor}", headers=bearer(token)
        )
        problem(resp, 400, "bad_request", "cursor is not one this API gave out for this category")
    for q, detail in [
        ("", "category is required"),
        ("category=pets", "'pets' is not a category"),
        ("category=transactions&limit=0", "limit must be a whole number from 1 to 500"),
        (
            "category=transactions&since=2024-13-01",
            "since '2024-13-01' is not a date like 2025-01-31",
        ),
    ]:
        problem(
            kit.http.get(f"/api/v1/records?{q}", headers=bearer(token)), 400, "bad_request", detail
        )


def test_whole_payloads_are_passed_on_as_stored_and_read_the_same(kit, ids, vault) -> None:
    """A grant that cuts nothing gets the stored canonical JSON spliced in: byte for byte
    what jsonify writes for ASCII payloads, the same document for any other."""
    vault.ingest(
        SourceInfo("test", "cafe.csv", b"cafe"),
        [[prepared(transaction("2024-07-01", "-2.50", 'CAF\u00c9 \u2603 "quoted"'))]],
    )
    client_id, secret = kit.add_client("Whole")
    whole = kit.tokens(client_id, secret, scope="read:transactions")["access_token"]
    pages, cursor = [], None
    while True:
        q = {"category": "transactions", "limit": "4"} | ({"cursor": cursor} if cursor else {})
        resp = kit.http.get("/api/v1/records", query_string=q, headers=bearer(whole))
        assert (resp.status_code, resp.mimetype) == (200, "application/json")
        pages.append(resp)
        cursor = resp.json["next_cursor"]
        if cursor is None:
            break
    got = [r for page in pages for r in page.json["records"]]
    expected = [
        {"category": r.category, "id": r.id, "occurred_at": r.occurred_at, "payload": r.payload}
        for r in vault.records("transactions")
    ]
    assert got == expected
    assert got[-1]["payload"]["description"] == 'CAF\u00c9 \u2603 "quoted"'
    first = pages[0].json
    assert (
        pages[0].data == (json.dumps(first, sort_keys=True, separators=(",", ":")) + "\n").encode()
    )


def test_record_outside_grant_is_indistinguishable_from_missing(kit, token, ids) -> None:
    inside = kit.http.get(f"/api/v1/records/{ids[2]}", headers=bearer(token))
    assert inside.json["payload"] == {"date": "2024-03-05", "amount": "-3.00"}
    energy_id = ids[-1]
    outside_time = kit.http.get(f"/api/v1/records/{ids[0]}", headers=bearer(token))
    outside_cat = kit.http.get(f"/api/v1/records/{energy_id}", headers=bearer(token))
    missing = kit.http.get("/api/v1/records/999999", headers=bearer(token))

    def same(resp) -> tuple:
        body = dict(resp.json)
        body.pop("instance")  # the URL asked for, echoed
        headers = {k: v for k, v in resp.headers.items() if k != "Content-Length"}
        return resp.status_code, headers, body

    assert same(outside_time) == same(outside_cat) == same(missing)
    assert same(missing)[0] == 404
    assert missing.json["detail"] == "there is no record with this id that your grant covers"


def test_write_back(kit, ids, vault) -> None:
    client_id, secret = kit.add_client("Energy Co")
    tok = kit.tokens(client_id, secret, scope="write:transactions read:transactions")
    record = {
        "category": "transactions",
        "occurred_at": "2024-07-01",
        "payload": {
            "date": "2024-07-01",
            "amount": "-42.00",
            "currency": "GBP",
            "description": "ENERGY BILL JULY",
        },
    }
    resp = kit.http.post("/api/v1/records", json=record, headers=bearer(tok["access_token"]))
    assert resp.status_code == 201, resp.text
    new_id = resp.json["id"]
    assert resp.json == {
        "id": new_id,
        "category": "transactions",
        "occurred_at": "2024-07-01",
        "created": True,
    }
    assert resp.headers["Location"] == f"/api/v1/records/{new_id}"
    stored = vault.get(new_id)
    assert stored.payload["description"] == "ENERGY BILL JULY"
    assert stored.payload["counterparty"] is None  # normalized by the schema
    source = vault.conn.execute(
        "SELECT connector, filename FROM sources WHERE id = ?", (stored.source_id,)
    ).fetchone()
    assert source == ("api", f"client:{client_id}")
    again = kit.http.post("/api/v1/records", json=record, headers=bearer(tok["access_token"]))
    assert (again.status_code, again.json["id"], again.json["created"]) == (200, new_id, False)
    bad = dict(record, payload=dict(record["payload"], amount="lots"))
    problem(
        kit.http.post("/api/v1/records", json=bad, headers=bearer(tok["access_token"])),
        422,
        "validation_error",
        'payload.amount: "lots" is not a decimal number like -12.30',
    )
    assert kit.audit_actions()[-3:] == [
        ("api.records.write", "allowed"),
        ("api.records.write", "allowed"),
        ("api.records.write", "refused"),
    ]


def bill(n: int, day: str = "2024-07-01", amount: str | None = None) -> dict:
    """Record n of a business's write-back: payloads differ by n (and by amount if given)."""
    return {
        "category": "transactions",
        "occurred_at": day,
        "payload": {
            "date": day,
            "amount": amount or f"-{n}.00",
            "currency": "GBP",
            "description": f"ENERGY BILL {n}",
        },
    }


def writer(kit, name: str = "Energy Co") -> dict[str, str]:
    client_id, secret = kit.add_client(name)
    return bearer(kit.tokens(client_id, secret, scope="write:transactions")["access_token"])


def post(kit, headers: dict, record: dict, key: str | None = None):
    extra = {"Idempotency-Key": key} if key is not None else {}
    return kit.http.post("/api/v1/records", json=record, headers={**headers, **extra})


def api_records(vault) -> dict[str, int]:
    """How many records each API writer has in the vault."""
    rows = vault.conn.execute(
        "SELECT s.filename, count(*) FROM records r JOIN sources s ON s.id = r.source_id "
        "WHERE s.connector = 'api' GROUP BY s.filename ORDER BY 1"
    )
    return dict(rows.fetchall())


def test_write_back_stores_every_distinct_record(kit, vault) -> None:
    auth = writer(kit)
    ids = []
    for n in range(1, 101):
        resp = post(kit, auth, bill(n))
        assert (resp.status_code, resp.json["created"]) == (201, True), (n, resp.text)
        ids.append(resp.json["id"])
    assert len(set(ids)) == 100
    assert sum(api_records(vault).values()) == 100
    assert [vault.get(i).payload["description"] for i in ids] == [
        f"ENERGY BILL {n}" for n in range(1, 101)
    ]
    # each one again: the same ids, nothing stored
    for n, rid in zip(range(1, 101), ids, strict=True):
        again = post(kit, auth, bill(n))
        assert (again.status_code, again.json["id"], again.json["created"]) == (200, rid, False)
    assert sum(api_records(vault).values()) == 100
    # mixed: new ones between repeats; the same payload on another day is another record
    mixed = [bill(101), bill(7), bill(102), bill(7, day="2024-07-02"), bill(101), bill(50)]
    answers = [post(kit, auth, r) for r in mixed]
    assert [a.status_code for a in answers] == [201, 200, 201, 201, 200, 200]
    assert answers[1].json["id"] == ids[6]
    assert answers[4].json["id"] == answers[0].json["id"]
    assert answers[5].json["id"] == ids[49]
    assert answers[3].json["id"] not in ids
    assert sum(api_records(vault).values()) == 103


def test_write_back_is_per_client(kit, vault) -> None:
    first, second = writer(kit, "Energy Co"), writer(kit, "Water Co")
    a = [post(kit, first, bill(n)).json["id"] for n in (1, 2, 3)]
    b = [post(kit, second, bill(n)).json["id"] for n in (1, 2, 3)]
    assert len(set(a + b)) == 6  # the same payloads: each client has its own
    assert [post(kit, first, bill(n)).json["id"] for n in (1, 2, 3)] == a
    assert [post(kit, second, bill(n)).json["id"] for n in (1, 2, 3)] == b
    assert sorted(api_records(vault).values()) == [3, 3]


def test_idempotency_key(kit, vault) -> None:
    auth, other = writer(kit, "Energy Co"), writer(kit, "Water Co")
    first = post(kit, auth, bill(1), key="k-1")
    assert (first.status_code, first.json["created"]) == (201, True)
    rid = first.json["id"]
    # the same key and record: the first answer again, nothing stored
    for _ in range(3):
        again = post(kit, auth, bill(1), key="k-1")
        assert (again.status_code, again.json) == (
            200,
            {"id": rid, "category": "transactions", "occurred_at": "2024-07-01", "created": False},
        )
    # the same key with another record: 422, nothing stored
    before = api_records(vault)
    for other_record in (
        bill(2),
        bill(1, amount="-1.01"),
        bill(1, day="2024-07-02") | {"occurred_at": "2024-07-01"},
        bill(1) | {"occurred_at": "2024-07-02"},
    ):
        body = problem(
            post(kit, auth, other_record, key="k-1"),
            422,
            "idempotency_key_reused",
            'the Idempotency-Key "k-1" was already used with a different record; '
            "nothing was stored",
        )
        assert body["hint"] == (
            "Send a new Idempotency-Key for a new record; resend the first record unchanged "
            "to get its answer again."
        )
    assert api_records(vault) == before
    assert kit.audit_actions()[-1] == ("api.records.write", "refused")
    # different keys, the same record: the client says these are two writes, so two records
    second = post(kit, auth, bill(1), key="k-2")
    assert (second.status_code, second.json["created"]) == (201, True)
    assert second.json["id"] != rid
    # ... and without a key, the record is told apart by its content (a third one)
    plain = post(kit, auth, bill(1))
    assert plain.status_code == 201
    assert post(kit, auth, bill(1)).json["id"] == plain.json["id"]
    # keys are per client: another client's "k-1" is its own
    theirs = post(kit, other, bill(2), key="k-1")
    assert (theirs.status_code, theirs.json["created"]) == (201, True)
    assert post(kit, other, bill(2), key="k-1").json["id"] == theirs.json["id"]
    # 100 keys, 100 records; each key again, its own record
    keyed = [post(kit, auth, bill(n), key=f"batch-{n}").json["id"] for n in range(100)]
    assert len(set(keyed)) == 100
    assert [post(kit, auth, bill(n), key=f"batch-{n}").json["id"] for n in range(100)] == keyed
    assert sorted(api_records(vault).values()) == [1, 103]  # 1 + 1 + 1 + 100, and theirs


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"])
def test_bad_idempotency_key_is_400(kit, vault, key: str) -> None:
    auth = writer(kit)
    resp = kit.http.post(
        "/api/v1/records",
        json=bill(1),
        headers={**auth, "Idempotency-Key": key.encode("utf-8").decode("latin-1")},
    )
    body = problem(
        resp,
        400,
        "bad_request",
        "the Idempotency-Key header must be 1 to 255 printable ASCII characters",
    )
    assert body["hint"] == "Send a new random key (e.g. a UUID) with each new record."
    assert api_records(vault) == {}
    ok = post(kit, auth, bill(1), key="x" * 255)
    assert ok.status_code == 201


CONTROL = "remove it (tab, line feed and carriage return are allowed)"


def health(payload: dict) -> dict:
    return {"category": "health", "occurred_at": "2024-07-01", "payload": payload}


@pytest.mark.parametrize(
    ("record", "detail"),
    [
        (
            bill(1) | {"payload": bill(1)["payload"] | {"description": "BILL\x00"}},
            "payload.description: contains the control character U+0000 at character 5; " + CONTROL,
        ),
        (
            bill(1) | {"payload": bill(1)["payload"] | {"reference": "\x1b[31mRED"}},
            "payload.reference: contains the control character U+001B at character 1; " + CONTROL,
        ),
        (
            health({"kind": "record", "type": "Steps", "details": {"note": "a\x07b"}}),
            "payload.details.note: contains the control character U+0007 at character 2; "
            + CONTROL,
        ),
        (
            health({"kind": "record", "type": "Steps", "details": {"k\x00": "v"}}),
            "payload.details.k\\x00: this key contains the control character U+0000 at "
            "character 2; " + CONTROL,
        ),
        (
            bill(1) | {"payload": bill(1)["payload"] | {"description": "a\ud800b"}},
            "payload.description: contains a lone surrogate U+D800 at character 2, which is "
            "not text; send the character it was part of, or remove it",
        ),
        (
            health({"kind": "record", "type": "Steps", "details": {"\udfff": "v"}}),
            "payload.details.\\udfff: this key contains a lone surrogate U+DFFF at character "
            "1, which is not text; send the character it was part of, or remove it",
        ),
        (
            health({"kind": "fhir", "type": "Observation", "resource": {"a": [1, {"b": "\x0c"}]}}),
            "payload.resource.a.1.b: contains the control character U+000C at character 1; "
            + CONTROL,
        ),
    ],
)
def test_control_characters_in_written_text_are_422(kit, vault, record, detail) -> None:
    client_id, secret = kit.add_client("Writer")
    tok = kit.tokens(client_id, secret, scope="write:transactions write:health")["access_token"]
    resp = kit.http.post("/api/v1/records", json=record, headers=bearer(tok))
    problem(resp, 422, "validation_error", detail)
    assert vault.status()["records"] == 0
    assert kit.audit_actions()[-1] == ("api.records.write", "refused")


def test_tab_and_line_breaks_are_text(kit, vault) -> None:
    auth = writer(kit)
    for n in range(100):
        text = f"LINE {n}\tTAB\r\nNEXT"
        record = bill(n) | {"payload": bill(n)["payload"] | {"description": text}}
        resp = post(kit, auth, record)
        assert resp.status_code == 201, resp.text
        assert vault.get(resp.json["id"]).payload["description"] == text


def test_grant_endpoint(kit, token) -> None:
    body = kit.http.get("/api/v1/grant", headers=bearer(token)).json
    assert body["scope"] == "read:transactions"
    assert body["purpose"] == "dpv:ServiceProvision"
    assert body["authorization_details"][0]["fields"] == ["date", "amount"]
    assert set(body) == {
        "id",
        "client_id",
        "scope",
        "authorization_details",
        "purpose",
        "created_at",
        "expires_at",
    }


def test_audit_read_grants_no_data(kit, ids) -> None:
    client_id, secret = kit.add_client("Auditor")
    tok = kit.tokens(client_id, secret, scope="audit:read")["access_token"]
    resp = kit.http.get("/api/v1/records?category=transactions", headers=bearer(tok))
    assert resp.status_code == 403
    assert kit.http.get(f"/api/v1/records/{ids[0]}", headers=bearer(tok)).status_code == 404


def test_every_api_call_writes_exactly_one_entry(kit, token, ids) -> None:
    calls = [
        ("get", "/api/v1/records?category=transactions", {}),
        ("get", "/api/v1/records?category=health", {}),
        ("get", f"/api/v1/records/{ids[2]}", {}),
        ("get", "/api/v1/records/999", {}),
        ("get", "/api/v1/grant", {}),
        ("post", "/api/v1/records", {"json": {"category": "transactions"}}),
    ]
    for method, path, extra in calls:
        for headers in (bearer(token), {}):
            before = kit.vault.conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
            getattr(kit.http, method)(path, headers=headers, **extra)
            after = kit.vault.conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
            assert after - before == 1, (method, path, headers)


def test_openapi_document(kit) -> None:
    resp = kit.http.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    doc = resp.json
    assert doc["openapi"] == "3.0.3"
    assert set(doc["paths"]) == {
        "/api/v1/records",
        "/api/v1/records/{record_id}",
        "/api/v1/grant",
        "/api/v1/grant/receipt",
        "/api/v1/aggregates",
        "/api/v1/subscriptions",
        "/api/v1/subscriptions/{sub_id}",
        "/api/v1/changes",
        "/audit/key",
        "/audit/checkpoint",
        "/audit/entries",
        "/audit/proof/inclusion",
        "/audit/proof/consistency",
    }
    assert set(doc["components"]["schemas"]) >= {
        "Problem",
        "Record",
        "RecordPage",
        "RecordIn",
        "Grant",
    }
    assert doc["servers"] == [{"url": "http://127.0.0.1:8000"}]
    [key] = doc["paths"]["/api/v1/records"]["post"]["parameters"]
    assert (key["name"], key["in"], key["required"]) == ("Idempotency-Key", "header", False)
    assert key["schema"] == {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": "^[ -~]+$",
    }


def plan(conn, sql: str, args: tuple) -> str:
    return " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, args))


def test_query_plans_use_indexes(vault) -> None:
    conn = vault.conn
    traced: list[str] = []
    conn.set_trace_callback(traced.append)
    query_rows(
        conn,
        category="transactions",
        since="2024-01-01",
        until="2024-12-31",
        after=("2024-02-05", 2),
        limit=51,
    )
    store.find_access_token(conn, "x")
    store.find_refresh_token(conn, "x")
    store.find_code(conn, "x")
    conn.set_trace_callback(None)
    for sql in traced:
        p = plan(conn, sql, ())
        assert "SCAN" not in p.replace("SCAN CONSTANT ROW", ""), (sql, p)
        assert "TEMP B-TREE" not in p, (sql, p)


def test_unknown_api_path_is_problem_json(kit) -> None:
    resp = kit.http.get("/api/v1/nothing-here")
    assert resp.status_code == 404
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert resp.json["type"] == "https://pds.invalid/problems/http_404"
    wrong_method = kit.http.delete("/api/v1/records")
    assert (wrong_method.status_code, wrong_method.json["title"]) == (405, "Method Not Allowed")
