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

from pds import clock
from pds.cli import cli
from pds.db.oauth import ReceiptRow
from pds.oauth import receipts as rmod
from pds.oauth import store
from pds.vault import Vault
from tests.oauth_kit import bearer

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
            "address": {"streetAddress": "", "addressCountry": ""},
            "email": "",
            "phone": "",
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
                    "termination": f"at {clock.iso(grant.expires_at)}, or earlier when the "
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
        "expires_at": clock.iso(grant.expires_at),
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
    from tests.conftest import PASSPHRASE

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
    from pds.http.context import current_policies

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


def _withdrawn(vault: Vault, grant_id: int) -> list[ReceiptRow]:
    return [r for r in rmod.for_grant(vault.conn, grant_id) if r.kind == "withdraw"]


def _log_verifies(vault: Vault) -> None:
    from pds.audit.verify import verify as verify_log

    assert verify_log(vault.log_source()).ok


def test_revoking_a_grant_issues_one_withdraw_receipt(kit, granted) -> None:
    from tests.oauth_kit import csrf

    vault = kit.vault
    grant = granted["grant"]
    key = rmod.public_key(rmod.signing_jwk(vault))
    given = rmod.verify(rmod.for_grant(vault.conn, grant.id)[0].jws, key)
    page = kit.http.get(f"/grants/{grant.id}/revoke")
    done = kit.http.post(f"/grants/{grant.id}/revoke", data={"csrf_token": csrf(page.text)})
    assert done.status_code == 303
    revoked = store.get_grant(vault.conn, grant.id)
    found = rmod.for_grant(vault.conn, grant.id)
    assert [r.kind for r in found] == ["grant", "withdraw"]
    withdraw = found[-1]
    assert withdraw.created_at == revoked.revoked_at
    claims = rmod.verify(withdraw.jws, key)
    expected = json.loads(json.dumps(given))
    expected["consentTimestamp"] = _epoch(revoked.revoked_at)
    expected["consentReceiptID"] = withdraw.receipt_id
    expected["services"][0]["purposes"][0]["termination"] = (
        f"ended at {revoked.revoked_at}: the grant was revoked"
    )
    expected["pds"]["withdrawn_at"] = revoked.revoked_at
    expected["pds"]["withdrawn_reason"] = "revoked by the owner"
    assert claims == expected
    assert rmod.summary(claims)["withdrawn_at"] == revoked.revoked_at
    assert rmod.summary(given)["withdrawn_at"] is None
    # the newest receipt is the withdraw one, on the web; the revoked token cannot fetch it
    assert rmod.latest(vault.conn, grant.id) == withdraw
    assert kit.http.get(f"/grants/{grant.id}/receipt").text == withdraw.jws + "\n"
    resp = kit.http.get("/api/v1/grant/receipt", headers=bearer(granted["token"]))
    assert resp.status_code == 401
    # revoking again issues nothing more
    again = kit.http.post(f"/grants/{grant.id}/revoke", data={"csrf_token": csrf(page.text)})
    assert again.status_code == 422
    assert rmod.revoke(vault, grant.id, "again") is None
    assert len(_withdrawn(vault, grant.id)) == 1
    assert [a for a, _ in kit.audit_actions()].count("grant.revoke") == 1
    _log_verifies(vault)


def test_withdraw_receipts_are_per_grant_and_only_for_revoked_grants(vault: Vault) -> None:
    from pds.oauth import admin
    from pds.oauth.access import parse_request

    client, _ = admin.add_client(vault, "Acme", ["https://a.example/cb"])
    grants = [
        store.create_grant(vault.conn, client.client_id, parse_request(scope, None))
        for scope in ("read:energy", "read:transactions")
    ]
    with pytest.raises(ValueError, match="a 'withdraw' receipt for grant 1 revoked at None"):
        rmod.issue(vault, grants[0], "withdraw")
    for g in grants:
        admin.revoke_grant(vault, g.id)
    key = rmod.signing_jwk(vault)
    bodies = [rmod.verify(_withdrawn(vault, g.id)[0].jws, key) for g in grants]
    assert [(b["pds"]["grant_id"], b["pds"]["scope"]) for b in bodies] == [
        (1, "read:energy"),
        (2, "read:transactions"),
    ]
    assert bodies[0]["consentReceiptID"] != bodies[1]["consentReceiptID"]
    with pytest.raises(ValueError, match="a 'narrow' receipt for grant 1 revoked at 20"):
        rmod.issue(vault, store.get_grant(vault.conn, 1), "narrow")
    # the schema wants a withdraw receipt's two fields together, the time as pds writes it
    for change, message in (
        (
            lambda p: p.pop("withdrawn_reason"),
            "pds.withdrawn_reason: Missing data: a withdraw "
            "receipt carries withdrawn_at and withdrawn_reason.",
        ),
        (lambda p: p.update(withdrawn_at="yesterday"), "pds.withdrawn_at: Not a valid datetime."),
    ):
        body = json.loads(json.dumps(bodies[0]))
        change(body["pds"])
        with pytest.raises(rmod.ReceiptError) as err:
            rmod.verify(rmod.sign(key, body), key)
        assert err.value.message == f"the receipt's claims are not a consent receipt: {message}"
    _log_verifies(vault)


