"""The owner's side of OAuth: add, list and remove clients, list, narrow and revoke grants.
Each change writes one audit entry in the same transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from pds import clock
from pds.db import oauth as oauth_db
from pds.db import transaction
from pds.errors import NotFound, ValidationError
from pds.oauth import controller, receipts, store
from pds.oauth.controller import Controller
from pds.oauth.display import checked_name, unsafe_metadata
from pds.oauth.redirects import redirect_uri_problem

if TYPE_CHECKING:
    from pds.vault import Vault


def add_client(
    vault: Vault,
    name: str,
    redirect_uris: Sequence[str],
    *,
    public: bool = False,
    contact: Controller | None = None,
) -> tuple[store.Client, str | None]:
    """Register a business the owner knows (a *verified* client); the secret is shown once.
    ``contact``: how to reach it, as its consent receipts will name it."""
    name = checked_name(name, "the client's name", "business")
    if not redirect_uris:
        raise ValidationError(
            "a client needs at least one redirect URI",
            hint="Pass --redirect-uri with the URL the business receives codes at.",
        )
    for uri in redirect_uris:
        if problem := redirect_uri_problem(uri):
            raise ValidationError(problem, hint="Use https, or http on 127.0.0.1 or localhost.")
    metadata = contact.as_metadata() if contact else {}
    if problem := unsafe_metadata(metadata) or controller.problem(metadata):
        raise ValidationError(problem, hint="Give the business's details as they should read.")
    with transaction(vault.conn):
        client, secret = store.add_client(
            vault.conn,
            name=name,
            redirect_uris=list(dict.fromkeys(redirect_uris)),
            auth_method="none" if public else "client_secret_basic",
            verified=True,
            metadata=metadata,
        )
        vault.audit(
            "client.register",
            actor="owner",
            client_id=client.client_id,
            detail={"name": name, "verified": True, "public": public},
        )
    return client, secret


def add_redirect_uri(vault: Vault, client_id: str, redirect_uri: str) -> store.Client:
    """Register one more redirect URI for a client the owner added (each still matched
    exactly); the client as it is now. One ``client.update`` entry when it was new."""
    if problem := redirect_uri_problem(redirect_uri):
        raise ValidationError(problem, hint="Use https, or http on 127.0.0.1 or localhost.")
    client = store.get_client(vault.conn, client_id)
    if client is None or client.removed_at is not None:
        raise NotFound(f"no client {client_id}")
    if redirect_uri in client.redirect_uris:
        return client
    uris = [*client.redirect_uris, redirect_uri]
    with transaction(vault.conn):
        oauth_db.set_redirect_uris(vault.conn, client_id, json.dumps(uris))
        vault.audit(
            "client.update",
            actor="owner",
            client_id=client_id,
            detail={"redirect_uri_added": redirect_uri},
        )
    return replace(client, redirect_uris=tuple(uris))


def list_clients(vault: Vault) -> list[store.Client]:
    return store.list_clients(vault.conn)


def list_grants(vault: Vault, *, include_inactive: bool = False) -> list[store.Grant]:
    return store.list_grants(vault.conn, include_inactive=include_inactive)


def revoke_grant(vault: Vault, grant_id: int) -> store.Grant:
    """Revoke a grant: its live tokens fail on their next call, its refresh token is dead,
    and its withdraw receipt is issued."""
    grant = store.get_grant(vault.conn, grant_id)
    if grant.revoked_at is not None:
        raise ValidationError(
            f"grant {grant_id} was already revoked at {grant.revoked_at}",
            hint="See the active ones with `pds grants list`.",
        )
    with transaction(vault.conn):
        receipts.revoke(vault, grant_id, "revoked by the owner")
        vault.audit(
            "grant.revoke",
            actor="owner",
            client_id=grant.client_id,
            grant_id=grant_id,
            purpose=grant.purpose,
        )
    return store.get_grant(vault.conn, grant_id)


def drop_category(vault: Vault, grant_id: int, category: str) -> store.Grant:
    """Narrow an active grant by one category; ValidationError if that would empty it.

    The grant keeps its id, purpose and expiry; its stored access and scope lose the
    category, and every live token of the grant loses the category's scopes, so the
    business's next call for it is refused (403). The change, its ``grant.narrow`` entry and
    the business's new consent receipt commit in one transaction."""
    grant = store.get_grant(vault.conn, grant_id)
    if not grant.is_active():
        raise ValidationError(
            f"grant {grant_id} is no longer active", hint="Only a live grant can be narrowed."
        )
    if category not in grant.access.categories:
        raise ValidationError(f'grant {grant_id} does not cover "{category}"')
    cats = {k: v for k, v in grant.access.categories.items() if k != category}
    access = replace(grant.access, categories=cats)
    if access.empty:
        raise ValidationError(
            f'"{category}" is all that grant {grant_id} covers',
            hint="Revoke the grant instead.",
        )
    conn = vault.conn
    with transaction(conn):
        narrowed_grant = store.update_grant(conn, grant_id, access, grant.expires_at)
        store.narrow_tokens(conn, grant_id, set(access.scopes()))
        vault.audit(
            "grant.narrow",
            actor="owner",
            client_id=grant.client_id,
            grant_id=grant_id,
            purpose=grant.purpose,
            category=category,
            detail={"scope": access.scope},
        )
        receipts.issue(vault, narrowed_grant, "narrow")  # the business's new consent receipt
    return narrowed_grant


