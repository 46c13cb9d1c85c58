"""Every way the authorization server must say no, one test each, with exact errors."""

from __future__ import annotations

import json
import threading

import pytest

from pds import clock
from pds.errors import ConfigError
from pds.http.app import create_app
from pds.oauth import store
from pds.oauth.grants import (
    CODE_EXPIRED,
    CODE_INVALID,
    CODE_REPLAYED,
    REFRESH_INVALID,
    REFRESH_REPLAYED,
)
from pds.oauth.issuer import check_issuer
from tests.oauth_kit import CB, ISSUER, basic, bearer, pkce, query


def error_redirect(resp) -> dict[str, str]:
    assert resp.status_code in (302, 303), resp.text
    location = resp.headers["Location"]
    assert location.startswith(CB + "?")
    q = query(location)
    assert "code" not in q
    assert q["iss"] == ISSUER
    assert q["state"] == "st-123"
    return q


def test_missing_pkce_is_refused_without_code(kit) -> None:
    client_id, _ = kit.add_client()
    q = error_redirect(kit.http.get(kit.authorize_url(client_id, None)))
    assert (q["error"], q["error_description"]) == (
        "invalid_request",
        "PKCE is required: send code_challenge with method S256.",
    )


@pytest.mark.parametrize("method", ["plain", None, "s256"])
def test_plain_or_missing_pkce_method_is_refused(kit, method) -> None:
    client_id, _ = kit.add_client()
    verifier, _ = pkce()
    url = kit.authorize_url(client_id, None, code_challenge=verifier, code_challenge_method=method)
    q = error_redirect(kit.http.get(url))
    assert (q["error"], q["error_description"]) == (
        "invalid_request",
        "Unsupported 'code_challenge_method': only S256 is allowed.",
    )


def test_wrong_verifier(kit) -> None:
    client_id, secret = kit.add_client()
    _, challenge = pkce()
    code = kit.code(client_id, challenge)
    other_verifier, _ = pkce()
    resp = kit.redeem(client_id, secret, code, other_verifier)
    assert (resp.status_code, resp.json) == (
        400,
        {"error": "invalid_grant", "error_description": "Code challenge failed."},
    )
    assert resp.headers["Cache-Control"] == "no-store"


WRONG_VERIFIER = {"error": "invalid_grant", "error_description": "Code challenge failed."}
DEAD = {
    "error": "invalid_grant",
    "error_description": "The authorization code had 3 wrong code_verifiers and can no longer "
    "be used; start a new authorization request.",
}


@pytest.mark.parametrize("wrong", [1, 2])
def test_a_wrong_verifier_does_not_burn_the_code(kit, wrong) -> None:
    """Whoever saw the code without the verifier cannot spend the client's one redemption."""
    client_id, secret = kit.add_client()
    verifier, challenge = pkce()
    code = kit.code(client_id, challenge)
    for _ in range(wrong):
        resp = kit.redeem(client_id, secret, code, pkce()[0])
        assert (resp.status_code, resp.json) == (400, WRONG_VERIFIER)
    resp = kit.redeem(client_id, secret, code, verifier)
    assert resp.status_code == 200, resp.json
    assert sorted(resp.json) == [
        "access_token",
        "authorization_details",
        "expires_in",
        "refresh_token",
        "scope",
        "token_type",
    ]
    again = kit.redeem(client_id, secret, code, verifier)
    assert (again.status_code, again.json["error_description"]) == (400, CODE_REPLAYED)


def test_the_third_wrong_verifier_kills_the_code(kit) -> None:
    client_id, secret = kit.add_client()
    verifier, challenge = pkce()
    code = kit.code(client_id, challenge)
    other_verifier, other_challenge = pkce()
    other = kit.code(client_id, other_challenge)
    answers = [kit.redeem(client_id, secret, code, pkce()[0]) for _ in range(3)]
    assert [(r.status_code, r.json) for r in answers] == [
        (400, WRONG_VERIFIER),
        (400, WRONG_VERIFIER),
        (400, DEAD),
    ]
    for attempt in (verifier, pkce()[0], verifier):  # dead for good, whatever comes next
        resp = kit.redeem(client_id, secret, code, attempt)
        assert (resp.status_code, resp.json) == (400, DEAD)
    # another code of the same client is untouched
    assert kit.redeem(client_id, secret, other, other_verifier).status_code == 200
    row = kit.vault.conn.execute(
        "SELECT used FROM authorization_codes WHERE code_hash = ?", (store.digest(code),)
    ).fetchone()
    assert row == (-3,)


