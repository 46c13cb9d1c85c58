"""Change propagation: subscriptions, signed webhooks to a real receiver, retries, the feed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pds import clock
from pds.oauth import admin
from pds.profile import intentions, profile
from pds.webhooks import delivery
from pds.webhooks import propagation as prop
from tests.http.api.test_records import problem
from tests.oauth_kit import bearer

HOME = [{"lines": ["1 Old Road"], "locality": "Leeds", "postcode": "LS1 1AA", "country": "GB"}]
NEW_HOME = [{"lines": ["9 New Street"], "locality": "York", "postcode": "YO1 7HH", "country": "GB"}]


@pytest.fixture
def settings(settings):
    """These tests' receivers listen on 127.0.0.1: the owner's setting lets webhooks go there."""
    return settings.with_overrides(webhooks_allow_private=True)


def profile_grant(fields: list[str] | None = None, categories=("profile",)) -> str:
    item: dict[str, Any] = {
        "type": "pds_records",
        "actions": ["read"],
        "categories": list(categories),
        "purpose": "dpv:ServiceProvision",
    }
    if fields is not None:
        item["fields"] = fields
    return json.dumps([item])


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records what it gets and answers ``statuses``."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.statuses = list(statuses or [])
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.got.append((dict(self.headers), body))
                self.send_response(outer.statuses.pop(0) if outer.statuses else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def business(kit, name: str, details: str) -> str:
    client_id, secret = kit.add_client(name)
    return kit.tokens(client_id, secret, scope=None, authorization_details=details)["access_token"]


def subscribe(kit, token: str, url: str, categories=("profile",)) -> dict[str, Any]:
    resp = kit.http.post(
        "/api/v1/subscriptions",
        json={"url": url, "categories": list(categories)},
        headers=bearer(token),
    )
    assert resp.status_code == 201, resp.text
    return resp.json


def test_an_address_change_reaches_only_the_business_that_may_see_it(kit, receiver) -> None:
    vault = kit.vault
    profile.save(vault, {"name": "Ada Lovelace", "addresses": HOME, "email": "ada@example.org"})
    # told long before any business was let in: no grant sees that change in its feed
    vault.conn.execute("UPDATE profile_changes SET at = '2025-01-01T00:00:00Z'")
    energy = business(kit, "Acme Energy", profile_grant(["name", "addresses"]))
    shop = business(kit, "Bolt Shop", profile_grant(["name", "email"]))
    sub = subscribe(kit, energy, receiver.url)
    assert sub["url"] == receiver.url
    assert sub["categories"] == ["profile"]
    assert sub["secret"].startswith("whsec_")
    other = Receiver()
    try:
        subscribe(kit, shop, other.url)
        profile.set_field(vault, "addresses", NEW_HOME)
        assert delivery.run_once(vault) == {"delivered": 1, "failed": 0, "dropped": 0}
        assert other.got == []  # its grant lacks the address: it hears nothing
    finally:
        other.close()
    assert len(receiver.got) == 1
    headers, body = receiver.got[0]
    assert prop.verify(sub["secret"], headers, body)
    note = json.loads(body)
    assert note == {
        "seq": note["seq"],
        "category": "profile",
        "fields": ["addresses"],
        "at": note["at"],
    }
    assert headers["Webhook-Id"] == f"{sub['id']}.{note['seq']}"
    # the business fetches the change with its own token, through its grant
    page = kit.http.get("/api/v1/records?category=profile", headers=bearer(energy)).json
    assert [r["payload"] for r in page["records"]] == [
        {"name": "Ada Lovelace", "addresses": profile.current(vault)["addresses"]}
    ]
    assert page["records"][0]["payload"]["addresses"][0]["lines"] == ["9 New Street"]
    # the change feed: the same change for one, nothing for the other
    feed = kit.http.get("/api/v1/changes?since=0", headers=bearer(energy)).json
    assert feed == {"changes": [note], "next_since": note["seq"]}
    empty = kit.http.get("/api/v1/changes?since=0", headers=bearer(shop)).json
    assert empty == {"changes": [], "next_since": 0}
    entries = [json.loads(r[0]) for r in vault.conn.execute("SELECT entry FROM audit_log")]
    sent = [e for e in entries if e["action"] == "webhook.deliver"]
    assert len(sent) == 1
    assert sent[0]["decision"] == "allowed"
    assert sent[0]["category"] == "profile"
    assert "9 New Street" not in json.dumps(entries)  # never a value in the log


def test_a_failed_delivery_is_retried_with_back_off(kit) -> None:
    r = Receiver(statuses=[500])
    try:
        token = business(kit, "Acme Energy", profile_grant())
        sub = subscribe(kit, token, r.url)
        profile.set_field(kit.vault, "name", "Ada")
        t0 = clock.now()
        assert delivery.run_once(kit.vault, now=t0) == {"delivered": 0, "failed": 1, "dropped": 0}
        assert delivery.run_once(kit.vault, now=t0 + 29)["delivered"] == 0  # not yet due
        assert delivery.run_once(kit.vault, now=t0 + 30)["delivered"] == 1
        log = delivery.log_rows(kit.vault)
        assert [(x["attempt"], x["status"], x["last_error"]) for x in log] == [
            (2, "delivered", None),
            (1, "failed", "HTTP 500"),
        ]
        assert log[0]["next_attempt_at"] == clock.iso(t0 + 30)
        assert len(r.got) == 2
        assert r.got[0][0]["Webhook-Id"] == r.got[1][0]["Webhook-Id"]
        assert [h["Webhook-Timestamp"] for h, _ in r.got] == [str(t0), str(t0 + 30)]
        assert all(prop.verify(sub["secret"], h, b) for h, b in r.got)
    finally:
        r.close()


def test_delivery_gives_up_after_the_last_attempt(kit) -> None:
    token = business(kit, "Acme Energy", profile_grant())
    subscribe(kit, token, "https://hooks.example/pds")
    profile.set_field(kit.vault, "name", "Ada")
    calls: list[str] = []

    def refuse(url: str, headers: dict[str, str], body: bytes) -> tuple[int | None, str | None]:
        calls.append(url)
        return None, "not delivered: connection refused"

    at = clock.now()
    for wait in (0, *prop.BACKOFF):
        at += wait
        delivery.run_once(kit.vault, now=at, send=refuse)
    assert len(calls) == prop.MAX_ATTEMPTS == 6
    statuses = [x["status"] for x in delivery.log_rows(kit.vault)]
    assert statuses == ["gave_up"] + ["failed"] * 5
    assert delivery.run_once(kit.vault, now=at + 10**6, send=refuse)["failed"] == 0


def test_a_revoked_grant_gets_no_delivery(kit, receiver) -> None:
    token = business(kit, "Acme Energy", profile_grant())
    subscribe(kit, token, receiver.url)
    profile.set_field(kit.vault, "name", "Ada")  # queued while the grant was live
    grant_id = kit.vault.conn.execute("SELECT max(id) FROM grants").fetchone()[0]
    admin.revoke_grant(kit.vault, grant_id)
    assert delivery.run_once(kit.vault) == {"delivered": 0, "failed": 0, "dropped": 1}
    profile.set_field(kit.vault, "name", "Ada L.")  # after: nothing is even queued
    assert delivery.run_once(kit.vault) == {"delivered": 0, "failed": 0, "dropped": 0}
    assert receiver.got == []
    assert [x["status"] for x in delivery.log_rows(kit.vault)] == ["dropped"]
    assert kit.audit_actions()[-4:] == [
        ("profile.update", "allowed"),
        ("grant.revoke", "allowed"),
        ("webhook.drop", "dropped"),
        ("profile.update", "allowed"),
    ]


def test_the_signature_matches_the_standard_webhooks_test_vector() -> None:
    # the published Standard Webhooks vector: receivers' libraries verify what pds sends
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    headers = {
        "Webhook-Id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "Webhook-Timestamp": "1614265330",
        "Webhook-Signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    key = bytes.fromhex("31f290f6bf06298aab4f08d43c3f082cf648a362da2da4b0")  # the secret's bytes
    assert prop.sign(key, headers["Webhook-Id"], 1614265330, body) == headers["Webhook-Signature"]
    assert prop.verify(secret, headers, body)
    assert not prop.verify(secret, headers, body.replace(b"2432", b"2433"))
    assert not prop.verify(secret, {**headers, "Webhook-Timestamp": "1614265331"}, body)
    assert not prop.verify(secret, {**headers, "Webhook-Signature": "v1,AAAA"}, body)


@pytest.mark.parametrize(
    ("body", "status", "code", "detail"),
    [
        (
            {"url": "ftp://hooks.example/x", "categories": ["profile"]},
            422,
            "validation_error",
            "url must be an absolute https URL",
        ),
        (
            {"url": "http://hooks.example/x", "categories": ["profile"]},
            422,
            "validation_error",
            "url must use https",
        ),
        (
            {"url": "https://me:pw@hooks.example/x", "categories": ["profile"]},
            422,
            "validation_error",
            "url must not contain a user name or password",
        ),
        (
            {"url": "https://hooks.example/x", "categories": ["bananas"]},
            422,
            "validation_error",
            "categories.0: 'bananas' is not a category of the vocabulary",
        ),
        (
            {"url": "https://hooks.example/x", "categories": ["intentions"]},
            403,
            "insufficient_scope",
            "the grant does not allow reading intentions",
        ),
        (
            {"categories": ["profile"]},
            422,
            "validation_error",
            "url: Missing data for required field.",
        ),
        (["https://hooks.example/x"], 400, "bad_request", "the body must be a JSON object"),
        (
            {"url": "https://hooks.example/\x00", "categories": ["profile"]},
            422,
            "validation_error",
            "url: contains the control character U+0000 at character 23; remove it (tab, "
            "line feed and carriage return are allowed)",
        ),
        (
            {"url": "https://hooks.example/\ud800", "categories": ["profile"]},
            422,
            "validation_error",
            "url: contains a lone surrogate U+D800 at character 23, which is not text; send "
            "the character it was part of, or remove it",
        ),
    ],
)
def test_bad_subscriptions_are_refused(kit, body, status, code, detail) -> None:
    token = business(kit, "Acme Energy", profile_grant())
    resp = kit.http.post("/api/v1/subscriptions", json=body, headers=bearer(token))
    problem(resp, status, code, detail)
    assert kit.audit_actions()[-1] == ("api.subscriptions.create", "refused")
    assert kit.vault.conn.execute("SELECT count(*) FROM subscriptions").fetchone()[0] == 0


def test_list_and_delete_own_subscriptions_only(kit) -> None:
    mine = business(kit, "Acme Energy", profile_grant())
    theirs = business(kit, "Bolt Shop", profile_grant())
    sub = subscribe(kit, mine, "https://hooks.example/a")
    listed = kit.http.get("/api/v1/subscriptions", headers=bearer(mine)).json
    assert listed == {
        "subscriptions": [{k: sub[k] for k in ("id", "url", "categories", "created_at")}]
    }
    assert "secret" not in json.dumps(listed)
    assert kit.http.get("/api/v1/subscriptions", headers=bearer(theirs)).json == {
        "subscriptions": []
    }
    gone = kit.http.delete(f"/api/v1/subscriptions/{sub['id']}", headers=bearer(theirs))
    problem(gone, 404, "not_found", "there is no subscription with this id for your grant")
    assert (
        kit.http.delete(f"/api/v1/subscriptions/{sub['id']}", headers=bearer(mine)).status_code
        == 204
    )
    again = kit.http.delete(f"/api/v1/subscriptions/{sub['id']}", headers=bearer(mine))
    problem(again, 404, "not_found", "there is no subscription with this id for your grant")
    row = kit.vault.conn.execute("SELECT salt FROM subscriptions").fetchone()
    assert sub["secret"].removeprefix("whsec_").encode() not in row[0]  # only a salt is kept


def test_change_feed_paging_and_bad_since(kit) -> None:
    token = business(kit, "Acme Energy", profile_grant(["name", "phone"]))
    for name in ("A", "B", "C"):
        profile.set_field(kit.vault, "name", name)
    profile.set_field(kit.vault, "email", "a@example.org")  # not in the grant: not listed
    first = kit.http.get("/api/v1/changes?since=0&limit=2", headers=bearer(token)).json
    assert [c["fields"] for c in first["changes"]] == [["name"], ["name"]]
    rest = kit.http.get(f"/api/v1/changes?since={first['next_since']}", headers=bearer(token)).json
    assert [c["fields"] for c in rest["changes"]] == [["name"]]
    bad = kit.http.get("/api/v1/changes?since=-1", headers=bearer(token))
    problem(bad, 400, "bad_request", "since must be a whole number from 0 to 9223372036854775807")
    no = business(
        kit,
        "Coal Bank",
        json.dumps([{"type": "pds_records", "actions": ["read"], "categories": ["transactions"]}]),
    )
    refused = kit.http.get("/api/v1/changes?since=0", headers=bearer(no))
    problem(
        refused, 403, "insufficient_scope", "the grant does not allow reading profile or intentions"
    )


def test_intentions_notify_and_expire(kit, receiver) -> None:
    token = business(kit, "Acme Energy", profile_grant(categories=("intentions",)))
    sub = subscribe(kit, token, receiver.url, categories=("intentions",))
    rid, created = intentions.add(
        kit.vault, {"text": "New energy tariff", "kind": "switch", "expires_at": "2099-12-31"}
    )
    assert created
    delivery.run_once(kit.vault)
    assert [json.loads(b)["fields"] for _, b in receiver.got] == [list(intentions.FIELDS)]
    assert prop.verify(sub["secret"], *receiver.got[0])
    page = kit.http.get("/api/v1/records?category=intentions", headers=bearer(token)).json
    assert [r["id"] for r in page["records"]] == [rid]
    # its last day passes: it is removed before the next read, never served again
    kit.vault.conn.execute("UPDATE intention_expiry SET expires_at = '2000-01-01'")
    page = kit.http.get("/api/v1/records?category=intentions", headers=bearer(token)).json
    assert page["records"] == []
    assert kit.http.get(f"/api/v1/records/{rid}", headers=bearer(token)).status_code == 404
    assert ("intentions.expire", "allowed") in kit.audit_actions()
    assert kit.vault.conn.execute("SELECT count(*) FROM intention_expiry").fetchone()[0] == 0


def test_fields_the_policies_withhold_are_never_announced(kit, receiver) -> None:
    with kit.app.app_context():
        from pds.http.context import current_policies

        current_policies().check_every = 0  # the server sees the new rule at once
    token = business(kit, "Acme Energy", profile_grant())
    sub = subscribe(kit, token, receiver.url)
    rules = kit.vault.settings.home / "policies"
    rules.mkdir()
    (rules / "mine.toml").write_text(
        '[[rule]]\nid = "no-phone"\nkind = "redact-fields"\ncategory = "profile"\n'
        'fields = ["phone"]\n'
    )
    profile.save(kit.vault, {"name": "Ada", "phone": "+447700900123"})
    profile.set_field(kit.vault, "phone", "+447700900124")  # only a withheld field
    assert delivery.run_once(kit.vault) == {"delivered": 1, "failed": 0, "dropped": 1}
    assert [json.loads(b)["fields"] for _, b in receiver.got] == [["name"]]
    assert prop.verify(sub["secret"], *receiver.got[0])
    feed = kit.http.get("/api/v1/changes?since=0", headers=bearer(token)).json
    assert [c["fields"] for c in feed["changes"]] == [["name"]]
