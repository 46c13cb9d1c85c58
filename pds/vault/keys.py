"""Keys: passphrase -> KEK (Argon2id) -> wrapped master key -> per-category data keys (HKDF).

- The master key is 32 random bytes, wrapped with AES-256-GCM under a key derived from the
  owner's passphrase by Argon2id; the KDF parameters and salt live in ``meta`` beside it.
  Changing the passphrase rewraps that one key in one transaction: a crash leaves either the
  old or the new passphrase working, never neither.
- Each category has a random salt in ``category_keys``; its data key is
  HKDF-SHA256(master, salt, "pds/category/<name>/v<version>"). Deleting the salt destroys the
  category's key for good (crypto-shredding) without touching the master key.
- A wrong passphrase and a damaged key give the same error after the same work: Argon2id
  always runs with the stored (or, if those are unreadable, the default) parameters first.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pds import clock
from pds.db import atomic
from pds.db import keys as store
from pds.errors import VaultLocked
from pds.settings import KdfParams

MASTER_AD = b"pds master key v1"
SIGNING_AD = b"pds audit signing key v1"
LOCKED_MESSAGE = "the passphrase is wrong, or the vault's key is damaged"
LOCKED_HINT = "Check the passphrase (PDS_PASSPHRASE, PDS_PASSPHRASE_FILE or the prompt)."


def derive_kek(passphrase: str, salt: bytes, params: KdfParams) -> bytes:
    """The key-encryption key from the passphrase (Argon2id, RFC 9106)."""
    kdf = Argon2id(
        salt=salt,
        length=32,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
    )
    return kdf.derive(passphrase.encode("utf-8"))


def _hkdf(master: bytes, info: bytes, salt: bytes | None = None) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(master)


def _wrap(key: bytes, secret: bytes, ad: bytes) -> bytes:
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(key).encrypt(nonce, secret, ad)


def _unwrap(key: bytes, blob: bytes, ad: bytes) -> bytes:
    return AESGCM(key).decrypt(blob[:12], blob[12:], ad)


def _kdf_record(salt: bytes, params: KdfParams) -> bytes:
    return json.dumps(
        {
            "alg": "argon2id",
            "salt": salt.hex(),
            "memory_kib": params.memory_kib,
            "iterations": params.iterations,
            "lanes": params.lanes,
        },
        sort_keys=True,
    ).encode()


def _read_kdf(raw: Any) -> tuple[bytes, KdfParams] | None:
    try:
        doc = json.loads(raw)
        params = KdfParams(int(doc["memory_kib"]), int(doc["iterations"]), int(doc["lanes"]))
        salt = bytes.fromhex(doc["salt"])
        if doc["alg"] != "argon2id" or len(salt) < 16 or params.memory_kib < 8 * params.lanes:
            return None
        return salt, params
    except (TypeError, ValueError, KeyError, json.JSONDecodeError):
        return None


@dataclass
class Keyring:
    """The unwrapped master key and what derives from it. Lives in memory only."""

    master: bytes = field(repr=False)
    _aead: dict[str, tuple[int, AESGCM]] = field(default_factory=dict, repr=False)

    @property
    def dedup_key(self) -> bytes:
        return _hkdf(self.master, b"pds/dedup/v1")

    @property
    def digest_key(self) -> bytes:
        return _hkdf(self.master, b"pds/source-digest/v1")

    def category_aead(
        self, conn: sqlite3.Connection, category: str, *, check: bool = False
    ) -> tuple[int, AESGCM]:
        """(key version, AESGCM) for the category, creating its salt on first use.

        Must be called inside a write transaction when the category may be new. Writers pass
        ``check=True`` (once per transaction and category): the cached key is then compared
        with the stored one, so a key another process destroyed (``pds forget``) is never
        used to seal a new record.
        """
        cached = self._aead.get(category)
        if cached is not None and not check:
            return cached
        row = store.category_key(conn, category)
        if cached is not None and row is not None and row[1] is not None and row[0] == cached[0]:
            return cached
        if row is None or row[1] is None:
            version = 1 if row is None else row[0] + 1
            salt = secrets.token_bytes(32)
            store.store_category_key(conn, category, version, salt, clock.now_iso())
        else:
            version, salt = row
        key = _hkdf(self.master, f"pds/category/{category}/v{version}".encode(), salt)
        result = (version, AESGCM(key))
        self._aead[category] = result
        return result

    def forget_cached(self) -> None:
        self._aead.clear()

    def signing_key(self, conn: sqlite3.Connection) -> Ed25519PrivateKey:
        """The vault's Ed25519 audit signing key, unwrapped by the master key."""
        blob = store.get_meta(conn, "audit_signing_key")
        raw = _unwrap(_hkdf(self.master, b"pds/signing-wrap/v1"), blob, SIGNING_AD)
        return Ed25519PrivateKey.from_private_bytes(raw)

    def source_digest(self) -> hmac.HMAC:
        """A keyed digest for a source file: proves sameness without fingerprinting it."""
        return hmac.new(self.digest_key, digestmod=hashlib.sha256)


def create_keys(conn: sqlite3.Connection, passphrase: str, params: KdfParams) -> Keyring:
    """Make and store a new master key and audit signing key (inside a transaction)."""
    master = secrets.token_bytes(32)
    salt = secrets.token_bytes(16)
    kek = derive_kek(passphrase, salt, params)
    store.set_meta(conn, "kdf", _kdf_record(salt, params))
    store.set_meta(conn, "wrapped_master_key", _wrap(kek, master, MASTER_AD))
    signing = Ed25519PrivateKey.generate().private_bytes_raw()
    wrap_key = _hkdf(master, b"pds/signing-wrap/v1")
    store.set_meta(conn, "audit_signing_key", _wrap(wrap_key, signing, SIGNING_AD))
    store.set_meta(conn, "created_at", clock.now_iso())
    return Keyring(master)


def unlock(conn: sqlite3.Connection, passphrase: str) -> Keyring:
    """Unwrap the master key, or raise VaultLocked (one message for every cause)."""
    stored = _read_kdf(store.get_meta(conn, "kdf"))
    salt, params = stored if stored else (b"\0" * 16, KdfParams())
    kek = derive_kek(passphrase, salt, params)
    wrapped = store.get_meta(conn, "wrapped_master_key")
    try:
        if stored is None or not isinstance(wrapped, bytes) or len(wrapped) != 12 + 32 + 16:
            raise InvalidTag
        master = _unwrap(kek, wrapped, MASTER_AD)
    except InvalidTag:
        raise VaultLocked(LOCKED_MESSAGE, hint=LOCKED_HINT) from None
    return Keyring(master)


def change_passphrase(
    conn: sqlite3.Connection, keyring: Keyring, new_passphrase: str, params: KdfParams
) -> None:
    """Rewrap the master key under a new passphrase: one row pair, one transaction (the
    caller's, if it has one open)."""
    salt = secrets.token_bytes(16)
    kek = derive_kek(new_passphrase, salt, params)
    record = _kdf_record(salt, params)
    wrapped = _wrap(kek, keyring.master, MASTER_AD)
    with atomic(conn):
        store.set_meta(conn, "kdf", record)
        store.set_meta(conn, "wrapped_master_key", wrapped)


def kdf_params(conn: sqlite3.Connection) -> KdfParams | None:
    stored = _read_kdf(store.get_meta(conn, "kdf"))
    return stored[1] if stored else None


def signing_public_key(keyring: Keyring, conn: sqlite3.Connection) -> bytes:
    return keyring.signing_key(conn).public_key().public_bytes_raw()
