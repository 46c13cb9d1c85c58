"""The whole door, through Flask's test client: register → authorize → login → consent
(narrowed) → token → records (only the approved slice) → refresh (rotated) → revoke → 401."""

from __future__ import annotations

import json

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oauth2.rfc9207 import AuthorizationServerMetadata as IssMetadata

from pds.oauth import store
from pds.vocabulary import CATEGORIES
from tests.oauth_kit import CB, ISSUER, basic, bearer, pkce, query, seed

DETAILS = [
    {
        "type": "pds_records",
        "actions": ["read"],
        "categories": ["transactions"],
        "fields": ["date", "amount", "description", "reference"],
        "time_range": {"from": "2024-01-01", "to": "2024-12-31"},
        "purpose": "dpv:CreditChecking",
        "expires_in": 30 * 86400,
    }
]


def test_full_flow_with_narrowed_consent(kit, vault) -> None:
    ids = seed(vault)
    client_id, secret = kit.add_client()
    verifier, challenge = pkce()
    url = kit.authorize_url(
        client_id, challenge, scope=None, authorization_details=json.dumps(DETAILS)
    )

    # signed out: sent to the login page and back
    first = kit.http.get(url)
    assert first.status_code == 302
    assert first.headers["Location"].startswith(
        "/login?next=/oauth/authorize?response_type%3Dcode%26"
    )
    assert kit.login(url).headers["Location"] == url

    # the owner narrows: drops the reference field, starts in March, 10 days only
    resp = kit.consent(
        url,
        narrowing="1",
        item="read:transactions",
        **{
            "field.transactions": ["date", "amount", "description"],
            "from.transactions": "2024-03-01",
            "to.transactions": "2024-12-31",
            "expires_days": "10",
        },
    )
    assert resp.status_code == 303
    assert resp.headers["Location"].startswith(CB + "?code=")
    q = query(resp.headers["Location"])
    assert q["state"] == "st-123"
    assert q["iss"] == ISSUER

    tok_resp = kit.redeem(client_id, secret, q["code"], verifier)
    assert tok_resp.status_code == 200
    assert tok_resp.headers["Cache-Control"] == "no-store"
    assert tok_resp.headers["Pragma"] == "no-cache"
    tok = tok_resp.json
    assert tok["token_type"] == "Bearer"
    assert tok["expires_in"] == 3600
    assert tok["scope"] == "read:transactions"
    assert tok["authorization_details"] == [
        {
            "type": "pds_records",
            "actions": ["read"],
            "categories": ["transactions"],
            "fields": ["date", "amount", "description"],
            "time_range": {"from": "2024-03-01", "to": "2024-12-31"},
            "purpose": "dpv:CreditChecking",
            "expires_in": 10 * 86400,
        }
    ]
    assert len(tok["access_token"]) >= 43
    assert len(tok["refresh_token"]) >= 43
    # stored only as hashes
    row = vault.conn.execute("SELECT access_hash, refresh_hash FROM tokens").fetchone()
    assert row == (store.digest(tok["access_token"]), store.digest(tok["refresh_token"]))

    # only the approved slice: March..June, three fields
    page = kit.http.get(
        "/api/v1/records",
        query_string={"category": "transactions"},
        headers=bearer(tok["access_token"]),
    )
    assert page.status_code == 200
    assert page.json == {
        "records": [
            {
                "id": ids[m - 1],
                "category": "transactions",
                "occurred_at": f"2024-0{m}-05",
                "payload": {
                    "date": f"2024-0{m}-05",
                    "amount": f"-{m}.00",
                    "description": f"SHOP {m}",
                },
            }
            for m in (3, 4, 5, 6)
        ],
        "next_cursor": None,
    }
    grant = kit.http.get("/api/v1/grant", headers=bearer(tok["access_token"])).json
    assert grant["client_id"] == client_id
    assert grant["purpose"] == "dpv:CreditChecking"
    assert grant["scope"] == "read:transactions"

    # refresh: rotated; the old access token stops working
    ref = kit.token(
        client_id, secret, grant_type="refresh_token", refresh_token=tok["refresh_token"]
    )
    assert ref.status_code == 200
    assert ref.headers["Cache-Control"] == "no-store"
    new = ref.json
    assert new["refresh_token"] != tok["refresh_token"]
    assert new["access_token"] != tok["access_token"]
    assert kit.http.get("/api/v1/grant", headers=bearer(tok["access_token"])).status_code == 401
    assert kit.http.get("/api/v1/grant", headers=bearer(new["access_token"])).status_code == 200

    # revoke the refresh token (RFC 7009): the grant ends, the access token fails next call
    rev = kit.http.post(
        "/oauth/revoke",
        data={"token": new["refresh_token"], "token_type_hint": "refresh_token"},
        headers=basic(client_id, secret),
    )
    assert rev.status_code == 200
    after = kit.http.get("/api/v1/grant", headers=bearer(new["access_token"]))
    assert after.status_code == 401
    assert after.headers["WWW-Authenticate"] == 'Bearer realm="pds", error="invalid_token"'
    assert after.headers["Content-Type"] == "application/problem+json"
    assert after.json["detail"] == "the access token is unknown, expired or revoked"

    assert kit.audit_actions()[3:] == [
        ("client.register", "allowed"),
        ("grant.create", "allowed"),
        ("token.issue", "allowed"),
        ("api.records.read", "allowed"),
        ("api.grant.read", "allowed"),
        ("token.refresh", "allowed"),
        ("api.grant.read", "refused"),
        ("api.grant.read", "allowed"),
        ("grant.revoke", "allowed"),
        ("api.grant.read", "refused"),
    ]
    entry = json.loads(
        vault.conn.execute(
            "SELECT entry FROM audit_log WHERE entry LIKE '%api.records.read%'"
        ).fetchone()[0]
    )
    assert {k: entry[k] for k in ("actor", "client", "grant", "category", "count", "purpose")} == {
        "actor": f"client:{client_id}",
        "client": client_id,
        "grant": "1",
        "category": "transactions",
        "count": 4,
        "purpose": "dpv:CreditChecking",
    }
    text = "\n".join(r[0] for r in vault.conn.execute("SELECT entry FROM audit_log"))
    for secret_value in (secret, tok["access_token"], tok["refresh_token"], q["code"], "SHOP 3"):
        assert secret_value not in text


