"""Verify a pds consent receipt with ``cryptography`` alone.

A receipt is a compact JWS (RFC 7515) with the header ``{"alg": "Ed25519", "typ":
"kantara-cr+jwt", "kid": <RFC 7638 thumbprint of the vault's key>}`` (``Ed25519`` is EdDSA's
fully-specified name, RFC 9864) whose payload is a Kantara Consent Receipt v1.1 object with a
``pds`` member (the grant's id, client id, scope, RFC 9396 details, expiry). The vault's
public key is a JWK ``{"kty": "OKP", "crv": "Ed25519", "x": …}``: the ``key`` of
``GET /api/v1/grant/receipt``, the same key as the auditor's ``GET /audit/key``.

:func:`verify_receipt` trusts only the key it is given: the receipt's own ``publicKey``
claim is never used to check it (a forger would put their own key there).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pds_client.errors import ReceiptError

ALG = "Ed25519"
TYP = "kantara-cr+jwt"
VERSION = "KI-CR-v1.1.0"
MALFORMED = "the receipt is not a compact JWS (three base64url parts joined by dots)"
REQUIRED = (
    "version",
    "jurisdiction",
    "consentTimestamp",
    "collectionMethod",
    "consentReceiptID",
    "publicKey",
    "language",
    "piiPrincipalId",
    "piiControllers",
    "policyUrl",
    "services",
    "sensitive",
    "spiCat",
    "pds",
)
"""The claims every pds receipt carries (Kantara CR v1.1's required fields, and ``pds``)."""


def _b64url(text: str) -> bytes:
    raw = text.encode("ascii")
    return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint of an OKP JWK (SHA-256 of its required members, base64url)."""
    members = {"crv": jwk.get("crv"), "kty": jwk.get("kty"), "x": jwk.get("x")}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def public_key(jwk: dict[str, Any]) -> Ed25519PublicKey:
    """The Ed25519 public key of a JWK; ReceiptError for anything else."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ReceiptError("the key is not an Ed25519 JWK (kty OKP, crv Ed25519)")
    try:
        raw = _b64url(jwk["x"])
        return Ed25519PublicKey.from_public_bytes(raw)
    except (KeyError, TypeError, ValueError, binascii.Error, UnicodeEncodeError):
        raise ReceiptError("the key's x is not the base64url of 32 bytes") from None


@dataclass(frozen=True)
class Receipt:
    """A receipt that verified: its claims, and the facts a business most often needs."""

    claims: dict[str, Any]
    receipt_id: str
    grant_id: int | None
    client_id: str | None
    controller: str
    purpose: str
    consent_timestamp: int
    withdrawn: bool


def verify_receipt(
    token: str,
    key: dict[str, Any],
    *,
    client_id: str | None = None,
    grant_id: int | None = None,
) -> Receipt:
    """The receipt ``token`` if the vault's key ``key`` (a JWK) signed it and its claims are
    a pds consent receipt (for ``client_id`` and ``grant_id`` when given); else ReceiptError
    saying which check failed."""
    parts = token.strip().split(".")
    if len(parts) != 3 or not all(parts):
        raise ReceiptError(MALFORMED)
    try:
        header = json.loads(_b64url(parts[0]))
        payload = _b64url(parts[1])
        signature = _b64url(parts[2])
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise ReceiptError(MALFORMED) from None
    if not isinstance(header, dict):
        raise ReceiptError(MALFORMED)
    if header.get("alg") != ALG:
        raise ReceiptError(
            f"the receipt's header names algorithm {header.get('alg')!r}; "
            f"pds receipts are signed with {ALG!r}"
        )
    verifier = public_key(key)
    kid = thumbprint(key)
    if header.get("kid") != kid:
        raise ReceiptError(
            f"the receipt was signed by key {header.get('kid')!r}, not by the key given ({kid})"
        )
    try:
        verifier.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"))
    except InvalidSignature:
        raise ReceiptError(
            "the receipt's signature does not match its contents: it was changed after signing"
        ) from None
    try:
        claims = json.loads(payload)
    except ValueError:
        claims = None
    if not isinstance(claims, dict):
        raise ReceiptError("the receipt's payload is not a JSON object")
    return _checked(claims, client_id, grant_id)


def _checked(claims: dict[str, Any], client_id: str | None, grant_id: int | None) -> Receipt:
    missing = [name for name in REQUIRED if name not in claims]
    if missing:
        raise ReceiptError(f"the receipt lacks the claim {missing[0]!r} of a consent receipt")
    if claims["version"] != VERSION:
        raise ReceiptError(f"the receipt's version is {claims['version']!r}, not {VERSION!r}")
    pds = claims["pds"] if isinstance(claims["pds"], dict) else {}
    if client_id is not None and pds.get("client_id") != client_id:
        raise ReceiptError(f"the receipt is for client {pds.get('client_id')!r}, not {client_id!r}")
    if grant_id is not None and pds.get("grant_id") != grant_id:
        raise ReceiptError(f"the receipt is for grant {pds.get('grant_id')!r}, not {grant_id!r}")
    try:
        controller = claims["piiControllers"][0]["piiController"]
        purpose = claims["services"][0]["purposes"][0]["purpose"]
    except (LookupError, TypeError):
        raise ReceiptError("the receipt names no controller or purpose") from None
    return Receipt(
        claims=claims,
        receipt_id=str(claims["consentReceiptID"]),
        grant_id=pds.get("grant_id"),
        client_id=pds.get("client_id"),
        controller=str(controller),
        purpose=str(purpose),
        consent_timestamp=int(claims["consentTimestamp"]),
        withdrawn="withdrawn_at" in pds,
    )
