"""The standalone verifier (pds_client.verify) against what pds itself produces: its Merkle
proofs and signed checkpoints (pds.audit), a real vault's auditor API and its exported
bundle, and the same bundle with an entry changed."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Live, consent
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pds.audit import checkpoint as pds_checkpoint
from pds.audit.merkle import MemoryTree

from pds_client import Client
from pds_client.tlog import (
    VerifierKey,
    leaf_hash,
    open_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from pds_client.verify import AuditorApi, VerifyError, check_vault, verify_bundle

ORIGIN = "pds.vault/test-log"


def test_every_inclusion_and_consistency_proof_pds_makes_verifies() -> None:
    entries = [f'{{"n":{i}}}'.encode() for i in range(33)]
    tree = MemoryTree(entries)
    for size in range(1, 34):
        root = tree.root(size)
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert verify_inclusion(leaf_hash(entries[index]), index, size, proof, root)
            other = leaf_hash(b"changed")
            assert not verify_inclusion(other, index, size, proof, root)
        for first in range(1, size + 1):
            proof = tree.consistency_proof(first, size)
            assert verify_consistency(first, size, tree.root(first), root, proof)
            if first < size:
                wrong = MemoryTree([b"x", *entries[1:first]]).root(first)
                assert not verify_consistency(first, size, wrong, root, proof)


def signer() -> tuple[Ed25519PrivateKey, str]:
    key = Ed25519PrivateKey.generate()
    return key, pds_checkpoint.verifier_key(ORIGIN, key.public_key())


def note(tree: MemoryTree, size: int, key: Ed25519PrivateKey) -> str:
    cp = pds_checkpoint.Checkpoint(ORIGIN, size, tree.root(size))
    return pds_checkpoint.sign_checkpoint(cp, ORIGIN, key)


def test_checkpoints_signed_by_pds_open_and_forgeries_do_not() -> None:
    key, vkey = signer()
    tree = MemoryTree([b"a", b"b", b"c"])
    signed = note(tree, 3, key)
    cp = open_checkpoint(signed, vkey)
    assert (cp.origin, cp.size, cp.root) == (ORIGIN, 3, tree.root(3))
    body, _, signature = signed.partition("\n\n")
    forged = body.replace("\n3\n", "\n4\n") + "\n\n" + signature
    with pytest.raises(VerifyError) as caught:
        open_checkpoint(forged, vkey)
    assert caught.value.message == f"the checkpoint's signature by {ORIGIN} is not valid"
    _, stranger = signer()
    with pytest.raises(VerifyError) as caught:
        open_checkpoint(signed, stranger)
    assert caught.value.message == f"the checkpoint is not signed by {ORIGIN}"
    with pytest.raises(VerifyError) as caught:
        open_checkpoint(signed.replace("\n", "\r\n"), vkey)
    assert caught.value.message == (
        "the checkpoint is not as it was signed (its lines must end with LF only, the last one too)"
    )
    assert VerifierKey.parse(vkey).name == ORIGIN


class FakeVault(AuditorApi):
    """The auditor API of a log held in memory (pds's MemoryTree), signed with ``key``."""

    def __init__(self, tree: MemoryTree, entries: list[bytes], key: Ed25519PrivateKey) -> None:
        super().__init__("http://vault.invalid", "token")
        self.tree, self.items, self.signing = tree, entries, key

    def get(self, path: str) -> bytes:
        route, _, query = path.partition("?")
        args = dict(p.split("=") for p in query.split("&")) if query else {}
        n = {k: int(v) for k, v in args.items()}
        b64 = lambda h: base64.b64encode(h).decode()  # noqa: E731
        answers: dict[str, Any] = {
            "/audit/key": lambda: {
                "origin": ORIGIN,
                "verifier_key": pds_checkpoint.verifier_key(ORIGIN, self.signing.public_key()),
            },
            "/audit/checkpoint": lambda: note(self.tree, self.tree.size, self.signing),
            "/audit/entries": lambda: {
                "entries": [
                    {
                        "index": i,
                        "entry": self.items[i].decode(),
                        "leaf": b64(leaf_hash(self.items[i])),
                    }
                    for i in range(n["start"], n["end"])
                ]
            },
            "/audit/proof/consistency": lambda: {
                "proof": [b64(h) for h in self.tree.consistency_proof(n["first"], n["second"])]
            },
            "/audit/proof/inclusion": lambda: {
                "proof": [b64(h) for h in self.tree.inclusion_proof(n["index"], n["size"])]
            },
        }
        found = answers[route]()
        return found.encode() if isinstance(found, str) else json.dumps(found).encode()


def test_a_log_rewritten_and_signed_again_is_caught_by_the_saved_checkpoint() -> None:
    key, vkey = signer()
    entries = [f'{{"n":{i}}}'.encode() for i in range(10)]
    saved = note(MemoryTree(entries[:6]), 6, key)
    honest = check_vault(
        FakeVault(MemoryTree(entries), entries, key), key=vkey, trusted=saved, entry=4
    )
    assert honest.ok
    assert honest.checked == [
        f"Checkpoint: size 10, signed by {ORIGIN}",
        "Consistency: the log extends your checkpoint of size 6",
        "Inclusion: entry 4 is in the signed tree of size 10",
    ]
    rewritten = [*entries[:2], b'{"n":"gone"}', *entries[3:]]
    report = check_vault(FakeVault(MemoryTree(rewritten), rewritten, key), key=vkey, trusted=saved)
    assert report.problems == [
        "the log of size 10 is not an extension of your saved checkpoint of size 6: entries "
        "before it were changed, removed, inserted or moved"
    ]
    assert report.lines()[-1] == "The access log did NOT verify."


@pytest.fixture(scope="module")
def auditor(live: Live) -> str:
    """An access token with audit:read only, through the client's own OAuth flow."""
    client = Client.discover(live.base)
    client.register("Audit Co", ["http://127.0.0.1:9/cb"])
    request = client.authorization_url(scope="audit:read")
    token = client.exchange(consent(live.base, request.url), request)
    assert token["scope"] == "audit:read"
    return token["access_token"]


def test_a_live_vault_checkpoint_consistency_and_inclusion(
    live: Live, auditor: str, tmp_path: Path
) -> None:
    vkey = live.pds("audit", "key").strip()
    api = AuditorApi(live.base, auditor)
    first = check_vault(api, key=vkey)
    assert first.ok, first.problems
    saved = first.newest.note.encode()
    later = check_vault(api, key=vkey, trusted=saved, entry=3)
    size, origin = later.newest.size, later.origin
    assert size > first.newest.size
    assert later.lines() == [
        f"Log: {origin}",
        f"Key: {vkey} (pinned by you)",
        f"Checkpoint: size {size}, signed by {origin}",
        f"Consistency: the log extends your checkpoint of size {first.newest.size}",
        f"Inclusion: entry 3 is in the signed tree of size {size}",
        "OK",
    ]
    token = tmp_path / "token"
    token.write_text(auditor)
    (tmp_path / "saved.note").write_bytes(saved)
    done = subprocess.run(
        [
            Path(sys.executable).with_name("pds-verify"),
            "url",
            live.base,
            "--token-file",
            str(token),
            "--key",
            vkey,
            "--trusted",
            str(tmp_path / "saved.note"),
            "--entry",
            "0",
            "--all",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    printed = done.stdout.splitlines()
    now = int(printed[2].removeprefix("Checkpoint: size ").split(",")[0])
    # every auditor call is logged: the checkpoint's own call, then the consistency proof,
    # the entry and its inclusion proof are in the log before the entries are read
    assert printed == [
        f"Log: {origin}",
        f"Key: {vkey} (pinned by you)",
        f"Checkpoint: size {now}, signed by {origin}",
        f"Consistency: the log extends your checkpoint of size {first.newest.size}",
        f"Inclusion: entry 0 is in the signed tree of size {now}",
        f"Entries: {now + 4}, each hashed to its leaf; the first {now} match the checkpoint "
        "(the vault logged 4 entries since, this check's own requests among them: no "
        "signature covers them yet)",
        "OK",
    ]
    with pytest.raises(VerifyError) as caught:
        check_vault(AuditorApi(live.base, "not-a-token"))
    assert caught.value.message == (
        f"{live.base}/audit/key answered 401: the access token is unknown, expired or revoked"
    )


def test_an_exported_bundle_verifies_and_a_changed_entry_is_found(
    live: Live, auditor: str, tmp_path: Path
) -> None:
    vkey = live.pds("audit", "key").strip()
    saved = check_vault(AuditorApi(live.base, auditor), key=vkey).newest.note
    bundle = tmp_path / "audit.bundle"
    live.pds("audit", "export", str(bundle))
    report = verify_bundle(bundle, key=vkey, trusted=[saved])
    assert report.ok, report.problems
    entries = len(bundle.read_bytes().splitlines()) - 1
    assert report.checked[0] == f"Entries: {entries}, each hashed to its leaf"
    assert report.checked[2].startswith("Trusted: the log extends your checkpoints of size [")
    lines = bundle.read_bytes().split(b"\n")
    assert b'"decision":"allowed"' in lines[6]
    lines[6] = lines[6].replace(b'"decision":"allowed"', b'"decision":"refused"')
    tampered = tmp_path / "tampered.bundle"
    tampered.write_bytes(b"\n".join(lines))
    report = verify_bundle(tampered, key=vkey)
    assert report.first_bad_index == 5
    assert report.problems[0] == (
        "entry 5 does not hash to the leaf recorded when it was appended: it was changed afterwards"
    )
    assert not report.ok
    whole = bundle.read_bytes().split(b"\n")
    sizes = [int(cp.split("\n")[1]) for cp in json.loads(whole[0])["checkpoints"]]
    kept = max(sizes) - 2
    cut = tmp_path / "cut.bundle"
    cut.write_bytes(b"\n".join(whole[: 1 + kept]) + b"\n")
    assert verify_bundle(cut, key=vkey).problems == [
        f"a checkpoint covers {size} entries but the log has only {kept}: entries were removed"
        for size in sorted(s for s in sizes if s > kept)
    ]
    done = subprocess.run(
        [sys.executable, "-m", "pds_client.verify", "bundle", str(tampered), "--key", vkey],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert (
        "FAILED: entry 5 does not hash to the leaf recorded when it was appended: it was "
        "changed afterwards"
    ) in done.stdout.splitlines()


NEW_BUNDLE = "ask the vault's owner for a new bundle (`pds audit export`)"


def _line(text: bytes) -> bytes:
    """A bundle line for ``text`` with its correct leaf hash: what anyone can write."""
    return leaf_hash(text).hex().encode() + b" " + text + b"\n"


def _pds_verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [Path(sys.executable).with_name("pds-verify"), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_bundle_must_end_with_a_signed_checkpoint(
    live: Live, auditor: str, tmp_path: Path
) -> None:
    vkey = live.pds("audit", "key").strip()
    bundle = tmp_path / "audit.bundle"
    live.pds("audit", "export", str(bundle))
    header, rest = bundle.read_bytes().split(b"\n", 1)
    n = rest.count(b"\n")
    newest = max(int(cp.split("\n")[1]) for cp in json.loads(header)["checkpoints"])
    assert newest == n
    genuine = _pds_verify("bundle", str(bundle), "--key", vkey)
    assert (genuine.returncode, genuine.stderr) == (0, ""), genuine.stdout
    assert genuine.stdout.splitlines()[2:] == [
        f"Entries: {n}, each hashed to its leaf",
        f"Checkpoints: {len(json.loads(header)['checkpoints'])} signed, newest at size {n}",
        "OK",
    ]

    unsigned = json.loads(header)
    unsigned["checkpoints"] = []
    bare = tmp_path / "bare.bundle"
    bare.write_bytes(json.dumps(unsigned).encode() + b"\n" + rest)
    done = _pds_verify("bundle", str(bare), "--key", vkey)
    assert done.returncode == 1
    assert done.stdout.splitlines()[2:] == [
        f"Entries: {n}, each hashed to its leaf",
        "Checkpoints: 0 signed",
        f"FAILED: entries 0..{n - 1} are not covered by any signed checkpoint: anyone with the "
        f"file could have added them; {NEW_BUNDLE}",
        "The access log did NOT verify.",
    ]
    made_up = tmp_path / "made-up.bundle"
    made_up.write_bytes(json.dumps(unsigned).encode() + b"\n" + _line(b'{"action":"x"}'))
    assert verify_bundle(made_up, key=vkey).problems == [
        "entry 0 is not covered by any signed checkpoint: anyone with the file could have "
        f"added it; {NEW_BUNDLE}"
    ]
    empty = tmp_path / "empty.bundle"
    empty.write_bytes(json.dumps(unsigned).encode() + b"\n")
    assert verify_bundle(empty, key=vkey).problems == [
        "the bundle holds no checkpoint signed by the key: nothing in it can be verified; "
        + NEW_BUNDLE
    ]

    forged = tmp_path / "forged.bundle"
    forged.write_bytes(
        bundle.read_bytes() + _line(b'{"action":"grant.revoke"}') + _line(b'{"action":"y"}')
    )
    report = verify_bundle(forged, key=vkey)
    assert report.first_bad_index == n
    assert report.problems == [
        f"entries {n}..{n + 1} are not covered by any signed checkpoint: anyone with the file "
        f"could have added them; {NEW_BUNDLE}"
    ]
    done = _pds_verify("bundle", str(forged), "--key", vkey)
    assert done.returncode == 1
    assert done.stdout.splitlines()[-2:] == [
        f"FAILED: {report.problems[0]}",
        "The access log did NOT verify.",
    ]

    newer = check_vault(AuditorApi(live.base, auditor), key=vkey).newest
    assert newer.size > n
    older = verify_bundle(bundle, key=vkey, trusted=[newer.note])
    assert older.problems == [
        f"a trusted checkpoint covers {newer.size} entries but the log has only {n}: entries "
        "were removed, or this bundle is older than your checkpoint"
    ]
    assert [line for line in older.lines() if line.startswith("Trusted")] == []


def test_pds_verify_exit_codes_for_a_refused_token(live: Live, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("revoked-or-unknown")
    done = _pds_verify("url", live.base, "--token-file", str(token))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"error: {live.base}/audit/key answered 401: the access token is unknown, expired or "
        "revoked\n"
    )
    missing = _pds_verify("bundle", str(tmp_path / "nope.bundle"))
    assert missing.returncode == 2
    assert missing.stderr == (
        f"error: cannot read {tmp_path / 'nope.bundle'}: No such file or directory\n"
    )


def test_the_verifier_needs_neither_authlib_nor_requests() -> None:
    probe = "import sys, pds_client.verify; print(sorted(m for m in ('authlib', 'requests') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n"
