"""OAuth state in the vault's database (schema 3): clients, grants, codes, tokens.

Every function takes the vault's connection; the rows are read and written by
``pds.db.oauth`` and become here what authlib and the pages ask (a ``Client``, a ``Grant``
with its parsed ``Access``, a ``Token``). Codes, tokens and client secrets are stored only
as SHA-256 hashes; the plaintext exists only in the response that hands it out. Writes that
must be atomic run inside the caller's ``pds.db.transaction``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin

from pds import clock
from pds.db import oauth as oauth_db
from pds.errors import NotFound
from pds.oauth.access import Access
from pds.oauth.display import shown

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
CODE_SECONDS = 600
CODE_VERIFIER_ATTEMPTS = 3
"""Wrong ``code_verifier`` answers one code survives; the next wrong one kills it."""
ACCESS_TOKEN_SECONDS = 3600


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def new_secret() -> str:
    """256 random bits, URL-safe: client secrets, codes, access and refresh tokens."""
    return secrets.token_urlsafe(32)


# -- clients --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Client(ClientMixin):
    """A registered client as authlib sees it: wraps the stored row
    (:class:`pds.db.oauth.ClientRow`) with the checks authlib calls."""

    client_id: str
    secret_hash: bytes | None
    name: str
    redirect_uris: tuple[str, ...]
    auth_method: str
    verified: bool
    created_at: str
    removed_at: str | None = None  # removed by the owner: unknown to the OAuth endpoints

    @property
    def public(self) -> bool:
        return self.auth_method == "none"

    # authlib's ClientMixin
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact string comparison with a registered URI (no normalisation at all). Redirect
        URIs are public, so a plain comparison is right (and works for any string)."""
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if self.secret_hash is None:
            return False
        return hmac.compare_digest(digest(client_secret), self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")

    def as_dict(self) -> dict[str, object]:
        return {
            "client_id": self.client_id,
            "name": self.name,
            "redirect_uris": list(self.redirect_uris),
            "public": self.public,
            "token_endpoint_auth_method": self.auth_method,
            "verified": self.verified,
            "created_at": self.created_at,
            "removed_at": self.removed_at,
        }


def _client(row: oauth_db.ClientRow) -> Client:
    """A client as read: its name with any invisible or text-reversing character marked
    (``pds.oauth.display``), as every page and command shows it."""
    return Client(
        row.client_id,
        row.secret_hash,
        shown(row.name),
        tuple(json.loads(row.redirect_uris)),
        row.auth_method,
        bool(row.verified),
        row.created_at,
        row.removed_at,
    )


def add_client(
    conn: sqlite3.Connection,
    *,
    name: str,
    redirect_uris: Iterable[str],
    auth_method: str,
    verified: bool,
    metadata: dict[str, object] | None = None,
) -> tuple[Client, str | None]:
    """A new client and its secret (None for a public client). The secret is not kept."""
    client_id = "pds-" + secrets.token_urlsafe(16)
    secret = None if auth_method == "none" else new_secret()
    row = oauth_db.ClientRow(
        client_id,
        digest(secret) if secret else None,
        name,
        json.dumps(list(redirect_uris)),
        auth_method,
        int(verified),
        clock.now_iso(),
        None,
    )
    oauth_db.add_client(conn, row, json.dumps(metadata or {}))
    return _client(row), secret


def get_client(conn: sqlite3.Connection, client_id: str) -> Client | None:
    """The client, removed or not (see ``Client.removed_at``)."""
    row = oauth_db.client(conn, client_id)
    return _client(row) if row else None


def list_clients(conn: sqlite3.Connection) -> list[Client]:
    """Every client ever registered, removed ones too, oldest first."""
    return [_client(r) for r in oauth_db.clients(conn)]


def remove_client(conn: sqlite3.Connection, client_id: str) -> bool:
    """Mark the client removed and forget its secret; False if it already was. Its grants,
    tokens and subscriptions are ended by the caller, in the same transaction."""
    return oauth_db.mark_client_removed(conn, client_id, clock.now_iso())


def client_metadata(conn: sqlite3.Connection, client_id: str) -> dict[str, Any]:
    """The RFC 7591 metadata the client registered with (for one the owner added, only the
    contact details they gave: ``pds.oauth.controller``)."""
    text = oauth_db.client_metadata(conn, client_id)
    meta = json.loads(text) if text is not None else {}
    return meta if isinstance(meta, dict) else {}


# -- grants ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """A grant with its access parsed: wraps the stored row (:class:`pds.db.oauth.GrantRow`)
    and says whether it is live."""

    id: int
    client_id: str
    scope: str
    access: Access
    purpose: str | None
    expires_at: int
    created_at: str
    revoked_at: str | None
    revoked_reason: str | None = None

    def is_active(self, at: int | None = None) -> bool:
        return self.revoked_at is None and (at or clock.now()) < self.expires_at

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "client_id": self.client_id,
            "scope": self.scope,
            "authorization_details": self.access.authorization_details(),
            "purpose": self.purpose,
            "created_at": self.created_at,
            "expires_at": clock.iso(self.expires_at),
            "revoked_at": self.revoked_at,
        }


def _grant(row: oauth_db.GrantRow) -> Grant:
    gid, cid, scope, access, purpose, exp, created, revoked, reason = row
    return Grant(gid, cid, scope, Access.from_json(access), purpose, exp, created, revoked, reason)


def create_grant(conn: sqlite3.Connection, client_id: str, access: Access) -> Grant:
    created = clock.now()
    row = oauth_db.add_grant(
        conn,
        client_id=client_id,
        scope=access.scope,
        access=access.to_json(),
        purpose=access.purpose,
        expires_at=created + access.expires_in,
        created_at=clock.iso(created),
    )
    return _grant(row)


def get_grant(conn: sqlite3.Connection, grant_id: int) -> Grant:
    row = oauth_db.grant(conn, grant_id)
    if row is None:
        raise NotFound(f"no grant with id {grant_id}", hint="See the ids with `pds grants list`.")
    return _grant(row)


def list_grants(conn: sqlite3.Connection, *, include_inactive: bool = False) -> list[Grant]:
    live_at = None if include_inactive else clock.now()
    return [_grant(r) for r in oauth_db.grants(conn, live_at=live_at)]


def revoke_grant(conn: sqlite3.Connection, grant_id: int, reason: str) -> bool:
    """Revoke a grant and every token it has; False if it was already revoked."""
    return oauth_db.revoke_grant(conn, grant_id, clock.now(), reason)


# -- authorization codes --------------------------------------------------------------------


@dataclass(frozen=True)
class AuthorizationCode:
    """An authorization code as authlib sees it: wraps the stored row
    (:class:`pds.db.oauth.CodeRow`), its ``used`` column read as used and wrong-verifier
    count."""

    code_hash: bytes
    client_id: str
    grant_id: int
    redirect_uri: str | None
    scope: str
    code_challenge: str
    code_challenge_method: str
    expires_at: int
    used: bool
    verifier_failures: int = 0

    @property
    def dead(self) -> bool:
        """Killed by :data:`CODE_VERIFIER_ATTEMPTS` wrong verifiers: never redeemable."""
        return self.verifier_failures >= CODE_VERIFIER_ATTEMPTS

    # what authlib's AuthorizationCodeGrant and CodeChallenge read
    def get_redirect_uri(self) -> str | None:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


def save_code(
    conn: sqlite3.Connection,
    code: str,
    *,
    client_id: str,
    grant_id: int,
    redirect_uri: str | None,
    scope: str,
    code_challenge: str,
    code_challenge_method: str,
) -> None:
    at = clock.now()
    row = oauth_db.CodeRow(
        digest(code),
        client_id,
        grant_id,
        redirect_uri,
        scope,
        code_challenge,
        code_challenge_method,
        at + CODE_SECONDS,
        0,
    )
    oauth_db.add_code(conn, row, forget_before=at - 86400)


# ``authorization_codes.used``: 1 once redeemed; 0 or less while not, minus the number of
# wrong code_verifiers sent for it (-3 after three: the code is dead).


def find_code(conn: sqlite3.Connection, code: str) -> AuthorizationCode | None:
    row = oauth_db.code(conn, digest(code))
    if row is None:
        return None
    used = row.used
    return AuthorizationCode(*row[:-1], used == 1, max(0, -used))


def consume_code(conn: sqlite3.Connection, code_hash: bytes) -> bool:
    """Mark the code used; True for exactly one caller, however many race for it."""
    return oauth_db.consume_code(conn, code_hash, CODE_VERIFIER_ATTEMPTS)


def fail_code_verifier(conn: sqlite3.Connection, code_hash: bytes) -> int:
    """Count one wrong ``code_verifier`` for an unused code; return how many it has had."""
    used = oauth_db.fail_code_verifier(conn, code_hash, CODE_VERIFIER_ATTEMPTS)
    return max(0, -used) if used is not None else 0


# -- tokens ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token(TokenMixin):
    id: int
    grant_id: int
    client_id: str
    scope: str
    issued_at: int
    expires_at: int
    rotated_at: int | None
    revoked_at: int | None
    grant: Grant
    is_refresh: bool = False

    def check_client(self, client: ClientMixin) -> bool:
        return self.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_at - self.issued_at

    def is_expired(self) -> bool:
        if self.is_refresh:
            return clock.now() >= self.grant.expires_at
        return clock.now() >= min(self.expires_at, self.grant.expires_at)

    def is_revoked(self) -> bool:
        # A rotated refresh token is dead too (its replay is caught before this is asked).
        return (
            self.revoked_at is not None
            or self.grant.revoked_at is not None
            or self.rotated_at is not None
        )

    def get_user(self) -> Grant:
        return self.grant

    def get_client(self) -> ClientMixin:  # pragma: no cover - not used by pds
        raise NotImplementedError


def _token(row: oauth_db.TokenRow | None, is_refresh: bool) -> Token | None:
    if row is None:
        return None
    return Token(*row[:8], grant=_grant(row.grant), is_refresh=is_refresh)


def find_access_token(conn: sqlite3.Connection, token: str) -> Token | None:
    return _token(oauth_db.token_by_access(conn, digest(token)), False)


def find_refresh_token(conn: sqlite3.Connection, token: str) -> Token | None:
    return _token(oauth_db.token_by_refresh(conn, digest(token)), True)


def save_token(
    conn: sqlite3.Connection,
    *,
    grant_id: int,
    client_id: str,
    access_token: str,
    refresh_token: str | None,
    scope: str,
    expires_in: int,
) -> int:
    at = clock.now()
    return oauth_db.add_token(
        conn,
        grant_id=grant_id,
        client_id=client_id,
        access_hash=digest(access_token),
        refresh_hash=digest(refresh_token) if refresh_token else None,
        scope=scope,
        issued_at=at,
        expires_at=at + expires_in,
    )


def rotate_refresh(conn: sqlite3.Connection, token_id: int) -> bool:
    """Retire a refresh token (and its access token); True for exactly one caller."""
    return oauth_db.rotate_refresh(conn, token_id, clock.now())


def revoke_token(conn: sqlite3.Connection, token_id: int) -> None:
    oauth_db.revoke_token(conn, token_id, clock.now())


def update_grant(conn: sqlite3.Connection, grant_id: int, access: Access, expires_at: int) -> Grant:
    """Store a narrowed access (and expiry) for a live grant (the owner's policies changed)."""
    row = oauth_db.update_grant(
        conn, grant_id, scope=access.scope, access=access.to_json(), expires_at=expires_at
    )
    return _grant(row)


def narrow_tokens(conn: sqlite3.Connection, grant_id: int, keep: set[str]) -> None:
    """Cut every live token of the grant down to the scopes in ``keep`` (a narrowed grant)."""
    for token_id, scope in oauth_db.live_token_scopes(conn, grant_id):
        narrowed = " ".join(s for s in scope.split() if s in keep)
        oauth_db.set_token_scope(conn, token_id, narrowed)
