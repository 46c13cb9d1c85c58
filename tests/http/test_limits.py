"""Callers without credentials cannot make the vault write without limit (pds.http.limits)."""

from __future__ import annotations

import json
import re

import pytest

from pds.db.counters import Counters
from pds.http import limits
from pds.http.app import create_app
from pds.http.limits import LoginThrottle, RateLimiter
from tests.conftest import PASSPHRASE
from tests.oauth_kit import CB, bearer, csrf, seed

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
BAD = bearer("x" * 43)
RECORDS = "/api/v1/records?category=transactions"
THROTTLED_REASON = (
    "more than 30 calls without a valid access token from one address in 60 seconds; "
    "further ones from it are refused (429) and not logged until 2023-11-14T22:14:20Z"
)


def clocked(app, extension: str) -> list[float]:
    now = [T0]
    app.extensions[extension].clock = lambda: now[0]
    return now


def entries(vault) -> list[dict]:
    rows = vault.conn.execute("SELECT entry FROM audit_log ORDER BY idx").fetchall()
    return [json.loads(r[0]) for r in rows]


def clients(vault) -> int:
    return vault.conn.execute("SELECT COUNT(*) FROM clients").fetchone()[0]


def register(http, name: str, uris: list[str] | None = None):
    return http.post("/oauth/register", json={"client_name": name, "redirect_uris": uris or [CB]})


@pytest.fixture
def token(kit, vault) -> str:
    seed(vault)
    client_id, secret = kit.add_client()
    return kit.tokens(client_id, secret)["access_token"]


# -- the limiter ----------------------------------------------------------------------------


def test_limiter_counts_within_a_fixed_window() -> None:
    now = [100.0]
    limiter = RateLimiter(2, 60, clock=lambda: now[0])
    first, second, third = (limiter.hit("a") for _ in range(3))
    assert [h.count for h in (first, second, third)] == [1, 2, 3]
    assert [h.allowed for h in (first, second, third)] == [True, True, False]
    assert [h.first_over for h in (first, second, third)] == [False, False, True]
    assert (third.ends_at, third.retry_after) == (160.0, 60)
    assert limiter.hit("b").count == 1  # another key has its own window
    now[0] = 159.2
    fourth = limiter.hit("a")
    assert (fourth.count, fourth.allowed, fourth.first_over, fourth.retry_after) == (
        4,
        False,
        False,
        1,
    )
    now[0] = 160.0  # the window has ended: a new one opens at this hit
    fresh = limiter.hit("a")
    assert (fresh.count, fresh.allowed, fresh.ends_at, fresh.retry_after) == (1, True, 220.0, 60)


def test_limiter_window_end_and_release() -> None:
    now = [T0 + 0.4]
    limiter = RateLimiter(1, 60, clock=lambda: now[0])
    assert limiter.hit("a").ends_iso() == "2023-11-14T22:14:21Z"  # rounded up, never early
    limiter.release("a")
    assert limiter.hit("a").allowed  # the released hit does not count
    limiter.release("nobody")  # nothing to give back: no error, nothing remembered
    assert limiter.tracked() == 1
    now[0] -= 30  # the clock went back: the window closes early rather than run long
    assert limiter.hit("a").ends_at == T0 + 0.4 - 30 + 60


def test_limiter_forgets_the_oldest_addresses_beyond_its_cap() -> None:
    now = [0.0]
    limiter = RateLimiter(1, 60, clock=lambda: now[0], max_tracked=3)
    for key in ("a", "b", "c"):
        limiter.hit(key)
        now[0] += 1
    assert limiter.hit("a").count == 2  # an open window stays where it is
    limiter.hit("d")
    assert limiter.tracked() == 3
    assert limiter.hit("a").count == 1  # "a" opened first, so it was forgotten
    assert limiter.hit("c").count == 2
    assert RateLimiter.MAX_TRACKED == 4096


