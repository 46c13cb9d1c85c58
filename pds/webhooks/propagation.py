"""Change propagation: the change feed, webhook subscriptions and their signed deliveries.

- A change (:func:`record_change`) is one ``profile_changes`` row: seq, category, the names
  of the changed fields, time. Never values: a business told of a change fetches it with
  its own token, through its grant, like any other read.
- A subscription belongs to one grant. Its secret is never stored: it is derived from the
  master key and the subscription's random salt (``Vault.derived_secret``) and shown to the
  business once, as ``whsec_`` + base64 (Standard Webhooks). A subscription dies with its
  grant (revoked or expired: nothing more is sent).
- For each change, each live subscription whose grant may read at least one changed field
  gets a delivery. The sender (:func:`run_once`) claims due deliveries one at a time in a
  write transaction (so two workers never send the same one), POSTs ``{"seq", "category",
  "fields", "at"}`` with ``Webhook-Id``, ``Webhook-Timestamp`` and ``Webhook-Signature``
  (``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``), never follows a redirect, and
  records the attempt in ``deliveries`` with one ``webhook.deliver`` audit entry. A failed
  attempt is retried after :data:`BACKOFF` seconds, at most :data:`MAX_ATTEMPTS` times.
- A webhook URL may not point into the owner's network (SSRF): https to a public host only,
  checked when subscribing (:func:`check_destination`, 400 ``unsafe_webhook_url``) and
  again at every send (pds.webhooks.net), unless ``PDS_WEBHOOKS_ALLOW_PRIVATE`` is on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pds import clock
from pds.db import atomic
from pds.errors import NotFound, PdsError, ValidationError
from pds.net import loopback_host
from pds.oauth import store
from pds.webhooks import net as webhook_net

if TYPE_CHECKING:
    from pds.vault import Vault

CATEGORIES = ("profile", "intentions")
BACKOFF = (30, 120, 600, 3600, 6 * 3600)
"""Seconds to wait after failed attempt 1, 2, ...; after the last, the delivery gives up."""
MAX_ATTEMPTS = len(BACKOFF) + 1
CLAIM_SECONDS = 60
MAX_PER_GRANT = 5
SECRET_PURPOSE = "webhook"  # noqa: S105 - a key-derivation label, not a secret


# -- changes --------------------------------------------------------------------------------


def record_change(vault: Vault, category: str, fields: Iterable[str]) -> int:
    """Log a change (field names only) and queue its deliveries; joins the caller's
    transaction. Returns the change's seq."""
    names = list(fields)
    at = clock.now()
    with atomic(vault.conn) as conn:
        seq = conn.execute(
            "INSERT INTO profile_changes (category, fields, at) VALUES (?, ?, ?) RETURNING seq",
            (category, json.dumps(names), clock.iso(at)),
        ).fetchone()[0]
        for sub in live_subscriptions(conn, category):
            if visible(store.get_grant(conn, sub.grant_id), category, names, at):
                conn.execute(
                    "INSERT INTO deliveries (subscription_id, seq, attempt, status, "
                    "next_attempt_at, updated_at) VALUES (?, ?, 1, 'pending', ?, ?)",
                    (sub.id, seq, at, clock.iso(at)),
                )
    return seq


def visible(grant: store.Grant, category: str, fields: Iterable[str], at: int) -> list[str]:
    """The changed field names this grant may read (none when the grant is not live)."""
    if not grant.is_active(at):
        return []
    allowed = grant.access.allows("read", category)
    if allowed is None:
        return []
    return [f for f in fields if allowed.fields is None or f in allowed.fields]


