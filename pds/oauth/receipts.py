"""Consent receipts: a signed record of what the owner approved for a business, per grant.

A receipt's claims follow the Kantara Initiative Consent Receipt Specification v1.1 (field
names as there: ``version``, ``jurisdiction``, ``consentTimestamp``, ``collectionMethod``,
``consentReceiptID``, ``publicKey``, ``language``, ``piiPrincipalId``, ``piiControllers``,
``policyUrl``, ``services[].purposes[]``, ``sensitive``, ``spiCat``), filled from the grant
*as approved* (categories, fields, time range, expiry), plus a ``pds`` extension object with
the grant's id, client id, scope and RFC 9396 ``authorization_details``. The controller is
the business with every field v1.1 requires (``piiController``, ``contact``, ``address`` as
``streetAddress`` and ``addressCountry``, ``email``, ``phone``) from what it gave at
registration (``pds.oauth.controller``); a field it did not give is ``""``.

Signing: a compact JWS (RFC 7515) made with ``joserfc``, algorithm ``Ed25519`` -- EdDSA over
Ed25519 under its fully-specified RFC 9864 name (joserfc warns that the older ``EdDSA`` name
is deprecated). The key is the vault's one Ed25519 key, the same that signs the access log's
checkpoints: one published identity for the vault (``GET /audit/key``, and the JWK in every
receipt's ``publicKey`` and header ``jwk``), with ``kid`` its RFC 7638 thumbprint. The two
uses cannot be confused: a JWS signing input starts ``eyJ`` and a checkpoint starts with the
log's origin ``pds.vault/...``. Off-the-shelf libraries that know the name ``Ed25519``
verify receipts unmodified (docs/oauth.md shows joserfc and Node's ``jose``; tests run them).

``piiPrincipalId`` is a pairwise pseudonym (HMAC of the client id under a vault key): it is
stable for one business and different for every other, so receipts cannot be joined across
businesses, and it never names the person.

Life cycle: a receipt is issued in the transaction that creates the grant (``kind`` grant),
another each time the owner's policies narrow it (``kind`` narrow), and a last one in the
transaction that ends it (``kind`` withdraw, by :func:`revoke`): whoever ends it -- the
owner revoking it or removing the business, a policy that allows none of it, the business
revoking its refresh token, a replayed code or refresh token -- consent has ended, and the
business holds a signed statement saying when and why. A withdraw receipt carries the
grant's last state, ``consentTimestamp`` the time it ended, the purposes' ``termination``
saying so, and ``withdrawn_at`` and ``withdrawn_reason`` (the revoke reason, never record
contents) in the ``pds`` object. A grant that merely expires gets none: its receipts
already name the expiry.
"""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
import uuid
from typing import TYPE_CHECKING, Any

from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import OKPKey
from marshmallow import Schema, fields, validate, validates_schema
from marshmallow import ValidationError as MarshmallowError

from pds import clock
from pds.db import oauth as oauth_db
from pds.db.oauth import ReceiptRow
from pds.errors import NotFound, PdsError
from pds.oauth import controller, store
from pds.payloads import first_error
from pds.policy.purposes import label

if TYPE_CHECKING:
    from pds.vault import Vault

VERSION = "KI-CR-v1.1.0"
ALG = "Ed25519"
TYP = "kantara-cr+jwt"
JURISDICTION = "GB"
LANGUAGE = "en"
COLLECTION_METHOD = "OAuth 2.0 consent page of the person's own pds vault"
SENSITIVE = {"health": "health data (GDPR Art. 9)"}
KINDS = ("grant", "narrow", "withdraw")


class ReceiptError(PdsError, ValueError):
    """A receipt that does not verify: malformed, wrong key, changed, or not a receipt."""

    code = "invalid_receipt"
    status = 422


# -- keys -----------------------------------------------------------------------------------


def signing_jwk(vault: Vault) -> OKPKey:
    """The vault's Ed25519 key as a private JWK (in memory only)."""
    return OKPKey.import_key(vault.keyring.signing_key(vault.conn))


def public_jwk(key: OKPKey) -> dict[str, Any]:
    """The public half as a JWK object with its ``kid`` (RFC 7638 thumbprint)."""
    return {**key.as_dict(private=False), "kid": key.thumbprint()}


def public_key(key: OKPKey) -> OKPKey:
    """Only the public half of ``key`` (what a verifier needs and should hold)."""
    return OKPKey.import_key(key.as_dict(private=False))