def test_missing_verifier(kit) -> None:
    client_id, secret = kit.add_client()
    _, challenge = pkce()
    code = kit.code(client_id, challenge)
    resp = kit.token(client_id, secret, grant_type="authorization_code", code=code, redirect_uri=CB)
    assert (resp.status_code, resp.json) == (
        400,
        {"error": "invalid_request", "error_description": "Missing 'code_verifier'"},
    )


@pytest.mark.parametrize(
    "uri",
    [
        CB + "/",  # trailing slash
        "https://ACME.example/cb",  # case
        "https://acme.example/CB",
        CB + "?extra=1",  # extra query
        "https://acme.example:8443/cb",  # other port
        "https://acme.example:443/cb",  # the same port, spelled out: still not the same string
        "https://acme.example@evil.example/cb",  # userinfo trick
        "https://evil.example/cb",
        "http://acme.example/cb",
        CB + "#frag",
    ],
)
def test_redirect_uri_variants_get_an_error_page_never_a_redirect(kit, uri) -> None:
    client_id, _ = kit.add_client()
    _, challenge = pkce()
    resp = kit.http.get(kit.authorize_url(client_id, challenge, redirect_uri=uri))
    assert resp.status_code == 400
    assert "Location" not in resp.headers
    assert resp.mimetype == "text/html"
    assert "This request cannot be answered" in resp.text
    assert "is not supported by client." in resp.text


def test_unknown_client_gets_an_error_page(kit) -> None:
    _, challenge = pkce()
    resp = kit.http.get(kit.authorize_url("pds-nobody", challenge))
    assert resp.status_code == 400
    assert "Location" not in resp.headers
    assert "The client does not exist on this server." in resp.text


def test_missing_redirect_uri_with_two_registered_gets_an_error_page(kit) -> None:
    client_id, _ = kit.add_client(uris=(CB, "https://acme.example/other"))
    _, challenge = pkce()
    resp = kit.http.get(kit.authorize_url(client_id, challenge, redirect_uri=None))
    assert resp.status_code == 400
    assert "Missing &#39;redirect_uri&#39; in request." in resp.text


def test_token_request_must_repeat_the_redirect_uri(kit) -> None:
    client_id, secret = kit.add_client(uris=(CB, "https://acme.example/other"))
    verifier, challenge = pkce()
    code = kit.code(client_id, challenge)
    resp = kit.redeem(client_id, secret, code, verifier, redirect_uri="https://acme.example/other")
    assert resp.json == {
        "error": "invalid_grant",
        "error_description": "Invalid 'redirect_uri' in request.",
    }


def test_unsupported_response_type_redirects_with_iss(kit) -> None:
    client_id, _ = kit.add_client()
    _, challenge = pkce()
    q = error_redirect(kit.http.get(kit.authorize_url(client_id, challenge, response_type="token")))
    assert q["error"] == "unsupported_response_type"


def test_unknown_scope_redirects_with_iss(kit) -> None:
    client_id, _ = kit.add_client()
    _, challenge = pkce()
    url = kit.authorize_url(client_id, challenge, scope="read:transactions openid")
    q = error_redirect(kit.http.get(url))
    assert q["error"] == "invalid_scope"


