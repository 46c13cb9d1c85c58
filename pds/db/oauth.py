"""The OAuth tables (schemas 3 and 5): clients, grants, authorization codes, tokens, receipts.

Rows come back as named tuples of plain values; ``pds.oauth.store`` and
``pds.oauth.receipts`` turn them into the service's objects (a client that authlib can ask,
a grant whose access is parsed). Codes, tokens and secrets arrive here already hashed.
Nothing here opens a transaction: writes that must be atomic run inside the caller's
``pds.db.transaction``.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from pds import clock

# -- clients --------------------------------------------------------------------------------


class ClientRow(NamedTuple):
    client_id: str
    secret_hash: bytes | None
    name: str
    redirect_uris: str  # a JSON list
    auth_method: str
    verified: int
    created_at: str
    removed_at: str | None


_CLIENT_COLS = "client_id, secret_hash, name, redirect_uris, auth_method, verified, created_at"
# a removed client keeps its row (its grants, receipts and log entries name it): the time of
# its removal is kept in its metadata, under a key no RFC 7591 registration can set
REMOVED = "$.pds_removed_at"
_CLIENT_SELECT = f"{_CLIENT_COLS}, json_extract(metadata, '{REMOVED}')"


def add_client(conn: sqlite3.Connection, row: ClientRow, metadata: str) -> None:
    """Insert a client (``row.removed_at`` is ignored) with its RFC 7591 ``metadata`` (JSON)."""
    conn.execute(
        f"INSERT INTO clients ({_CLIENT_COLS}, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
        (*row[:7], metadata),
    )


def client(conn: sqlite3.Connection, client_id: str) -> ClientRow | None:
    row = conn.execute(
        f"SELECT {_CLIENT_SELECT} FROM clients WHERE client_id = ?",  # noqa: S608
        (client_id,),
    ).fetchone()
    return ClientRow(*row) if row else None


def clients(conn: sqlite3.Connection) -> list[ClientRow]:
    """Every client ever registered, removed ones too, oldest first."""
    rows = conn.execute(f"SELECT {_CLIENT_SELECT} FROM clients ORDER BY rowid")  # noqa: S608
    return [ClientRow(*r) for r in rows]


def client_metadata(conn: sqlite3.Connection, client_id: str) -> str | None:
    """The client's metadata as stored (JSON text), or None for an unknown client."""
    row = conn.execute("SELECT metadata FROM clients WHERE client_id = ?", (client_id,)).fetchone()
    return row[0] if row else None


def mark_client_removed(conn: sqlite3.Connection, client_id: str, at: str) -> bool:
    """Mark the client removed at ``at`` and forget its secret; False if it already was."""
    return bool(
        conn.execute(
            f"UPDATE clients SET secret_hash = NULL, metadata = json_set(metadata, '{REMOVED}', ?) "  # noqa: S608
            f"WHERE client_id = ? AND json_extract(metadata, '{REMOVED}') IS NULL",
            (at, client_id),
        ).rowcount
    )


def set_redirect_uris(conn: sqlite3.Connection, client_id: str, redirect_uris: str) -> None:
    """Replace the client's registered redirect URIs (``redirect_uris``: a JSON list)."""
    conn.execute(
        "UPDATE clients SET redirect_uris = ? WHERE client_id = ?", (redirect_uris, client_id)
    )


def open_grant_ids(conn: sqlite3.Connection, client_id: str) -> list[int]:
    """The client's grants not yet revoked (expired ones too), oldest first."""
    rows = conn.execute(
        "SELECT id FROM grants WHERE client_id = ? AND revoked_at IS NULL ORDER BY id",
        (client_id,),
    )
    return [r[0] for r in rows]


def revoke_client_tokens(conn: sqlite3.Connection, client_id: str, at: int) -> None:
    conn.execute(
        "UPDATE tokens SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL",
        (at, client_id),
    )


def delete_client_codes(conn: sqlite3.Connection, client_id: str) -> None:
    conn.execute("DELETE FROM authorization_codes WHERE client_id = ?", (client_id,))


def count_client_subscriptions(conn: sqlite3.Connection, client_id: str) -> int:
    """How many webhook subscriptions of the client are not deleted."""
    return conn.execute(
        "SELECT count(*) FROM subscriptions WHERE client_id = ? AND deleted_at IS NULL",
        (client_id,),
    ).fetchone()[0]


def stop_client_subscriptions(conn: sqlite3.Connection, client_id: str, at: str) -> int:
    """Mark every live webhook subscription of the client deleted; how many were."""
    return conn.execute(
        "UPDATE subscriptions SET deleted_at = ? WHERE client_id = ? AND deleted_at IS NULL",
        (at, client_id),
    ).rowcount


# -- grants ---------------------------------------------------------------------------------