def test_limits_are_registered_per_app_with_the_documented_constants(app, vault) -> None:
    found = {
        name: (app.extensions[name].limit, app.extensions[name].window, app.extensions[name].scope)
        for name in (
            "pds_registration_limit",
            "pds_anonymous_refusal_limit",
            "pds_client_failure_limit",
            "pds_address_failure_limit",
        )
    }
    assert found == {
        "pds_registration_limit": (10, 3600, "registration"),
        "pds_anonymous_refusal_limit": (30, 60, "anonymous"),
        "pds_client_failure_limit": (10, 60, "client-failure"),
        "pds_address_failure_limit": (20, 60, "address-failure"),
    }
    assert (limits.REGISTRATIONS_PER_WINDOW, limits.REGISTRATION_WINDOW) == (10, 3600)
    assert (limits.ANONYMOUS_REFUSALS_PER_WINDOW, limits.ANONYMOUS_REFUSAL_WINDOW) == (30, 60)
    assert (limits.CLIENT_FAILURES_PER_WINDOW, limits.ADDRESS_FAILURES_PER_WINDOW) == (10, 20)
    assert (limits.FAILURE_WINDOW, limits.FORGET_FAILURES_AFTER) == (60, 86400)
    assert (limits.FREE_FAILURES, limits.MAX_BLOCK) == (3, 300.0)
    # all of them, and the login back-off, count in one file beside the vault
    counters = app.extensions["pds_counters"]
    assert counters.path == vault.settings.home / "limits.db"
    assert app.extensions["pds_login_throttle"].counters is counters
    assert {app.extensions[name].counters for name in found} == {counters}


# -- dynamic registration -------------------------------------------------------------------


def test_eleventh_registration_from_an_address_is_refused_without_a_write(kit, app, vault) -> None:
    now = clocked(app, "pds_registration_limit")
    for n in range(10):
        assert register(kit.http, f"Spam {n}").status_code == 201
    before_clients, before_log = clients(vault), len(entries(vault))
    assert before_clients == 10
    now[0] += 600
    refused = register(kit.http, "Spam 10")
    assert refused.status_code == 429
    assert refused.json == {
        "error": "temporarily_unavailable",
        "error_description": "too many registrations from this address; try again in 3000 seconds",
    }
    assert refused.headers["Retry-After"] == "3000"
    assert refused.headers["Cache-Control"] == "no-store"
    assert refused.headers["Content-Type"] == "application/json"
    assert (clients(vault), len(entries(vault))) == (before_clients, before_log)
    # over the limit even a malformed body gets the 429, not a metadata error
    assert register(kit.http, "Spam", ["http://evil.example/cb"]).status_code == 429
    # another address is not affected
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.0.0.2"
    assert register(other, "Someone else").status_code == 201
    # when the window has passed, the first address may register again
    now[0] = T0 + 3600
    again = register(kit.http, "Spam 11")
    assert again.status_code == 201, again.text
    assert clients(vault) == 12
    assert [e["action"] for e in entries(vault)].count("client.register") == 12


def test_refused_registrations_do_not_use_up_the_limit(kit, app, vault) -> None:
    clocked(app, "pds_registration_limit")
    for n in range(15):
        bad = register(kit.http, f"Bad {n}", ["http://evil.example/cb"])
        assert (bad.status_code, bad.json["error"]) == (400, "invalid_client_metadata")
    assert [register(kit.http, f"Good {n}").status_code for n in range(11)] == [201] * 10 + [429]
    assert clients(vault) == 10


# -- API calls without a valid token --------------------------------------------------------