@pytest.mark.parametrize(
    ("details", "description"),
    [
        ("not json", "authorization_details is not valid JSON of at most 16384 bytes"),
        ("{}", "authorization_details must be a non-empty JSON array"),
        (
            json.dumps([{"type": "payment_initiation"}]),
            "authorization_details[0]: unsupported type 'payment_initiation'; pds supports "
            "'pds_records'",
        ),
        (
            json.dumps([{"type": "pds_records", "actions": ["delete"], "categories": ["health"]}]),
            "authorization_details[0].actions.0: Must be one of: read, write, aggregate.",
        ),
        (
            json.dumps(
                [
                    {
                        "type": "pds_records",
                        "actions": ["read"],
                        "categories": ["transactions"],
                        "fields": ["iban"],
                    }
                ]
            ),
            "authorization_details[0].fields: unknown field 'iban' for transactions",
        ),
        (
            json.dumps(
                [
                    {
                        "type": "pds_records",
                        "actions": ["read"],
                        "categories": ["transactions"],
                        "time_range": {"from": "2025-02-01", "to": "2025-01-01"},
                    }
                ]
            ),
            "authorization_details[0].time_range.from: 'from' is after 'to'",
        ),
    ],
)
def test_invalid_authorization_details(kit, details, description) -> None:
    client_id, _ = kit.add_client()
    _, challenge = pkce()
    url = kit.authorize_url(client_id, challenge, scope=None, authorization_details=details)
    q = error_redirect(kit.http.get(url))
    assert (q["error"], q["error_description"]) == ("invalid_authorization_details", description)


def test_owner_denies(kit, vault) -> None:
    client_id, _ = kit.add_client()
    _, challenge = pkce()
    q = error_redirect(kit.consent(kit.authorize_url(client_id, challenge), decision="deny"))
    assert q["error"] == "access_denied"
    assert vault.conn.execute("SELECT count(*) FROM grants").fetchone()[0] == 0
    assert kit.audit_actions()[-1] == ("grant.create", "refused")


def test_code_replay_revokes_the_first_tokens(kit, vault) -> None:
    client_id, secret = kit.add_client()
    verifier, challenge = pkce()
    code = kit.code(client_id, challenge)
    first = kit.redeem(client_id, secret, code, verifier)
    assert first.status_code == 200
    assert (
        kit.http.get("/api/v1/grant", headers=bearer(first.json["access_token"])).status_code == 200
    )
    again = kit.redeem(client_id, secret, code, verifier)
    assert (again.status_code, again.json) == (
        400,
        {"error": "invalid_grant", "error_description": CODE_REPLAYED},
    )
    assert (
        kit.http.get("/api/v1/grant", headers=bearer(first.json["access_token"])).status_code == 401
    )
    refresh = kit.token(
        client_id, secret, grant_type="refresh_token", refresh_token=first.json["refresh_token"]
    )
    assert refresh.json["error"] == "invalid_grant"
    assert store.get_grant(vault.conn, 1).revoked_reason == "authorization code replayed"


