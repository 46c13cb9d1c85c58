"""OAuth state in the vault's database (schema 3): clients, grants, codes, tokens.

Every function takes the vault's connection. Codes, tokens and client secrets are stored
only as SHA-256 hashes; the plaintext exists only in the response that hands it out. Writes
that must be atomic run inside the caller's ``pds.db.transaction``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin

from pds import clock
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


_CLIENT_COLS = "client_id, secret_hash, name, redirect_uris, auth_method, verified, created_at"
# a removed client keeps its row (its grants, receipts and log entries name it): the time of
# its removal is kept in its metadata, under a key no RFC 7591 registration can set
REMOVED = "$.pds_removed_at"
_CLIENT_SELECT = f"{_CLIENT_COLS}, json_extract(metadata, '{REMOVED}')"


def _client(row: tuple) -> Client:
    """A client as read: its name with any invisible or text-reversing character marked
    (``pds.oauth.display``), as every page and command shows it."""
    cid, sh, name, uris, method, verified, created, *removed = row
    return Client(
        cid,
        sh,
        shown(name),
        tuple(json.loads(uris)),
        method,
        bool(verified),
        created,
        removed[0] if removed else None,
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
    row = (
        client_id,
        digest(secret) if secret else None,
        name,
        json.dumps(list(redirect_uris)),
        auth_method,
        int(verified),
        clock.iso(time.time()),
    )
    conn.execute(
        f"INSERT INTO clients ({_CLIENT_COLS}, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
        (*row, json.dumps(metadata or {})),
    )
    return _client(row), secret


def get_client(conn: sqlite3.Connection, client_id: str) -> Client | None:
    """The client, removed or not (see ``Client.removed_at``)."""
    row = conn.execute(
        f"SELECT {_CLIENT_SELECT} FROM clients WHERE client_id = ?",  # noqa: S608
        (client_id,),
    ).fetchone()
    return _client(row) if row else None


def list_clients(conn: sqlite3.Connection) -> list[Client]:
    """Every client ever registered, removed ones too, oldest first."""
    rows = conn.execute(f"SELECT {_CLIENT_SELECT} FROM clients ORDER BY rowid")  # noqa: S608
    return [_client(r) for r in rows]


def remove_client(conn: sqlite3.Connection, client_id: str) -> bool:
    """Mark the client removed and forget its secret; False if it already was. Its grants,
    tokens and subscriptions are ended by the caller, in the same transaction."""
    return bool(
        conn.execute(
            f"UPDATE clients SET secret_hash = NULL, metadata = json_set(metadata, '{REMOVED}', ?) "  # noqa: S608
            f"WHERE client_id = ? AND json_extract(metadata, '{REMOVED}') IS NULL",
            (clock.iso(time.time()), client_id),
        ).rowcount
    )


def client_metadata(conn: sqlite3.Connection, client_id: str) -> dict[str, Any]:
    """The RFC 7591 metadata the client registered with (empty for one the owner added)."""
    row = conn.execute("SELECT metadata FROM clients WHERE client_id = ?", (client_id,)).fetchone()
    meta = json.loads(row[0]) if row else {}
    return meta if isinstance(meta, dict) else {}


# -- grants ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
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


_GRANT_COLS = (
    "id, client_id, scope, access, purpose, expires_at, created_at, revoked_at, revoked_reason"
)


def _grant(row: tuple) -> Grant:
    gid, cid, scope, access, purpose, exp, created, revoked, reason = row
    return Grant(gid, cid, scope, Access.from_json(access), purpose, exp, created, revoked, reason)


def create_grant(conn: sqlite3.Connection, client_id: str, access: Access) -> Grant:
    created = time.time()
    sql = (
        "INSERT INTO grants (client_id, scope, access, purpose, expires_at, created_at) "  # noqa: S608
        f"VALUES (?, ?, ?, ?, ?, ?) RETURNING {_GRANT_COLS}"
    )
    row = conn.execute(
        sql,
        (
            client_id,
            access.scope,
            access.to_json(),
            access.purpose,
            int(created) + access.expires_in,
            clock.iso(created),
        ),
    ).fetchone()
    return _grant(row)


def get_grant(conn: sqlite3.Connection, grant_id: int) -> Grant:
    row = conn.execute(
        f"SELECT {_GRANT_COLS} FROM grants WHERE id = ?",  # noqa: S608
        (grant_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"no grant with id {grant_id}", hint="See the ids with `pds grants list`.")
    return _grant(row)


def list_grants(conn: sqlite3.Connection, *, include_inactive: bool = False) -> list[Grant]:
    sql = f"SELECT {_GRANT_COLS} FROM grants"  # noqa: S608
    args: tuple = ()
    if not include_inactive:
        sql += " WHERE revoked_at IS NULL AND expires_at > ?"
        args = (clock.now(),)
    return [_grant(r) for r in conn.execute(sql + " ORDER BY id", args)]


def revoke_grant(conn: sqlite3.Connection, grant_id: int, reason: str) -> bool:
    """Revoke a grant and every token it has; False if it was already revoked."""
    at = clock.now()
    changed = conn.execute(
        "UPDATE grants SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL",
        (clock.iso(at), reason, grant_id),
    ).rowcount
    conn.execute(
        "UPDATE tokens SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL",
        (at, grant_id),
    )
    return bool(changed)


# -- authorization codes --------------------------------------------------------------------


@dataclass(frozen=True)
class AuthorizationCode:
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
    conn.execute("DELETE FROM authorization_codes WHERE expires_at < ?", (at - 86400,))
    conn.execute(
        "INSERT INTO authorization_codes (code_hash, client_id, grant_id, redirect_uri, scope, "
        "code_challenge, code_challenge_method, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            digest(code),
            client_id,
            grant_id,
            redirect_uri,
            scope,
            code_challenge,
            code_challenge_method,
            at + CODE_SECONDS,
        ),
    )


# ``authorization_codes.used``: 1 once redeemed; 0 or less while not, minus the number of
# wrong code_verifiers sent for it (-3 after three: the code is dead).


def find_code(conn: sqlite3.Connection, code: str) -> AuthorizationCode | None:
    row = conn.execute(
        "SELECT code_hash, client_id, grant_id, redirect_uri, scope, code_challenge, "
        "code_challenge_method, expires_at, used FROM authorization_codes WHERE code_hash = ?",
        (digest(code),),
    ).fetchone()
    if row is None:
        return None
    used = row[-1]
    return AuthorizationCode(*row[:-1], used == 1, max(0, -used))


def consume_code(conn: sqlite3.Connection, code_hash: bytes) -> bool:
    """Mark the code used; True for exactly one caller, however many race for it."""
    return (
        conn.execute(
            "UPDATE authorization_codes SET used = 1 WHERE code_hash = ? AND used <= 0 "
            "AND used > ?",
            (code_hash, -CODE_VERIFIER_ATTEMPTS),
        ).rowcount
        == 1
    )


def fail_code_verifier(conn: sqlite3.Connection, code_hash: bytes) -> int:
    """Count one wrong ``code_verifier`` for an unused code; return how many it has had."""
    conn.execute(
        "UPDATE authorization_codes SET used = used - 1 WHERE code_hash = ? AND used <= 0 "
        "AND used > ?",
        (code_hash, -CODE_VERIFIER_ATTEMPTS),
    )
    row = conn.execute(
        "SELECT used FROM authorization_codes WHERE code_hash = ?", (code_hash,)
    ).fetchone()
    return max(0, -row[0]) if row else 0


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


_JOINED_SELECT = (
    "SELECT t.id, t.grant_id, t.client_id, t.scope, t.issued_at, t.expires_at, t.rotated_at, "
    "t.revoked_at, g.id, g.client_id, g.scope, g.access, g.purpose, g.expires_at, "
    "g.created_at, g.revoked_at, g.revoked_reason "
    "FROM tokens AS t JOIN grants AS g ON g.id = t.grant_id WHERE "
)


def _token(row: tuple | None, is_refresh: bool) -> Token | None:
    if row is None:
        return None
    return Token(*row[:8], grant=_grant(row[8:]), is_refresh=is_refresh)


def find_access_token(conn: sqlite3.Connection, token: str) -> Token | None:
    row = conn.execute(_JOINED_SELECT + "t.access_hash = ?", (digest(token),)).fetchone()
    return _token(row, False)


def find_refresh_token(conn: sqlite3.Connection, token: str) -> Token | None:
    row = conn.execute(_JOINED_SELECT + "t.refresh_hash = ?", (digest(token),)).fetchone()
    return _token(row, True)


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
    return conn.execute(
        "INSERT INTO tokens (grant_id, client_id, access_hash, refresh_hash, scope, issued_at, "
        "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            grant_id,
            client_id,
            digest(access_token),
            digest(refresh_token) if refresh_token else None,
            scope,
            at,
            at + expires_in,
        ),
    ).fetchone()[0]


def rotate_refresh(conn: sqlite3.Connection, token_id: int) -> bool:
    """Retire a refresh token (and its access token); True for exactly one caller."""
    return (
        conn.execute(
            "UPDATE tokens SET rotated_at = ? WHERE id = ? AND rotated_at IS NULL "
            "AND revoked_at IS NULL",
            (clock.now(), token_id),
        ).rowcount
        == 1
    )


def revoke_token(conn: sqlite3.Connection, token_id: int) -> None:
    conn.execute(
        "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        (clock.now(), token_id),
    )


def update_grant(conn: sqlite3.Connection, grant_id: int, access: Access, expires_at: int) -> Grant:
    """Store a narrowed access (and expiry) for a live grant (the owner's policies changed)."""
    row = conn.execute(
        f"UPDATE grants SET scope = ?, access = ?, expires_at = ? WHERE id = ? "  # noqa: S608
        f"RETURNING {_GRANT_COLS}",
        (access.scope, access.to_json(), expires_at, grant_id),
    ).fetchone()
    return _grant(row)


def narrow_tokens(conn: sqlite3.Connection, grant_id: int, keep: set[str]) -> None:
    """Cut every live token of the grant down to the scopes in ``keep`` (a narrowed grant)."""
    tokens = conn.execute(
        "SELECT id, scope FROM tokens WHERE grant_id = ? AND revoked_at IS NULL", (grant_id,)
    ).fetchall()
    for token_id, scope in tokens:
        narrowed = " ".join(s for s in scope.split() if s in keep)
        conn.execute("UPDATE tokens SET scope = ? WHERE id = ?", (narrowed, token_id))
