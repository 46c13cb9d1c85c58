"""Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed notes (Ed25519). Pure.

A checkpoint body (c2sp.org/tlog-checkpoint) is at least three non-empty lines, each ending
in LF::

    <origin>
    <tree size: ASCII decimal, no sign, no leading zeros ("0" for the empty tree)>
    <root hash: standard base64 (RFC 4648 §4) of the 32-byte RFC 9162 root>
    [<extension line>...]          (opaque, kept as they are)

A signed note (c2sp.org/signed-note) is that text, a blank line, then one or more
signature lines ``— <key name> <base64(key ID || signature)>`` (U+2014 EM DASH, a space).
It must be valid UTF-8 with no control character other than LF. For Ed25519 (signature type
0x01) the signature is over the text, final newline included, and the key ID is
``SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]``. A verifier ignores
signatures from keys it does not know (another name or another key ID) and rejects the note
if a known key's signature fails or no known key signed. This is Go's
golang.org/x/mod/sumdb/note, whose verifier keys ``<name>+<hex key ID>+<base64(0x01 ||
public key)>`` are also produced and read here; like it, at most 100 signatures are read.

Every refusal is a :class:`CheckpointError` that says what was wrong.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pds.errors import PdsError
from pds.words import plural

__all__ = [
    "ED25519_SIGNATURE_TYPE",
    "MAX_SIGNATURES",
    "Checkpoint",
    "CheckpointError",
    "key_id",
    "open_checkpoint",
    "open_note",
    "parse_body",
    "parse_verifier_key",
    "sign_checkpoint",
    "sign_note",
    "verifier_key",
]

ED25519_SIGNATURE_TYPE = 0x01
"""signed-note, "Signature types": ``0x01`` — Ed25519 signatures."""

MAX_SIGNATURES = 100
"""Signature lines read from one note (the spec requires at least 16; Go's note uses 100)."""

MAX_TREE_SIZE = 2**64 - 1
ROOT_HASH_SIZE = 32
SIGNATURE_PREFIX = "\u2014 "  # EM DASH, SPACE
_KEY_ID_SIZE = 4
_ED25519_SIGNATURE_SIZE = 64
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class CheckpointError(PdsError, ValueError):
    """A checkpoint or signed note that is malformed, unsigned, badly signed or for another log."""

    code = "checkpoint_error"
    status = 422


def _quote(value: str, limit: int = 80) -> str:
    if len(value) > limit:
        value = value[: limit - 1] + "\u2026"
    return f'"{value}"'


def _text(data: str | bytes) -> str:
    """The note as text: valid UTF-8, no CR, no control character but LF, LF-terminated."""
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise CheckpointError("checkpoint is not valid UTF-8") from None
    if not isinstance(data, str):
        raise CheckpointError("checkpoint must be text (str or UTF-8 bytes)")
    if data.startswith("\ufeff"):
        raise CheckpointError(
            "checkpoint starts with a byte-order mark (U+FEFF); it must be the bytes as saved"
        )
    if "\r\n" in data:
        raise CheckpointError("checkpoint has CRLF line endings; lines must end with LF only")
    for ch in data:
        if ch < " " and ch != "\n":
            raise CheckpointError(
                f"checkpoint contains control character U+{ord(ch):04X}; only LF is allowed"
            )
    if not data.endswith("\n"):
        raise CheckpointError("checkpoint does not end with a newline")
    return data


def _valid_name(name: object) -> bool:
    """signed-note: key names are non-empty, with no Unicode spaces and no plus (U+002B)."""
    return (
        isinstance(name, str)
        and name != ""
        and "+" not in name
        and not any(ch.isspace() or ch < " " for ch in name)
    )


def _check_name(name: object) -> None:
    if not _valid_name(name):
        raise CheckpointError(
            f"key name {name!r} is not valid: it must be non-empty, without spaces or '+'"
        )


def _raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    if not isinstance(public_key, Ed25519PublicKey):
        raise CheckpointError("the checkpoint key must be an Ed25519 public key")
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """signed-note, "Ed25519 signatures": ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``."""
    _check_name(name)
    encoded = bytes([ED25519_SIGNATURE_TYPE]) + _raw_public_key(public_key)
    return hashlib.sha256(name.encode("utf-8") + b"\n" + encoded).digest()[:_KEY_ID_SIZE]


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """Go note's verifier key ``<name>+<hex key ID>+<base64(0x01 || public key)>``."""
    encoded = bytes([ED25519_SIGNATURE_TYPE]) + _raw_public_key(public_key)
    return f"{name}+{key_id(name, public_key).hex()}+{base64.b64encode(encoded).decode('ascii')}"


def parse_verifier_key(vkey: str) -> tuple[str, Ed25519PublicKey]:
    """Read a verifier key ``<name>+<hex key ID>+<base64(0x01 || public key)>``.

    Checks what Go's ``note.NewVerifier`` checks: a valid name, 8 hex digits, base64 of a
    0x01 byte and 32 key bytes, and a key ID that matches the name and key.
    """
    parts = vkey.split("+", 2) if isinstance(vkey, str) else []
    if len(parts) != 3:
        raise CheckpointError("verifier key must look like <name>+<key ID>+<base64 key>")
    name, hex_id, key64 = parts
    malformed = CheckpointError(f"verifier key {_quote(vkey)} is malformed")
    if not _valid_name(name) or not re.fullmatch(r"[0-9a-fA-F]{8}", hex_id):
        raise malformed
    try:
        encoded = base64.b64decode(key64, validate=True)
    except (binascii.Error, ValueError):
        raise malformed from None
    if len(encoded) != 1 + 32 or encoded[0] != ED25519_SIGNATURE_TYPE:
        raise CheckpointError(
            f"verifier key {_quote(vkey)} is not an Ed25519 key (type 0x01, 32 bytes)"
        )
    public_key = Ed25519PublicKey.from_public_bytes(encoded[1:])
    if key_id(name, public_key) != bytes.fromhex(hex_id):
        raise CheckpointError(f"verifier key {_quote(vkey)} has a key ID that does not match")
    return name, public_key


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """signed-note: ``text``, a blank line, and one Ed25519 signature line by ``name``."""
    text = _text(text)
    _check_name(name)
    if not isinstance(private_key, Ed25519PrivateKey):
        raise CheckpointError("the signing key must be an Ed25519 private key")
    signature = private_key.sign(text.encode("utf-8"))
    blob = key_id(name, private_key.public_key()) + signature
    return f"{text}\n{SIGNATURE_PREFIX}{name} {base64.b64encode(blob).decode('ascii')}\n"


def open_note(note: str | bytes, name: str, public_key: Ed25519PublicKey) -> str:
    """signed-note: verify ``note`` is signed by (``name``, ``public_key``); return its text.

    Signatures by other keys (another name, or the same name with another key ID) are
    ignored. A signature by the expected key that fails to verify rejects the note, as
    does a note with no signature by it.
    """
    data = _text(note)
    _check_name(name)
    expected_id = key_id(name, public_key)
    split = data.rfind("\n\n")
    if split < 0 or split + 2 == len(data):
        raise CheckpointError(
            "checkpoint has no signatures: it must be the text, a blank line, then signature lines"
        )
    text, block = data[: split + 1], data[split + 2 :]
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError(
            f"checkpoint has {len(lines)} signature lines; at most {MAX_SIGNATURES} are accepted"
        )
    signed = False
    message = text.encode("utf-8")
    for number, line in enumerate(lines, start=1):
        signer, blob = _parse_signature_line(line, number)
        if signer != name or blob[:_KEY_ID_SIZE] != expected_id:
            continue  # an unknown key: ignored, as the spec requires
        signature = blob[_KEY_ID_SIZE:]
        try:
            if len(signature) != _ED25519_SIGNATURE_SIZE:
                raise InvalidSignature
            public_key.verify(signature, message)
        except InvalidSignature:
            raise CheckpointError(f"checkpoint signature by {name} is not valid") from None
        signed = True
    if not signed:
        raise CheckpointError(f"checkpoint is not signed by {name}")
    return text


def _parse_signature_line(line: str, number: int) -> tuple[str, bytes]:
    malformed = CheckpointError(
        f"checkpoint signature line {number} is malformed; "
        f'expected "{SIGNATURE_PREFIX}<key name> <base64 signature>"'
    )
    if not line.startswith(SIGNATURE_PREFIX):
        raise malformed
    signer, _, b64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not _valid_name(signer) or not b64:
        raise malformed
    try:
        blob = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise malformed from None
    if len(blob) < _KEY_ID_SIZE + 1:
        raise malformed
    return signer, blob


@dataclass(frozen=True)
class Checkpoint:
    """A C2SP tlog-checkpoint: the log's origin, tree size and RFC 9162 root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin:
            raise CheckpointError("checkpoint origin must be a non-empty string")
        if any(ch < " " for ch in self.origin):
            raise CheckpointError("checkpoint origin must be one line with no control characters")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise CheckpointError(f"checkpoint tree size {self.size!r} is not an integer")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError(f"checkpoint tree size {self.size} is out of range")
        if not isinstance(self.root, bytes | bytearray) or len(self.root) != ROOT_HASH_SIZE:
            raise CheckpointError(f"checkpoint root hash must be {ROOT_HASH_SIZE} bytes")
        object.__setattr__(self, "root", bytes(self.root))
        extensions = tuple(self.extensions)
        for line in extensions:
            if not isinstance(line, str) or not line or any(ch < " " for ch in line):
                raise CheckpointError(
                    "checkpoint extension lines must be non-empty single lines of text"
                )
        object.__setattr__(self, "extensions", extensions)

    def format_body(self) -> str:
        """The note text: origin, size, base64 root, extension lines, each ending in LF."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii")]
        return "".join(line + "\n" for line in (*lines, *self.extensions))

    @classmethod
    def parse_body(cls, text: str | bytes) -> Checkpoint:
        """Read a checkpoint body; see :func:`parse_body`."""
        return parse_body(text)


