"""The records' change feed: imports, write-back, replacement and forgetting, as
``GET /api/v1/changes?cursor=`` and as ``records.*`` webhooks, cut to each grant."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from pds import clock
from pds.importer import import_file
from pds.profile import intentions, profile
from pds.webhooks import delivery
from pds.webhooks import propagation as prop
from tests.conftest import fixture
from tests.http.api.test_records import problem
from tests.oauth_kit import bearer
from tests.webhooks.test_propagation import Receiver, subscribe

ENERGY = "greenbutton/TestGBDataHourlyNineDaysBinnedDaily.xml"  # 216 hourly readings, 2014
MIDATA = "midata/nationwide-test-midata.csv"  # 8 transactions
SCHWAB = "bank-csv/schwab-checking-us.csv"  # 4 transactions, August 2022
BILL = {
    "category": "transactions",
    "occurred_at": "2024-07-01",
    "payload": {
        "date": "2024-07-01",
        "amount": "-42.00",
        "currency": "GBP",
        "description": "ENERGY BILL JULY",
    },
}


def token(kit, name: str, scope: str | None = None, **time_range: str) -> str:
    """A business's access token: ``scope``, or reading ``energy`` within ``time_range``."""
    client_id, secret = kit.add_client(name)
    if scope is not None:
        return kit.tokens(client_id, secret, scope=scope)["access_token"]
    item = {
        "type": "pds_records",
        "actions": ["read"],
        "categories": ["energy"],
        "time_range": time_range,
    }
    details = json.dumps([item])
    return kit.tokens(client_id, secret, scope=None, authorization_details=details)["access_token"]


def feed(kit, tok: str, query: str = "") -> dict[str, Any]:
    resp = kit.http.get(f"/api/v1/changes{query}", headers=bearer(tok))
    assert resp.status_code == 200, resp.text
    return resp.json


def entry(seq: int, kind: str, category: str, first: int, last: int, count: int) -> dict:
    return {
        "seq": seq,
        "at": clock.now_iso(),  # held still by at_now
        "kind": kind,
        "category": category,
        "first_id": first,
        "last_id": last,
        "count": count,
    }


def cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"changes:{seq}".encode()).rstrip(b"=").decode()


