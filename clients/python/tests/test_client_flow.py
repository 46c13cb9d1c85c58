"""The client against a real `pds serve`: discovery, registration, the person's consent,
the code exchange, two pages of midata transactions, totals, refresh with rotation,
revocation, the consent receipt, a real webhook and the change feed."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import Live, Receiver, consent

from pds_client import (
    Access,
    ApiError,
    AuthorizationError,
    Client,
    DiscoveryError,
    OAuthError,
    ReceiptError,
    WebhookError,
    verify_receipt,
    verify_webhook,
)
from pds_client.records import Transaction

CB = "http://127.0.0.1:9/cb"  # never reached: the test reads the redirect's Location
FIELDS = ["date", "amount", "currency", "description"]
ASK = [
    Access(
        ["transactions"],
        actions=["read"],
        fields=FIELDS,
        since="2014-01-01",
        until="2025-12-31",
        purpose="dpv:ServiceProvision",
        expires_in=30 * 24 * 3600,
    ),
    Access("profile", fields=["email"], purpose="dpv:ServiceProvision"),
]


def business(live: Live, stored: list[dict]) -> Client:
    """A business that discovered the vault, registered, and holds a consented grant."""
    client = Client.discover(live.base, on_token=stored.append)
    client.register("Acme Energy", [CB], client_uri="https://acme.example")
    request = client.authorization_url(ASK)
    client.exchange(consent(live.base, request.url), request)
    return client


@pytest.fixture(scope="module")
def acme(live: Live) -> tuple[Client, list[dict]]:
    stored: list[dict] = []
    return business(live, stored), stored


def test_discovery_reads_and_checks_the_metadata(live: Live) -> None:
    client = Client.discover(live.base + "/")
    assert client.issuer == live.base
    assert client.metadata["token_endpoint"] == live.base + "/oauth/token"
    assert client.metadata["authorization_details_types_supported"] == ["pds_records"]
    with pytest.raises(DiscoveryError) as caught:
        Client.discover(live.base.replace("127.0.0.1", "localhost"))
    assert caught.value.message == (
        f"the metadata names the issuer {live.base!r}, not "
        f"{live.base.replace('127.0.0.1', 'localhost')!r} (RFC 8414 §3.3): use the vault's "
        "address exactly as it gives it"
    )


def test_the_authorization_url_carries_pkce_and_the_details(live: Live) -> None:
    client = Client.discover(live.base)
    answer = client.register("Acme Energy", [CB])
    assert answer["client_id"].startswith("pds-")
    assert answer["client_secret_expires_at"] == 0
    request = client.authorization_url(ASK)
    query = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
    assert query["response_type"] == "code"
    assert query["client_id"] == answer["client_id"]
    assert query["redirect_uri"] == CB
    assert query["state"] == request.state
    assert query["code_challenge_method"] == "S256"
    digest = hashlib.sha256(request.code_verifier.encode()).digest()
    assert query["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert "scope" not in query
    assert json.loads(query["authorization_details"]) == [
        {
            "type": "pds_records",
            "actions": ["read"],
            "categories": ["transactions"],
            "fields": FIELDS,
            "time_range": {"from": "2014-01-01", "to": "2025-12-31"},
            "purpose": "dpv:ServiceProvision",
            "expires_in": 2592000,
        },
        {
            "type": "pds_records",
            "actions": ["read"],
            "categories": ["profile"],
            "fields": ["email"],
            "purpose": "dpv:ServiceProvision",
        },
    ]


def test_the_redirect_must_come_from_the_vault_and_answer_this_request(live: Live) -> None:
    client = Client.discover(live.base)
    client.register("Acme Energy", [CB])
    request = client.authorization_url(ASK)
    back = consent(live.base, request.url)
    forged = back.replace("iss=http", "iss=https")
    with pytest.raises(AuthorizationError) as caught:
        client.exchange(forged, request)
    assert (caught.value.error, caught.value.error_description) == (
        "invalid_issuer",
        f"the redirect's iss {live.base.replace('http', 'https')!r} is not this vault's "
        f"issuer {live.base!r} (RFC 9207): another server answered; do not use it",
    )
    other = client.authorization_url(ASK)
    with pytest.raises(AuthorizationError) as caught:
        client.exchange(back, other)
    assert caught.value.message == (
        "invalid_state: the redirect's state is not the one this request sent"
    )
    denied = client.authorization_url(ASK)
    with pytest.raises(AuthorizationError) as caught:
        client.exchange(consent(live.base, denied.url, "deny"), denied)
    assert caught.value.error == "access_denied"


def test_exchange_gives_what_the_person_approved(acme: tuple[Client, list[dict]]) -> None:
    client, stored = acme
    token = stored[0]
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600
    assert token["scope"] == "read:transactions read:profile"
    assert token["authorization_details"][0]["fields"] == FIELDS
    assert client.grant()["purpose"] == "dpv:ServiceProvision"


def test_two_pages_of_typed_transactions(acme: tuple[Client, list[dict]]) -> None:
    client, _ = acme
    pages = list(client.pages("transactions", since="2024-01-01", page_size=5))
    assert [len(p.records) for p in pages] == [5, 3]
    assert pages[0].next_cursor is not None
    assert pages[1].next_cursor is None
    read = list(client.records("transactions", since="2024-01-01", page_size=5))
    assert all(type(r) is Transaction for r in read)
    assert [(r.date, r.amount, r.description) for r in read] == [
        ("2024-07-23", Decimal("-26.15"), "*****************"),
        ("2024-07-25", Decimal("-35.00"), "BROADBAND"),
        ("2024-07-29", Decimal("1.50"), "***********************************"),
        ("2024-08-01", Decimal("-9.70"), "A GARAGE GB"),
        ("2024-08-29", Decimal("3.20"), "GROCERY SHOP GB"),
        ("2024-09-11", Decimal("5.00"), "**************************"),
        ("2025-05-26", Decimal("-15.00"), "A PARK GB"),
        ("2025-07-19", Decimal("-52.00"), "A COFFEE SHOP GB"),
    ]
    first = read[0]
    assert (first.currency, first.balance, first.type, first.extra) == ("GBP", None, None, {})
    assert first.payload == {
        "amount": "-26.15",
        "currency": "GBP",
        "date": "2024-07-23",
        "description": "*****************",
    }
    kept = next(client.records("transactions", since="2024-01-01", fields=["amount"]))
    assert (kept.amount, kept.date, kept.payload) == (Decimal("-26.15"), None, {"amount": "-26.15"})
    assert client.record(first.id) == first


def test_totals_and_problems(acme: tuple[Client, list[dict]]) -> None:
    client, _ = acme
    totals = client.aggregates("transactions", measure="sum", field="amount", by="month")
    assert [(b.bucket, b.currency, b.count, b.value) for b in totals.buckets] == [
        ("2014-03", "GBP", 6, Decimal("-290.00"))
    ]
    assert (totals.suppressed, totals.min_bucket, totals.per) == (5, 5, "currency")
    with pytest.raises(ApiError) as caught:
        list(client.records("health"))
    err = caught.value
    assert (err.status, err.code, err.title, err.detail) == (
        403,
        "insufficient_scope",
        "Insufficient scope",
        "the grant does not allow reading health",
    )
    assert err.type == "https://pds.invalid/problems/insufficient_scope"


def test_refresh_rotates_and_the_old_token_is_refused(live: Live) -> None:
    stored: list[dict] = []
    client = business(live, stored)
    first = stored[-1]
    second = client.refresh()
    third = client.refresh()
    assert [t["refresh_token"] for t in stored] == [
        first["refresh_token"],
        second["refresh_token"],
        third["refresh_token"],
    ]
    assert len({t["refresh_token"] for t in stored}) == 3
    assert len({t["access_token"] for t in stored}) == 3
    assert client.token["access_token"] == third["access_token"]
    assert next(client.records("transactions")).date == "2014-03-01"
    with pytest.raises(OAuthError) as caught:
        client.refresh(first["refresh_token"])
    err = caught.value
    assert (err.status, err.error, err.error_description) == (
        400,
        "invalid_grant",
        "The refresh token was already used; every token of this grant is now revoked.",
    )
    with pytest.raises(ApiError) as caught:
        client.grant()
    assert (caught.value.status, caught.value.code) == (401, "invalid_token")


def test_an_expired_access_token_is_refreshed_before_a_call(live: Live) -> None:
    stored: list[dict] = []
    first = business(live, stored)
    again = Client.discover(
        live.base,
        client_id=first.client_id,
        client_secret=first.client_secret,
        token={**stored[-1], "expires_at": int(time.time()) - 1},
        on_token=stored.append,
    )
    assert next(again.records("transactions")).date == "2014-03-01"
    assert len(stored) == 2
    assert stored[1]["refresh_token"] != stored[0]["refresh_token"]
    assert again.token["access_token"] == stored[1]["access_token"]


def test_a_record_handed_back_is_stored_once(live: Live) -> None:
    client = Client.discover(live.base)
    client.register("Acme Energy", [CB])
    request = client.authorization_url([Access("transactions", actions=["write"])])
    client.exchange(consent(live.base, request.url), request)
    # dated after the range acme's grant reads, so its pages and totals stay as they are
    bill = {"date": "2026-01-15", "amount": "-42.00", "currency": "GBP", "description": "BILL"}
    made = client.add_record("transactions", "2026-01-15", bill, idempotency_key="bill-1")
    assert (made["category"], made["occurred_at"], made["created"]) == (
        "transactions",
        "2026-01-15",
        True,
    )
    again = client.add_record("transactions", "2026-01-15", bill, idempotency_key="bill-1")
    assert (again["id"], again["created"]) == (made["id"], False)
    with pytest.raises(ApiError) as caught:
        client.add_record("transactions", "2026-01-15", {**bill, "amount": "lots"})
    assert (caught.value.status, caught.value.code, caught.value.detail) == (
        422,
        "validation_error",
        'payload.amount: "lots" is not a decimal number like -12.30',
    )


def test_revocation_ends_the_grant(live: Live) -> None:
    stored: list[dict] = []
    client = business(live, stored)
    client.revoke()
    with pytest.raises(ApiError) as caught:
        client.grant()
    assert (caught.value.status, caught.value.code) == (401, "invalid_token")
    with pytest.raises(OAuthError) as refused:
        client.refresh()
    assert (refused.value.error, refused.value.error_description) == (
        "invalid_grant",
        "The refresh token is invalid, expired or revoked.",
    )


def test_the_consent_receipt_verifies(acme: tuple[Client, list[dict]]) -> None:
    client, _ = acme
    receipt = client.receipt()
    grant = client.grant()
    assert (receipt.client_id, receipt.grant_id) == (client.client_id, grant["id"])
    assert (receipt.controller, receipt.purpose, receipt.withdrawn) == (
        "Acme Energy",
        "dpv:ServiceProvision",
        False,
    )
    assert receipt.claims["pds"]["scope"] == "read:transactions read:profile"
    body = client.get("/api/v1/grant/receipt")
    head, payload, signature = body["receipt"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["pds"]["scope"] = "read:transactions read:profile read:health"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(ReceiptError) as caught:
        verify_receipt(f"{head}.{forged}.{signature}", body["key"])
    assert caught.value.message == (
        "the receipt's signature does not match its contents: it was changed after signing"
    )
    assert client.receipt(key=body["key"]) == receipt
    stranger = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    with pytest.raises(ReceiptError) as caught:
        client.receipt(key=stranger)
    assert caught.value.message == (
        f"the receipt was signed by key {body['key']['kid']!r}, not by the key given "
        "(kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k)"
    )
    with pytest.raises(ReceiptError) as caught:
        verify_receipt(body["receipt"], body["key"], client_id="pds-someone-else")
    assert caught.value.message == (
        f"the receipt is for client {client.client_id!r}, not 'pds-someone-else'"
    )


def test_a_webhook_from_the_vault_verifies_and_the_feed_lists_it(
    live: Live, acme: tuple[Client, list[dict]], receiver: Receiver
) -> None:
    client, _ = acme
    sub = client.subscribe(receiver.url, ["profile"])
    assert sub.secret.startswith("whsec_")
    assert [s.id for s in client.subscriptions()] == [sub.id]
    live.pds("profile", "set", "email", "person@example.org")
    assert receiver.arrived.wait(30), "no webhook within 30 s"
    headers, body = receiver.received[0]
    event = verify_webhook(sub.secret, headers, body)
    assert (event["category"], event["fields"]) == ("profile", ["email"])
    assert headers["Webhook-Id"] == f"{sub.id}.{event['seq']}"
    with pytest.raises(WebhookError) as caught:
        verify_webhook(sub.secret, headers, body.replace(b"email", b"phone"))
    assert caught.value.message == (
        "no signature in Webhook-Signature matches: the body, id or timestamp was changed, "
        "or it was signed with another secret"
    )
    sent = int(headers["Webhook-Timestamp"])
    with pytest.raises(WebhookError) as caught:
        verify_webhook(sub.secret, headers, body, now=sent + 301)
    assert caught.value.message == (
        "the webhook was signed 301 seconds ago, more than the 300 allowed: it may be a replay"
    )
    changes = list(client.changes(since=0))  # the profile's feed by field name, as before
    assert [(c.seq, c.category, c.fields) for c in changes] == [
        (event["seq"], "profile", ["email"])
    ]
    page = client.changes_page()
    assert [(c.kind, c.category, c.count) for c in page.changes] == [("added", "profile", 1)]
    assert list(client.changes()) == page.changes
    assert client.changes_page(page.next_cursor).changes == []
    assert next(client.records("profile")).email == "person@example.org"
    client.unsubscribe(sub.id)
    assert client.subscriptions() == []


def test_a_client_without_a_token_says_so(live: Live) -> None:
    client = Client.discover(live.base)
    words = (
        "the client has no token yet: finish an authorization (exchange) first, or pass the "
        "token you stored"
    )
    for call in (lambda: client.grant(), client.refresh):
        with pytest.raises(OAuthError) as caught:
            call()
        assert (caught.value.error, caught.value.error_description) == ("missing_token", words)


def test_a_vault_that_is_not_there_is_a_discovery_error() -> None:
    with pytest.raises(DiscoveryError) as caught:
        Client.discover("http://127.0.0.1:9")
    assert caught.value.message.startswith("cannot reach http://127.0.0.1:9: ")