def test_anonymous_refusals_are_logged_up_to_the_limit_then_throttled(
    kit, app, vault, token
) -> None:
    now = clocked(app, "pds_anonymous_refusal_limit")
    start = len(entries(vault))
    for _ in range(30):
        assert kit.http.get(RECORDS, headers=BAD).status_code == 401
    logged = entries(vault)[start:]
    assert len(logged) == 30
    assert {(e["action"], e["actor"], e["decision"]) for e in logged} == {
        ("api.records.read", "anonymous", "refused")
    }
    # the 31st: one entry saying so, and 429
    resp = kit.http.get(RECORDS, headers=BAD)
    assert resp.status_code == 429
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert resp.headers["Retry-After"] == "60"
    assert resp.json == {
        "type": "https://pds.invalid/problems/too_many_refusals",
        "title": "Too many refusals",
        "status": 429,
        "detail": "too many calls without a valid access token from this address; "
        "try again in 60 seconds",
        "hint": "Send a valid access token; calls with one are not affected.",
        "instance": "/api/v1/records",
    }
    log = entries(vault)
    assert len(log) == start + 31
    throttled = dict(log[-1])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", throttled.pop("time"))
    assert throttled == {
        "v": 1,
        "actor": "anonymous",
        "action": "api.refused.throttled",
        "decision": "refused",
        "reason": THROTTLED_REASON,
    }
    # the 32nd..40th: 429 and nothing written, whatever the kind of bad credential
    now[0] += 10
    kinds = [{"headers": BAD}, {}, {"headers": {"Authorization": "Basic eDp5"}}]
    for n in range(9):
        extra = kinds[n % 3]
        again = kit.http.get(RECORDS, **extra)
        assert (again.status_code, again.headers["Retry-After"]) == (429, "50")
    in_url = kit.http.get(RECORDS + "&access_token=" + token)
    assert in_url.status_code == 429
    assert len(entries(vault)) == start + 31
    # a valid token from the same address is never affected, and is logged
    ok = kit.http.get(RECORDS, headers=bearer(token))
    assert ok.status_code == 200, ok.text
    last = entries(vault)[-1]
    assert (last["action"], last["decision"], last["actor"]) == (
        "api.records.read",
        "allowed",
        f"client:{last['client']}",
    )
    # nor is a valid token's refusal (its grant decides): still 403 and logged
    scope = kit.http.get("/api/v1/records?category=health", headers=bearer(token))
    assert scope.status_code == 403
    assert (entries(vault)[-1]["action"], entries(vault)[-1]["decision"]) == (
        "api.records.read",
        "refused",
    )
    assert len(entries(vault)) == start + 33
    # another address is logged as before
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.0.0.2"
    assert other.get(RECORDS, headers=BAD).status_code == 401
    assert len(entries(vault)) == start + 34
    # after the window, bad tokens from the first address are logged again
    now[0] = T0 + 60
    back = kit.http.get(RECORDS, headers=BAD)
    assert back.status_code == 401
    assert back.json["detail"] == "the access token is unknown, expired or revoked"
    assert (entries(vault)[-1]["action"], entries(vault)[-1]["actor"]) == (
        "api.records.read",
        "anonymous",
    )
    assert len(entries(vault)) == start + 35


def test_auditor_api_refusals_share_the_limit(kit, app, vault) -> None:
    clocked(app, "pds_anonymous_refusal_limit")
    start = len(entries(vault))
    codes = [kit.http.get("/audit/key", headers=BAD).status_code for _ in range(32)]
    assert codes == [401] * 30 + [429] * 2
    assert [e["action"] for e in entries(vault)[start:]] == ["api.audit.key"] * 30 + [
        "api.refused.throttled"
    ]


# -- sign-in forms keep the owner's back-off ------------------------------------------------


def test_auditor_sign_in_refusals_are_bounded_by_the_login_back_off(kit, vault) -> None:
    page = kit.http.get("/auditor/login")
    form = {"access_token": "x" * 43, "csrf_token": csrf(page.text)}
    start = len(entries(vault))
    answers = [kit.http.post("/auditor/login", data=form) for _ in range(10)]
    assert [a.status_code for a in answers] == [401] * 3 + [429] * 7
    assert [a.headers.get("Retry-After") for a in answers[2:4]] == [None, "1"]
    logged = entries(vault)[start:]
    assert [(e["action"], e["decision"]) for e in logged] == [("auditor.signin", "refused")] * 3


def test_a_valid_tokens_scope_refusal_is_not_counted_as_anonymous(kit, app, vault, token) -> None:
    clocked(app, "pds_anonymous_refusal_limit")
    for _ in range(31):
        kit.http.get(RECORDS, headers=BAD)
    start = len(entries(vault))
    codes = [kit.http.get("/audit/key", headers=bearer(token)).status_code for _ in range(3)]
    assert codes == [403] * 3
    logged = entries(vault)[start:]
    assert [(e["action"], e["decision"], e["reason"]) for e in logged] == [
        ("api.audit.key", "refused", "insufficient_scope: the grant does not cover audit:read")
    ] * 3
    # the refusal names the client and grant that asked, not "anonymous"
    client = vault.conn.execute("SELECT client_id, id FROM grants").fetchone()
    assert {(e["actor"], e["client"], e["grant"]) for e in logged} == {
        (f"client:{client[0]}", client[0], str(client[1]))
    }


