"""Narrowing a live grant from the Businesses page: drop one category from it.

The grant keeps its id, purpose and expiry; its stored access and scope lose the category,
and every live token of the grant loses the category's scopes, so the business's next call
for it is refused (403). Written here, on the ``grants`` and ``tokens`` tables through the
vault's connection, because pds.oauth has no "narrow" yet (only create and revoke); the
change, its audit entry and the business's new consent receipt commit in one transaction.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pds.crm import receipts
from pds.errors import ValidationError
from pds.oauth import store
from pds.vault.db import transaction


def drop_category(vault: Any, grant_id: int, category: str) -> store.Grant:
    """Remove ``category`` from an active grant; ValidationError if that would empty it."""
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
    keep = set(access.scopes())
    conn = vault.conn
    with transaction(conn):
        conn.execute(
            "UPDATE grants SET access = ?, scope = ? WHERE id = ?",
            (access.to_json(), access.scope, grant_id),
        )
        tokens = conn.execute(
            "SELECT id, scope FROM tokens WHERE grant_id = ? AND revoked_at IS NULL", (grant_id,)
        ).fetchall()
        for token_id, scope in tokens:
            narrowed = " ".join(s for s in scope.split() if s in keep)
            conn.execute("UPDATE tokens SET scope = ? WHERE id = ?", (narrowed, token_id))
        vault.audit(
            "grant.narrow",
            actor="owner",
            client_id=grant.client_id,
            grant_id=grant_id,
            purpose=grant.purpose,
            category=category,
            detail={"scope": access.scope},
        )
        narrowed_grant = store.get_grant(conn, grant_id)
        receipts.issue(vault, narrowed_grant, "narrow")  # the business's new consent receipt
    return narrowed_grant