def load_key(text: str) -> OKPKey:
    """A public key from a JWK (JSON) or a verifier key line as ``pds audit key`` prints."""
    text = text.strip()
    try:
        if text.startswith("{"):
            key = OKPKey.import_key(json.loads(text))
        else:
            from pds.audit.checkpoint import parse_verifier_key

            key = OKPKey.import_key(parse_verifier_key(text)[1])
    except (ValueError, JoseError, PdsError, TypeError):
        raise ReceiptError(
            "the key is neither an Ed25519 JWK nor a verifier key",
            hint="Use the receipt key from `pds receipts key` or `pds audit key`.",
        ) from None
    if key.curve_name != "Ed25519":
        raise ReceiptError(f"the key is on curve {key.curve_name}, not Ed25519")
    return key


# -- claims ---------------------------------------------------------------------------------


def _pseudonym(vault: Vault, client_id: str) -> str:
    mac = vault.keyring.source_digest()
    mac.update(b"pds/pii-principal/v1\x00" + client_id.encode())
    return "urn:pds:principal:" + mac.hexdigest()[:32]


def _controller(client: store.Client, meta: dict[str, Any]) -> dict[str, Any]:
    given = controller.details(meta)
    return {
        "piiController": client.name,
        "piiControllerId": client.client_id,
        "onBehalf": False,
        "contact": ", ".join(given.contacts),
        "address": {"streetAddress": given.address, "addressCountry": given.country},
        "email": given.email,
        "phone": given.phone,
        "piiControllerUrl": str(meta.get("client_uri") or ""),
    }


def _pii_categories(grant: store.Grant) -> list[str]:
    out = []
    for c in (p for whole in grant.access.categories.values() for p in whole.parts()):
        words = c.category
        if c.fields is not None:
            words += f" ({', '.join(c.fields)})"
        if c.time_from or c.time_to:
            words += f" from {c.time_from or 'the start'} to {c.time_to or 'now'}"
        out.append(f"{'/'.join(sorted(c.actions))} {words}")
    if grant.access.audit:
        out.append("read the access log (no personal data)")
    return out


def claims(vault: Vault, grant: store.Grant, receipt_id: str, at: int) -> dict[str, Any]:
    """The Kantara v1.1-shaped receipt for ``grant`` as it stands."""
    conn = vault.conn
    client = store.get_client(conn, grant.client_id)
    if client is None:  # pragma: no cover - the foreign key rules it out
        raise NotFound(f"no client {grant.client_id}")
    meta = store.client_metadata(conn, client.client_id)
    key = signing_jwk(vault)
    spi = [SENSITIVE[c] for c in grant.access.categories if c in SENSITIVE]
    purpose = grant.purpose or "dpv:Purpose"
    ended: dict[str, Any] = {}
    termination = (
        f"at {clock.iso(grant.expires_at)}, or earlier when the person revokes the grant in pds"
    )
    if grant.revoked_at is not None:  # a withdraw receipt: consent ended then
        ended = {"withdrawn_at": grant.revoked_at, "withdrawn_reason": grant.revoked_reason}
        termination = f"ended at {grant.revoked_at}: the grant was revoked"
    return {
        "version": VERSION,
        "jurisdiction": JURISDICTION,
        "consentTimestamp": at,
        "collectionMethod": COLLECTION_METHOD,
        "consentReceiptID": receipt_id,
        "publicKey": public_jwk(key),
        "language": LANGUAGE,
        "piiPrincipalId": _pseudonym(vault, client.client_id),
        "piiControllers": [_controller(client, meta)],
        "policyUrl": str(meta.get("policy_uri") or ""),
        "services": [
            {
                "service": client.name,
                "purposes": [
                    {
                        "purpose": purpose,
                        "purposeCategory": [label(grant.purpose)],
                        "consentType": "EXPLICIT",
                        "piiCategory": _pii_categories(grant),
                        "primaryPurpose": True,
                        "termination": termination,
                        "thirdPartyDisclosure": purpose == "dpv:SellDataToThirdParties",
                        "thirdPartyName": "",
                    }
                ],
            }
        ],
        "sensitive": bool(spi),
        "spiCat": spi,
        "pds": {
            "grant_id": grant.id,
            "client_id": client.client_id,
            "scope": grant.scope,
            "authorization_details": grant.access.authorization_details(),
            "expires_at": clock.iso(grant.expires_at),
            **ended,
        },
    }