def test_public_client_flow_and_access_token_revocation(kit, vault) -> None:
    client_id, secret = kit.add_client("Pocket App", public=True)
    assert secret is None
    tok = kit.tokens(client_id, None, scope="read:transactions write:transactions")
    assert tok["scope"] == "read:transactions write:transactions"
    rev = kit.http.post(
        "/oauth/revoke", data={"token": tok["access_token"], "client_id": client_id}
    )
    assert rev.status_code == 200
    assert kit.http.get("/api/v1/grant", headers=bearer(tok["access_token"])).status_code == 401
    # revoking an access token ends that token pair only; the grant lives on
    assert store.get_grant(vault.conn, 1).revoked_at is None


def test_owner_revokes_grant_kills_tokens(kit, vault) -> None:
    from pds.oauth import admin

    client_id, secret = kit.add_client()
    tok = kit.tokens(client_id, secret)
    admin.revoke_grant(vault, 1)
    assert kit.http.get("/api/v1/grant", headers=bearer(tok["access_token"])).status_code == 401
    ref = kit.token(
        client_id, secret, grant_type="refresh_token", refresh_token=tok["refresh_token"]
    )
    assert (ref.status_code, ref.json["error"]) == (400, "invalid_grant")
    assert ref.json["error_description"] == "The refresh token is invalid, expired or revoked."


