"""What the client checks on its own: the Standard Webhooks test vector and its refusals,
receipts that are not pds's, records of categories and fields the client does not know, and
the errors' fields."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pds_client import ApiError, OAuthError, PdsClientError, ReceiptError, WebhookError
from pds_client.receipts import thumbprint, verify_receipt
from pds_client.records import HealthRecord, Record, record_from
from pds_client.webhooks import sign_webhook, verify_webhook

# the published Standard Webhooks test vector
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = b'{"test": 2432232314}'
HEADERS = {
    "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
    "webhook-timestamp": "1614265330",
    "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
}
SENT = 1614265330


def test_the_standard_webhooks_vector_verifies() -> None:
    assert sign_webhook(SECRET, HEADERS["webhook-id"], SENT, BODY) == HEADERS["webhook-signature"]
    assert verify_webhook(SECRET, HEADERS, BODY, now=SENT + 10) == {"test": 2432232314}
    several = {**HEADERS, "webhook-signature": "v1,AAAA " + HEADERS["webhook-signature"]}
    assert verify_webhook(SECRET, several, BODY, now=SENT) == {"test": 2432232314}


@pytest.mark.parametrize(
    ("headers", "now", "message"),
    [
        (
            {**HEADERS, "webhook-timestamp": "1614265331"},
            SENT,
            "no signature in Webhook-Signature matches: the body, id or timestamp was changed, "
            "or it was signed with another secret",
        ),
        (
            {k: v for k, v in HEADERS.items() if k != "webhook-signature"},
            SENT,
            "the webhook has no Webhook-Signature header",
        ),
        (
            {**HEADERS, "webhook-timestamp": "16142653.30"},
            SENT,
            "the Webhook-Timestamp '16142653.30' is not a Unix time in seconds",
        ),
        (
            HEADERS,
            SENT + 300 + 1,
            "the webhook was signed 301 seconds ago, more than the 300 allowed: it may be a replay",
        ),
        (
            HEADERS,
            SENT - 400,
            "the webhook is signed 400 seconds in the future, more than the 300 allowed",
        ),
    ],
)
def test_webhooks_that_do_not_verify(headers: dict, now: int, message: str) -> None:
    with pytest.raises(WebhookError) as caught:
        verify_webhook(SECRET, headers, BODY, now=now)
    assert caught.value.message == message
    assert str(caught.value) == message


def test_a_webhook_within_a_custom_tolerance() -> None:
    assert verify_webhook(SECRET, HEADERS, BODY, tolerance=3600, now=SENT + 3000)
    with pytest.raises(WebhookError):
        verify_webhook(SECRET, HEADERS, BODY, tolerance=10, now=SENT + 11)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwk(key: Ed25519PrivateKey) -> dict:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw)}


def _jws(key: Ed25519PrivateKey, header: dict, claims: dict) -> str:
    signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing}.{_b64(key.sign(signing.encode()))}"


def test_receipts_that_are_not_pds_receipts_are_refused() -> None:
    key = Ed25519PrivateKey.generate()
    jwk = _jwk(key)
    header = {"alg": "Ed25519", "typ": "kantara-cr+jwt", "kid": thumbprint(jwk)}
    with pytest.raises(ReceiptError) as caught:
        verify_receipt(_jws(key, {**header, "alg": "none"}, {}), jwk)
    assert caught.value.message == (
        "the receipt's header names algorithm 'none'; pds receipts are signed with 'Ed25519'"
    )
    other = _jwk(Ed25519PrivateKey.generate())
    with pytest.raises(ReceiptError) as caught:
        verify_receipt(_jws(key, header, {}), other)
    assert caught.value.message == (
        f"the receipt was signed by key {thumbprint(jwk)!r}, not by the key given "
        f"({thumbprint(other)})"
    )
    with pytest.raises(ReceiptError) as caught:
        verify_receipt(_jws(key, header, {"version": "KI-CR-v1.1.0"}), jwk)
    assert caught.value.message == (
        "the receipt lacks the claim 'jurisdiction' of a consent receipt"
    )
    with pytest.raises(ReceiptError) as caught:
        verify_receipt("not.a-receipt", jwk)
    assert caught.value.message == (
        "the receipt is not a compact JWS (three base64url parts joined by dots)"
    )


def test_the_rfc_7638_thumbprint_of_rfc_8037s_example_key() -> None:
    # RFC 8037 appendix A.3
    jwk = {"crv": "Ed25519", "kty": "OKP", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert thumbprint(jwk) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_records_keep_what_the_table_does_not_know() -> None:
    item = {
        "id": 7,
        "category": "health",
        "occurred_at": "2025-01-02",
        "payload": {"kind": "observation", "type": "steps", "id": "obs-1", "mood": "good"},
    }
    record = record_from(item)
    assert type(record) is HealthRecord
    assert (record.id, record.id_, record.type, record.extra) == (
        7,
        "obs-1",
        "steps",
        {"mood": "good"},
    )
    unknown = record_from({"id": 8, "category": "pets", "occurred_at": "2025", "payload": {"a": 1}})
    assert type(unknown) is Record
    assert unknown.extra == {"a": 1}
    odd = record_from(
        {"id": 9, "category": "energy", "occurred_at": "2025", "payload": {"value": "lots"}}
    )
    assert odd.value == "lots"
    assert record_from(
        {"id": 9, "category": "energy", "occurred_at": "2025", "payload": {"value": "1.5"}}
    ).value == Decimal("1.5")


def test_errors_carry_the_servers_fields() -> None:
    problem = ApiError.from_body(
        404,
        {
            "type": "https://pds.invalid/problems/not_found",
            "title": "Not found",
            "status": 404,
            "detail": "there is no record with this id that your grant covers",
            "hint": 3,
        },
    )
    assert (problem.code, problem.title, problem.hint, problem.instance) == (
        "not_found",
        "Not found",
        None,
        None,
    )
    assert str(problem) == "404 not_found: there is no record with this id that your grant covers"
    assert str(ApiError.from_body(502, "<html>")) == "502 error: no explanation given"
    oauth = OAuthError("invalid_grant", "Code challenge failed.", 400)
    assert str(oauth) == "invalid_grant: Code challenge failed."
    assert all(isinstance(e, PdsClientError) for e in (problem, oauth))
