"""The owner's side of OAuth: add and list clients, list and revoke grants. Each change
writes one audit entry in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pds.errors import ValidationError
from pds.oauth import store
from pds.oauth.display import unsafe_name
from pds.oauth.server import redirect_uri_problem
from pds.vault.db import transaction

if TYPE_CHECKING:
    from pds.vault import Vault


def add_client(
    vault: Vault, name: str, redirect_uris: Sequence[str], *, public: bool = False
) -> tuple[store.Client, str | None]:
    """Register a business the owner knows (a *verified* client); the secret is shown once."""
    name = name.strip()
    if not name:
        raise ValidationError("the client's name is empty", hint="Give the business's name.")
    if problem := unsafe_name(name):
        raise ValidationError(problem, hint="Type the business's name as it should read.")
    if not redirect_uris:
        raise ValidationError(
            "a client needs at least one redirect URI",
            hint="Pass --redirect-uri with the URL the business receives codes at.",
        )
    for uri in redirect_uris:
        if problem := redirect_uri_problem(uri):
            raise ValidationError(problem, hint="Use https, or http on 127.0.0.1 or localhost.")
    with transaction(vault.conn):
        client, secret = store.add_client(
            vault.conn,
            name=name,
            redirect_uris=list(dict.fromkeys(redirect_uris)),
            auth_method="none" if public else "client_secret_basic",
            verified=True,
        )
        vault.audit(
            "client.register",
            actor="owner",
            client_id=client.client_id,
            detail={"name": name, "verified": True, "public": public},
        )
    return client, secret


def list_clients(vault: Vault) -> list[store.Client]:
    return store.list_clients(vault.conn)


def list_grants(vault: Vault, *, include_inactive: bool = False) -> list[store.Grant]:
    return store.list_grants(vault.conn, include_inactive=include_inactive)


def revoke_grant(vault: Vault, grant_id: int) -> store.Grant:
    """Revoke a grant: its live tokens fail on their next call, its refresh token is dead."""
    grant = store.get_grant(vault.conn, grant_id)
    if grant.revoked_at is not None:
        raise ValidationError(
            f"grant {grant_id} was already revoked at {grant.revoked_at}",
            hint="See the active ones with `pds grants list`.",
        )
    with transaction(vault.conn):
        store.revoke_grant(vault.conn, grant_id, "revoked by the owner")
        vault.audit(
            "grant.revoke",
            actor="owner",
            client_id=grant.client_id,
            grant_id=grant_id,
            purpose=grant.purpose,
        )
    return store.get_grant(vault.conn, grant_id)