def test_concurrent_redemption_exactly_one_wins(kit, vault) -> None:
    client_id, secret = kit.add_client()
    verifier, challenge = pkce()
    code = kit.code(client_id, challenge)
    # two apps: two workers, each with its own connection to the vault
    apps = [create_app(vault.settings, vault.keyring) for _ in range(2)]
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def redeem(i: int) -> None:
        http = apps[i].test_client()
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CB,
            "code_verifier": verifier,
        }
        barrier.wait()
        resp = http.post("/oauth/token", data=data, headers=basic(client_id, secret))
        results[i] = (resp.status_code, resp.json)

    threads = [threading.Thread(target=redeem, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a in apps:
        for v in a.extensions["pds_vaults"].values():
            v.close()
    statuses = sorted(r[0] for r in results)
    assert statuses == [200, 400]
    loser = next(r[1] for r in results if r[0] == 400)
    assert loser == {"error": "invalid_grant", "error_description": CODE_REPLAYED}
    assert vault.conn.execute("SELECT count(*) FROM tokens").fetchone()[0] == 1
    # the race is a replay: the winner's tokens are revoked too
    winner = next(r[1] for r in results if r[0] == 200)
    assert kit.http.get("/api/v1/grant", headers=bearer(winner["access_token"])).status_code == 401


def test_expired_code(kit, vault) -> None:
    client_id, secret = kit.add_client()
    verifier, challenge = pkce()
    code = kit.code(client_id, challenge)
    expires = vault.conn.execute("SELECT expires_at FROM authorization_codes").fetchone()[0]
    assert expires - clock.now() in (599, 600)
    vault.conn.execute("UPDATE authorization_codes SET expires_at = ?", (clock.now() - 1,))
    resp = kit.redeem(client_id, secret, code, verifier)
    assert resp.json == {"error": "invalid_grant", "error_description": CODE_EXPIRED}


def test_code_of_another_client(kit) -> None:
    a_id, _ = kit.add_client("A")
    b_id, b_secret = kit.add_client("B")
    verifier, challenge = pkce()
    code = kit.code(a_id, challenge)
    resp = kit.redeem(b_id, b_secret, code, verifier)
    assert resp.json == {"error": "invalid_grant", "error_description": CODE_INVALID}


def test_confidential_client_must_authenticate(kit) -> None:
    client_id, _ = kit.add_client()
    verifier, challenge = pkce()
    code = kit.code(client_id, challenge)
    resp = kit.redeem(client_id, None, code, verifier)
    assert (resp.status_code, resp.json["error"]) == (401, "invalid_client")
    wrong = kit.redeem(client_id, "not-the-secret", code, verifier)
    assert (wrong.status_code, wrong.json["error"]) == (401, "invalid_client")


def test_refresh_replay_revokes_the_grant(kit, vault) -> None:
    client_id, secret = kit.add_client()
    tok = kit.tokens(client_id, secret)
    new = kit.token(
        client_id, secret, grant_type="refresh_token", refresh_token=tok["refresh_token"]
    ).json
    replay = kit.token(
        client_id, secret, grant_type="refresh_token", refresh_token=tok["refresh_token"]
    )
    assert (replay.status_code, replay.json) == (
        400,
        {"error": "invalid_grant", "error_description": REFRESH_REPLAYED},
    )
    assert kit.http.get("/api/v1/grant", headers=bearer(new["access_token"])).status_code == 401
    after = kit.token(
        client_id, secret, grant_type="refresh_token", refresh_token=new["refresh_token"]
    )
    assert after.json == {"error": "invalid_grant", "error_description": REFRESH_INVALID}
    assert store.get_grant(vault.conn, 1).revoked_reason == "refresh token replayed"


def test_other_clients_refresh_token(kit) -> None:
    a_id, a_secret = kit.add_client("A")
    b_id, b_secret = kit.add_client("B")
    tok = kit.tokens(a_id, a_secret)
    resp = kit.token(b_id, b_secret, grant_type="refresh_token", refresh_token=tok["refresh_token"])
    assert resp.json == {"error": "invalid_grant", "error_description": REFRESH_INVALID}
    # A's grant is untouched
    ok = kit.token(a_id, a_secret, grant_type="refresh_token", refresh_token=tok["refresh_token"])
    assert ok.status_code == 200


def test_scope_widening_on_refresh(kit) -> None:
    client_id, secret = kit.add_client()
    tok = kit.tokens(client_id, secret, scope="read:transactions")
    resp = kit.token(
        client_id,
        secret,
        grant_type="refresh_token",
        refresh_token=tok["refresh_token"],
        scope="read:transactions read:health",
    )
    assert (resp.status_code, resp.json["error"]) == (400, "invalid_scope")


def test_scope_narrowing_on_refresh(kit) -> None:
    client_id, secret = kit.add_client()
    tok = kit.tokens(client_id, secret, scope="read:transactions write:transactions")
    resp = kit.token(
        client_id,
        secret,
        grant_type="refresh_token",
        refresh_token=tok["refresh_token"],
        scope="read:transactions",
    )
    assert resp.status_code == 200
    assert resp.json["scope"] == "read:transactions"
    assert [d["actions"] for d in resp.json["authorization_details"]] == [["read"]]


@pytest.mark.parametrize(
    ("issuer", "message"),
    [
        (
            "http://pds.example.org",
            "PDS_ISSUER 'http://pds.example.org' uses plain http on a host that is not loopback",
        ),
        (
            "https://pds.example.org/vault",
            "PDS_ISSUER 'https://pds.example.org/vault' must be an origin, without a path",
        ),
        ("ftp://127.0.0.1", "PDS_ISSUER 'ftp://127.0.0.1' is not an http(s) URL"),
    ],
)
def test_issuer_must_be_https_unless_loopback(vault, issuer, message) -> None:
    with pytest.raises(ConfigError) as err:
        create_app(vault.settings.with_overrides(issuer=issuer), vault.keyring)
    assert err.value.message == message


def test_issuer_accepted() -> None:
    assert check_issuer("https://pds.example.org/") == "https://pds.example.org"
    assert check_issuer("http://[::1]:8000") == "http://[::1]:8000"
    assert check_issuer("http://localhost:8000") == "http://localhost:8000"
