"""The transparency log's primitives, as pds's access log uses them: RFC 9162 Merkle hashes
and the verification of inclusion and consistency proofs (§2.1.3.2, §2.1.4.2, step for
step), verifier keys and signed checkpoints (C2SP signed-note and tlog-checkpoint, Ed25519).

Only the standard library and ``cryptography``; :mod:`pds_client.verify` builds the
auditor's checks on them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pds_client.errors import VerifyError

EMPTY_ROOT = hashlib.sha256(b"").digest()
_SIGNATURE_PREFIX = "\u2014 "  # EM DASH, SPACE
_ED25519 = 0x01


# -- hashes and proofs (RFC 9162 §2.1) ---------------------------------------------------------


def leaf_hash(entry: bytes) -> bytes:
    """``SHA-256(0x00 || entry)``."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _hashes(values: Sequence[bytes]) -> bool:
    return all(isinstance(v, bytes) and len(v) == 32 for v in values)


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` show that leaf ``index`` of the tree of ``size``
    leaves with ``root`` is ``leaf``? False for anything malformed."""
    if not (_hashes([leaf, root, *proof]) and 0 <= index < size):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not (fn & 1 or fn == 0):
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree (``second``, ``second_root``) an extension of
    (``first``, ``first_root``)? Equal sizes need equal roots and no proof; the empty tree
    is a prefix of every tree. False for anything malformed."""
    if not (_hashes([first_root, second_root, *proof]) and 0 <= first <= second):
        return False
    if first == 0:
        return not proof and first_root == EMPTY_ROOT
    if first == second:
        return not proof and first_root == second_root
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not (fn & 1 or fn == 0):
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root


# -- keys and signed checkpoints (C2SP signed-note, tlog-checkpoint) ---------------------------


@dataclass(frozen=True)
class VerifierKey:
    """A log's verifier key ``<name>+<hex key ID>+<base64(0x01 || Ed25519 key)>``."""

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey
    text: str

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        """Read the key as ``pds audit key`` prints it (and ``GET /audit/key`` gives it)."""
        text = text.strip()
        parts = text.split("+", 2)
        if len(parts) != 3 or not parts[0] or not re.fullmatch(r"[0-9a-fA-F]{8}", parts[1]):
            raise VerifyError(f"{text[:80]!r} is not a verifier key (<name>+<key ID>+<base64 key>)")
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except (binascii.Error, ValueError):
            raise VerifyError(f"the verifier key {text[:80]!r} is not valid base64") from None
        if len(raw) != 33 or raw[0] != _ED25519:
            raise VerifyError(f"the verifier key {text[:80]!r} is not an Ed25519 key")
        name, key_id = parts[0], bytes.fromhex(parts[1])
        if _key_id(name, raw[1:]) != key_id:
            raise VerifyError(f"the verifier key {text[:80]!r} has a key ID that does not match")
        return cls(name, key_id, Ed25519PublicKey.from_public_bytes(raw[1:]), text)


def _key_id(name: str, raw_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([_ED25519]) + raw_key).digest()[:4]


@dataclass(frozen=True)
class Checkpoint:
    """A signed checkpoint that verified: the log's origin, size and root, and the note."""

    origin: str
    size: int
    root: bytes
    note: str


def open_checkpoint(note: str | bytes, key: VerifierKey | str) -> Checkpoint:
    """The checkpoint in ``note`` if ``key`` signed it (signatures by other keys are
    ignored, as the signed-note spec says); else VerifyError saying what is wrong."""
    vkey = key if isinstance(key, VerifierKey) else VerifierKey.parse(key)
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise VerifyError("the checkpoint is not valid UTF-8") from None
    if "\r" in note or not note.endswith("\n"):
        raise VerifyError(
            "the checkpoint is not as it was signed (its lines must end with LF only, "
            "the last one too)"
        )
    split = note.rfind("\n\n")
    if split < 0:
        raise VerifyError("the checkpoint has no signature lines")
    text, signatures = note[: split + 1], note[split + 2 : -1].split("\n")
    signed = False
    for line in signatures:
        name, _, b64 = line.removeprefix(_SIGNATURE_PREFIX).partition(" ")
        if not line.startswith(_SIGNATURE_PREFIX) or not b64:
            raise VerifyError(f"the checkpoint's signature line {line[:60]!r} is malformed")
        try:
            blob = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise VerifyError(
                f"the checkpoint's signature line {line[:60]!r} is malformed"
            ) from None
        if name != vkey.name or blob[:4] != vkey.key_id:
            continue
        try:
            vkey.public_key.verify(blob[4:], text.encode("utf-8"))
        except InvalidSignature:
            raise VerifyError(f"the checkpoint's signature by {vkey.name} is not valid") from None
        signed = True
    if not signed:
        raise VerifyError(f"the checkpoint is not signed by {vkey.name}")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or not re.fullmatch(r"0|[1-9][0-9]*", lines[1]):
        raise VerifyError("the checkpoint's text is not origin, tree size and root hash")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except (binascii.Error, ValueError):
        root = b""
    if len(root) != 32:
        raise VerifyError("the checkpoint's root hash is not the base64 of 32 bytes")
    if lines[0] != vkey.name:
        raise VerifyError(f"the checkpoint is of log {lines[0]!r}, not {vkey.name!r}")
    return Checkpoint(lines[0], int(lines[1]), root, note)