class GrantRow(NamedTuple):
    id: int
    client_id: str
    scope: str
    access: str  # JSON (pds.oauth.access.Access)
    purpose: str | None
    expires_at: int
    created_at: str
    revoked_at: str | None
    revoked_reason: str | None


_GRANT_COLS = (
    "id, client_id, scope, access, purpose, expires_at, created_at, revoked_at, revoked_reason"
)


def add_grant(
    conn: sqlite3.Connection,
    *,
    client_id: str,
    scope: str,
    access: str,
    purpose: str | None,
    expires_at: int,
    created_at: str,
) -> GrantRow:
    sql = (
        "INSERT INTO grants (client_id, scope, access, purpose, expires_at, created_at) "  # noqa: S608
        f"VALUES (?, ?, ?, ?, ?, ?) RETURNING {_GRANT_COLS}"
    )
    row = conn.execute(sql, (client_id, scope, access, purpose, expires_at, created_at))
    return GrantRow(*row.fetchone())


def grant(conn: sqlite3.Connection, grant_id: int) -> GrantRow | None:
    row = conn.execute(
        f"SELECT {_GRANT_COLS} FROM grants WHERE id = ?",  # noqa: S608
        (grant_id,),
    ).fetchone()
    return GrantRow(*row) if row else None


def grants(conn: sqlite3.Connection, *, live_at: int | None = None) -> list[GrantRow]:
    """Every grant by id; with ``live_at``, only those not revoked and not expired then."""
    sql = f"SELECT {_GRANT_COLS} FROM grants"  # noqa: S608
    args: tuple = ()
    if live_at is not None:
        sql += " WHERE revoked_at IS NULL AND expires_at > ?"
        args = (live_at,)
    return [GrantRow(*r) for r in conn.execute(sql + " ORDER BY id", args)]


def revoke_grant(conn: sqlite3.Connection, grant_id: int, at: int, reason: str) -> bool:
    """Revoke a grant and every token it has at ``at``; False if it was already revoked."""
    changed = conn.execute(
        "UPDATE grants SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL",
        (clock.iso(at), reason, grant_id),
    ).rowcount
    conn.execute(
        "UPDATE tokens SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL",
        (at, grant_id),
    )
    return bool(changed)


def update_grant(
    conn: sqlite3.Connection, grant_id: int, *, scope: str, access: str, expires_at: int
) -> GrantRow:
    row = conn.execute(
        f"UPDATE grants SET scope = ?, access = ?, expires_at = ? WHERE id = ? "  # noqa: S608
        f"RETURNING {_GRANT_COLS}",
        (scope, access, expires_at, grant_id),
    ).fetchone()
    return GrantRow(*row)


# -- authorization codes --------------------------------------------------------------------

# ``authorization_codes.used``: 1 once redeemed; 0 or less while not, minus the number of
# wrong code_verifiers sent for it.


class CodeRow(NamedTuple):
    code_hash: bytes
    client_id: str
    grant_id: int
    redirect_uri: str | None
    scope: str
    code_challenge: str
    code_challenge_method: str
    expires_at: int
    used: int


def add_code(conn: sqlite3.Connection, row: CodeRow, *, forget_before: int) -> None:
    """Store a new, unused code (``row.used`` is ignored), first deleting codes that expired
    before ``forget_before``."""
    conn.execute("DELETE FROM authorization_codes WHERE expires_at < ?", (forget_before,))
    conn.execute(
        "INSERT INTO authorization_codes (code_hash, client_id, grant_id, redirect_uri, scope, "
        "code_challenge, code_challenge_method, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        row[:8],
    )


def code(conn: sqlite3.Connection, code_hash: bytes) -> CodeRow | None:
    row = conn.execute(
        "SELECT code_hash, client_id, grant_id, redirect_uri, scope, code_challenge, "
        "code_challenge_method, expires_at, used FROM authorization_codes WHERE code_hash = ?",
        (code_hash,),
    ).fetchone()
    return CodeRow(*row) if row else None


def consume_code(conn: sqlite3.Connection, code_hash: bytes, attempts: int) -> bool:
    """Mark the code used if it is unused and has had fewer than ``attempts`` wrong
    verifiers; True for exactly one caller, however many race for it."""
    return (
        conn.execute(
            "UPDATE authorization_codes SET used = 1 WHERE code_hash = ? AND used <= 0 "
            "AND used > ?",
            (code_hash, -attempts),
        ).rowcount
        == 1
    )