class _PurposeSchema(Schema):
    purpose = fields.String(required=True)
    purposeCategory = fields.List(fields.String(), required=True)
    consentType = fields.String(required=True)
    piiCategory = fields.List(fields.String(), required=True)
    primaryPurpose = fields.Boolean(required=True)
    termination = fields.String(required=True)
    thirdPartyDisclosure = fields.Boolean(required=True)
    thirdPartyName = fields.String(required=True)


class _ServiceSchema(Schema):
    service = fields.String(required=True)
    purposes = fields.List(
        fields.Nested(_PurposeSchema), required=True, validate=validate.Length(1)
    )


class _AddressSchema(Schema):
    class Meta:
        unknown = "include"

    streetAddress = fields.String(required=True)
    addressCountry = fields.String(required=True)


class _ControllerSchema(Schema):
    """A controller; ``address``, ``email`` and ``phone`` are checked when present (receipts
    issued before pds carried them still verify)."""

    class Meta:
        unknown = "include"

    piiController = fields.String(required=True)
    contact = fields.String(required=True)
    address = fields.Nested(_AddressSchema)
    email = fields.String()
    phone = fields.String()


class _PdsSchema(Schema):
    """The ``pds`` extension; a withdraw receipt's two fields come together."""

    class Meta:
        unknown = "include"

    withdrawn_at = fields.DateTime(format="%Y-%m-%dT%H:%M:%SZ")
    withdrawn_reason = fields.String()

    @validates_schema
    def _both(self, data: dict[str, Any], **_: Any) -> None:
        if ("withdrawn_at" in data) != ("withdrawn_reason" in data):
            missing = "withdrawn_reason" if "withdrawn_at" in data else "withdrawn_at"
            raise MarshmallowError(
                "Missing data: a withdraw receipt carries withdrawn_at and withdrawn_reason.",
                missing,
            )


class ReceiptClaimsSchema(Schema):
    """The fields a pds consent receipt must carry (Kantara CR v1.1, plus ``pds``)."""

    class Meta:
        unknown = "include"

    version = fields.String(required=True, validate=validate.Equal(VERSION))
    jurisdiction = fields.String(required=True)
    consentTimestamp = fields.Integer(required=True, strict=True)
    collectionMethod = fields.String(required=True)
    consentReceiptID = fields.UUID(required=True)
    publicKey = fields.Dict(required=True)
    language = fields.String(required=True)
    piiPrincipalId = fields.String(required=True)
    piiControllers = fields.List(
        fields.Nested(_ControllerSchema), required=True, validate=validate.Length(1)
    )
    policyUrl = fields.String(required=True)
    services = fields.List(
        fields.Nested(_ServiceSchema), required=True, validate=validate.Length(1)
    )
    sensitive = fields.Boolean(required=True)
    spiCat = fields.List(fields.String(), required=True)
    pds = fields.Nested(_PdsSchema, required=True)


# -- issue and store ------------------------------------------------------------------------


def sign(key: OKPKey, body: dict[str, Any]) -> str:
    """A compact JWS of ``body`` (canonical JSON) signed with ``key``."""
    header = {"alg": ALG, "typ": TYP, "kid": key.thumbprint()}
    payload = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return jws.serialize_compact(header, payload.encode(), key, algorithms=[ALG])


def issue(vault: Vault, grant: store.Grant, kind: str = "grant") -> ReceiptRow:
    """Sign and store a receipt for ``grant`` (joins the caller's transaction); ``withdraw``
    is the receipt of a revoked grant, and only of one."""
    if kind not in KINDS:
        raise ValueError(f"unknown receipt kind {kind!r}")
    if (kind == "withdraw") != (grant.revoked_at is not None):
        raise ValueError(f"a {kind!r} receipt for grant {grant.id} revoked at {grant.revoked_at}")
    receipt_id = str(uuid.uuid4())
    if kind == "narrow":
        at = clock.now()
    else:
        at = clock.epoch(grant.revoked_at if grant.revoked_at is not None else grant.created_at)
    token = sign(signing_jwk(vault), claims(vault, grant, receipt_id, at))
    created = clock.iso(at)
    row_id = oauth_db.add_receipt(
        vault.conn,
        grant_id=grant.id,
        receipt_id=receipt_id,
        kind=kind,
        jws=token,
        created_at=created,
    )
    return ReceiptRow(row_id, grant.id, receipt_id, kind, token, created)


