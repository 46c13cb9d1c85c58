"""Webhook subscriptions: who is told of a change in the feed, where, and under which key.

- A change in the profile or the intentions is logged by ``pds.profile.changes``, which
  queues one delivery for each live subscription whose grant may read at least one changed
  field, in the same transaction. A change of records in any other category (an import,
  a write-back, a forgetting: ``pds.db.changes``) is queued by the sender
  (``pds.webhooks.delivery.queue_record_changes``) and sent as ``records.added``,
  ``records.changed`` or ``records.forgotten``: ids and counts, never a payload.
- A subscription belongs to one grant. Its secret is never stored: it is derived from the
  master key and the subscription's random salt (``Vault.derived_secret``) and shown to the
  business once, as ``whsec_`` + base64 (Standard Webhooks). A subscription dies with its
  grant (revoked or expired: nothing more is sent).
- The sender (``pds.webhooks.delivery.run_once``) claims due deliveries one at a time in a
  write transaction (so two workers never send the same one), POSTs ``{"seq", "category",
  "fields", "at"}`` (a record change: the feed's entry with its ``type``) with
  ``Webhook-Id``, ``Webhook-Timestamp`` and ``Webhook-Signature`` (``v1,`` + base64
  HMAC-SHA256 of ``id.timestamp.body``, :func:`sign`), never follows a
  redirect, and records the attempt in ``deliveries`` with one ``webhook.deliver`` audit
  entry. A failed attempt is retried after :data:`BACKOFF` seconds, at most
  :data:`MAX_ATTEMPTS` times.
- A webhook URL may not point into the owner's network (SSRF): https to a public host only,
  checked when subscribing (:func:`check_destination`, 400 ``unsafe_webhook_url``) and
  again at every send (pds.webhooks.net), unless ``PDS_WEBHOOKS_ALLOW_PRIVATE`` is on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import sqlite3
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pds import clock
from pds.db import webhooks as db_webhooks
from pds.db.webhooks import Subscription
from pds.errors import NotFound, PdsError, ValidationError
from pds.net import loopback_host
from pds.oauth import store
from pds.webhooks import net as webhook_net

if TYPE_CHECKING:
    from pds.vault import Vault

BACKOFF = (30, 120, 600, 3600, 6 * 3600)
"""Seconds to wait after failed attempt 1, 2, ...; after the last, the delivery gives up."""
MAX_ATTEMPTS = len(BACKOFF) + 1
CLAIM_SECONDS = 60
MAX_PER_GRANT = 5
SECRET_PURPOSE = "webhook"  # noqa: S105 - a key-derivation label, not a secret


# -- subscriptions --------------------------------------------------------------------------


def url_problem(url: str, *, allow_private: bool = False) -> str | None:
    """Why a webhook URL is refused by its form, or None: https (plain http only to
    loopback, and only when the owner set ``PDS_WEBHOOKS_ALLOW_PRIVATE``)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "url is not a valid URL"
    if parts.scheme not in ("https", "http") or not host:
        return "url must be an absolute https URL"
    if parts.username is not None or parts.password is not None:
        return "url must not contain a user name or password"
    if parts.fragment:
        return "url must not contain a fragment"
    if parts.scheme == "http" and not (allow_private and loopback_host(host)):
        return "url must use https"
    return None


def check_url(url: str, *, allow_private: bool = False) -> None:
    """ValidationError (422) for a malformed URL, UnsafeWebhookUrl (400) for one that
    points into a private network."""
    if problem := url_problem(url, allow_private=allow_private):
        raise ValidationError(problem, hint="Register an https endpoint that you control.")
    check_destination(url, allow_private=allow_private)


def check_destination(url: str, *, allow_private: bool = False) -> None:
    """UnsafeWebhookUrl when the URL's host is, or resolves to, a non-public address
    (see pds.webhooks.net). A host that does not resolve yet is accepted: each send
    resolves and checks it again."""
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        raise UnsafeWebhookUrl(webhook_net.refusal(host, [ipaddress.ip_address("127.0.0.1")]))
    try:
        addresses = webhook_net.resolve(host, parts.port or 443)
    except (OSError, UnicodeError, ValueError):
        return
    if why := webhook_net.refusal(host, addresses):
        raise UnsafeWebhookUrl(why)


class UnsafeWebhookUrl(PdsError, ValueError):
    """A webhook URL that points into a private network (HTTP 400)."""

    code = "unsafe_webhook_url"
    status = 400
    hint = "Register an https endpoint on a public host that you control."


def create(
    vault: Vault, grant: store.Grant, url: str, categories: list[str]
) -> tuple[Subscription, str]:
    """A new subscription for ``grant`` and its secret (shown once). Joins the caller's
    transaction."""
    check_url(url, allow_private=vault.settings.webhooks_allow_private)
    conn = vault.conn
    if db_webhooks.count_live_subscriptions(conn, grant.id) >= MAX_PER_GRANT:
        raise ValidationError(
            f"a grant may have at most {MAX_PER_GRANT} subscriptions",
            hint="Delete one you no longer use first.",
        )
    sub = db_webhooks.insert_subscription(
        conn,
        "sub_" + secrets.token_urlsafe(12),
        grant.client_id,
        grant.id,
        url,
        list(dict.fromkeys(categories)),
        secrets.token_bytes(32),
        clock.iso(clock.now()),
    )
    return sub, "whsec_" + base64.b64encode(secret(vault, sub)).decode()


def secret(vault: Vault, sub: Subscription) -> bytes:
    """The subscription's 32-byte HMAC key."""
    return vault.derived_secret(SECRET_PURPOSE, sub.salt)


def for_grant(conn: sqlite3.Connection, grant_id: int) -> list[Subscription]:
    return db_webhooks.subscriptions_for_grant(conn, grant_id)


def get(conn: sqlite3.Connection, sub_id: str) -> Subscription | None:
    return db_webhooks.get_subscription(conn, sub_id)


def delete(conn: sqlite3.Connection, grant_id: int, sub_id: str) -> None:
    """Stop a subscription of this grant; NotFound if the grant has none with this id."""
    if not db_webhooks.delete_subscription(conn, grant_id, sub_id, clock.iso(clock.now())):
        raise NotFound("there is no subscription with this id for your grant")


# -- signing (Standard Webhooks) ------------------------------------------------------------


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.digest(key, signed, hashlib.sha256)).decode()


def verify(secret_text: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does: check ``Webhook-Signature`` with the ``whsec_`` secret."""
    key = base64.b64decode(secret_text.removeprefix("whsec_"))
    try:
        expected = sign(key, headers["Webhook-Id"], int(headers["Webhook-Timestamp"]), body)
    except (KeyError, ValueError):
        return False
    sent = headers.get("Webhook-Signature", "").split()
    return any(hmac.compare_digest(expected.encode(), s.encode()) for s in sent)
