"""The record of processing per business, from a known sequence of grants and API calls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pds import clock
from pds.cli import cli
from pds.errors import NotFound
from pds.oauth import admin, store
from pds.rights import processing
from tests.oauth_kit import bearer, seed

DETAILS = [
    {
        "type": "pds_records",
        "actions": ["read"],
        "categories": ["transactions"],
        "fields": ["date", "amount"],
        "time_range": {"from": "2024-03-01"},
        "purpose": "dpv:CreditChecking",
    }
]


def _last_time(kit) -> str:
    return json.loads(kit.vault.log.tail(1)[0][1])["time"]


@pytest.fixture
def story(kit) -> dict:
    """Acme gets two grants, reads, is refused once, writes once; grant 1 is revoked."""
    seed(kit.vault)
    acme, secret = kit.add_client("Acme Bank")
    kit.add_client("Idle Ltd")
    t1 = kit.tokens(acme, secret, scope=None, authorization_details=json.dumps(DETAILS))
    h1 = bearer(t1["access_token"])
    page = kit.http.get("/api/v1/records?category=transactions", headers=h1)
    assert [r["payload"] for r in page.json["records"]][0] == {
        "date": "2024-03-05",
        "amount": "-3.00",
    }
    first = _last_time(kit)
    assert kit.http.get("/api/v1/records?category=energy", headers=h1).status_code == 403
    t2 = kit.tokens(acme, secret, scope="read:energy write:transactions")
    h2 = bearer(t2["access_token"])
    assert kit.http.get("/api/v1/records?category=energy", headers=h2).status_code == 200
    body = {
        "category": "transactions",
        "occurred_at": "2024-07-01",
        "payload": {"date": "2024-07-01", "amount": "9.99", "currency": "GBP", "description": "X"},
    }
    assert kit.http.post("/api/v1/records", json=body, headers=h2).status_code == 201
    last = _last_time(kit)
    g1, g2 = store.list_grants(kit.vault.conn)
    admin.revoke_grant(kit.vault, g1.id)
    return {"acme": acme, "first": first, "last": last, "g1": g1.id, "g2": g2.id}


def test_record_of_processing_exact(kit, story) -> None:
    g1 = store.get_grant(kit.vault.conn, story["g1"])
    g2 = store.get_grant(kit.vault.conn, story["g2"])
    doc = processing.record(kit.vault, story["acme"])
    assert doc == {
        "controller": {"name": "Acme Bank", "client_id": story["acme"], "verified": True},
        "purposes": [{"purpose": "dpv:CreditChecking", "label": "checking your creditworthiness"}],
        "categories": {
            "energy": {"actions": ["read"], "fields": None},
            "transactions": {"actions": ["read", "write"], "fields": None},
        },
        "recipients": [{"name": "Acme Bank", "client_id": story["acme"]}],
        "retention": [
            {
                "grant_id": g1.id,
                "created_at": g1.created_at,
                "expires_at": clock.iso(g1.expires_at),
                "revoked_at": g1.revoked_at,
                "status": "revoked",
            },
            {
                "grant_id": g2.id,
                "created_at": g2.created_at,
                "expires_at": clock.iso(g2.expires_at),
                "revoked_at": None,
                "status": "active",
            },
        ],
        "grants": {"count": 2, "first_at": g1.created_at, "last_at": g2.created_at},
        "access": {
            "first_at": story["first"],
            "last_at": story["last"],
            "calls_allowed": 3,
            "calls_refused": 1,
            "records_read": {"energy": 1, "transactions": 4},
            "records_written": {"transactions": 1},
        },
    }
    assert g1.revoked_at is not None


def test_fields_union_of_read_only_grants(kit) -> None:
    acme, secret = kit.add_client("Acme Bank")
    kit.tokens(acme, secret, scope=None, authorization_details=json.dumps(DETAILS))
    other = [{**DETAILS[0], "fields": ["amount", "description"], "purpose": "dpv:Marketing"}]
    kit.tokens(acme, secret, scope=None, authorization_details=json.dumps(other))
    doc = processing.record(kit.vault, acme)
    assert doc["categories"] == {
        "transactions": {"actions": ["read"], "fields": ["date", "amount", "description"]}
    }
    assert [p["purpose"] for p in doc["purposes"]] == ["dpv:CreditChecking", "dpv:Marketing"]
    assert doc["access"] == {
        "first_at": None,
        "last_at": None,
        "calls_allowed": 0,
        "calls_refused": 0,
        "records_read": {},
        "records_written": {},
    }


def test_overview_and_unknown_client(kit, story) -> None:
    rows = processing.overview(kit.vault)
    assert [(r["name"], r["grants"], r["active_grants"], r["last_access_at"]) for r in rows] == [
        ("Acme Bank", 2, 1, story["last"]),
        ("Idle Ltd", 0, 0, None),
    ]
    with pytest.raises(NotFound) as err:
        processing.record(kit.vault, "pds-nobody")
    assert err.value.message == "no business with client id 'pds-nobody'"


def test_processing_pages(kit, story) -> None:
    assert kit.app.test_client().get("/processing").status_code == 302
    index = kit.http.get("/processing")  # the kit signed in during consent
    assert index.status_code == 200
    assert f'href="/processing/{story["acme"]}"' in index.text
    assert "Idle Ltd" in index.text
    page = kit.http.get(f"/processing/{story['acme']}")
    assert page.status_code == 200
    assert "checking your creditworthiness (dpv:CreditChecking)" in page.text
    data = kit.http.get(f"/processing/{story['acme']}.json")
    assert data.status_code == 200
    assert data.json == json.loads(json.dumps(processing.record(kit.vault, story["acme"])))
    assert kit.http.get("/processing/pds-nobody").status_code == 404
    assert kit.http.get("/processing/pds-nobody.json").status_code == 404


def test_cli_processing_unknown_client(runner, initialised: Path) -> None:
    result = runner.invoke(cli, ["processing", "pds-nobody"])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: no business with client id 'pds-nobody'",
        "Hint: See the ids with `pds clients list`.",
    ]
    listed = runner.invoke(cli, ["processing", "--json"])
    assert listed.exit_code == 0
    assert json.loads(listed.output) == []
    plain = runner.invoke(cli, ["processing"])
    assert (plain.exit_code, plain.output) == (
        0,
        "No business has been registered yet (`pds clients add`).\n",
    )
    from pds.oauth.access import parse_request
    from pds.settings import Settings
    from pds.vault import Vault
    from tests.conftest import PASSPHRASE

    with Vault.open(Settings(home=initialised), PASSPHRASE) as v:
        client, _ = admin.add_client(v, "Acme", ["https://a.example/cb"])
        grant = store.create_grant(v.conn, client.client_id, parse_request("read:energy", None))
    shown = runner.invoke(cli, ["processing", client.client_id])
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines() == [
        f"Record of processing: Acme ({client.client_id})",
        "  purposes:   none stated",
        "  energy: read (all fields)",
        "  recipients: Acme",
        f"  grant {grant.id}: active, until {clock.iso(grant.expires_at)}",
        "  access:     0 calls allowed, 0 refused, first never, last never",
    ]
