"""The owner's answer to an authorization request, as the consent page takes it.

Approving stores the grant, its consent receipt (``pds.oauth.receipts``) and its
``grant.create`` entry in one transaction, together with whatever the caller writes for it
(the authorization code); a refusal, by the owner or by the policies, is one refused
``grant.create`` entry and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from pds.db import transaction
from pds.oauth import receipts, store
from pds.oauth.access import Access
from pds.oauth.policy import PolicyView

if TYPE_CHECKING:
    from pds.vault import Vault

T = TypeVar("T")


def approve(
    vault: Vault,
    client_id: str,
    requested: Access,
    final: PolicyView,
    respond: Callable[[store.Grant], T],
) -> T:
    """Grant ``final.access`` (what the owner approved, within the policies) to the client:
    the grant, its consent receipt and its ``grant.create`` entry (the rules that narrowed
    it, and whether it is narrower than ``requested``) commit in one transaction with what
    ``respond(grant)`` writes; its answer is returned."""
    approved = final.access
    if approved is None:
        raise ValueError("nothing of the request is approved")
    with transaction(vault.conn):
        grant = store.create_grant(vault.conn, client_id, approved)
        receipts.issue(vault, grant)  # the consent receipt commits with the grant
        vault.audit(
            "grant.create",
            actor="owner",
            client_id=client_id,
            grant_id=grant.id,
            purpose=grant.purpose,
            rule_ids=final.rule_ids,
            reason=final.reason if final.rule_ids else None,
            detail={"scope": grant.scope, "narrowed": approved != requested},
        )
        return respond(grant)


def refused_by_policies(vault: Vault, client_id: str, requested: Access, view: PolicyView) -> None:
    """Log a request the owner's policies refuse entirely (never shown to the owner)."""
    vault.audit(
        "grant.create",
        actor="owner",
        decision="refused",
        client_id=client_id,
        purpose=requested.purpose,
        rule_ids=view.rule_ids,
        reason=view.reason,
    )


def denied(vault: Vault, client_id: str, requested: Access) -> None:
    """Log a request the owner denied."""
    vault.audit(
        "grant.create",
        actor="owner",
        decision="refused",
        client_id=client_id,
        purpose=requested.purpose,
        reason="denied by the owner",
    )