def changes(
    conn: sqlite3.Connection,
    grant: store.Grant,
    readable: Callable[[str], tuple[str, ...] | None],
    since: int,
    limit: int,
) -> list[dict[str, Any]]:
    """Changes after ``since`` made while the grant existed, cut to the fields ``readable``
    (category -> field names, or None when the caller may not read it) lets through."""
    out: list[dict[str, Any]] = []
    rows = conn.execute(
        "SELECT seq, category, fields, at FROM profile_changes WHERE seq > ? AND at >= ? "
        "ORDER BY seq",
        (since, grant.created_at),
    )
    for seq, category, fields, at in rows:
        allowed = readable(category)
        if allowed is None:
            continue
        names = [f for f in json.loads(fields) if f in allowed]
        if names:
            out.append({"seq": seq, "category": category, "fields": names, "at": at})
            if len(out) == limit:
                break
    return out


def latest_seq(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT coalesce(max(seq), 0) FROM profile_changes").fetchone()[0]


# -- subscriptions --------------------------------------------------------------------------


@dataclass(frozen=True)
class Subscription:
    id: str
    client_id: str
    grant_id: int
    url: str
    categories: tuple[str, ...]
    salt: bytes
    created_at: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "categories": list(self.categories),
            "created_at": self.created_at,
        }


_SUB_COLS = "id, client_id, grant_id, url, categories, salt, created_at"


def _sub(row: tuple) -> Subscription:
    sid, cid, gid, url, cats, salt, created = row
    return Subscription(sid, cid, gid, url, tuple(json.loads(cats)), salt, created)


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
    count = conn.execute(
        "SELECT count(*) FROM subscriptions WHERE grant_id = ? AND deleted_at IS NULL",
        (grant.id,),
    ).fetchone()[0]
    if count >= MAX_PER_GRANT:
        raise ValidationError(
            f"a grant may have at most {MAX_PER_GRANT} subscriptions",
            hint="Delete one you no longer use first.",
        )
    row = (
        "sub_" + secrets.token_urlsafe(12),
        grant.client_id,
        grant.id,
        url,
        json.dumps(list(dict.fromkeys(categories))),
        secrets.token_bytes(32),
        clock.iso(clock.now()),
    )
    conn.execute(f"INSERT INTO subscriptions ({_SUB_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)", row)  # noqa: S608
    sub = _sub(row)
    return sub, "whsec_" + base64.b64encode(secret(vault, sub)).decode()


def secret(vault: Vault, sub: Subscription) -> bytes:
    """The subscription's 32-byte HMAC key."""
    return vault.derived_secret(SECRET_PURPOSE, sub.salt)


def for_grant(conn: sqlite3.Connection, grant_id: int) -> list[Subscription]:
    rows = conn.execute(
        f"SELECT {_SUB_COLS} FROM subscriptions WHERE grant_id = ? AND deleted_at IS NULL "  # noqa: S608
        "ORDER BY created_at, id",
        (grant_id,),
    )
    return [_sub(r) for r in rows]


def get(conn: sqlite3.Connection, sub_id: str) -> Subscription | None:
    row = conn.execute(
        f"SELECT {_SUB_COLS} FROM subscriptions WHERE id = ?",  # noqa: S608
        (sub_id,),
    ).fetchone()
    return _sub(row) if row else None


def delete(conn: sqlite3.Connection, grant_id: int, sub_id: str) -> None:
    """Stop a subscription of this grant; NotFound if the grant has none with this id."""
    changed = conn.execute(
        "UPDATE subscriptions SET deleted_at = ? WHERE id = ? AND grant_id = ? "
        "AND deleted_at IS NULL",
        (clock.iso(clock.now()), sub_id, grant_id),
    ).rowcount
    if not changed:
        raise NotFound("there is no subscription with this id for your grant")


def live_subscriptions(conn: sqlite3.Connection, category: str) -> list[Subscription]:
    rows = conn.execute(
        f"SELECT {_SUB_COLS} FROM subscriptions s WHERE deleted_at IS NULL AND EXISTS "  # noqa: S608
        "(SELECT 1 FROM grants g WHERE g.id = s.grant_id AND g.revoked_at IS NULL "
        "AND g.expires_at > ?)",
        (clock.now(),),
    )
    return [s for s in map(_sub, rows) if category in s.categories]


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
