"""Failed requests at the token, revocation and introspection endpoints are throttled per
client id and per address, across workers (pds.http.throttle, pds.http.limits)."""

from __future__ import annotations

import base64

import pytest

from pds.db.counters import Counters
from pds.http.app import create_app
from tests.oauth_kit import basic, bearer, seed

T0 = 1_700_000_000.0
OTHER = "10.0.0.2"


def clocked(*apps) -> list[float]:
    now = [T0]
    for app in apps:
        for name in ("pds_client_failure_limit", "pds_address_failure_limit"):
            app.extensions[name].clock = lambda: now[0]
    return now


def throttled(seconds: int, whom: str) -> dict[str, str]:
    return {
        "error": "invalid_request",
        "error_description": f"too many failed requests {whom}; try again in {seconds} "
        + ("second" if seconds == 1 else "seconds"),
    }


def client_from(app, remote: str):
    http = app.test_client()
    http.environ_base["REMOTE_ADDR"] = remote
    return http


def refresh(http, client_id: str, secret: str, refresh_token: str):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return http.post("/oauth/token", data=data, headers=basic(client_id, secret))


def log_size(vault) -> int:
    return vault.conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]


@pytest.fixture
def issued(kit, vault) -> tuple[str, str, dict]:
    seed(vault)
    client_id, secret = kit.add_client()
    return client_id, secret, kit.tokens(client_id, secret)


def test_the_eleventh_failure_of_a_client_is_refused_with_retry_after(kit, app, vault, issued):
    client_id, secret, tokens = issued
    now = clocked(app)
    for n in range(10):
        wrong = refresh(kit.http, client_id, f"wrong secret {n}", tokens["refresh_token"])
        assert (wrong.status_code, wrong.json["error"]) == (401, "invalid_client")
    before = log_size(vault)
    over = refresh(kit.http, client_id, "wrong secret 10", tokens["refresh_token"])
    assert over.status_code == 429
    assert over.json == throttled(60, "for this client")
    assert over.headers["Retry-After"] == "60"
    assert over.headers["Cache-Control"] == "no-store"
    assert over.headers["Pragma"] == "no-cache"
    assert over.headers["Content-Type"] == "application/json"
    # the right secret is refused too (a 429 never says a guess was right), and nothing written
    now[0] += 44.5
    right = refresh(kit.http, client_id, secret, tokens["refresh_token"])
    assert (right.status_code, right.json) == (429, throttled(16, "for this client"))
    assert right.headers["Retry-After"] == "16"
    # from another address too: the client's count is the client's
    elsewhere = refresh(client_from(app, OTHER), client_id, secret, tokens["refresh_token"])
    assert (elsewhere.status_code, elsewhere.headers["Retry-After"]) == (429, "16")
    now[0] += 15
    last = refresh(kit.http, client_id, secret, tokens["refresh_token"])
    assert last.json["error_description"] == "too many failed requests for this client; " + (
        "try again in 1 second"
    )
    now[0] -= 15
    assert log_size(vault) == before
    # when the window that filled has ended, the right secret works again
    now[0] = T0 + 60
    ok = refresh(kit.http, client_id, secret, tokens["refresh_token"])
    assert ok.status_code == 200, ok.text
    assert log_size(vault) == before + 1  # token.refresh


def test_successful_requests_are_never_counted(kit, app, issued):
    client_id, secret, tokens = issued
    clocked(app)
    token = tokens["refresh_token"]
    for _ in range(25):  # more than either limit
        fresh = refresh(kit.http, client_id, secret, token)
        assert fresh.status_code == 200, fresh.text
        token = fresh.json["refresh_token"]
        seen = kit.http.post(
            "/oauth/introspect", data={"token": token}, headers=basic(client_id, secret)
        )
        assert (seen.status_code, seen.json["active"]) == (200, True)
    # unknown tokens at revocation and introspection are answered 200 (RFC 7009, 7662)
    for endpoint in ("/oauth/revoke", "/oauth/introspect"):
        for _ in range(12):
            unknown = kit.http.post(endpoint, data={"token": "x"}, headers=basic(client_id, secret))
            assert unknown.status_code == 200
    codes = [refresh(kit.http, client_id, "wrong", token).status_code for _ in range(11)]
    assert codes == [401] * 10 + [429]


def test_every_kind_of_failure_at_every_endpoint_counts(kit, app, issued):
    client_id, secret, tokens = issued
    clocked(app)
    form = {"token": tokens["access_token"]}
    failures = [
        # a bad code, a bad refresh token, an unsupported grant type, a missing parameter
        kit.token(client_id, secret, grant_type="authorization_code", code="x", code_verifier="v"),
        refresh(kit.http, client_id, secret, "not a refresh token"),
        kit.token(client_id, secret, grant_type="password", username="u", password="p"),
        kit.token(client_id, secret, grant_type="refresh_token"),
        # wrong client secrets at revocation and introspection, in Basic and in the form
        kit.http.post("/oauth/revoke", data=form, headers=basic(client_id, "wrong")),
        kit.http.post("/oauth/introspect", data=form, headers=basic(client_id, "wrong")),
        kit.http.post(
            "/oauth/introspect",
            data={**form, "client_id": client_id, "client_secret": "wrong"},
        ),
        kit.http.post(
            "/oauth/revoke", data={**form, "client_id": client_id, "client_secret": "wrong"}
        ),
        refresh(kit.http, client_id, "wrong", tokens["refresh_token"]),
        kit.redeem(client_id, secret, "y", "verifier"),
    ]
    assert [(r.status_code, r.json["error"]) for r in failures] == [
        (400, "invalid_grant"),
        (400, "invalid_grant"),
        (400, "unsupported_grant_type"),
        (400, "invalid_request"),
        (401, "invalid_client"),
        (401, "invalid_client"),
        (401, "invalid_client"),
        (401, "invalid_client"),
        (401, "invalid_client"),
        (400, "invalid_grant"),
    ]
    for endpoint in ("/oauth/introspect", "/oauth/revoke", "/oauth/token"):
        over = kit.http.post(endpoint, data=form, headers=basic(client_id, secret))
        assert (over.status_code, over.json) == (429, throttled(60, "for this client"))
    # the token is still alive: the refused revocation did nothing
    assert kit.http.get("/api/v1/grant", headers=bearer(tokens["access_token"])).status_code == 200


