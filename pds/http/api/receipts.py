"""``GET /api/v1/grant/receipt``: a business fetches the signed consent receipt of its grant."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from pds.http.api.auth import api_call, audit_allowed, current_access
from pds.http.context import current_vault
from pds.oauth import receipts


def register(bp: Blueprint) -> None:
    """Add the view to the API's blueprint."""

    @bp.get("/grant/receipt")
    @api_call("api.grant.receipt")
    def grant_receipt() -> Any:
        """The newest receipt of the caller's grant (JSON: the JWS and the key to check it)."""
        v = current_vault()
        grant = current_access().grant
        found = receipts.latest(v.conn, grant.id)
        audit_allowed(count=1)
        return jsonify(
            receipt_id=found.receipt_id,
            kind=found.kind,
            issued_at=found.created_at,
            receipt=found.jws,
            key=receipts.public_jwk(receipts.signing_jwk(v)),
        )


RECEIPT_RESPONSE = {
    "type": "object",
    "required": ["receipt_id", "kind", "issued_at", "receipt", "key"],
    "properties": {
        "receipt_id": {"type": "string", "format": "uuid"},
        "kind": {"type": "string", "enum": list(receipts.KINDS)},
        "issued_at": {"type": "string", "format": "date-time"},
        "receipt": {
            "type": "string",
            "description": "compact JWS (alg Ed25519, typ kantara-cr+jwt) whose payload is a "
            "Kantara Consent Receipt v1.1 JSON object",
        },
        "key": {"type": "object", "description": "the vault's public JWK (OKP, Ed25519)"},
    },
}

OPERATIONS = {
    "get": {
        "summary": "The signed consent receipt of your grant (the newest: a narrowed grant "
        "gets a new one)",
        "security": [{"oauth2": []}],
        "responses": {
            "200": {
                "description": "the receipt and the key that verifies it",
                "content": {"application/json": {"schema": "GrantReceipt"}},
            },
            "401": {
                "description": "missing, unknown, expired or revoked access token",
                "content": {"application/problem+json": {"schema": "Problem"}},
            },
            "404": {
                "description": "the grant has no receipt (made before pds issued them)",
                "content": {"application/problem+json": {"schema": "Problem"}},
            },
        },
    }
}