@dataclass(frozen=True)
class Removal:
    """What removing a client ended."""

    client: store.Client
    grants: list[int]
    subscriptions: int


def removal_preview(vault: Vault, client_id: str) -> Removal:
    """What :func:`remove_client` would end (for the confirmation step); NotFound or
    ValidationError as it would raise."""
    client = _removable(vault, client_id)
    return Removal(client, _open_grants(vault, client_id), _subscriptions(vault, client_id))


def remove_client(vault: Vault, client_id: str) -> Removal:
    """Remove a business: its grants are revoked (so every token dies; one withdraw
    receipt each), its webhook subscriptions stop, its authorization codes go, and the OAuth
    endpoints no longer know it. Its row stays, marked removed, for the grants, receipts and
    log that name it. One ``client.remove`` audit entry, in the same transaction."""
    with transaction(vault.conn) as conn:
        client = _removable(vault, client_id)
        grants = _open_grants(vault, client_id)
        for grant_id in grants:
            receipts.revoke(vault, grant_id, "the owner removed the business")
        oauth_db.revoke_client_tokens(conn, client_id, clock.now())
        oauth_db.delete_client_codes(conn, client_id)
        subscriptions = oauth_db.stop_client_subscriptions(conn, client_id, clock.iso(clock.now()))
        store.remove_client(conn, client_id)
        vault.audit(
            "client.remove",
            actor="owner",
            client_id=client_id,
            detail={
                "name": client.name,
                "verified": client.verified,
                "grants_revoked": grants,
                "subscriptions_stopped": subscriptions,
            },
        )
    removed = store.get_client(vault.conn, client_id)
    assert removed is not None
    return Removal(removed, grants, subscriptions)


def _removable(vault: Vault, client_id: str) -> store.Client:
    client = store.get_client(vault.conn, client_id)
    if client is None:
        raise NotFound(
            f"no client with id {client_id}", hint="See the ids with `pds clients list`."
        )
    if client.removed_at is not None:
        raise ValidationError(f"client {client_id} was already removed at {client.removed_at}")
    return client


def _open_grants(vault: Vault, client_id: str) -> list[int]:
    """The client's grants not yet revoked (expired ones too: they end as revoked)."""
    return oauth_db.open_grant_ids(vault.conn, client_id)


def _subscriptions(vault: Vault, client_id: str) -> int:
    return oauth_db.count_client_subscriptions(vault.conn, client_id)
