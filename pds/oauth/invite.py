"""Invite an auditor without any OAuth flow on their side: ``pds audit invite``.

The owner names the auditor; pds registers a client for them (checked by the owner, with no
redirect URI: it can never run an authorization flow), grants it ``audit:read`` for a number
of days, issues its consent receipt, and hands out two secrets, each shown once and stored
only as its SHA-256 hash (as every token):

- an access token with ``audit:read`` that lives as long as the grant, for scripts
  (``pds audit verify --url``, ``pds-verify url``);
- a one-time sign-in secret for the auditor's web page, stored as a token of the grant whose
  only scope is :data:`SIGNIN_SCOPE` (so no API and no other sign-in form takes it). It
  lives at most :data:`LINK_SECONDS` and is spent by its first use (:func:`redeem_link`).

The grant is like any business's: the owner sees it among the grants and revoking it ends
both tokens and the auditor's page session. The invite writes one ``auditor.invite`` entry,
in the same transaction, naming the client and grant (never a secret).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pds import clock
from pds.db import transaction
from pds.errors import ValidationError
from pds.oauth import receipts, store
from pds.oauth.access import AUDIT_SCOPE, Access
from pds.oauth.display import checked_name

if TYPE_CHECKING:
    from pds.vault import Vault

SIGNIN_SCOPE = "audit:signin"
"""The scope of a sign-in link's stored token: known to no API, taken only by the welcome page."""
DEFAULT_DAYS = 30
MAX_DAYS = 365
LINK_SECONDS = 7 * 24 * 3600
"""A sign-in link works once, within this time (or the grant's, if shorter)."""


@dataclass(frozen=True)
class Invitation:
    """What :func:`invite_auditor` made; ``token`` and ``link_secret`` exist only here."""

    client: store.Client
    grant: store.Grant
    token: str
    link_secret: str
    link_expires_at: int


def invite_auditor(vault: Vault, name: str, days: int = DEFAULT_DAYS) -> Invitation:
    """Register the auditor ``name``, grant it ``audit:read`` for ``days`` days and issue its
    token and one-time sign-in secret; ValidationError for a bad name or number of days."""
    name = checked_name(name, "the auditor's name", "auditor")
    if not 1 <= days <= MAX_DAYS:
        raise ValidationError(
            f"an auditor may be invited for 1 to {MAX_DAYS} days, not {days}",
            hint="Invite again when the time is up.",
        )
    seconds = days * 86400
    token, link_secret = store.new_secret(), store.new_secret()
    link_seconds = min(LINK_SECONDS, seconds)
    with transaction(vault.conn) as conn:
        client, _ = store.add_client(
            conn,
            name=name,
            redirect_uris=[],
            auth_method="none",
            verified=True,
            metadata={"pds_auditor": True},
        )
        grant = store.create_grant(conn, client.client_id, Access(audit=True, expires_in=seconds))
        receipts.issue(vault, grant)
        for secret, scope, lifetime in (
            (token, AUDIT_SCOPE, seconds),
            (link_secret, SIGNIN_SCOPE, link_seconds),
        ):
            store.save_token(
                conn,
                grant_id=grant.id,
                client_id=client.client_id,
                access_token=secret,
                refresh_token=None,
                scope=scope,
                expires_in=lifetime,
            )
        vault.audit(
            "auditor.invite",
            actor="owner",
            client_id=client.client_id,
            grant_id=grant.id,
            detail={"name": name, "days": days, "scope": AUDIT_SCOPE},
        )
    # Counted from the grant's creation, as its lifetime is (a clock read after the
    # transaction could be a second later on a busy machine).
    link_expires_at = clock.epoch(grant.created_at) + link_seconds
    return Invitation(client, grant, token, link_secret, link_expires_at)


def redeem_link(vault: Vault, secret: str) -> store.Token | None:
    """Spend a sign-in secret: its token (whose grant the auditor signs in with) the first
    time, None ever after, and None for anything that is not a live sign-in secret."""
    if not secret:
        return None
    found = store.find_access_token(vault.conn, secret)
    if (
        found is None
        or found.scope != SIGNIN_SCOPE
        or found.is_expired()
        or found.is_revoked()
        or not found.grant.access.audit
    ):
        return None
    with transaction(vault.conn) as conn:
        spent = store.rotate_refresh(conn, found.id)  # True for exactly one caller
    return found if spent else None
