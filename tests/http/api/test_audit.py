"""The auditor API: audit:read tokens read the log, checkpoints and proofs; nothing else."""

from __future__ import annotations

import base64
import json
import re

import pytest

from pds.audit import checkpoint as cpmod
from pds.audit import merkle
from tests.oauth_kit import bearer, seed


@pytest.fixture
def auditor(kit) -> str:
    client_id, secret = kit.add_client("Privacy Audit Ltd")
    return kit.tokens(client_id, secret, scope="audit:read")["access_token"]


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def test_auditor_reads_log_and_checks_proofs(kit, auditor: str) -> None:
    http = kit.http
    key = http.get("/audit/key", headers=bearer(auditor))
    assert key.status_code == 200
    assert key.json["origin"] == kit.vault.log.origin
    assert key.json["algorithm"] == "Ed25519"
    name, public = cpmod.parse_verifier_key(key.json["verifier_key"])
    assert public.public_bytes_raw() == b64(key.json["public_key"])

    note = http.get("/audit/checkpoint", headers=bearer(auditor))
    assert note.status_code == 200
    assert note.mimetype == "text/plain"
    assert note.headers["Cache-Control"] == "no-store"
    cp = cpmod.open_checkpoint(note.text, name, public, key.json["origin"])
    # Everything up to the checkpoint call; the checkpoint call's own entry comes after.
    assert cp.size == kit.vault.log.size() - 1

    page = http.get(f"/audit/entries?start=0&end={cp.size}", headers=bearer(auditor)).json
    assert page["start"] == 0
    assert page["end"] == cp.size
    leaves = [merkle.leaf_hash(e["entry"].encode()) for e in page["entries"]]
    assert [b64(e["leaf"]) for e in page["entries"]] == leaves
    assert merkle.mth(leaves) == cp.root
    actions = [json.loads(e["entry"])["action"] for e in page["entries"]]
    assert actions[0] == "vault.init"
    assert actions[-4:] == ["client.register", "grant.create", "token.issue", "api.audit.key"]

    proof = http.get(f"/audit/proof/inclusion?index=3&size={cp.size}", headers=bearer(auditor))
    body = proof.json
    assert b64(body["root"]) == cp.root
    assert merkle.verify_inclusion(leaves[3], 3, cp.size, [b64(h) for h in body["proof"]], cp.root)
    later = kit.vault.log.checkpoint()
    cons = http.get(
        f"/audit/proof/consistency?first={cp.size}&second={later.size}", headers=bearer(auditor)
    ).json
    assert b64(cons["first_root"]) == cp.root
    assert b64(cons["second_root"]) == later.root
    assert merkle.verify_consistency(
        cp.size, later.size, cp.root, later.root, [b64(h) for h in cons["proof"]]
    )


@pytest.mark.parametrize(
    ("path", "status", "detail"),
    [
        ("/audit/entries?start=x", 400, "start='x' is not a non-negative integer"),
        ("/audit/entries?start=-1", 400, "start='-1' is not a non-negative integer"),
        (
            "/audit/entries?start=5&end=2",
            400,
            "end=2 is before start=5: entries [start, end) need start <= end",
        ),
        (
            "/audit/proof/inclusion?index=0&size=99999999999999999999",
            400,
            "size=99999999999999999999 is too large: at most 9999999999999999999",
        ),
        ("/audit/entries?start=99999", 404, "the log has {n} entries; start=99999 is past its end"),
        ("/audit/proof/inclusion?size=3", 400, "the query parameter 'index' is required"),
        ("/audit/proof/inclusion?index=3&size=3", 400, "index 3 is not inside a tree of size 3"),
        ("/audit/proof/inclusion?index=0&size=99999", 404, "the log has {n} entries, not 99999"),
        (
            "/audit/proof/consistency?first=0&second=2",
            400,
            "no consistency proof from size 0 to 2: need 0 < first <= second",
        ),
        (
            "/audit/proof/consistency?first=3&second=2",
            400,
            "no consistency proof from size 3 to 2: need 0 < first <= second",
        ),
    ],
)
def test_bad_parameters_are_problems(kit, auditor: str, path: str, status: int, detail: str):
    n = kit.vault.log.size()
    resp = kit.http.get(path, headers=bearer(auditor))
    assert resp.status_code == status
    assert resp.mimetype == "application/problem+json"
    assert resp.json["detail"] == detail.format(n=n)
    last = json.loads(kit.vault.log.tail(1)[0][1])
    assert (last["action"].startswith("api.audit."), last["decision"]) == (True, "refused")