@pytest.mark.parametrize(
    ("remote", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),  # same /64: one allowance
        ("::ffff:203.0.113.7", "203.0.113.7"),  # IPv4-mapped: the IPv4 caller
        ("", "unknown"),
    ],
)
def test_callers_are_keyed_by_ipv4_address_or_ipv6_slash_64(app, remote: str, key: str) -> None:
    with app.test_request_context("/", environ_base={"REMOTE_ADDR": remote}):
        assert limits.address() == key


# -- counted across worker processes (pds.db.counters) -----------------------------------


@pytest.fixture
def second(app, vault):
    """Another worker: a second app on the same vault (its own connections and memory)."""
    other = create_app(vault.settings, vault.keyring)
    yield other
    other.extensions["pds_counters"].close()
    for v in other.extensions["pds_vaults"].values():
        v.close()


def login_attempts(http, passphrase: str, times: int) -> list:
    token = csrf(http.get("/login").text)
    form = {"passphrase": passphrase, "csrf_token": token}
    return [http.post("/login", data=form) for _ in range(times)]


def test_login_back_off_is_shared_by_two_app_instances(kit, app, second, vault) -> None:
    now = [T0]
    for a in (app, second):
        a.extensions["pds_login_throttle"].clock = lambda: now[0]
    other = second.test_client()
    assert [r.status_code for r in login_attempts(kit.http, "wrong", 2)] == [401, 401]
    assert [r.status_code for r in login_attempts(other, "wrong", 1)] == [401]
    # the third failure, in the other worker, started the back-off for both
    for http in (kit.http, other):
        (blocked,) = login_attempts(http, PASSPHRASE, 1)
        assert (blocked.status_code, blocked.headers["Retry-After"]) == (429, "1")
    now[0] += 1
    assert [r.status_code for r in login_attempts(other, "wrong", 1)] == [401]
    (blocked,) = login_attempts(kit.http, PASSPHRASE, 1)
    assert (blocked.status_code, blocked.headers["Retry-After"]) == (429, "2")
    now[0] += 2
    (ok,) = login_attempts(kit.http, PASSPHRASE, 1)
    assert ok.status_code == 303
    assert second.extensions["pds_login_throttle"].failures("127.0.0.1") == 0
    assert [e["action"] for e in entries(vault)].count("login.failed") == 4


def test_owner_login_back_off_is_keyed_by_address_or_ipv6_slash_64(kit, app) -> None:
    now = [T0]
    app.extensions["pds_login_throttle"].clock = lambda: now[0]
    codes = []
    for n in range(4):  # four addresses of one /64 are one caller
        http = app.test_client()
        http.environ_base["REMOTE_ADDR"] = f"2001:db8:1:2::{n + 1}"
        codes += [r.status_code for r in login_attempts(http, "wrong", 1)]
    assert codes == [401, 401, 401, 429]
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "2001:db8:1:3::1"
    assert [r.status_code for r in login_attempts(elsewhere, "wrong", 1)] == [401]


def test_registration_limit_is_shared_by_two_app_instances(kit, app, second, vault) -> None:
    clocked(app, "pds_registration_limit")
    clocked(second, "pds_registration_limit")
    other = second.test_client()
    codes = [register(kit.http if n % 2 else other, f"App {n}").status_code for n in range(10)]
    assert codes == [201] * 10
    for http in (kit.http, other):
        refused = register(http, "One too many")
        assert (refused.status_code, refused.headers["Retry-After"]) == (429, "3600")
    assert clients(vault) == 10


def test_counts_outlive_a_restart(kit, app, vault) -> None:
    clocked(app, "pds_registration_limit")
    assert [register(kit.http, f"App {n}").status_code for n in range(10)] == [201] * 10
    app.extensions["pds_counters"].close()
    restarted = create_app(vault.settings, vault.keyring)
    try:
        clocked(restarted, "pds_registration_limit")
        assert register(restarted.test_client(), "After").status_code == 429
    finally:
        restarted.extensions["pds_counters"].close()
        for v in restarted.extensions["pds_vaults"].values():
            v.close()