def test_introspection_only_own_tokens(kit) -> None:
    a_id, a_secret = kit.add_client("A")
    b_id, b_secret = kit.add_client("B")
    tok = kit.tokens(a_id, a_secret)
    own = kit.http.post(
        "/oauth/introspect", data={"token": tok["access_token"]}, headers=basic(a_id, a_secret)
    )
    assert own.status_code == 200
    body = own.json
    assert body["active"] is True
    assert (body["client_id"], body["scope"], body["token_type"], body["iss"]) == (
        a_id,
        "read:transactions",
        "Bearer",
        ISSUER,
    )
    assert body["exp"] - body["iat"] == 3600
    other = kit.http.post(
        "/oauth/introspect", data={"token": tok["access_token"]}, headers=basic(b_id, b_secret)
    )
    assert other.json == {"active": False}
    unauth = kit.http.post("/oauth/introspect", data={"token": tok["access_token"]})
    assert (unauth.status_code, unauth.json["error"]) == (401, "invalid_client")


def test_metadata_advertises_exactly_what_is_supported(kit) -> None:
    resp = kit.http.get("/.well-known/oauth-authorization-server")
    assert resp.status_code == 200
    meta = resp.json
    AuthorizationServerMetadata(meta).validate(metadata_classes=[IssMetadata])
    actions = ("read", "write", "aggregate")
    scopes = [f"{a}:{c}" for c in CATEGORIES for a in actions] + ["audit:read"]
    assert meta == {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/oauth/authorize",
        "token_endpoint": f"{ISSUER}/oauth/token",
        "revocation_endpoint": f"{ISSUER}/oauth/revoke",
        "introspection_endpoint": f"{ISSUER}/oauth/introspect",
        "registration_endpoint": f"{ISSUER}/oauth/register",
        "service_documentation": f"{ISSUER}/api/v1/openapi.json",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": scopes,
        "authorization_response_iss_parameter_supported": True,
        "authorization_details_types_supported": ["pds_records"],
    }


def test_dynamic_registration_makes_unverified_client(kit, vault) -> None:
    resp = kit.http.post(
        "/oauth/register",
        json={
            "client_name": "Shady Lender",
            "redirect_uris": [CB],
            "token_endpoint_auth_method": "client_secret_post",
        },
    )
    assert resp.status_code == 201, resp.text
    body = resp.json
    assert body["client_name"] == "Shady Lender"
    assert body["token_endpoint_auth_method"] == "client_secret_post"
    assert body["client_secret_expires_at"] == 0
    client = store.get_client(vault.conn, body["client_id"])
    assert client is not None
    assert client.verified is False
    assert client.check_client_secret(body["client_secret"])
    assert client.secret_hash == store.digest(body["client_secret"])
    assert kit.audit_actions()[-1] == ("client.register", "allowed")
    # the consent page says so plainly
    verifier, challenge = pkce()
    kit.login()
    page = kit.http.get(kit.authorize_url(body["client_id"], challenge))
    assert "Shady Lender asks to use your data" in page.text
    assert "<strong>Unverified:</strong> this business registered itself" in page.text
    # and the client can complete the flow with client_secret_post
    code = kit.code(body["client_id"], challenge)
    tok = kit.http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CB,
            "code_verifier": verifier,
            "client_id": body["client_id"],
            "client_secret": body["client_secret"],
        },
    )
    assert tok.status_code == 200


def test_dynamic_registration_refuses_bad_metadata(kit) -> None:
    cases = [
        ({"redirect_uris": ["http://evil.example/cb"]}, "uses http on a host that is not loopback"),
        ({"redirect_uris": []}, "redirect_uris must list at least one URI."),
        (
            {"redirect_uris": [CB], "token_endpoint_auth_method": "private_key_jwt"},
            "Invalid claim: 'token_endpoint_auth_method'",
        ),
        (
            {"redirect_uris": [CB], "grant_types": ["client_credentials"]},
            "Invalid claim: 'grant_types'",
        ),
    ]
    for doc, message in cases:
        resp = kit.http.post("/oauth/register", json=doc)
        assert resp.status_code == 400, doc
        assert resp.json["error"] == "invalid_client_metadata", doc
        assert message in resp.json["error_description"]
    not_json = kit.http.post("/oauth/register", data="x", content_type="text/plain")
    assert (not_json.status_code, not_json.json["error"]) == (400, "invalid_client_metadata")