def parse_body(text: str | bytes) -> Checkpoint:
    """Read a checkpoint body (the note text, final LF included), strictly per the spec."""
    text = _text(text)
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError(
            f"checkpoint body has {plural(len(lines), 'line')}; it needs at least 3: "
            "origin, tree size and root hash"
        )
    for number, line in enumerate(lines, start=1):
        if not line:
            raise CheckpointError(f"checkpoint line {number} is empty")
    origin, size_text, root_text = lines[:3]
    if not _DECIMAL.fullmatch(size_text):
        raise CheckpointError(
            f"checkpoint tree size {_quote(size_text)} is not a decimal number "
            "without sign or leading zeros"
        )
    if len(size_text) > len(str(MAX_TREE_SIZE)) or int(size_text) > MAX_TREE_SIZE:
        raise CheckpointError(f"checkpoint tree size {_quote(size_text)} is too large")
    root_error = CheckpointError(
        f"checkpoint root hash {_quote(root_text)} is not the base64 of {ROOT_HASH_SIZE} bytes"
    )
    try:
        root = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError):
        raise root_error from None
    # Canonical encoding only, so that one checkpoint has exactly one body.
    if len(root) != ROOT_HASH_SIZE or base64.b64encode(root).decode("ascii") != root_text:
        raise root_error
    return Checkpoint(origin, int(size_text), root, tuple(lines[3:]))


def sign_checkpoint(cp: Checkpoint, name: str, private_key: Ed25519PrivateKey) -> str:
    """The signed note for ``cp``: its body, a blank line and an Ed25519 signature by ``name``."""
    return sign_note(cp.format_body(), name, private_key)


def open_checkpoint(
    note_text: str | bytes, name: str, public_key: Ed25519PublicKey, origin: str
) -> Checkpoint:
    """Verify a signed checkpoint by (``name``, ``public_key``) for log ``origin``; parse it.

    The signature is checked before the body is read (a note's text is ignored unless a
    trusted key signed it); then the body must be a valid checkpoint for ``origin``.
    """
    cp = parse_body(open_note(note_text, name, public_key))
    if cp.origin != origin:
        raise CheckpointError(f"checkpoint origin {_quote(cp.origin)} is not {_quote(origin)}")
    return cp
