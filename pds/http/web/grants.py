"""Narrowing a live grant from the Businesses page: drop one category from it.

The grant keeps its id, purpose and expiry; its stored access and scope lose the category,
and every live token of the grant loses the category's scopes, so the business's next call
for it is refused (403). The grant and its tokens are changed through
``pds.oauth.store``; the change, its audit entry and the business's new consent receipt
commit in one transaction.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pds.db import transaction
from pds.errors import ValidationError
from pds.oauth import receipts, store


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
