"""Edge cases of the authorization server and the APIs that an attacker would try."""

from __future__ import annotations

import json

from tests.oauth_kit import CB, basic, bearer, pkce, seed


def test_home_page_needs_the_owner(kit) -> None:
    resp = kit.http.get("/")
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/login?next=/"
    assert kit.login("/").status_code == 303
    assert kit.http.get("/").status_code == 200


def test_non_ascii_redirect_uri_gets_the_error_page(kit) -> None:
    client_id, _ = kit.add_client()
    _, challenge = pkce()
    resp = kit.http.get(kit.authorize_url(client_id, challenge, redirect_uri=CB + "\u00e9"))
    assert resp.status_code == 400
    assert "Location" not in resp.headers


def test_redirect_uri_with_control_characters_or_spaces_is_refused(kit) -> None:
    for uri in ("https://good.example/cb\t", "https://good.example\t.evil.example/cb", CB + " "):
        resp = kit.http.post("/oauth/register", json={"redirect_uris": [uri]})
        assert resp.status_code == 400
        assert resp.json["error"] == "invalid_client_metadata"
        assert resp.json["error_description"] == (
            "a redirect URI must be printable ASCII with no spaces or control characters"
        )


def test_deeply_nested_authorization_details_is_an_oauth_error(kit) -> None:
    client_id, _ = kit.add_client()
    _, challenge = pkce()
    for details in ("[" * 3000, json.dumps([{"type": "pds_records", "x": "a" * 17000}])):
        resp = kit.http.get(kit.authorize_url(client_id, challenge, authorization_details=details))
        assert resp.status_code == 302
        location = resp.headers["Location"]
        assert location.startswith(CB + "?")
        assert "error=invalid_authorization_details" in location
        assert "iss=http" in location


def test_rotated_refresh_token_introspects_inactive(kit) -> None:
    client_id, secret = kit.add_client()
    tok = kit.tokens(client_id, secret)
    assert (
        kit.token(
            client_id, secret, grant_type="refresh_token", refresh_token=tok["refresh_token"]
        ).status_code
        == 200
    )
    resp = kit.http.post(
        "/oauth/introspect",
        data={"token": tok["refresh_token"], "token_type_hint": "refresh_token"},
        headers=basic(client_id, secret),
    )
    assert resp.json == {"active": False}


def test_huge_record_ids_and_cursors_are_not_found_or_bad(kit) -> None:
    ids = seed(kit.vault)
    client_id, secret = kit.add_client()
    token = kit.tokens(client_id, secret)["access_token"]
    missing = kit.http.get("/api/v1/records/999999", headers=bearer(token))
    huge = kit.http.get(f"/api/v1/records/{2**64}", headers=bearer(token))
    assert (huge.status_code, huge.json["detail"]) == (404, missing.json["detail"])
    import base64

    cursor = base64.urlsafe_b64encode(
        json.dumps(["transactions", "2024-01-01", 2**64]).encode()
    ).decode()
    bad = kit.http.get(
        f"/api/v1/records?category=transactions&cursor={cursor}", headers=bearer(token)
    )
    assert bad.status_code == 400
    assert bad.json["detail"] == "cursor is not one this API gave out for this category"
    assert ids


def test_writing_cannot_reveal_records_of_others(kit, vault) -> None:
    seed(vault)
    existing = vault.get(1)
    client_id, secret = kit.add_client("Writer")
    tok = kit.tokens(client_id, secret, scope="write:transactions")["access_token"]
    record = {
        "category": "transactions",
        "occurred_at": existing.occurred_at,
        "payload": existing.payload,
    }
    resp = kit.http.post("/api/v1/records", json=record, headers=bearer(tok))
    assert resp.status_code == 201
    assert resp.json["created"] is True
    assert resp.json["id"] != existing.id


def test_registration_refuses_control_characters(kit) -> None:
    # Shown to the owner, metadata may hold no control character at all (not even a line
    # feed, which the records API allows): pds.oauth.display.unsafe_metadata.
    for metadata, description in [
        (
            {"redirect_uris": [CB], "client_name": "Acme\x00Bank"},
            "client_name contains the invisible or text-reversing character [U+0000] "
            "(a control character); send it as it should read, without control or "
            "formatting characters",
        ),
        (
            {"redirect_uris": [CB], "contacts": ["ok@example.org", "\x1b[2J"]},
            "contacts contains the invisible or text-reversing character [U+001B] "
            "(a control character); send it as it should read, without control or "
            "formatting characters",
        ),
    ]:
        resp = kit.http.post("/oauth/register", json=metadata)
        assert (resp.status_code, resp.json) == (
            400,
            {"error": "invalid_client_metadata", "error_description": description},
        )
    assert kit.vault.conn.execute("SELECT count(*) FROM clients").fetchone()[0] == 0


def test_oversized_bodies_are_refused(kit) -> None:
    resp = kit.http.post(
        "/oauth/register", json={"redirect_uris": [CB], "client_name": "x" * 300_000}
    )
    assert resp.status_code == 413
    assert kit.vault.conn.execute("SELECT count(*) FROM clients").fetchone()[0] == 0