def test_leading_zeros_are_not_too_large(kit, auditor: str) -> None:
    resp = kit.http.get(
        "/audit/entries?start=0&end=00000000000000000000001", headers=bearer(auditor)
    )
    assert (resp.status_code, [e["index"] for e in resp.json["entries"]]) == (200, [0])
    empty = kit.http.get("/audit/entries?start=1&end=1", headers=bearer(auditor))
    assert (empty.status_code, empty.json["entries"]) == (200, [])


def test_entries_are_paged_by_1000(kit, auditor: str) -> None:
    for i in range(1005):
        kit.vault.audit("api.records.read", actor="client:x", count=i)
    page = kit.http.get("/audit/entries", headers=bearer(auditor)).json
    assert (page["start"], page["end"], len(page["entries"])) == (0, 1000, 1000)
    rest = kit.http.get("/audit/entries?start=1000", headers=bearer(auditor)).json
    assert rest["start"] == 1000
    # The size is read before the call's own entry is written; it includes the first page's.
    assert rest["end"] == rest["size"] == 1 + 3 + 1005 + 1  # init, client, grant, token
    assert [e["index"] for e in rest["entries"]][:2] == [1000, 1001]


def test_data_token_cannot_read_the_log(kit) -> None:
    seed(kit.vault)
    client_id, secret = kit.add_client()
    token = kit.tokens(client_id, secret)["access_token"]
    resp = kit.http.get("/audit/entries", headers=bearer(token))
    assert resp.status_code == 403
    assert resp.json["detail"] == "the grant does not cover audit:read"
    assert kit.http.get("/audit/key").status_code == 401


def _sample(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", "1", rule)


def test_every_api_path_writes_exactly_one_entry(kit, auditor: str) -> None:
    ids = seed(kit.vault)
    client_id, secret = kit.add_client("Reader")
    reader = kit.tokens(client_id, secret, scope="read:transactions write:transactions")
    params = {
        "/api/v1/records": "?category=transactions",
        "/api/v1/aggregates": "?category=transactions",
        "/audit/entries": "?start=0&end=2",
        "/audit/proof/inclusion": "?index=0&size=2",
        "/audit/proof/consistency": "?first=1&second=2",
    }
    rules = [
        r
        for r in kit.app.url_map.iter_rules()
        if (r.rule.startswith("/api/v1/") or r.rule.startswith("/audit/"))
        and not r.rule.endswith("openapi.json")
    ]
    assert {r.rule for r in rules} == {
        "/api/v1/records",
        "/api/v1/records/<lookup_id:record_id>",
        "/api/v1/grant",
        "/api/v1/grant/receipt",
        "/api/v1/aggregates",
        "/api/v1/subscriptions",
        "/api/v1/subscriptions/<sub_id>",
        "/api/v1/changes",
        "/audit/key",
        "/audit/checkpoint",
        "/audit/entries",
        "/audit/proof/inclusion",
        "/audit/proof/consistency",
    }
    walked = 0
    for rule in rules:
        path = _sample(rule.rule).replace("/1", f"/{ids[0]}") + params.get(rule.rule, "")
        token = auditor if rule.rule.startswith("/audit/") else reader["access_token"]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            body = {"json": {"category": "transactions"}} if method == "POST" else {}
            for headers in (bearer(token), {}, bearer("not-a-token")):
                before = kit.vault.log.size()
                getattr(kit.http, method.lower())(path, headers=headers, **body)
                assert kit.vault.log.size() - before == 1, (method, path, headers)
                walked += 1
    assert walked == 45