def test_the_counter_file_holds_no_address_or_client_id(kit, app, vault) -> None:
    remote = "203.0.113.77"
    http = app.test_client()
    http.environ_base["REMOTE_ADDR"] = remote
    login_attempts(http, "wrong", 1)
    http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": "r"},
        headers={"Authorization": "Basic " + "cGRzLXNlY3JldC1jbGllbnQ6cw=="},  # pds-secret-client
    )
    app.extensions["pds_counters"].close()  # checkpoint: everything in limits.db itself
    path = vault.settings.home / "limits.db"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    data = b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith("limits.db"))
    assert b"pds-secret-client" not in data
    for text in (remote, remote.replace(".", "")):
        assert text.encode() not in data
        assert text.encode("utf-16-le") not in data
    rows = Counters(path, b"k" * 32)
    with rows.reading() as conn:
        keys = conn.execute("SELECT key FROM windows UNION ALL SELECT key FROM backoff").fetchall()
    rows.close()
    assert [len(k[0]) for k in keys] == [16, 16, 16]  # client, address; login


def test_a_busy_counter_file_is_never_deleted(tmp_path, monkeypatch) -> None:
    """Only a file that is not SQLite is started again: a busy one (another process opening
    it at the same moment) is left alone, its counts kept, and the error goes up."""
    import sqlite3

    path = tmp_path / "limits.db"
    first = RateLimiter(5, 60, counters=Counters(path, b"k" * 32))
    assert first.hit("a").count == 1

    def busy(self, path):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(Counters, "_open_file", busy)
    second = RateLimiter(5, 60, counters=Counters(path, b"k" * 32))
    with pytest.raises(sqlite3.OperationalError, match="^database is locked$"):
        second.hit("a")
    monkeypatch.undo()
    assert path.exists()
    assert first.hit("a").count == 2
    first.counters.close()


def test_a_damaged_or_foreign_counter_file_is_started_again(tmp_path) -> None:
    path = tmp_path / "limits.db"
    path.write_bytes(b"this is not an SQLite file, but long enough to look at" * 40)
    damaged = RateLimiter(1, 60, counters=Counters(path, b"k" * 32))
    assert [damaged.hit("a").count for _ in range(2)] == [1, 2]
    damaged.counters.close()
    foreign = Counters(path, b"k" * 32)
    with foreign.reading() as conn:  # make it another version of the file
        conn.execute("PRAGMA user_version=99")
        conn.execute("CREATE TABLE leftover (x)")
    foreign.close()
    fresh = RateLimiter(1, 60, counters=Counters(path, b"k" * 32))
    assert fresh.hit("a").count == 1
    with fresh.counters.reading() as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert (sorted(tables), conn.execute("PRAGMA user_version").fetchone()[0]) == (
            ["backoff", "windows"],
            1,
        )
    fresh.counters.close()


def test_concurrent_hits_from_two_processes_are_each_counted_once(tmp_path) -> None:
    """Two connections (as two worker processes have) hitting one key at once: no count is
    lost or doubled, and exactly one hit is the first over the limit."""
    import threading

    path = tmp_path / "limits.db"
    limiters = [RateLimiter(150, 60, counters=Counters(path, b"k" * 32)) for _ in range(2)]
    hits: list[list] = [[], []]
    barrier = threading.Barrier(2)

    def run(i: int) -> None:
        barrier.wait()
        hits[i] = [limiters[i].hit("203.0.113.1") for _ in range(200)]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = sorted(h.count for h in hits[0] + hits[1])
    assert counts == list(range(1, 401))
    assert sum(h.first_over for h in hits[0] + hits[1]) == 1
    assert sum(h.allowed for h in hits[0] + hits[1]) == 150
    for limiter in limiters:
        limiter.counters.close()


def test_login_throttle_forgets_failures_a_day_after_the_last(tmp_path) -> None:
    now = [T0]
    throttle = LoginThrottle(clock=lambda: now[0])
    for _ in range(4):
        throttle.failed("a")
    assert (throttle.failures("a"), throttle.wait("a")) == (4, 2)
    now[0] += 86399
    throttle.failed("a")
    assert (throttle.failures("a"), throttle.wait("a")) == (5, 4)
    now[0] += 86400
    assert (throttle.failures("a"), throttle.wait("a")) == (0, 0)
    throttle.failed("a")
    assert (throttle.failures("a"), throttle.wait("a")) == (1, 0)
    throttle.succeeded("a")
    assert throttle.failures("a") == 0