def test_cli_shows_and_verifies_a_withdraw_receipt(
    runner, initialised: Path, tmp_path: Path
) -> None:
    from pds.oauth import admin
    from pds.oauth.access import parse_request
    from pds.settings import Settings
    from tests.conftest import PASSPHRASE

    with Vault.open(Settings(home=initialised), PASSPHRASE) as v:
        client, _ = admin.add_client(v, "Acme", ["https://a.example/cb"])
        grant = store.create_grant(v.conn, client.client_id, parse_request("read:energy", None))
        rmod.issue(v, grant)
        revoked = admin.revoke_grant(v, grant.id)
        withdraw = rmod.latest(v.conn, grant.id)
    shown = runner.invoke(cli, ["receipts", "show", str(grant.id), "--json"])
    assert shown.exit_code == 0, shown.output
    info = json.loads(shown.output)
    assert (info["kind"], info["receipt"], info["issued_at"]) == (
        "withdraw",
        withdraw.jws,
        revoked.revoked_at,
    )
    out = tmp_path / "receipt.jws"
    out.write_text(withdraw.jws)
    checked = runner.invoke(cli, ["receipts", "verify", str(out)])
    assert checked.exit_code == 0, checked.output
    assert checked.output.splitlines()[:3] == [
        f"Valid consent receipt {withdraw.receipt_id} (grant {grant.id}).",
        "  controller:  Acme",
        f"  withdrawn:   {revoked.revoked_at} (revoked by the owner)",
    ]
    assert f"  termination: ended at {revoked.revoked_at}: the grant was revoked" in (
        checked.output.splitlines()
    )


DENY_TX = """
[[rule]]
id = "tx-stay-home"
kind = "deny-category"
category = "transactions"
"""


def test_revocation_by_policy_issues_one_withdraw_receipt(kit) -> None:
    from pds.http.context import current_policies

    client_id, secret = kit.add_client("Acme Bank")
    tok = kit.tokens(client_id, secret, scope="read:transactions")
    grant = store.list_grants(kit.vault.conn)[-1]
    folder = kit.vault.settings.home / "policies"
    folder.mkdir(exist_ok=True)
    (folder / "mine.toml").write_text(DENY_TX, encoding="utf-8")
    with kit.app.app_context():
        current_policies().check_every = 0
    for _ in range(2):  # the second refresh finds the grant revoked: nothing more
        refused = kit.token(
            client_id, secret, grant_type="refresh_token", refresh_token=tok["refresh_token"]
        )
        assert refused.status_code == 400
    found = rmod.for_grant(kit.vault.conn, grant.id)
    assert [r.kind for r in found] == ["grant", "withdraw"]
    claims = rmod.verify(found[-1].jws, rmod.signing_jwk(kit.vault))
    revoked = store.get_grant(kit.vault.conn, grant.id)
    assert claims["pds"]["withdrawn_at"] == revoked.revoked_at
    assert claims["pds"]["withdrawn_reason"] == (
        'policy: rule "tx-stay-home": transactions data never leaves this vault'
    )
    assert claims["consentTimestamp"] == _epoch(revoked.revoked_at)
    _log_verifies(kit.vault)


def test_a_business_ending_its_grant_gets_a_withdraw_receipt(kit) -> None:
    from tests.oauth_kit import basic

    client_id, secret = kit.add_client("Acme Bank")
    ended = kit.tokens(client_id, secret, scope="read:transactions")
    replayed = kit.tokens(client_id, secret, scope="read:energy")
    for _ in range(2):  # revoking its refresh token twice: one receipt
        rev = kit.http.post(
            "/oauth/revoke",
            data={"token": ended["refresh_token"], "token_type_hint": "refresh_token"},
            headers=basic(client_id, secret),
        )
        assert rev.status_code == 200
    first = kit.token(
        client_id, secret, grant_type="refresh_token", refresh_token=replayed["refresh_token"]
    )
    assert first.status_code == 200
    for _ in range(2):  # a replayed refresh token ends the grant; replaying again: nothing
        again = kit.token(
            client_id, secret, grant_type="refresh_token", refresh_token=replayed["refresh_token"]
        )
        assert again.status_code == 400
    reasons = []
    for grant in store.list_grants(kit.vault.conn, include_inactive=True):
        found = rmod.for_grant(kit.vault.conn, grant.id)
        assert [r.kind for r in found] == ["grant", "withdraw"]
        claims = rmod.verify(found[-1].jws, rmod.signing_jwk(kit.vault))
        assert claims["pds"]["withdrawn_at"] == grant.revoked_at
        reasons.append(claims["pds"]["withdrawn_reason"])
    assert reasons == ["refresh token revoked by client", "refresh token replayed"]
    _log_verifies(kit.vault)