def fail_code_verifier(conn: sqlite3.Connection, code_hash: bytes, attempts: int) -> int | None:
    """Count one wrong verifier for an unused code with fewer than ``attempts`` of them;
    the code's ``used`` afterwards (None: no such code)."""
    conn.execute(
        "UPDATE authorization_codes SET used = used - 1 WHERE code_hash = ? AND used <= 0 "
        "AND used > ?",
        (code_hash, -attempts),
    )
    row = conn.execute(
        "SELECT used FROM authorization_codes WHERE code_hash = ?", (code_hash,)
    ).fetchone()
    return row[0] if row else None


# -- tokens ---------------------------------------------------------------------------------


class TokenRow(NamedTuple):
    id: int
    grant_id: int
    client_id: str
    scope: str
    issued_at: int
    expires_at: int
    rotated_at: int | None
    revoked_at: int | None
    grant: GrantRow


_JOINED_SELECT = (
    "SELECT t.id, t.grant_id, t.client_id, t.scope, t.issued_at, t.expires_at, t.rotated_at, "
    "t.revoked_at, g.id, g.client_id, g.scope, g.access, g.purpose, g.expires_at, "
    "g.created_at, g.revoked_at, g.revoked_reason "
    "FROM tokens AS t JOIN grants AS g ON g.id = t.grant_id WHERE "
)


def _token(row: tuple | None) -> TokenRow | None:
    return None if row is None else TokenRow(*row[:8], GrantRow(*row[8:]))


def token_by_access(conn: sqlite3.Connection, access_hash: bytes) -> TokenRow | None:
    """The token (with its grant) whose access token hashes to ``access_hash``."""
    return _token(conn.execute(_JOINED_SELECT + "t.access_hash = ?", (access_hash,)).fetchone())


def token_by_refresh(conn: sqlite3.Connection, refresh_hash: bytes) -> TokenRow | None:
    """The token (with its grant) whose refresh token hashes to ``refresh_hash``."""
    return _token(conn.execute(_JOINED_SELECT + "t.refresh_hash = ?", (refresh_hash,)).fetchone())


def add_token(
    conn: sqlite3.Connection,
    *,
    grant_id: int,
    client_id: str,
    access_hash: bytes,
    refresh_hash: bytes | None,
    scope: str,
    issued_at: int,
    expires_at: int,
) -> int:
    """Store a token pair; its id."""
    return conn.execute(
        "INSERT INTO tokens (grant_id, client_id, access_hash, refresh_hash, scope, issued_at, "
        "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (grant_id, client_id, access_hash, refresh_hash, scope, issued_at, expires_at),
    ).fetchone()[0]


def rotate_refresh(conn: sqlite3.Connection, token_id: int, at: int) -> bool:
    """Retire a live, unrotated token pair at ``at``; True for exactly one caller."""
    return (
        conn.execute(
            "UPDATE tokens SET rotated_at = ? WHERE id = ? AND rotated_at IS NULL "
            "AND revoked_at IS NULL",
            (at, token_id),
        ).rowcount
        == 1
    )


def revoke_token(conn: sqlite3.Connection, token_id: int, at: int) -> None:
    conn.execute(
        "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        (at, token_id),
    )


def live_token_scopes(conn: sqlite3.Connection, grant_id: int) -> list[tuple[int, str]]:
    """``(id, scope)`` of every token of the grant not revoked."""
    return conn.execute(
        "SELECT id, scope FROM tokens WHERE grant_id = ? AND revoked_at IS NULL", (grant_id,)
    ).fetchall()


def set_token_scope(conn: sqlite3.Connection, token_id: int, scope: str) -> None:
    conn.execute("UPDATE tokens SET scope = ? WHERE id = ?", (scope, token_id))


# -- consent receipts -----------------------------------------------------------------------


class ReceiptRow(NamedTuple):
    id: int
    grant_id: int
    receipt_id: str
    kind: str
    jws: str
    created_at: str


def add_receipt(
    conn: sqlite3.Connection,
    *,
    grant_id: int,
    receipt_id: str,
    kind: str,
    jws: str,
    created_at: str,
) -> int:
    """Store a signed receipt; its row id."""
    return conn.execute(
        "INSERT INTO receipts (grant_id, receipt_id, kind, jws, created_at) "
        "VALUES (?, ?, ?, ?, ?) RETURNING id",
        (grant_id, receipt_id, kind, jws, created_at),
    ).fetchone()[0]


def receipts(conn: sqlite3.Connection, grant_id: int) -> list[ReceiptRow]:
    """Every receipt of a grant, oldest first."""
    rows = conn.execute(
        "SELECT id, grant_id, receipt_id, kind, jws, created_at FROM receipts "
        "WHERE grant_id = ? ORDER BY id",
        (grant_id,),
    )
    return [ReceiptRow(*r) for r in rows]


def grant_exists(conn: sqlite3.Connection, grant_id: int) -> bool:
    return conn.execute("SELECT 1 FROM grants WHERE id = ?", (grant_id,)).fetchone() is not None
