"""Records: seal and open payloads (AES-256-GCM), dedup keys; their rows are ``pds.db.records``.

A payload is stored as the canonical JSON of its normalized dict, sealed with the
category's data key and a fresh 96-bit random nonce. The associated data binds the record
id, category and key version, so a ciphertext copied to another row (or another category,
or re-labelled with another key version) fails to open.

Canonical JSON here is ``json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` in UTF-8. For pds payloads (string or null values, ASCII keys) that is
byte-for-byte RFC 8785 (JCS) output.
"""

from __future__ import annotations

import hmac
import json
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pds.errors import PdsError

DEDUP_BYTES = 16


class SealError(PdsError, ValueError):
    """A ciphertext that does not open: tampered, moved, or under a destroyed key."""

    code = "seal_error"
    status = 500


def canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def associated_data(record_id: int, category: str, key_version: int) -> bytes:
    return f"pds-record:{record_id}:{category}:{key_version}".encode()


def seal(aead: AESGCM, record_id: int, category: str, key_version: int, plain: bytes):
    """(nonce, ciphertext‖tag) for one payload."""
    nonce = os.urandom(12)
    return nonce, aead.encrypt(nonce, plain, associated_data(record_id, category, key_version))


def open_sealed(
    aead: AESGCM, record_id: int, category: str, key_version: int, nonce: bytes, ct: bytes
) -> bytes:
    """The plaintext, or SealError if anything about the row was changed."""
    try:
        return aead.decrypt(nonce, ct, associated_data(record_id, category, key_version))
    except (InvalidTag, ValueError):
        raise SealError(f"record {record_id} does not decrypt: it was altered or moved") from None


def dedup_key(key: bytes, category: str, identity: str | None, plain: bytes, nth: int) -> bytes:
    """HMAC that names a record: the source's own id where it has one, else payload + nth.

    ``nth`` counts earlier identical payloads in the same file, so two equal coffees on one
    day are two records, while importing the same file again yields the same keys.
    """
    if identity is not None:
        msg = b"id\0" + category.encode() + b"\0" + identity.encode()
    else:
        msg = b"pl\0" + category.encode() + b"\0" + plain + b"\0" + str(nth).encode()
    return hmac.digest(key, msg, "sha256")[:DEDUP_BYTES]


def write_key(
    key: bytes,
    category: str,
    source: str,
    occurred_at: str,
    plain: bytes,
    idempotency_key: str | None = None,
) -> bytes:
    """HMAC that names a record written through :meth:`pds.vault.Vault.add_record`.

    Scoped to the writer (``source``, e.g. ``client:<id>``): with the writer's own
    ``idempotency_key``, that key alone names the record (two keys, two records); without
    one, the category, ``occurred_at`` and payload do, so re-sending the same record finds
    it again and a different record is a new one. Never the source alone.
    """
    if idempotency_key is not None:
        msg = b"ik\0" + source.encode() + b"\0" + idempotency_key.encode()
    else:
        head = b"\0".join((b"wr", category.encode(), source.encode(), occurred_at.encode()))
        msg = head + b"\0" + plain
    return hmac.digest(key, msg, "sha256")[:DEDUP_BYTES]


@dataclass(frozen=True, slots=True)
class StoredRecord:
    id: int
    category: str
    source_id: int
    occurred_at: str
    payload: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "category": self.category,
            "source_id": self.source_id,
            "occurred_at": self.occurred_at,
            "payload": self.payload,
        }