@pytest.fixture
def settings(settings):
    """The receivers listen on 127.0.0.1: the owner's setting lets webhooks go there."""
    return settings.with_overrides(webhooks_allow_private=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def at_now(monkeypatch) -> None:
    """Hold the clock at one second, so every ``at`` is known exactly."""
    now = clock.utcnow().replace(microsecond=0)
    monkeypatch.setattr(clock, "utcnow", lambda: now)
    monkeypatch.setattr(clock, "now", lambda: int(now.timestamp()))


def test_imports_write_back_and_forgetting_in_the_feed(kit, at_now) -> None:
    energy = token(kit, "Acme Energy", "read:energy")
    bank = token(kit, "Bolt Bank", "read:energy read:transactions write:transactions")
    assert import_file(kit.vault, fixture(ENERGY)).new == 216
    assert import_file(kit.vault, fixture(MIDATA)).new == 8
    assert import_file(kit.vault, fixture(ENERGY)).new == 0  # again: nothing new, no news
    made = kit.http.post("/api/v1/records", json=BILL, headers=bearer(bank))
    assert made.status_code == 201, made.text
    assert made.json["id"] == 225
    # the 2nd and the 100th record of the first file are energy, in its one entry
    for rid in (2, 100):
        got = kit.http.get(f"/api/v1/records/{rid}", headers=bearer(energy))
        assert got.json["category"] == "energy"
    assert feed(kit, energy) == {
        "changes": [entry(1, "added", "energy", 1, 216, 216)],
        "next_cursor": cursor(1),  # the transactions are not looked at
        "more": False,
    }
    both = feed(kit, bank)
    assert both == {
        "changes": [
            entry(1, "added", "energy", 1, 216, 216),
            entry(2, "added", "transactions", 217, 224, 8),
            entry(3, "added", "transactions", 225, 225, 1),
        ],
        "next_cursor": cursor(3),
        "more": False,
    }
    assert "ENERGY BILL" not in json.dumps(both)  # ids and counts, never a payload
    kit.vault.forget_category("energy")
    # the forgetting, read on from where each left off
    assert feed(kit, energy, f"?cursor={cursor(1)}") == {
        "changes": [entry(4, "forgotten", "energy", 1, 216, 216)],
        "next_cursor": cursor(4),
        "more": False,
    }
    # read from the start, the forgotten category's history has gone with it
    assert [c["seq"] for c in feed(kit, bank)["changes"]] == [2, 3, 4]
    assert kit.audit_actions()[-1] == ("api.changes.read", "allowed")


def test_pages_follow_the_cursor_and_a_bad_cursor_is_refused(kit, at_now) -> None:
    bank = token(kit, "Bolt Bank", "read:transactions")
    import_file(kit.vault, fixture(ENERGY))  # not in the grant: skipped, the cursor moves on
    import_file(kit.vault, fixture(MIDATA))
    import_file(kit.vault, fixture(SCHWAB))
    first = feed(kit, bank, "?limit=1")
    assert first == {
        "changes": [entry(2, "added", "transactions", 217, 224, 8)],
        "next_cursor": cursor(2),
        "more": True,
    }
    second = feed(kit, bank, f"?limit=1&cursor={first['next_cursor']}")
    assert second == {
        "changes": [entry(3, "added", "transactions", 225, 228, 4)],
        "next_cursor": cursor(3),
        "more": True,
    }
    last = feed(kit, bank, f"?limit=1&cursor={second['next_cursor']}")
    assert last == {"changes": [], "next_cursor": cursor(3), "more": False}
    for bad in ("abc", cursor(-1), "Y2hhbmdlczowMQ", base64.urlsafe_b64encode(b"\xff").decode()):
        resp = kit.http.get(f"/api/v1/changes?cursor={bad}", headers=bearer(bank))
        problem(resp, 400, "bad_request", "cursor is not one this API gave out for the change feed")
    assert resp.headers["Content-Type"] == "application/problem+json"
    resp = kit.http.get("/api/v1/changes?limit=0", headers=bearer(bank))
    problem(resp, 400, "bad_request", "limit must be a whole number from 1 to 500")
    writer = token(kit, "Coal Bank", "write:transactions")
    resp = kit.http.get("/api/v1/changes", headers=bearer(writer))
    problem(resp, 403, "insufficient_scope", "the grant does not allow reading any category")


def test_a_record_outside_the_grants_time_range_is_not_announced(kit, at_now) -> None:
    two_days = token(kit, "Acme Energy", **{"from": "2014-01-05", "to": "2014-01-06"})
    later = token(kit, "Bolt Energy", **{"from": "2020-01-01", "to": "2020-12-31"})
    import_file(kit.vault, fixture(ENERGY))
    # 19 readings on 1 January (from 05:00 UTC), 24 a day after: 5 and 6 January are 92-139
    assert feed(kit, two_days)["changes"] == [entry(1, "added", "energy", 92, 139, 48)]
    assert feed(kit, later)["changes"] == []


def test_an_old_record_imported_today_is_news_today(kit) -> None:
    bank = token(kit, "Bolt Bank", "read:transactions")
    import_file(kit.vault, fixture(SCHWAB))
    dates = [r.occurred_at for r in kit.vault.records("transactions")]
    assert dates == ["2022-08-04", "2022-08-09", "2022-08-14", "2022-08-17"]
    (change,) = feed(kit, bank)["changes"]
    assert change["at"][:10] == clock.today().isoformat()
    assert (change["first_id"], change["last_id"], change["count"]) == (1, 4, 4)


def test_replacing_the_profile_withdrawing_and_any_delete(kit, at_now) -> None:
    owner = token(kit, "Acme", "read:profile read:intentions read:transactions")
    profile.save(kit.vault, {"name": "Ada"})
    profile.save(kit.vault, {"name": "Ada Lovelace"})
    rid, _ = intentions.add(
        kit.vault, {"text": "New energy tariff", "kind": "switch", "expires_at": "2099-12-31"}
    )
    intentions.withdraw(kit.vault, rid)
    import_file(kit.vault, fixture(SCHWAB))
    kit.vault.conn.execute("DELETE FROM records WHERE id = 5")  # any other delete: the trigger
    profile.save(kit.vault, {"name": "Ada Lovelace"})  # the same again: no change
    got = feed(kit, owner)["changes"]
    # seq 2 (the first profile's deletion) was folded into its replacement, seq 3; an
    # addition whose records are all gone since (seq 1, seq 4) is no longer listed
    assert [(c["seq"], c["kind"], c["category"], c["first_id"], c["count"]) for c in got] == [
        (3, "changed", "profile", 2, 1),
        (5, "forgotten", "intentions", 3, 1),
        (6, "added", "transactions", 4, 3),
        (7, "forgotten", "transactions", 5, 1),
    ]
    assert (got[2]["last_id"], got[3]["last_id"]) == (7, 5)


def test_webhooks_per_category_batched_per_import(kit, at_now, receiver) -> None:
    energy = token(kit, "Acme Energy", "read:energy")
    bank = token(kit, "Bolt Bank", "read:energy read:transactions")
    mine = subscribe(kit, energy, receiver.url, categories=("energy",))
    other = Receiver()
    try:
        theirs = subscribe(kit, bank, other.url, categories=("transactions",))
        import_file(kit.vault, fixture(ENERGY))
        import_file(kit.vault, fixture(MIDATA))
        import_file(kit.vault, fixture(MIDATA))  # again: no second announcement
        assert delivery.run_once(kit.vault) == {"delivered": 2, "failed": 0, "dropped": 0}
        kit.vault.forget_category("energy")
        assert delivery.run_once(kit.vault) == {"delivered": 1, "failed": 0, "dropped": 0}
        assert delivery.run_once(kit.vault) == {"delivered": 0, "failed": 0, "dropped": 0}
    finally:
        other.close()
    assert [json.loads(body) for _, body in receiver.got] == [
        {"type": "records.added", **entry(1, "added", "energy", 1, 216, 216)},
        {"type": "records.forgotten", **entry(3, "forgotten", "energy", 1, 216, 216)},
    ]
    assert [json.loads(body) for _, body in other.got] == [
        {"type": "records.added", **entry(2, "added", "transactions", 217, 224, 8)}
    ]
    headers, body = other.got[0]
    assert prop.verify(theirs["secret"], headers, body)
    assert headers["Webhook-Id"] == f"{theirs['id']}.r2"
    assert [h["Webhook-Id"] for h, _ in receiver.got] == [f"{mine['id']}.r1", f"{mine['id']}.r3"]
    log = delivery.log_rows(kit.vault)
    assert [(x["seq"], x["change_seq"], x["status"]) for x in log] == [
        (None, 3, "delivered"),
        (None, 2, "delivered"),
    ]  # the first delivery went with the energy it announced


def test_a_subscription_hears_only_what_came_after_it_and_its_grant_reads(kit, receiver) -> None:
    energy = token(kit, "Acme Energy", "read:energy")
    import_file(kit.vault, fixture(ENERGY))  # before the subscription: not sent
    kit.vault.conn.execute("UPDATE record_changes SET at = '2025-01-01T00:00:00Z'")
    subscribe(kit, energy, receiver.url, categories=("energy",))
    assert delivery.run_once(kit.vault) == {"delivered": 0, "failed": 0, "dropped": 0}
    refused = kit.http.post(
        "/api/v1/subscriptions",
        json={"url": receiver.url, "categories": ["transactions"]},
        headers=bearer(energy),
    )
    problem(refused, 403, "insufficient_scope", "the grant does not allow reading transactions")
    import_file(kit.vault, fixture(MIDATA))  # not energy: nothing for this subscription
    assert delivery.run_once(kit.vault) == {"delivered": 0, "failed": 0, "dropped": 0}
    assert receiver.got == []
