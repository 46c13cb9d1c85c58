"""Check a webhook pds sent: the Standard Webhooks scheme, as pds signs it.

pds POSTs a JSON body with three headers: ``Webhook-Id`` (``<subscription>.<seq>``, the
same on every retry), ``Webhook-Timestamp`` (Unix seconds) and ``Webhook-Signature``
(``v1,`` + base64 HMAC-SHA256 over ``id.timestamp.body``, keyed with the base64-decoded
part of the subscription's secret after ``whsec_``; several space-separated signatures may
be sent). :func:`verify_webhook` checks all three and the age of the timestamp, and returns
the parsed body; anything else raises :class:`~pds_client.errors.WebhookError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from pds_client.errors import WebhookError

DEFAULT_TOLERANCE = 300
"""Seconds a timestamp may be away from now (Standard Webhooks' suggested five minutes)."""


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    raise WebhookError(f"the webhook has no {name} header")


def _key(secret: str) -> bytes:
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise WebhookError("the secret is not whsec_ followed by base64, as pds gave it")
    return key


def sign_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``Webhook-Signature`` value pds sends for this message (``v1,<base64>``)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.digest(_key(secret), signed, hashlib.sha256)).decode()


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: int = DEFAULT_TOLERANCE,
    *,
    now: int | None = None,
) -> dict[str, Any]:
    """The webhook's JSON body if ``Webhook-Signature`` holds a valid signature of it by
    ``secret`` and ``Webhook-Timestamp`` is within ``tolerance`` seconds of ``now`` (default:
    the clock). Check the raw bytes as received, before any parsing. Header names are
    matched without regard to case. Raises WebhookError saying what failed."""
    msg_id = _header(headers, "Webhook-Id")
    stamp = _header(headers, "Webhook-Timestamp")
    sent = _header(headers, "Webhook-Signature")
    if not stamp.isascii() or not stamp.isdigit():
        raise WebhookError(f"the Webhook-Timestamp {stamp[:40]!r} is not a Unix time in seconds")
    timestamp = int(stamp)
    now = int(time.time()) if now is None else now
    if timestamp < now - tolerance:
        raise WebhookError(
            f"the webhook was signed {now - timestamp} seconds ago, more than the "
            f"{tolerance} allowed: it may be a replay"
        )
    if timestamp > now + tolerance:
        raise WebhookError(
            f"the webhook is signed {timestamp - now} seconds in the future, more than the "
            f"{tolerance} allowed"
        )
    expected = sign_webhook(secret, msg_id, timestamp, body).encode()
    if not any(hmac.compare_digest(expected, s.encode()) for s in sent.split()):
        raise WebhookError(
            "no signature in Webhook-Signature matches: the body, id or timestamp was "
            "changed, or it was signed with another secret"
        )
    try:
        payload = json.loads(body)
    except ValueError:
        raise WebhookError("the webhook's body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookError("the webhook's body is not a JSON object")
    return payload
