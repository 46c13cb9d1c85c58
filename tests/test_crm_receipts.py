"""Consent receipts: issued with the grant, fetched by the business and the owner, verified;
any change to header, payload or signature, a wrong key or bad claims is refused by name."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from joserfc.jwk import OKPKey

from pds.cli import cli
from pds.crm import receipts as rmod
from pds.oauth import store
from pds.vault import Vault

from .oauth_kit import bearer

DETAILS = [
    {
        "type": "pds_records",
        "actions": ["read"],
        "categories": ["transactions"],
        "fields": ["date", "amount"],
        "time_range": {"from": "2024-01-01"},
        "purpose": "dpv:CreditChecking",
        "expires_in": 86400,
    }
]


@pytest.fixture
def granted(kit) -> dict:
    client_id, secret = kit.add_client("Acme Bank")
    tokens = kit.tokens(client_id, secret, scope=None, authorization_details=json.dumps(DETAILS))
    grant = store.list_grants(kit.vault.conn)[-1]
    return {"client_id": client_id, "token": tokens["access_token"], "grant": grant}


def _epoch(iso: str) -> int:
    return int(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


def test_grant_issues_one_receipt_that_the_business_fetches_and_verifies(kit, granted) -> None:
    grant = granted["grant"]
    stored = rmod.for_grant(kit.vault.conn, grant.id)
    assert [(r.grant_id, r.kind) for r in stored] == [(grant.id, "grant")]
    before = kit.vault.log.size()
    resp = kit.http.get("/api/v1/grant/receipt", headers=bearer(granted["token"]))
    assert resp.status_code == 200
    assert kit.vault.log.size() == before + 1
    assert kit.audit_actions()[-1] == ("api.grant.receipt", "allowed")
    body = resp.json
    assert body["receipt"] == stored[0].jws
    assert body["receipt_id"] == stored[0].receipt_id
    assert body["kind"] == "grant"
    key = OKPKey.import_key(body["key"])
    assert body["key"]["kid"] == key.thumbprint()
    claims = rmod.verify(body["receipt"], key)
    assert claims["version"] == "KI-CR-v1.1.0"
    assert claims["jurisdiction"] == "GB"
    assert claims["language"] == "en"
    assert claims["consentTimestamp"] == _epoch(grant.created_at)
    assert claims["consentReceiptID"] == stored[0].receipt_id
    assert claims["publicKey"] == body["key"]
    assert claims["piiControllers"] == [
        {
            "piiController": "Acme Bank",
            "piiControllerId": granted["client_id"],
            "onBehalf": False,
            "contact": "",
            "email": "",
            "piiControllerUrl": "",
        }
    ]
    assert claims["services"] == [
        {
            "service": "Acme Bank",
            "purposes": [
                {
                    "purpose": "dpv:CreditChecking",
                    "purposeCategory": ["checking your creditworthiness"],
                    "consentType": "EXPLICIT",
                    "piiCategory": ["read transactions (date, amount) from 2024-01-01 to now"],
                    "primaryPurpose": True,
                    "termination": f"at {store.iso(grant.expires_at)}, or earlier when the "
                    "person revokes the grant in pds",
                    "thirdPartyDisclosure": False,
                    "thirdPartyName": "",
                }
            ],
        }
    ]
    assert claims["sensitive"] is False
    assert claims["spiCat"] == []
    assert claims["pds"] == {
        "grant_id": grant.id,
        "client_id": granted["client_id"],
        "scope": "read:transactions",
        "authorization_details": grant.access.authorization_details(),
        "expires_at": store.iso(grant.expires_at),
    }
    assert grant.expires_at - _epoch(grant.created_at) == 86400
    # a pairwise pseudonym: not the name, and different for another business
    assert re.fullmatch(r"urn:pds:principal:[0-9a-f]{32}", claims["piiPrincipalId"])
    other = rmod.claims(kit.vault, grant, "x", 0)
    assert other["piiPrincipalId"] == claims["piiPrincipalId"]
    client2, _ = kit.add_client("Other Ltd")
    g2 = store.create_grant(kit.vault.conn, client2, grant.access)
    assert rmod.claims(kit.vault, g2, "x", 0)["piiPrincipalId"] != claims["piiPrincipalId"]


def test_sensitive_category_is_marked(vault: Vault) -> None:
    from pds.oauth import admin
    from pds.oauth.access import parse_request

    client, _ = admin.add_client(vault, "Clinic", ["https://clinic.example/cb"])
    grant = store.create_grant(
        vault.conn, client.client_id, parse_request("read:health read:transactions", None)
    )
    claims = rmod.verify(rmod.issue(vault, grant).jws, rmod.signing_jwk(vault))
    assert claims["sensitive"] is True
    assert claims["spiCat"] == ["health data (GDPR Art. 9)"]
    assert claims["services"][0]["purposes"][0]["purpose"] == "dpv:Purpose"
    assert claims["services"][0]["purposes"][0]["piiCategory"] == [
        "read transactions",
        "read health",
    ]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _swap(token: str, part: int, change) -> str:
    parts = token.split(".")
    parts[part] = change(parts[part])
    return ".".join(parts)


def _edit_json(text: str, **changes) -> str:
    doc = json.loads(_unb64(text))
    doc.update(changes)
    return _b64(json.dumps(doc).encode())


@pytest.fixture
def signed(vault: Vault) -> tuple[str, OKPKey]:
    from pds.oauth import admin
    from pds.oauth.access import parse_request

    client, _ = admin.add_client(vault, "Acme", ["https://a.example/cb"])
    grant = store.create_grant(vault.conn, client.client_id, parse_request("read:energy", None))
    return rmod.issue(vault, grant).jws, rmod.signing_jwk(vault)


def test_untouched_receipt_verifies(signed) -> None:
    token, key = signed
    assert rmod.verify(token, key)["pds"]["scope"] == "read:energy"


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda t: _swap(t, 1, lambda p: _edit_json(p, jurisdiction="US")), rmod.CHANGED),
        (lambda t: _swap(t, 0, lambda p: _edit_json(p, typ="JWT")), rmod.CHANGED),
        (
            lambda t: _swap(t, 2, lambda s: _b64(bytes([_unb64(s)[0] ^ 1]) + _unb64(s)[1:])),
            rmod.CHANGED,
        ),
        (
            lambda t: _swap(t, 0, lambda p: _edit_json(p, alg="none")),
            "the receipt's header names algorithm 'none'; pds receipts are signed with 'Ed25519'",
        ),
        (lambda t: t.rsplit(".", 1)[0], rmod.MALFORMED),
        (lambda t: "not a receipt", rmod.MALFORMED),
        (lambda t: "e30.e30.e30.e30", rmod.MALFORMED),
        (lambda t: _swap(t, 0, lambda p: "!!!"), rmod.MALFORMED),
    ],
    ids=["payload", "header", "signature", "alg-none", "two-parts", "text", "four-parts", "b64"],
)
def test_tampering_is_refused_by_name(signed, tamper, message: str) -> None:
    token, key = signed
    with pytest.raises(rmod.ReceiptError) as err:
        rmod.verify(tamper(token), key)
    assert err.value.message == message


def test_wrong_key_is_named(signed) -> None:
    token, key = signed
    other = OKPKey.generate_key("Ed25519")
    with pytest.raises(rmod.ReceiptError) as err:
        rmod.verify(token, other)
    assert err.value.message == (
        f"the receipt was signed by key {key.thumbprint()!r}, "
        f"not by the key given ({other.thumbprint()})"
    )


def test_signed_claims_that_are_not_a_receipt_fail_the_schema(vault: Vault, signed) -> None:
    token, key = signed
    body = json.loads(_unb64(token.split(".")[1]))
    del body["services"]
    with pytest.raises(rmod.ReceiptError) as err:
        rmod.verify(rmod.sign(key, body), key)
    assert err.value.message == (
        "the receipt's claims are not a consent receipt: services: Missing data for required field."
    )
    body = json.loads(_unb64(token.split(".")[1]))
    body["version"] = "KI-CR-v1.0.0"
    with pytest.raises(rmod.ReceiptError) as err:
        rmod.verify(rmod.sign(key, body), key)
    assert err.value.message == (
        "the receipt's claims are not a consent receipt: version: Must be equal to KI-CR-v1.1.0."
    )


def test_load_key_reads_a_jwk_and_a_verifier_key(vault: Vault, signed) -> None:
    token, key = signed
    jwk = json.dumps(rmod.public_jwk(key))
    assert rmod.load_key(jwk).thumbprint() == key.thumbprint()
    assert rmod.load_key(vault.log_verifier_key()).thumbprint() == key.thumbprint()
    with pytest.raises(rmod.ReceiptError) as err:
        rmod.load_key("nonsense")
    assert err.value.message == "the key is neither an Ed25519 JWK nor a verifier key"


def test_cli_verify_with_a_key_file(runner, signed, tmp_path: Path) -> None:
    token, key = signed
    receipt = tmp_path / "r.jws"
    receipt.write_text(token + "\n")
    keyfile = tmp_path / "key.jwk"
    keyfile.write_text(json.dumps(rmod.public_jwk(key)))
    ok = runner.invoke(cli, ["receipts", "verify", str(receipt), "--key", str(keyfile), "--json"])
    assert ok.exit_code == 0, ok.output
    info = json.loads(ok.output)
    assert info["valid"] is True
    assert info["controller"] == "Acme"
    assert info["pii_categories"] == ["read energy"]
    # the API's JSON answer is accepted as it is
    api = tmp_path / "r.json"
    api.write_text(json.dumps({"receipt": token}))
    assert (
        runner.invoke(cli, ["receipts", "verify", str(api), "--key", str(keyfile)]).exit_code == 0
    )
    wrong = tmp_path / "wrong.jwk"
    other = OKPKey.generate_key("Ed25519")
    wrong.write_text(json.dumps(rmod.public_jwk(other)))
    bad = runner.invoke(cli, ["receipts", "verify", str(receipt), "--key", str(wrong)])
    assert bad.exit_code == 1
    assert bad.output.splitlines()[0] == (
        f"Error: the receipt was signed by key {key.thumbprint()!r}, "
        f"not by the key given ({other.thumbprint()})"
    )
    receipt.write_text(_swap(token, 1, lambda p: _edit_json(p, language="fr")))
    changed = runner.invoke(cli, ["receipts", "verify", str(receipt), "--key", str(keyfile)])
    assert changed.exit_code == 1
    assert changed.output.splitlines() == [f"Error: {rmod.CHANGED}"]
    receipt.write_text("garbage")
    garbage = runner.invoke(cli, ["receipts", "verify", str(receipt), "--key", str(keyfile)])
    assert garbage.output.splitlines() == [f"Error: {rmod.MALFORMED}"]


def test_cli_show_and_verify_against_the_vault(runner, initialised: Path, tmp_path: Path) -> None:
    from pds.oauth import admin
    from pds.oauth.access import parse_request
    from pds.settings import Settings

    from .conftest import PASSPHRASE

    with Vault.open(Settings(home=initialised), PASSPHRASE) as v:
        client, _ = admin.add_client(v, "Acme", ["https://a.example/cb"])
        grant = store.create_grant(v.conn, client.client_id, parse_request("read:energy", None))
        issued = rmod.issue(v, grant)
    out = tmp_path / "receipt.jws"
    shown = runner.invoke(cli, ["receipts", "show", str(grant.id), "--out", str(out)])
    assert shown.exit_code == 0, shown.output
    assert out.read_text() == issued.jws + "\n"
    checked = runner.invoke(cli, ["receipts", "verify", str(out)])
    assert checked.exit_code == 0, checked.output
    assert checked.output.splitlines()[0] == (
        f"Valid consent receipt {issued.receipt_id} (grant {grant.id})."
    )
    missing = runner.invoke(cli, ["receipts", "show", "99"])
    assert missing.exit_code == 1
    assert missing.output.splitlines()[0] == "Error: there is no grant 99"


def test_owner_downloads_the_receipt(kit, granted) -> None:
    grant = granted["grant"]
    path = f"/grants/{grant.id}/receipt"
    stranger = kit.app.test_client().get(path)
    assert stranger.status_code == 302  # signed out: to the login page
    assert "/login" in stranger.headers["Location"]
    resp = kit.http.get(path)
    assert resp.status_code == 200
    assert resp.mimetype == "application/jose"
    assert resp.headers["Content-Disposition"] == (
        f'attachment; filename="receipt-grant-{grant.id}.jws"'
    )
    assert resp.text == rmod.latest(kit.vault.conn, grant.id).jws + "\n"
    assert kit.http.get("/grants/999/receipt").status_code == 404


def test_a_refused_consent_leaves_no_receipt(kit) -> None:
    client_id, _ = kit.add_client()
    url = kit.authorize_url(client_id, "x" * 43)
    resp = kit.consent(url, decision="deny")
    assert resp.status_code == 303
    assert kit.vault.conn.execute("SELECT count(*) FROM receipts").fetchone()[0] == 0


def test_receipt_api_writes_one_entry_per_call(kit, granted) -> None:
    for headers, status in (
        (bearer(granted["token"]), 200),
        ({}, 401),
        (bearer("not-a-token"), 401),
    ):
        before = kit.vault.log.size()
        assert kit.http.get("/api/v1/grant/receipt", headers=headers).status_code == status
        assert kit.vault.log.size() == before + 1
    # a grant from before receipts existed: 404 problem+json, logged as refused
    kit.vault.conn.execute("DELETE FROM receipts")
    resp = kit.http.get("/api/v1/grant/receipt", headers=bearer(granted["token"]))
    assert resp.status_code == 404
    assert resp.mimetype == "application/problem+json"
    assert resp.json["detail"] == f"grant {granted['grant'].id} has no consent receipt"
    assert kit.audit_actions()[-1] == ("api.grant.receipt", "refused")


REDACT = """
[[rule]]
id = "no-references"
kind = "redact-fields"
category = "transactions"
fields = ["reference"]
"""


def test_narrowing_by_policy_issues_a_new_receipt(kit) -> None:
    from pds.app import current_policies

    client_id, secret = kit.add_client("Acme Bank")
    tok = kit.tokens(client_id, secret, scope="read:transactions")
    grant = store.list_grants(kit.vault.conn)[-1]
    folder = kit.vault.settings.home / "policies"
    folder.mkdir(exist_ok=True)
    (folder / "mine.toml").write_text(REDACT, encoding="utf-8")
    with kit.app.app_context():
        current_policies().check_every = 0
    refreshed = kit.token(
        client_id, secret, grant_type="refresh_token", refresh_token=tok["refresh_token"]
    )
    assert refreshed.status_code == 200, refreshed.text
    found = rmod.for_grant(kit.vault.conn, grant.id)
    assert [r.kind for r in found] == ["grant", "narrow"]
    claims = rmod.verify(found[-1].jws, rmod.signing_jwk(kit.vault))
    (detail,) = claims["pds"]["authorization_details"]
    assert "reference" not in detail["fields"]
    assert claims["consentReceiptID"] != found[0].receipt_id
    resp = kit.http.get("/api/v1/grant/receipt", headers=bearer(refreshed.json["access_token"]))
    assert resp.json["kind"] == "narrow"
    assert resp.json["receipt"] == found[-1].jws