def test_clients_and_addresses_are_counted_independently(kit, app, vault, issued):
    client_id, secret, tokens = issued
    now = clocked(app)
    guesses = ["pds-guess-a", "pds-guess-b", "pds-guess-c"]
    # 20 failures from one address, spread over three client ids (none reaches 10)
    for n in range(20):
        resp = refresh(kit.http, guesses[n % 3], "s", "r")
        assert resp.status_code == 401
    over = refresh(kit.http, "pds-guess-d", "s", "r")
    assert (over.status_code, over.json) == (429, throttled(60, "from this address"))
    assert over.headers["Retry-After"] == "60"
    # a request naming no client at all is refused from that address as well
    bare = kit.http.post("/oauth/token", data={"grant_type": "refresh_token"})
    assert (bare.status_code, bare.json) == (429, throttled(60, "from this address"))
    # the same client ids from another address: their own counts (7, 7, 6) are under 10
    other = client_from(app, OTHER)
    assert [refresh(other, g, "s", "r").status_code for g in guesses] == [401] * 3
    # ... and the real client from the other address is untouched
    now[0] += 30
    ok = refresh(other, client_id, secret, tokens["refresh_token"])
    assert ok.status_code == 200, ok.text
    # one client id failing from ten addresses is refused at the eleventh, from anywhere
    target = "pds-guess-a"  # 7 + 1 failures so far
    for n in range(2):
        assert refresh(client_from(app, f"192.0.2.{n}"), target, "s", "r").status_code == 401
    refused = refresh(client_from(app, "192.0.2.99"), target, "s", "r")
    assert (refused.status_code, refused.json) == (429, throttled(30, "for this client"))
    # when both are used up, the longer wait is named (on a tie, the client)
    now[0] += 1
    both = refresh(kit.http, target, "s", "r")
    assert (both.status_code, both.headers["Retry-After"]) == (429, "29")
    assert both.json == throttled(29, "for this client")
    # a client whose window opened later outlasts the address's
    late = "pds-guess-late"
    for n in range(10):
        assert refresh(client_from(app, f"198.51.100.{n}"), late, "s", "r").status_code == 401
    later = refresh(kit.http, late, "s", "r")
    assert (later.status_code, later.json) == (429, throttled(60, "for this client"))
    now[0] = T0 + 60  # the address's window has ended, the late client's has not
    assert refresh(kit.http, target, "s", "r").status_code == 401
    assert refresh(kit.http, late, "s", "r").json == throttled(31, "for this client")


def test_credentials_that_are_not_utf8_are_refused_and_counted(kit, app) -> None:
    clocked(app)
    raw = base64.b64encode(b"\xff\xfe:secret").decode()
    form = {"grant_type": "refresh_token", "refresh_token": "r"}
    codes = []
    for _ in range(21):
        resp = kit.http.post("/oauth/token", data=form, headers={"Authorization": f"Basic {raw}"})
        codes.append(resp.status_code)
        if resp.status_code == 401:
            assert resp.json == {
                "error": "invalid_client",
                "error_description": "The HTTP Basic credentials are not UTF-8; "
                "send the client id and secret as issued.",
            }
            assert resp.headers["WWW-Authenticate"] == 'Basic error="invalid_client"'
    assert codes == [401] * 20 + [429]


def test_the_counts_are_shared_by_two_app_instances(kit, app, vault, issued):
    """Two workers (here two apps on one vault) share one allowance, not one each."""
    client_id, secret, tokens = issued
    second = create_app(vault.settings, vault.keyring)
    try:
        clocked(app, second)
        apps = [kit.http, second.test_client()]
        for n in range(10):
            resp = refresh(apps[n % 2], client_id, "wrong", tokens["refresh_token"])
            assert resp.status_code == 401
        for http in apps:
            over = refresh(http, client_id, secret, tokens["refresh_token"])
            assert (over.status_code, over.json) == (429, throttled(60, "for this client"))
    finally:
        second.extensions["pds_counters"].close()
        for v in second.extensions["pds_vaults"].values():
            v.close()


def test_successes_only_read_the_counters(kit, app, issued, monkeypatch):
    """A successful token request reads the counters and never writes them; a valid-token
    API read does not touch them at all."""
    client_id, secret, tokens = issued

    def no_writes(self):
        raise AssertionError("a successful request wrote the counters")

    monkeypatch.setattr(Counters, "writing", no_writes)
    fresh = refresh(kit.http, client_id, secret, tokens["refresh_token"])
    assert fresh.status_code == 200, fresh.text
    seen = kit.http.post("/oauth/introspect", data={"token": "x"}, headers=basic(client_id, secret))
    assert seen.status_code == 200
    monkeypatch.setattr(Counters, "reading", no_writes)
    api = kit.http.get(
        "/api/v1/records?category=transactions", headers=bearer(fresh.json["access_token"])
    )
    assert api.status_code == 200, api.text
    assert len(api.json["records"]) == 6