def revoke(vault: Vault, grant_id: int, reason: str) -> ReceiptRow | None:
    """End a grant and every token of it (``store.revoke_grant``) and issue its withdraw
    receipt, in the caller's transaction; None (and nothing issued) if it had already ended.
    Every revocation goes through here, so every grant that ends has a withdraw receipt."""
    if not store.revoke_grant(vault.conn, grant_id, reason):
        return None
    return issue(vault, store.get_grant(vault.conn, grant_id), "withdraw")


def for_grant(conn: sqlite3.Connection, grant_id: int) -> list[ReceiptRow]:
    """Every receipt of a grant, oldest first."""
    return oauth_db.receipts(conn, grant_id)


def latest(conn: sqlite3.Connection, grant_id: int) -> ReceiptRow:
    """The grant's current receipt; NotFound if it has none (a grant from before schema 5)."""
    found = for_grant(conn, grant_id)
    if not found and oauth_db.grant_exists(conn, grant_id):
        raise NotFound(
            f"grant {grant_id} has no consent receipt",
            hint="Grants made before pds issued receipts have none; see `pds grants list`.",
        )
    if not found:
        raise NotFound(f"there is no grant {grant_id}", hint="`pds grants list` shows them.")
    return found[-1]


# -- verify ---------------------------------------------------------------------------------

MALFORMED = "the receipt is not a compact JWS (three base64url parts joined by dots)"
CHANGED = "the receipt's signature does not match its contents: it was changed after signing"


def verify(token: str, key: OKPKey) -> dict[str, Any]:
    """The receipt's claims if ``token`` is a pds receipt signed by ``key``; else ReceiptError
    saying which check failed (form, algorithm, key, signature, claims).

    Only ``key``, which the caller chose, is trusted: the ``jwk`` header and the
    ``publicKey`` claim the receipt carries are never used to check it (a forger would
    simply put their own key there), and the algorithm is pinned to Ed25519, so ``none``
    and HMAC-with-the-public-key forgeries are refused."""
    token = token.strip()
    header = _header(token)
    if header.get("alg") != ALG:
        raise ReceiptError(
            f"the receipt's header names algorithm {header.get('alg')!r}; "
            f"pds receipts are signed with {ALG!r}"
        )
    if header.get("kid") != key.thumbprint():
        raise ReceiptError(
            f"the receipt was signed by key {header.get('kid')!r}, "
            f"not by the key given ({key.thumbprint()})",
            hint="Verify with the key of the vault that issued it (`pds receipts key`).",
        )
    try:
        signed = jws.deserialize_compact(token, key, algorithms=[ALG])
    except BadSignatureError:
        raise ReceiptError(CHANGED) from None
    except JoseError:
        raise ReceiptError(MALFORMED) from None
    try:
        body = json.loads(signed.payload)
        if not isinstance(body, dict):
            raise ValueError
        ReceiptClaimsSchema().load(body)
    except ValueError:
        raise ReceiptError("the receipt's payload is not a JSON object") from None
    except MarshmallowError as exc:
        raise ReceiptError(
            f"the receipt's claims are not a consent receipt: {first_error(exc.messages)}"
        ) from None
    return body


def _header(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise ReceiptError(MALFORMED)
    try:
        raw = parts[0].encode("ascii")
        header = json.loads(base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4)))
    except (ValueError, binascii.Error):
        raise ReceiptError(MALFORMED) from None
    if not isinstance(header, dict):
        raise ReceiptError(MALFORMED)
    return header


def summary(body: dict[str, Any]) -> dict[str, Any]:
    """What ``pds receipts verify`` prints about a valid receipt."""
    purpose = body["services"][0]["purposes"][0]
    return {
        "valid": True,
        "receipt_id": body["consentReceiptID"],
        "controller": body["piiControllers"][0]["piiController"],
        "consent_timestamp": clock.iso(body["consentTimestamp"]),
        "purpose": purpose["purpose"],
        "pii_categories": purpose["piiCategory"],
        "termination": purpose["termination"],
        "grant_id": body["pds"].get("grant_id"),
        "withdrawn_at": body["pds"].get("withdrawn_at"),
        "withdrawn_reason": body["pds"].get("withdrawn_reason"),
    }
