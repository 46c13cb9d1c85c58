"""C2SP tlog-checkpoint bodies in C2SP signed notes: round trips, known answers, refusals."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from pds.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    key_id,
    open_checkpoint,
    open_note,
    parse_body,
    parse_verifier_key,
    sign_checkpoint,
    sign_note,
    verifier_key,
)
from pds.audit.merkle import EMPTY_ROOT, MemoryTree
from pds.errors import PdsError

NAME = "example.com/pds"
ORIGIN = "example.com/pds"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUB = KEY.public_key()
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
ROOT = MemoryTree([b"a", b"b", b"c"]).root()
CP = Checkpoint(ORIGIN, 3, ROOT)
ROOT_B64 = base64.b64encode(ROOT).decode()

# Go's golang.org/x/mod/sumdb/note package documentation (sumdb/note/note.go), "Example":
# a signer key, its verifier key, a text and the signed note Go produces (Ed25519 signatures
# are deterministic, so ours must be byte-for-byte the same), and the same note co-signed by
# a second key, "EnochRoot", that the first key's verifier does not know.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIG_PETER = (
    "\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
GO_SIG_ENOCH = (
    "\u2014 EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)

# A real checkpoint of the Go checksum database, "Retrieved from https://sum.golang.org/latest,
# 2024-09-23", as published in github.com/sigsum/sigsum-go, pkg/checkpoint/checkpoint_test.go
# (TestGoSumDBCheckpoint), with the sum.golang.org verifier key from Go's
# src/cmd/go/internal/modfetch/key.go.
SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_CHECKPOINT = (
    "go.sum database tree\n"
    "30055305\n"
    "mXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=\n"
    "\n"
    "\u2014 sum.golang.org "
    "Az3grpgEild5qw7+5dtV13Kf1C2Xurm8q4fhdxvcsDHnqNTaxL2AFjBY+2TyGKevucFcAAlWFJJYle3EJlDCrQ+y3A8=\n"
)


def refused(message: str, note: str | bytes, *, origin: str = ORIGIN) -> None:
    with pytest.raises(CheckpointError) as caught:
        open_checkpoint(note, NAME, PUB, origin)
    assert str(caught.value) == message
    assert caught.value.message == message


def signed_body(body: str) -> str:
    """A correctly signed note whose text is ``body``, whatever ``body`` says."""
    return sign_note(body, NAME, KEY)


def unknown_line(name: str, key: Ed25519PrivateKey, text: str) -> str:
    return sign_note(text, name, key).split("\n\n")[-1]


# ---------------------------------------------------------------------------------------------
# Format and known answers
# ---------------------------------------------------------------------------------------------


def test_checkpoint_error_is_a_pds_error_and_a_value_error() -> None:
    err = CheckpointError("x")
    assert isinstance(err, PdsError)
    assert isinstance(err, ValueError)
    assert err.code == "checkpoint_error"
    assert err.to_problem()["detail"] == "x"


def test_format_body() -> None:
    assert Checkpoint("example.com/log", 0, EMPTY_ROOT).format_body() == (
        "example.com/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    )
    with_ext = Checkpoint("o", 18446744073709551615, ROOT, ("ext one", "\u2014 two"))
    assert with_ext.format_body() == f"o\n18446744073709551615\n{ROOT_B64}\next one\n\u2014 two\n"
    assert parse_body(with_ext.format_body()) == with_ext
    assert Checkpoint.parse_body(with_ext.format_body().encode()) == with_ext


def test_key_id_is_sha256_of_name_newline_type_and_key() -> None:
    raw = PUB.public_bytes(Encoding.Raw, PublicFormat.Raw)
    expected = hashlib.sha256(NAME.encode() + b"\n" + b"\x01" + raw).digest()[:4]
    assert key_id(NAME, PUB) == expected
    b64 = base64.b64encode(b"\x01" + raw).decode()
    assert verifier_key(NAME, PUB) == f"{NAME}+{expected.hex()}+{b64}"
    name, pub = parse_verifier_key(verifier_key(NAME, PUB))
    assert name == NAME
    assert pub.public_bytes(Encoding.Raw, PublicFormat.Raw) == raw


def test_signed_note_layout() -> None:
    note = sign_checkpoint(CP, NAME, KEY)
    body, _, sig_line = note.partition("\n\n")
    assert body + "\n" == CP.format_body()
    assert sig_line.startswith(f"\u2014 {NAME} ")
    assert sig_line.endswith("\n")
    assert sig_line.count("\n") == 1
    blob = base64.b64decode(sig_line[len(NAME) + 3 : -1], validate=True)
    assert blob[:4] == key_id(NAME, PUB)
    assert len(blob) == 4 + 64
    PUB.verify(blob[4:], CP.format_body().encode())  # signature over the text, final LF included


def test_go_note_example_signs_byte_for_byte() -> None:
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])
    assert seed[0] == 0x01
    key = Ed25519PrivateKey.from_private_bytes(seed[1:])
    assert verifier_key("PeterNeumann", key.public_key()) == GO_VKEY
    assert sign_note(GO_TEXT, "PeterNeumann", key) == GO_TEXT + "\n" + GO_SIG_PETER
    name, pub = parse_verifier_key(GO_VKEY)
    assert open_note(GO_TEXT + "\n" + GO_SIG_PETER, name, pub) == GO_TEXT
    # Co-signed by a key the verifier does not know: that signature is ignored.
    assert open_note(GO_TEXT + "\n" + GO_SIG_PETER + GO_SIG_ENOCH, name, pub) == GO_TEXT
    assert open_note(GO_TEXT + "\n" + GO_SIG_ENOCH + GO_SIG_PETER, name, pub) == GO_TEXT
    with pytest.raises(CheckpointError, match="^checkpoint is not signed by PeterNeumann$"):
        open_note(GO_TEXT + "\n" + GO_SIG_ENOCH, name, pub)


def test_real_sum_golang_org_checkpoint_opens() -> None:
    name, pub = parse_verifier_key(SUMDB_VKEY)
    assert name == "sum.golang.org"
    cp = open_checkpoint(SUMDB_CHECKPOINT, name, pub, "go.sum database tree")
    assert cp.size == 30055305
    assert cp.root == base64.b64decode("mXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=")
    assert cp.extensions == ()
    assert cp.format_body() == SUMDB_CHECKPOINT.split("\n\n")[0] + "\n"
    with pytest.raises(CheckpointError, match="signature by sum.golang.org is not valid"):
        open_checkpoint(SUMDB_CHECKPOINT.replace("30055305", "30055306"), name, pub, cp.origin)


# ---------------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------------


def test_sign_open_round_trip() -> None:
    note = sign_checkpoint(CP, NAME, KEY)
    assert open_checkpoint(note, NAME, PUB, ORIGIN) == CP
    assert open_checkpoint(note.encode("utf-8"), NAME, PUB, ORIGIN) == CP
    ext = Checkpoint(ORIGIN, 0, EMPTY_ROOT, ("opaque extension", "another one"))
    assert open_checkpoint(sign_checkpoint(ext, NAME, KEY), NAME, PUB, ORIGIN) == ext


def test_key_name_need_not_be_the_origin() -> None:
    note = sign_checkpoint(Checkpoint("log.example/a", 3, ROOT), NAME, KEY)
    assert open_checkpoint(note, NAME, PUB, "log.example/a").origin == "log.example/a"


def test_extra_signatures_by_unknown_keys_are_ignored() -> None:
    note = sign_checkpoint(CP, NAME, KEY)
    body = CP.format_body()
    others = (
        unknown_line("witness.example/w1", OTHER_KEY, body)  # another name
        + unknown_line(NAME, OTHER_KEY, body)  # same name, another key ID
        + unknown_line("witness.example/w2", KEY, body)  # same key, another name
        + "\u2014 witness.example/pq AAAAAAAAAAAA\n"  # an algorithm we do not know
    )
    assert open_checkpoint(note + others, NAME, PUB, ORIGIN) == CP
    assert open_checkpoint(body + "\n" + others + note.split("\n\n")[1], NAME, PUB, ORIGIN) == CP


def test_up_to_100_signature_lines_are_read() -> None:
    note = sign_checkpoint(CP, NAME, KEY)
    extra = unknown_line("witness.example/w", OTHER_KEY, CP.format_body())
    assert open_checkpoint(note + extra * 99, NAME, PUB, ORIGIN) == CP


printable = st.characters(min_codepoint=0x20, exclude_categories=("Cs",))
lines = st.text(alphabet=printable, min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(
    lines,
    st.integers(0, 2**64 - 1),
    st.binary(min_size=32, max_size=32),
    st.lists(lines, max_size=3).map(tuple),
)
def test_round_trip_any_checkpoint(origin: str, size: int, root: bytes, ext: tuple) -> None:
    cp = Checkpoint(origin, size, root, ext)
    assert parse_body(cp.format_body()) == cp
    assert open_checkpoint(sign_checkpoint(cp, NAME, KEY), NAME, PUB, origin) == cp


# ---------------------------------------------------------------------------------------------
# Refusals, each with its exact message
# ---------------------------------------------------------------------------------------------


def test_refuses_a_note_signed_by_another_key_name() -> None:
    note = sign_checkpoint(CP, "someone.else/log", KEY)
    refused(f"checkpoint is not signed by {NAME}", note)


def test_refuses_a_note_signed_by_a_different_key_with_the_same_name() -> None:
    note = sign_checkpoint(CP, NAME, OTHER_KEY)
    refused(f"checkpoint is not signed by {NAME}", note)


def test_refuses_a_bad_signature() -> None:
    note = sign_checkpoint(CP, NAME, KEY)
    refused(f"checkpoint signature by {NAME} is not valid", note.replace("\n3\n", "\n4\n"))
    body, _, line = note.partition("\n\n")
    blob = bytearray(base64.b64decode(line.split(" ")[2]))
    blob[10] ^= 1
    forged = f"{body}\n\n\u2014 {NAME} {base64.b64encode(bytes(blob)).decode()}\n"
    refused(f"checkpoint signature by {NAME} is not valid", forged)
    # A good signature does not excuse a bad one by the same key.
    refused(f"checkpoint signature by {NAME} is not valid", note + forged.split("\n\n")[1])
    # The right key ID with a signature of the wrong length.
    short = base64.b64encode(key_id(NAME, PUB) + b"x" * 10).decode()
    refused(f"checkpoint signature by {NAME} is not valid", f"{body}\n\n\u2014 {NAME} {short}\n")


def test_refuses_another_origin() -> None:
    note = sign_checkpoint(CP, NAME, KEY)
    refused(
        f'checkpoint origin "{ORIGIN}" is not "other.example/log"', note, origin="other.example/log"
    )


@pytest.mark.parametrize(
    "size",
    ["012", "00", "+12", "-1", "-0", "1e3", "0x10", " 12", "12 ", "12.0", "\u0661\u0662", "\uff11"],
)
def test_refuses_a_tree_size_that_is_not_plain_decimal(size: str) -> None:
    note = signed_body(f"{ORIGIN}\n{size}\n{ROOT_B64}\n")
    refused(
        f'checkpoint tree size "{size}" is not a decimal number without sign or leading zeros',
        note,
    )


def test_tree_size_limits() -> None:
    ok = signed_body(f"{ORIGIN}\n18446744073709551615\n{ROOT_B64}\n")
    assert open_checkpoint(ok, NAME, PUB, ORIGIN).size == 2**64 - 1
    zero = signed_body(f"{ORIGIN}\n0\n{ROOT_B64}\n")
    assert open_checkpoint(zero, NAME, PUB, ORIGIN).size == 0
    big = signed_body(f"{ORIGIN}\n18446744073709551616\n{ROOT_B64}\n")
    refused('checkpoint tree size "18446744073709551616" is too large', big)


@pytest.mark.parametrize(
    "root",
    [
        "not base64!",
        base64.b64encode(b"x" * 31).decode(),
        base64.b64encode(b"x" * 33).decode(),
        ROOT_B64.rstrip("="),  # missing padding
        ROOT_B64[:-2] + chr(ord(ROOT_B64[-2]) ^ 1) + "=",  # non-canonical final bits
        base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode(),  # the URL-safe alphabet
        ROOT.hex(),
    ],
)
def test_refuses_a_root_that_is_not_base64_of_32_bytes(root: str) -> None:
    refused(
        f'checkpoint root hash "{root}" is not the base64 of 32 bytes',
        signed_body(f"{ORIGIN}\n3\n{root}\n"),
    )


def test_non_canonical_root_fixture_really_decodes_to_32_bytes() -> None:
    tweaked = ROOT_B64[:-2] + chr(ord(ROOT_B64[-2]) ^ 1) + "="
    assert len(base64.b64decode(tweaked, validate=True)) == 32


def test_refuses_crlf_line_endings() -> None:
    note = sign_checkpoint(CP, NAME, KEY)
    message = "checkpoint has CRLF line endings; lines must end with LF only"
    refused(message, note.replace("\n", "\r\n"))
    refused(message, note.replace(f"{ORIGIN}\n", f"{ORIGIN}\r\n"))
    refused(message, note[:-1] + "\r\n")
    refused(message, note.replace("\n", "\r\n").encode())


def test_refuses_other_control_characters() -> None:
    note = sign_checkpoint(CP, NAME, KEY)
    refused(
        "checkpoint contains control character U+000D; only LF is allowed",
        note.replace("example.com", "example\r.com", 1),  # a lone CR
    )
    refused(
        "checkpoint contains control character U+0009; only LF is allowed",
        note.replace(f"\u2014 {NAME}", f"\u2014 {NAME}\t"),
    )
    refused("checkpoint contains control character U+0000; only LF is allowed", note + "\x00\n")


def test_refuses_non_utf8_bytes() -> None:
    note = sign_checkpoint(CP, NAME, KEY).encode("utf-8")
    refused("checkpoint is not valid UTF-8", note.replace(b"example", b"ex\xffample", 1))
    refused("checkpoint is not valid UTF-8", note.replace("\u2014".encode(), b"\x97"))
    refused("checkpoint is not valid UTF-8", b"\xed\xa0\x80" + note)  # an encoded surrogate


def test_refuses_a_missing_final_newline() -> None:
    note = sign_checkpoint(CP, NAME, KEY)
    refused("checkpoint does not end with a newline", note[:-1])
    with pytest.raises(CheckpointError, match="^checkpoint does not end with a newline$"):
        parse_body(CP.format_body()[:-1])


def test_refuses_a_body_of_fewer_than_three_lines() -> None:
    message = "checkpoint body has {}; it needs at least 3: origin, tree size and root hash"
    refused(message.format("2 lines"), signed_body(f"{ORIGIN}\n3\n"))
    refused(message.format("1 line"), signed_body(f"{ORIGIN}\n"))
    with pytest.raises(CheckpointError) as caught:
        parse_body(f"{ORIGIN}\n3\n")
    assert str(caught.value) == message.format("2 lines")


def test_refuses_empty_body_lines() -> None:
    refused("checkpoint line 2 is empty", signed_body(f"{ORIGIN}\n\n3\n{ROOT_B64}\n"))
    refused("checkpoint line 4 is empty", signed_body(f"{ORIGIN}\n3\n{ROOT_B64}\n\next\n"))


def test_refuses_more_than_100_signature_lines() -> None:
    note = sign_checkpoint(CP, NAME, KEY)
    extra = unknown_line("witness.example/w", OTHER_KEY, CP.format_body())
    refused("checkpoint has 101 signature lines; at most 100 are accepted", note + extra * 100)


def test_refuses_a_note_without_signatures() -> None:
    message = (
        "checkpoint has no signatures: it must be the text, a blank line, then signature lines"
    )
    refused(message, CP.format_body())
    refused(message, CP.format_body() + "\n")
    # A blank line after the signatures makes it the separator, with nothing after it.
    refused(message, sign_checkpoint(CP, NAME, KEY) + "\n")


def test_refuses_malformed_signature_lines() -> None:
    note = sign_checkpoint(CP, NAME, KEY)
    message = (
        'checkpoint signature line 2 is malformed; expected "\u2014 <key name> <base64 signature>"'
    )
    for bad in (
        f"- {NAME} AAAAAAAA",  # a hyphen, not an em dash
        f"\u2014{NAME} AAAAAAAA",  # no space after the dash
        f"\u2014 {NAME}",  # no signature
        f"\u2014 {NAME} ",  # an empty signature
        f"\u2014 {NAME} AAAA",  # fewer than 5 bytes
        f"\u2014 {NAME} not*base64",
        "\u2014 name+with+plus AAAAAAAA",
        f"\u2014 {NAME}\u00a0AAAAAAAA",  # a no-break space, not a space
    ):
        refused(message, note + bad + "\n")


def test_refuses_invalid_checkpoints_and_keys() -> None:
    with pytest.raises(CheckpointError, match="tree size -1 is out of range"):
        Checkpoint(ORIGIN, -1, ROOT)
    with pytest.raises(CheckpointError, match="root hash must be 32 bytes"):
        Checkpoint(ORIGIN, 1, ROOT[:31])
    with pytest.raises(CheckpointError, match="origin must be one line"):
        Checkpoint("a\nb", 1, ROOT)
    with pytest.raises(CheckpointError, match="origin must be a non-empty string"):
        Checkpoint("", 1, ROOT)
    with pytest.raises(CheckpointError, match="extension lines must be non-empty"):
        Checkpoint(ORIGIN, 1, ROOT, ("",))
    with pytest.raises(CheckpointError, match="key name 'a b' is not valid"):
        sign_checkpoint(CP, "a b", KEY)
    with pytest.raises(CheckpointError, match="key name 'a\\+b' is not valid"):
        sign_checkpoint(CP, "a+b", KEY)
    with pytest.raises(CheckpointError, match="does not end with a newline"):
        sign_note("no newline", NAME, KEY)
    with pytest.raises(CheckpointError, match="key ID that does not match"):
        parse_verifier_key(GO_VKEY.replace("c74f20a3", "c74f20a4"))
    with pytest.raises(CheckpointError, match="is not an Ed25519 key"):
        parse_verifier_key("name+00000000+" + base64.b64encode(b"\x02" + b"k" * 32).decode())
    with pytest.raises(CheckpointError, match="is malformed"):
        parse_verifier_key("name+zz+AAAA")
    with pytest.raises(CheckpointError, match="must look like"):
        parse_verifier_key("just-a-name")
